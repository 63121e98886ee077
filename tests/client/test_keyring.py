"""Keys in the real Secret Service (gnome-keyring on a private D-Bus session bus).

Everything runs our ``fwknop`` as a process, as a user would. Packets made
with ``--dry-run`` are opened with fwknop_core and the keys the command
printed for the server, which proves the keyring read gave the right keys.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fwknop_core import HmacKey, HmacType, RijndaelKey, open_packet
from tests.helpers.gpghome import build_homes, stop_agents
from tests.helpers.ourclient import OurClient
from tests.helpers.secret_service import SecretServiceSession
from tests.helpers.vectors import CLIENT_GPG_KEY

pytestmark = [pytest.mark.keyring]


@pytest.fixture
def client(tmp_path: Path, session: SecretServiceSession) -> OurClient:
    return OurClient(
        tmp_path / "client",
        env=session.env | {"FWKNOP_TUI_CONFIG_DIR": str(tmp_path / "client" / "config")},
    )


def _ok(res: object) -> str:
    assert res.returncode == 0, res.stderr.decode()  # type: ignore[attr-defined]
    return res.stdout.decode()  # type: ignore[attr-defined]


def _stanza_keys(stanza: str) -> tuple[RijndaelKey, HmacKey]:
    values = dict(
        re.findall(r"^(KEY_BASE64|HMAC_KEY_BASE64|HMAC_DIGEST_TYPE)\s+(\S+)$", stanza, re.M)
    )
    kind = HmacType.from_name(values["HMAC_DIGEST_TYPE"])
    return RijndaelKey.from_base64(values["KEY_BASE64"]), HmacKey.from_base64(
        values["HMAC_KEY_BASE64"], kind
    )


def test_keygen_stores_keys_that_send_reads_back(
    client: OurClient, session: SecretServiceSession
) -> None:
    _ok(client.run(["add", "home", "-D", "127.0.0.1", "-A", "tcp/22"]))
    stanza = _ok(client.run(["keygen", "--profile", "home", "--hmac-type", "sha512"]))
    key, hkey = _stanza_keys(stanza)
    assert session.lookup("home/rijndael") == key.to_base64()
    assert session.lookup("home/hmac") == hkey.to_base64()
    assert hkey.type is HmacType.SHA512
    assert 'hmac_type = "sha512"' in client.profiles.read_text()
    assert key.to_base64() not in client.profiles.read_text()
    for run in range(2):  # the second run uses the remembered backend's fast path
        res = client.run(["-vv", "send", "home", "--dry-run"])
        wire = _ok(res).strip()
        opened = open_packet(wire, key, hmac_key=hkey, now=time.time())
        assert opened.message.message == "0.0.0.0,tcp/22"
        if run == 1:
            assert b"from the Secret Service directly" in res.stderr
    hint = Path(client.env["XDG_CACHE_HOME"]) / "fwknop-tui" / "keyring-backend"
    assert hint.read_text().split()[0] == "keyring.backends.SecretService.Keyring"


def test_an_x25519_private_key_lives_in_the_keyring_and_send_reads_it(
    client: OurClient, session: SecretServiceSession
) -> None:
    from fwknop_core import X25519Keyring, X25519PrivateKey, X25519PublicKey

    server = X25519PrivateKey.generate()
    _ok(
        client.run(
            ["add", "home", "-D", "127.0.0.1", "-A", "tcp/22", "--server-type", "fwknop-tui",
             "--set", "encryption=x25519", "--server-public-key", server.public_key.to_text()]
        )
    )  # fmt: skip
    stanza = _ok(client.run(["keygen", "--profile", "home"]))
    public = X25519PublicKey.from_text(re.findall(r"^CLIENT_PUBLIC_KEY\s+(\S+)$", stanza, re.M)[0])
    stored = session.lookup("home/x25519")
    assert stored is not None and X25519PrivateKey.from_text(stored).public_key == public
    assert stored not in client.profiles.read_text() and stored not in stanza
    wire = _ok(client.run(["send", "home", "--dry-run"])).strip()
    opened = X25519Keyring(server, [(public, "home")]).open(wire, max_age=120)
    assert opened.owners == ("home",) and opened.message.access[0].port == 22


def test_entries_written_by_keyring_itself_are_read(
    client: OurClient, session: SecretServiceSession
) -> None:
    _ok(client.run(["add", "lib", "-D", "127.0.0.1", "--hmac-digest-type", "none"]))
    key = RijndaelKey(b"k" * 32)
    code = (
        f"import keyring; keyring.set_password('fwknop-tui', 'lib/rijndael', {key.to_base64()!r})"
    )
    session.run([sys.executable, "-c", code])
    shown = _ok(client.run(["show", "lib", "--reveal", "rijndael"]))
    assert shown.strip() == key.to_base64()
    # and keyring reads what we write
    _ok(client.run(["keygen", "--profile", "lib", "--force"]))
    read = session.run(
        [
            sys.executable,
            "-c",
            "import keyring; print(keyring.get_password('fwknop-tui', 'lib/rijndael'))",
        ]
    )
    assert read.stdout.decode().strip() == session.lookup("lib/rijndael")
    assert read.stdout.decode().strip() != key.to_base64()


def test_rename_moves_and_rm_deletes_the_entries(
    client: OurClient, session: SecretServiceSession
) -> None:
    _ok(client.run(["add", "old", "-D", "127.0.0.1"]))
    _ok(client.run(["keygen", "--profile", "old"]))
    secret = session.lookup("old/rijndael")
    assert secret
    _ok(client.run(["rename", "old", "new"]))
    assert session.lookup("old/rijndael") is None
    assert session.lookup("new/rijndael") == secret
    assert session.lookup("new/hmac")
    _ok(client.run(["rm", "new", "--yes"]))
    assert session.lookup("new/rijndael") is None
    assert session.lookup("new/hmac") is None
    assert "new" not in _ok(client.run(["list"])).split()


def test_a_locked_keyring_is_its_own_error(
    client: OurClient, session: SecretServiceSession
) -> None:
    _ok(client.run(["add", "home", "-D", "127.0.0.1"]))
    _ok(client.run(["keygen", "--profile", "home"]))
    lock = "import secretstorage as s; s.get_default_collection(s.dbus_init()).lock()"
    session.run([sys.executable, "-c", lock])
    res = client.run(["send", "home", "--dry-run"], timeout=120)
    assert res.returncode == 6, res.stderr.decode()
    err = res.stderr.decode()
    assert err.count("\n") == 1 and "keyring is locked" in err


def test_no_secret_service_says_how_to_fix_it(client: OurClient, tmp_path: Path) -> None:
    _ok(client.run(["add", "home", "-D", "127.0.0.1"]))
    res = client.run(
        ["send", "home", "--dry-run"],
        env={"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"},
    )
    assert res.returncode == 7
    err = res.stderr.decode()
    assert err.count("\n") == 1
    assert "no usable keyring backend" in err and "dbus-run-session" in err and "key_command" in err


@pytest.mark.gpg
def test_keys_from_a_key_command(client: OurClient, tmp_path: Path) -> None:
    """A pass-style key command: gpg decrypts a file holding the share text."""
    homes = build_homes(tmp_path / "gnupg")
    try:
        key, hkey = RijndaelKey(b"r" * 32), HmacKey(b"h" * 64)
        plain = tmp_path / "keys.txt"
        plain.write_text(f"KEY_BASE64: {key.to_base64()}\nHMAC_KEY_BASE64: {hkey.to_base64()}\n")
        sealed = tmp_path / "keys.gpg"
        subprocess.run(
            [
                "gpg",
                "--batch",
                "--quiet",
                "--homedir",
                str(homes.client),
                "--trust-model",
                "always",
                "-r",
                CLIENT_GPG_KEY,
                "-o",
                str(sealed),
                "--encrypt",
                str(plain),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        plain.unlink()
        command = f"gpg --batch --quiet --homedir {homes.client} --decrypt {sealed}"
        _ok(client.run(["add", "cmd", "-D", "127.0.0.1", "--key-command", command]))
        wire = _ok(
            client.run(
                ["send", "cmd", "--dry-run"],
                env={"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"},
            )
        ).strip()
        assert (
            open_packet(wire, key, hmac_key=hkey, now=time.time()).message.message
            == "0.0.0.0,tcp/22"
        )
    finally:
        stop_agents(homes)
