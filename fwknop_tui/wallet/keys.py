"""Getting a profile's keys: keyring, key command, 0600 file, stdin or a file descriptor.

Order for each key (first that applies wins): what the command line gave
for this run (stdin / fd text), the profile's ``*_command``, its ``*_file``,
then the keyring entry. Keys never come from argv.

A ``key_command`` or ``key_file`` that prints share text supplies the HMAC
key too, unless the profile names a separate ``hmac_key_command`` /
``hmac_key_file``.

Text from a command, a file, stdin or an fd is either the bare key
(base64, or the passphrase when ``key_format = "passphrase"``; one trailing
newline is dropped) or share text with ``KEY_BASE64:`` / ``HMAC_KEY_BASE64:``
items (the output of ``fwknop keygen``, a QR code's text, an access.conf
stanza), from which the matching key is taken. For an x25519 profile the
text holds the private key's ``x25519-priv:`` item (alone or among other
lines, as in the server's key file).

Error messages name the profile, the key and the source, never a value.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, cast

from fwknop_core import HmacType, UsageError, is_share_text

from ..errors import ClientUsageError, KeyMissingError
from .profiles import Profile
from .secrets import SERVICE, SLOT_PREFIX, SecretStore, entry_name

if TYPE_CHECKING:  # the key classes (and cryptography) load when a key is first read
    from fwknop_core import HmacKey, RijndaelKey, X25519PrivateKey

__all__ = [
    "KeyOverrides",
    "ProfileKeys",
    "decode_stored",
    "encode_stored",
    "load_keys",
    "read_key_file",
    "read_private_file",
    "stored_from_text",
]

_X25519_ITEM = r"x25519-priv:\S*"
_LABEL = {
    "rijndael": "Rijndael key",
    "hmac": "HMAC key",
    "gpg-signing-pw": "GnuPG signing passphrase",
    "x25519": "X25519 private key",
}
COMMAND_TIMEOUT = 60


class ProfileKeys:
    """The keys a knock needs, and where each came from (the sources are safe to show).

    A plain class, not a dataclass: made on every ``fwknop send``, where a
    dataclass's generated methods cost their compilation at import.
    """

    __slots__ = ("gpg_signing_pw", "hmac", "rijndael", "sources", "x25519")

    def __init__(
        self,
        rijndael: RijndaelKey | None = None,
        hmac: HmacKey | None = None,
        gpg_signing_pw: str | None = None,
        x25519: X25519PrivateKey | None = None,
        sources: dict[str, str] | None = None,
    ) -> None:
        self.rijndael = rijndael
        self.hmac = hmac
        self.gpg_signing_pw = gpg_signing_pw
        self.x25519 = x25519
        self.sources: dict[str, str] = sources if sources is not None else {}

    def __repr__(self) -> str:
        return f"ProfileKeys(sources={self.sources!r})"


class KeyOverrides:
    """Keys given for one run: text read from stdin or an fd, or another profile's entries."""

    __slots__ = ("keyring_profile", "text", "text_source")

    def __init__(
        self,
        text: str | None = None,
        text_source: str = "stdin",
        keyring_profile: str | None = None,
    ) -> None:
        self.text = text
        self.text_source = text_source
        self.keyring_profile = keyring_profile

    def __repr__(self) -> str:
        return (
            f"KeyOverrides(text={'<hidden>' if self.text else None}, from={self.keyring_profile!r})"
        )


def encode_stored(secret: bytes) -> str:
    """How Rijndael and HMAC keys are stored in the keyring (padded base64)."""
    import base64  # noqa: PLC0415

    return base64.b64encode(secret).decode("ascii")


def decode_stored(
    slot: str, text: str, profile: Profile
) -> RijndaelKey | HmacKey | X25519PrivateKey:
    """A keyring value back into a key object."""
    from fwknop_core import HmacKey, RijndaelKey  # noqa: PLC0415 - see TYPE_CHECKING

    try:
        if slot == "x25519":
            from fwknop_core import X25519PrivateKey  # noqa: PLC0415

            return X25519PrivateKey.from_text(text)
        if slot == "rijndael":
            return RijndaelKey.from_base64(text.strip(), profile.encryption_mode)
        return HmacKey.from_base64(text.strip(), profile.hmac_type or HmacType.SHA256)
    except UsageError as exc:
        raise KeyMissingError(
            f"profile {profile.name!r}: the keyring entry "
            f"{SERVICE}/{entry_name(profile.name, slot)} "
            f"is not a usable {_LABEL[slot]} ({exc})"
        ) from None


