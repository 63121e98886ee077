"""The wallet: profiles and their keys together, the API the CLI and the TUI share.

Operations that touch both the profiles file and the keyring are ordered so
that a failure leaves things as they were: keys are written before the
profile that needs them (and removed again if the profile write fails);
old entries are deleted only after the profile change is on disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from fwknop_core import HmacType

from .._log import get_logger
from ..errors import ClientError, ClientUsageError, KeyMissingError, NoKeyringError
from .keys import KeyOverrides, ProfileKeys, encode_stored, load_keys
from .profiles import Profile, ProfileStore, atomic_write
from .secrets import SLOT_PREFIX, SLOTS, KeyringStore, SecretStore

if TYPE_CHECKING:  # the key classes (and cryptography) load when keys are first made
    from fwknop_core import GeneratedKeys, HmacKey, RijndaelKey, X25519PrivateKey

    from .rc import RcImport

__all__ = ["Wallet"]

log = get_logger(__name__)


class Wallet:
    """Profiles (``ProfileStore``) and keys (``SecretStore``, the keyring by default)."""

    def __init__(
        self, profiles: ProfileStore | None = None, secrets: SecretStore | None = None
    ) -> None:
        self.profiles = profiles or ProfileStore()
        self._secrets = secrets

    @property
    def secrets(self) -> SecretStore:
        """The secret store (created on first use: the keyring costs time)."""
        if self._secrets is None:
            self._secrets = KeyringStore()
        return self._secrets

    # -- profiles ------------------------------------------------------------------

    def get(self, name: str) -> Profile:
        """One validated profile."""
        return self.profiles.get(name)

    def names(self) -> list[str]:
        """Profile names in file order."""
        return self.profiles.names()

    @staticmethod
    def keyring_slots(profile: Profile) -> list[str]:
        """The key slots of ``profile`` that live in the keyring (no command or file)."""

        def elsewhere(slot: str) -> bool:
            prefix = SLOT_PREFIX[slot]
            own = bool(getattr(profile, f"{prefix}_command") or getattr(profile, f"{prefix}_file"))
            if slot == "hmac":  # the Rijndael key's command or file may carry it
                own = own or elsewhere("rijndael")
            return own

        return [s for s in profile.key_slots() if not elsewhere(s)]

    def add(
        self, profile: Profile, *, keys: dict[str, str] | None = None, replace: bool = False
    ) -> None:
        """Add a profile, storing ``keys`` (slot -> stored value) first."""
        if not replace and self.profiles.exists(profile.name):
            from ..errors import ProfileExistsError  # noqa: PLC0415

            raise ProfileExistsError(f"a profile named {profile.name!r} already exists")
        written = self._store(profile.name, keys or {})
        try:
            self.profiles.add(profile, replace=replace)
        except BaseException:
            self._unstore(profile.name, written)
            raise

    def update(self, profile: Profile) -> None:
        """Save a changed profile."""
        self.profiles.update(profile)

    def save(
        self, profile: Profile, *, old_name: str | None = None, keys: dict[str, str] | None = None
    ) -> None:
        """Add (``old_name`` None) or change a profile, with new keyring values (slot -> stored).

        Renames first (itself all or nothing), then writes the keys, then the
        profile; if the profile write fails the keys are put back as they were.
        """
        keys = keys or {}
        if old_name is None:
            self.add(profile, keys=keys)
            return
        if old_name != profile.name:
            self.rename(old_name, profile.name)
        previous = self.secrets.get_many(profile.name, list(keys)) if keys else {}
        written = self._store(profile.name, keys)
        try:
            self.profiles.update(profile)
        except BaseException:
            restore = {s: v for s, v in previous.items() if s in written and v is not None}
            self._unstore(profile.name, [s for s in written if s not in restore])
            for slot, value in restore.items():
                try:
                    self.secrets.set(profile.name, slot, value)
                except ClientError as exc:  # best effort while undoing
                    log.warning("could not restore %s/%s: %s", profile.name, slot, exc)
            raise

    def rename(self, old: str, new: str) -> None:
        """Rename a profile and move its keyring entries."""
        profile = self.get(old)
        if self.profiles.exists(new):
            from ..errors import ProfileExistsError  # noqa: PLC0415

            raise ProfileExistsError(f"a profile named {new!r} already exists")
        moved: dict[str, str] = {}
        try:
            found = self.secrets.get_many(old, SLOTS)
            moved = {s: val for s, val in found.items() if val is not None}
        except NoKeyringError:
            if self.keyring_slots(profile):
                raise
        written = self._store(new, moved)
        try:
            self.profiles.rename(old, new)
        except BaseException:
            self._unstore(new, written)
            raise
        self._unstore(old, list(moved))

    def remove(self, name: str, *, keep_keys: bool = False) -> list[str]:
        """Delete a profile and (unless ``keep_keys``) its keyring entries (returned)."""
        profile = self.get(name)
        deleted: list[str] = []
        if not keep_keys:
            try:
                deleted = [s for s in SLOTS if self.secrets.delete(name, s)]
            except NoKeyringError:
                if self.keyring_slots(profile):
                    raise
        self.profiles.remove(name)
        return deleted

    # -- keys ------------------------------------------------------------------------

    def keys(self, profile: Profile, overrides: KeyOverrides | None = None) -> ProfileKeys:
        """Every key ``profile`` needs, from wherever the profile says."""
        store = None
        if self.keyring_slots(profile) or (overrides and overrides.keyring_profile):
            store = self.secrets
        return load_keys(profile, store, overrides)

    def _store(self, name: str, keys: dict[str, str]) -> list[str]:
        written: list[str] = []
        try:
            for slot, value in keys.items():
                self.secrets.set(name, slot, value)
                written.append(slot)
        except BaseException:
            self._unstore(name, written)
            raise
        return written

    def _unstore(self, name: str, slots: Iterable[str]) -> None:
        for slot in slots:
            try:
                self.secrets.delete(name, slot)
            except ClientError as exc:  # best effort while undoing
                log.warning("could not delete keyring entry %s/%s: %s", name, slot, exc)

    def set_keys(
        self,
        name: str,
        *,
        rijndael: RijndaelKey | None = None,
        hmac: HmacKey | None = None,
        gpg_signing_pw: str | None = None,
        x25519: X25519PrivateKey | None = None,
    ) -> list[str]:
        """Store keys for a profile in the keyring; returns the slots written."""
        values: dict[str, str] = {}
        if x25519 is not None:
            values["x25519"] = x25519.to_text()
        if rijndael is not None:
            values["rijndael"] = encode_stored(rijndael.secret)
        if hmac is not None:
            values["hmac"] = encode_stored(hmac.secret)
        if gpg_signing_pw is not None:
            values["gpg-signing-pw"] = gpg_signing_pw
        return self._store(name, values)

    def stored_slots(self, name: str) -> list[str]:
        """Which keyring entries exist for a profile."""
        return [s for s, val in self.secrets.get_many(name, SLOTS).items() if val is not None]

    def generate(
        self,
        name: str,
        *,
        hmac_type: HmacType | None = None,
        key_len: int = 32,
        hmac_key_len: int | None = None,
        replace: bool = False,
    ) -> ProfileKeys:
        """New random keys for a profile, straight into the keyring."""
        profile = self.get(name)
        if profile.uses_x25519:
            return self._generate_x25519(profile, replace=replace)
        if profile.uses_gpg:
            raise ClientUsageError(
                f"profile {name!r} uses GnuPG: it has no Rijndael key to generate"
            )
        for slot in ("rijndael", "hmac"):
            prefix = SLOT_PREFIX[slot]
            if getattr(profile, f"{prefix}_command") or getattr(profile, f"{prefix}_file"):
                raise ClientUsageError(
                    f"profile {name!r} reads its {slot} key from {prefix}_command/{prefix}_file; "
                    "keygen writes to the keyring only: remove those fields first"
                )
        kind = hmac_type or profile.hmac_type or HmacType.SHA256
        existing = [s for s in self.stored_slots(name) if s in ("rijndael", "hmac")]
        if existing and not replace:
            raise ClientUsageError(
                f"profile {name!r} already has keys in the keyring ({', '.join(existing)}); "
                "--force replaces them (the server's access.conf must then change too)"
            )
        from fwknop_core import generate_keys  # noqa: PLC0415 - see TYPE_CHECKING

        fresh: GeneratedKeys = generate_keys(
            kind, key_len=key_len, hmac_key_len=hmac_key_len, mode=profile.encryption_mode
        )
        self.set_keys(name, rijndael=fresh.rijndael, hmac=fresh.hmac)
        if profile.hmac_type is not kind:
            self.update(profile.with_changes({"hmac_type": kind.fwknop_name}))
        return ProfileKeys(
            rijndael=fresh.rijndael, hmac=fresh.hmac, sources={"rijndael": "keyring"}
        )

    def _generate_x25519(self, profile: Profile, *, replace: bool) -> ProfileKeys:
        """A new X25519 key pair: the private key into the keyring, the public one derived."""
        name = profile.name
        if profile.key_command or profile.key_file:
            raise ClientUsageError(
                f"profile {name!r} reads its x25519 key from key_command/key_file; keygen "
                "writes to the keyring only: remove those fields first"
            )
        if "x25519" in self.stored_slots(name) and not replace:
            raise ClientUsageError(
                f"profile {name!r} already has an x25519 key in the keyring; --force replaces "
                "it (the server's access.conf must then name the new public key)"
            )
        from fwknop_core import X25519PrivateKey  # noqa: PLC0415 - loads on first use

        fresh = X25519PrivateKey.generate()
        self.set_keys(name, x25519=fresh)
        return ProfileKeys(x25519=fresh, sources={"x25519": "keyring"})

    # -- sharing and the server side ----------------------------------------------------

    def share_text(self, name: str) -> str:
        """The Fwknop2 key-share text of a profile (holds the keys).

        For an x25519 profile: the ``CLIENT_PUBLIC_KEY`` line for the server's
        access.conf, which holds no secret.
        """
        profile = self.get(name)
        if profile.uses_x25519:
            from .rc import client_public_key_line  # noqa: PLC0415

            return client_public_key_line(self.keys(profile))
        if profile.uses_gpg:
            raise ClientUsageError(f"profile {name!r} uses GnuPG: there is no shared key to show")
        keys = self.keys(profile)
        from fwknop_core import encode_share  # noqa: PLC0415 - loads on first use

        return encode_share(keys.rijndael, keys.hmac)

    def import_share(self, name: str, text: str) -> list[str]:
        """Store the keys of a share text (QR, keygen output, access.conf) for a profile."""
        profile = self.get(name)
        _no_share_for_x25519(profile)
        from fwknop_core import parse_share  # noqa: PLC0415 - loads on first use

        shared = parse_share(
            text, mode=profile.encryption_mode, hmac_type=profile.hmac_type or HmacType.SHA256
        )
        written = self.set_keys(name, rijndael=shared.rijndael, hmac=shared.hmac)
        if (
            shared.rijndael is not None
            and not shared.rijndael_was_base64
            and profile.key_format != "passphrase"
        ):
            self.update(profile.with_changes({"key_format": "passphrase"}))
        return written

    def import_share_into(
        self, name: str, text: str, *, create: Profile | None = None, replace: bool = False
    ) -> list[str]:
        """Store a share text's keys for ``name``, first adding ``create`` if it does not exist.

        All or nothing: keys already stored are kept unless ``replace``, and a
        profile created here is removed again when the text holds no usable key.
        """
        from fwknop_core import UsageError  # noqa: PLC0415

        _no_share_for_x25519(self.get(name) if self.profiles.exists(name) else create)
        created = False
        if self.profiles.exists(name):
            have = [s for s in self.stored_slots(name) if s in ("rijndael", "hmac")]
            if have and not replace:
                raise ClientUsageError(
                    f"profile {name!r} already has keys ({', '.join(have)}); "
                    "replace them explicitly (fwknop import-share --force)"
                )
        elif create is None:
            from ..errors import UnknownProfileError  # noqa: PLC0415

            raise UnknownProfileError(f"no profile named {name!r}")
        else:
            self.add(create.renamed(name))
            created = True
        try:
            return self.import_share(name, text)
        except UsageError as exc:
            if created:
                self.remove(name, keep_keys=True)
            raise ClientUsageError(f"share text: {exc}") from None

    def server_stanza(self, name: str) -> str:
        """The access.conf stanza for a profile's server (holds the keys)."""
        from .rc import access_stanza  # noqa: PLC0415

        profile = self.get(name)
        return access_stanza(profile, self.keys(profile))

    # -- rc files ---------------------------------------------------------------------

    def plan_rc_import(
        self,
        text: str,
        source: str,
        *,
        destination: str | None = None,
        hosts: Mapping[str, str] | None = None,
    ) -> list[RcImport]:
        """Preview an rc import: profiles, key slots and warnings; nothing is written.

        ``destination`` (and ``hosts``, per stanza) give the server of stanzas
        without ``SPA_SERVER``.
        """
        from .rc import plan_import  # noqa: PLC0415

        return plan_import(text, source, set(self.names()), destination=destination, hosts=hosts)

    def plan_rc_file(
        self,
        path: Path,
        *,
        destination: str | None = None,
        hosts: Mapping[str, str] | None = None,
    ) -> list[RcImport]:
        """Read an rc file and preview its import (``ClientUsageError`` if it cannot be read)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ClientUsageError(f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ClientUsageError(f"{path} is not UTF-8 text") from None
        return self.plan_rc_import(text, str(path), destination=destination, hosts=hosts)

    def apply_rc_import(self, plans: list[RcImport], *, replace: bool = False) -> list[str]:
        """Apply a preview all or nothing; returns the profile names written."""
        todo = [p for p in plans if p.profile is not None]
        clash = [p.name for p in todo if p.exists]
        if clash and not replace:
            raise ClientUsageError(
                f"profiles already exist: {', '.join(clash)} "
                "(--force replaces them; nothing was imported)"
            )
        names = [p.name for p in todo]
        if len(set(names)) != len(names):
            raise ClientUsageError(
                "two stanzas map to the same profile name; rename one in the rc file"
            )
        written: list[tuple[str, list[str]]] = []
        try:
            for plan in todo:
                written.append((plan.name, self._store(plan.name, plan.keys)))
            self.profiles.save_many(
                [p.profile for p in todo if p.profile is not None], replace=replace
            )
        except BaseException:
            for name, slots in written:
                self._unstore(name, slots)
            raise
        return names

    def export_rc(self, names: list[str], path: Path) -> list[str]:
        """Write rc stanzas (keys inline) into ``path`` (0600), keeping its other stanzas."""
        from .rc import check_exportable, export_stanza, merge_rc  # noqa: PLC0415

        stanzas: dict[str, str] = {}
        lost: list[str] = []
        for name in names:
            profile = self.get(name)
            try:
                check_exportable(profile)  # before the keyring is asked for anything
                text, missing = export_stanza(profile, self.keys(profile))
            except KeyMissingError:
                raise
            except ValueError as exc:
                raise ClientUsageError(str(exc)) from None
            stanzas[name] = text
            lost += [f"{name}: {m}" for m in missing]
        try:
            existing = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            existing = ""
        except OSError as exc:
            raise ClientUsageError(f"cannot read {path}: {exc.strerror}") from None
        atomic_write(path, merge_rc(existing, stanzas), private=True)
        return lost


def _no_share_for_x25519(profile: Profile | None) -> None:
    """Share texts carry Rijndael and HMAC keys: an x25519 profile makes its own key."""
    if profile is not None and profile.uses_x25519:
        raise ClientUsageError(
            f"profile {profile.name!r} uses x25519: its private key never travels; make it "
            f"with fwknop keygen --profile {profile.name} (share texts carry Rijndael and HMAC "
            "keys)"
        )
