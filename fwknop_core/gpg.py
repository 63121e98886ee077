"""GnuPG mode behind one small interface, with a python-gnupg adapter.

This is the only module of ``fwknop_core`` that reaches outside the process
(python-gnupg runs the ``gpg`` binary); ``gnupg`` is imported lazily so the
rest of the core never pays for it. Anything that satisfies ``GpgBackend``
can stand in for it (tests use the real ``gpg`` with throw-away keys).

Validity levels follow GPGME's numbering (0 unknown .. 5 ultimate; python-gnupg
uses the same numbers) because
that is what fwknopd's signature policy is written against: a signature is
acceptable when it is good and its key's validity is at least marginal (3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ._errors import UsageError

__all__ = [
    "GnupgBackend",
    "GpgBackend",
    "GpgDecryption",
    "GpgEncryption",
    "GpgResult",
    "GpgSignature",
]

VALIDITY_MARGINAL = 3


class GpgDecryptError(Exception):
    """GnuPG could not decrypt; the message is gpg's status, never key material."""


@dataclass(frozen=True, slots=True)
class GpgSignature:
    """Who signed a GnuPG packet and how far the server's keyring trusts them."""

    fingerprint: str
    good: bool
    validity: int

    @property
    def short_id(self) -> str:
        """The 8-hex key id that ``GPG_REMOTE_ID`` compares against."""
        return self.fingerprint[-8:]

    @property
    def trusted(self) -> bool:
        """Good signature from a key of at least marginal validity."""
        return self.good and self.validity >= VALIDITY_MARGINAL


@dataclass(frozen=True, slots=True, repr=False)
class GpgResult:
    """Plaintext of a decrypted packet, and its signature if it had one."""

    plaintext: bytes
    signature: GpgSignature | None


class GpgBackend(Protocol):
    """What the packet code needs from GnuPG."""

    def encrypt(
        self, plaintext: bytes, *, recipient: str, signer: str | None, passphrase: str | None
    ) -> bytes:
        """Binary OpenPGP message to ``recipient``, signed by ``signer`` if given."""
        ...

    def decrypt(self, ciphertext: bytes, *, passphrase: str | None) -> GpgResult:
        """Decrypt and verify; raises ``GpgDecryptError`` on failure."""
        ...


@dataclass(frozen=True, slots=True, repr=False)
class GpgEncryption:
    """Sender's GnuPG settings: recipient (server) key, optional signer."""

    backend: GpgBackend
    recipient: str
    signer: str | None = None
    signer_passphrase: str | None = None

    def __repr__(self) -> str:
        return f"GpgEncryption(recipient={self.recipient!r}, signer={self.signer!r})"


@dataclass(frozen=True, slots=True, repr=False)
class GpgDecryption:
    """Receiver's GnuPG settings: the backend holding the server key."""

    backend: GpgBackend
    passphrase: str | None = None

    def __repr__(self) -> str:
        return "GpgDecryption(...)"


class GnupgBackend:
    """``GpgBackend`` over python-gnupg (runs the ``gpg`` binary; blocking).

    ``decrypt_id`` (the server's ``GPG_DECRYPT_ID``): only a message that gpg
    decrypted with that key (its primary key or one of its subkeys) is
    taken; gpg itself tries every secret key in the home, so its
    ``DECRYPTION_KEY`` status says which one it used, and a message opened
    with any other key is refused, its plaintext unused.
    """

    def __init__(
        self, homedir: str | None = None, gpg_exe: str = "gpg", *, decrypt_id: str | None = None
    ) -> None:
        import gnupg  # noqa: PLC0415 - lazy: only GnuPG users pay for it

        self._gpg: Any = gnupg.GPG(gnupghome=homedir, gpgbinary=gpg_exe)
        self.homedir = homedir
        self.decrypt_id = decrypt_id
        self._decrypt_fprs: frozenset[str] | None = None  # decrypt_id's keys, looked up once

    def encrypt(
        self, plaintext: bytes, *, recipient: str, signer: str | None, passphrase: str | None
    ) -> bytes:
        """Encrypt (and sign) to binary OpenPGP, trusting the recipient key as fwknop does."""
        result = self._gpg.encrypt(
            plaintext,
            [recipient],
            sign=signer,
            passphrase=passphrase,
            always_trust=True,
            armor=False,
        )
        if not result.ok:
            raise UsageError(f"GnuPG encryption failed: {result.status or 'unknown error'}")
        data: bytes = result.data
        return data

    def decrypt(self, ciphertext: bytes, *, passphrase: str | None) -> GpgResult:
        """Decrypt and report the signer (fingerprint, goodness, validity)."""
        result = self._gpg.decrypt(ciphertext, passphrase=passphrase)
        if not result.ok:
            raise GpgDecryptError(result.status or "decryption failed")
        if self.decrypt_id is not None:
            self._check_decryption_key(str(result.stderr or ""))
        signature = None
        # An unsigned message leaves no fingerprint and no signature problem
        # (key_id then names the encryption key, which is not a signer).
        fpr = result.fingerprint or (result.key_id if result.problems else None)
        if fpr:
            good = bool(result.valid)
            level = result.trust_level if good and result.trust_level is not None else 0
            signature = GpgSignature(fingerprint=str(fpr).upper(), good=good, validity=int(level))
        return GpgResult(plaintext=bytes(result.data), signature=signature)

    def _check_decryption_key(self, status: str) -> None:
        """``GpgDecryptError`` unless gpg's DECRYPTION_KEY is one of ``decrypt_id``'s keys."""
        if self._decrypt_fprs is None:
            keys = self._gpg.list_keys(secret=True, keys=[self.decrypt_id])
            self._decrypt_fprs = frozenset(
                str(fpr).upper()
                for key in keys
                for fpr in [key.get("fingerprint"), *(sub[2] for sub in key.get("subkeys", []))]
                if fpr
            )
        used = [
            line.split()[2:4]
            for line in status.splitlines()
            if line.startswith("[GNUPG:] DECRYPTION_KEY ")
        ]
        if not used:
            raise GpgDecryptError("gpg did not say which key it decrypted with")
        if not self._decrypt_fprs.intersection(fpr.upper() for fpr in used[-1]):
            raise GpgDecryptError(
                f"decrypted with key {used[-1][0][-16:]}, not GPG_DECRYPT_ID {self.decrypt_id}"
            )