def _from_text(
    slot: str, text: str, profile: Profile, source: str
) -> RijndaelKey | HmacKey | X25519PrivateKey | str | None:
    """A key from command/file/stdin text: share items, or the bare key."""
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    if slot == "gpg-signing-pw":
        return text
    if slot == "x25519":  # the x25519-priv: item, alone or among other lines
        from fwknop_core import X25519PrivateKey  # noqa: PLC0415

        found = re.search(_X25519_ITEM, text)
        try:
            return X25519PrivateKey.from_text(found.group(0) if found else text)
        except UsageError as exc:
            raise KeyMissingError(
                f"profile {profile.name!r}: {source} did not give a usable {_LABEL[slot]} ({exc})"
            ) from None
    from fwknop_core import HmacKey, RijndaelKey  # noqa: PLC0415 - see TYPE_CHECKING

    mode = profile.encryption_mode
    kind = profile.hmac_type or HmacType.SHA256
    try:
        if is_share_text(text):
            from fwknop_core import parse_share  # noqa: PLC0415 - loads on first use

            shared = parse_share(text, mode=mode, hmac_type=kind)
            return shared.rijndael if slot == "rijndael" else shared.hmac
        if not text:
            raise UsageError("it is empty")
        if profile.key_format == "passphrase":
            return (
                RijndaelKey.from_passphrase(text, mode)
                if slot == "rijndael"
                else HmacKey.from_passphrase(text, kind)
            )
        bare = text.strip()
        return (
            RijndaelKey.from_base64(bare, mode)
            if slot == "rijndael"
            else HmacKey.from_base64(bare, kind)
        )
    except UsageError as exc:
        raise KeyMissingError(
            f"profile {profile.name!r}: {source} did not give a usable {_LABEL[slot]} ({exc})"
        ) from None


def stored_from_text(slot: str, text: str, profile: Profile) -> str:
    """The keyring value for a key typed or pasted by the user (bare key or share text).

    ``KeyMissingError`` says why the text is not a usable key, never what it was.
    """
    key = _from_text(slot, text, profile, "the text entered")
    if key is None:
        raise KeyMissingError(f"the text entered holds no {_LABEL[slot]}")
    if isinstance(key, str):
        return key
    if slot == "x25519":
        return cast("X25519PrivateKey", key).to_text()
    return encode_stored(cast("RijndaelKey | HmacKey", key).secret)


