"""Where keys come from: keyring entries, commands, 0600 files, stdin text."""

from __future__ import annotations

from pathlib import Path

import pytest

from fwknop_core import HmacKey, RijndaelKey
from fwknop_tui.errors import KeyMissingError
from fwknop_tui.wallet.keys import KeyOverrides, encode_stored, load_keys, stored_from_text
from fwknop_tui.wallet.profiles import Profile
from fwknop_tui.wallet.secrets import MemoryStore

KEY, HKEY = RijndaelKey(b"r" * 32), HmacKey(b"h" * 64)
SHARE = f"KEY_BASE64: {KEY.to_base64()}\nHMAC_KEY_BASE64: {HKEY.to_base64()}\n"


def _file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "key"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_keyring_entries(memory: MemoryStore) -> None:
    memory.set("p", "rijndael", KEY.to_base64())
    memory.set("p", "hmac", HKEY.to_base64())
    keys = load_keys(Profile.from_table("p", {"host": "h"}), memory)
    assert (
        keys.rijndael == KEY
        and keys.hmac == HKEY
        and keys.sources == {"rijndael": "keyring", "hmac": "keyring"}
    )
    assert "r" * 8 not in repr(keys)


def test_a_key_file_with_share_text_gives_both_keys(tmp_path: Path) -> None:
    profile = Profile.from_table("p", {"host": "h", "key_file": str(_file(tmp_path, SHARE))})
    keys = load_keys(profile, None)
    assert keys.rijndael == KEY and keys.hmac == HKEY


def test_a_bare_passphrase_file(tmp_path: Path) -> None:
    profile = Profile.from_table(
        "p",
        {
            "host": "h",
            "key_file": str(_file(tmp_path, "correct horse\n")),
            "key_format": "passphrase",
            "hmac_type": "none",
        },
    )
    assert load_keys(profile, None).rijndael == RijndaelKey(b"correct horse")


def test_key_files_open_to_others_are_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, SHARE, 0o644)
    profile = Profile.from_table("p", {"host": "h", "key_file": str(path)})
    with pytest.raises(KeyMissingError, match=r"mode 0644\): chmod 600"):
        load_keys(profile, None)


def test_a_key_command_and_its_failure(tmp_path: Path) -> None:
    ok = Profile.from_table("p", {"host": "h", "key_command": ["printf", "%s", SHARE]})
    assert load_keys(ok, None).hmac == HKEY
    bad = Profile.from_table(
        "p", {"host": "h", "key_command": ["sh", "-c", f"echo {KEY.to_base64()}; exit 4"]}
    )
    with pytest.raises(KeyMissingError) as err:
        load_keys(bad, None)
    assert "exited with status 4" in str(err.value) and KEY.to_base64() not in str(err.value)


def test_a_file_without_the_hmac_key_says_so(tmp_path: Path) -> None:
    profile = Profile.from_table(
        "p", {"host": "h", "key_file": str(_file(tmp_path, KEY.to_base64()))}
    )
    with pytest.raises(KeyMissingError, match="gives no HMAC key"):
        load_keys(profile, None)


def test_stdin_text_wins_over_the_keyring(memory: MemoryStore) -> None:
    memory.set("p", "rijndael", RijndaelKey(b"x" * 32).to_base64())
    keys = load_keys(Profile.from_table("p", {"host": "h"}), memory, KeyOverrides(text=SHARE))
    assert keys.rijndael == KEY and keys.sources["rijndael"] == "stdin"


def test_garbage_in_the_keyring_is_reported_without_the_value(memory: MemoryStore) -> None:
    memory.set("p", "rijndael", "not base64 !!")
    with pytest.raises(KeyMissingError, match="is not a usable Rijndael key") as err:
        load_keys(Profile.from_table("p", {"host": "h", "hmac_type": "none"}), memory)
    assert "not base64 !!" not in str(err.value)


# passphrases that merely hold the word "key": never share text (KEY_BASE64: ... items)
WORDY = ("my-key-2024", "open -key now", "monkey: banana", "the key door", "Key ring", "key")


@pytest.mark.parametrize("passphrase", WORDY)
def test_a_passphrase_with_the_word_key_is_the_passphrase(tmp_path: Path, passphrase: str) -> None:
    rijndael = tmp_path / "r"
    rijndael.write_text(passphrase + "\n")
    rijndael.chmod(0o600)
    hmac = tmp_path / "h"
    hmac.write_text(f"hmac {passphrase}\n")
    hmac.chmod(0o600)
    profile = Profile.from_table(
        "p",
        {
            "host": "h",
            "key_format": "passphrase",
            "key_file": str(rijndael),
            "hmac_key_file": str(hmac),
        },
    )
    keys = load_keys(profile, None)
    assert keys.rijndael == RijndaelKey(passphrase.encode())
    assert keys.hmac is not None and keys.hmac.secret == f"hmac {passphrase}".encode()
    plain = Profile.from_table("p", {"host": "h", "key_format": "passphrase", "hmac_type": "none"})
    on_stdin = load_keys(plain, None, KeyOverrides(text=passphrase))
    assert on_stdin.rijndael == RijndaelKey(passphrase.encode())
    typed = stored_from_text("rijndael", passphrase, plain)  # the editor's way
    assert typed == encode_stored(passphrase.encode())