def read_private_file(path: Path, what: str) -> str:
    """Text of a file that holds a secret: a regular file of ours, mode 0600 or stricter."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyMissingError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise KeyMissingError(f"{what} {path} cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyMissingError(f"{what} {path} is not a regular file")
        if st.st_uid != os.getuid():
            raise KeyMissingError(f"{what} {path} belongs to another user")
        if st.st_mode & 0o077:
            raise KeyMissingError(
                f"{what} {path} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}): "
                f"chmod 600 {path}"
            )
        data = fh.read(1 << 16)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyMissingError(f"{what} {path} is not UTF-8 text") from None


def read_key_file(path: str, what: str) -> str:
    """``read_private_file`` with ``~`` expanded."""
    return read_private_file(Path(path).expanduser(), what)


def run_key_command(argv: tuple[str, ...], what: str) -> str:
    """stdout of a key command (no shell); its stderr goes to ours."""
    import subprocess  # noqa: PLC0415 - only key commands pay for it

    try:
        res = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise KeyMissingError(f"{what}: program {argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise KeyMissingError(f"{what}: {argv[0]} did not finish in {COMMAND_TIMEOUT} s") from None
    except OSError as exc:
        raise KeyMissingError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from None
    if res.returncode != 0:
        raise KeyMissingError(f"{what}: {argv[0]} exited with status {res.returncode}")
    try:
        return res.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyMissingError(f"{what}: {argv[0]} printed something that is not UTF-8") from None


def load_keys(
    profile: Profile, store: SecretStore | None, overrides: KeyOverrides | None = None
) -> ProfileKeys:
    """Every key ``profile`` needs; ``KeyMissingError`` names the first one missing."""
    overrides = overrides or KeyOverrides()
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    from_keyring: list[str] = []
    shared: tuple[str, str] | None = None  # text and source of the Rijndael key's command/file
    for slot in profile.key_slots():
        prefix = SLOT_PREFIX[slot]
        command: tuple[str, ...] = getattr(profile, f"{prefix}_command")
        path: str = getattr(profile, f"{prefix}_file")
        text = overrides.text
        # a bare key on stdin/fd is the Rijndael (or x25519) key; share text can carry both
        usable = text is not None and (
            slot in ("rijndael", "x25519") or (slot == "hmac" and is_share_text(text))
        )
        if usable and text is not None:
            got = _from_text(slot, text, profile, overrides.text_source)
            if got is not None:
                values[slot], sources[slot] = got, overrides.text_source
                continue
        if command:
            what = f"profile {profile.name!r}: {prefix}_command"
            text = run_key_command(command, what)
            values[slot] = _from_text(slot, text, profile, f"{prefix}_command")
            sources[slot] = f"{prefix}_command"
            shared = (text, sources[slot]) if slot == "rijndael" else shared
        elif path:
            text = read_key_file(path, f"profile {profile.name!r}: {prefix}_file")
            values[slot] = _from_text(slot, text, profile, f"{prefix}_file {path}")
            sources[slot] = f"{prefix}_file"
            shared = (text, sources[slot]) if slot == "rijndael" else shared
        elif slot == "hmac" and shared is not None:
            has_items = is_share_text(shared[0])
            got = _from_text(slot, shared[0], profile, shared[1]) if has_items else None
            if got is None:
                raise KeyMissingError(
                    f"profile {profile.name!r}: {shared[1]} gives no HMAC key: add an "
                    "HMAC_KEY_BASE64: line to it, or set hmac_key_command / hmac_key_file"
                )
            values[slot], sources[slot] = got, shared[1]
        else:
            from_keyring.append(slot)
    if from_keyring:
        owner = overrides.keyring_profile or profile.name
        if store is None:
            raise ClientUsageError("no keyring available for this run")
        stored = store.get_many(owner, from_keyring)
        for slot in from_keyring:
            value = stored.get(slot)
            if value is None:
                if slot == "gpg-signing-pw":
                    continue  # no passphrase: gpg-agent or an unprotected key
                raise KeyMissingError(
                    f"profile {profile.name!r}: no {_LABEL[slot]} in {store.describe()} "
                    f"(entry {entry_name(owner, slot)}): run `fwknop keygen --profile {owner}` or "
                    f"`fwknop import-share {owner}`, or set {SLOT_PREFIX[slot]}_command / "
                    f"{SLOT_PREFIX[slot]}_file"
                )
            values[slot] = (
                value if slot == "gpg-signing-pw" else decode_stored(slot, value, profile)
            )
            sources[slot] = "keyring"
    for slot in profile.key_slots():
        if slot != "gpg-signing-pw" and values.get(slot) is None:
            raise KeyMissingError(f"profile {profile.name!r}: no {_LABEL[slot]} found")
    from fwknop_core import HmacKey, RijndaelKey  # noqa: PLC0415 - see TYPE_CHECKING

    rijndael = values.get("rijndael")
    hmac_key = values.get("hmac")
    pw = values.get("gpg-signing-pw")
    x25519 = values.get("x25519")
    return ProfileKeys(
        rijndael=rijndael if isinstance(rijndael, RijndaelKey) else None,
        hmac=hmac_key if isinstance(hmac_key, HmacKey) else None,
        gpg_signing_pw=pw if isinstance(pw, str) else None,
        x25519=cast("X25519PrivateKey | None", x25519),
        sources=sources,
    )
