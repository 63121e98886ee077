"""The x25519 SPA format: public keys instead of shared secrets (docs/x25519-spa.md).

fwknop-tui's own format, beside fwknop's: our client to our server, never the
C fwknopd. Client and server each hold a static X25519 key pair; the key a
packet is sealed with is derived once per (client, server) pair:

    shared = X25519(own private, peer public)
    key    = HKDF-SHA256(ikm=shared, salt=none, info=KDF_LABEL || client pub || server pub)

and a packet is ChaCha20-Poly1305 (RFC 8439) over fwknop's encoded message,
with the clear header as associated data:

    wire   = "~1" || b64s(key id, 9 bytes) || b64s(nonce, 12 bytes) || b64s(ciphertext || tag)

Why these choices (the README says it for users):

* ``cryptography`` is already our dependency and offers exactly these
  primitives; libsodium's ``crypto_box`` (PyNaCl) is equally standard but
  has no associated data, so the header could not be authenticated
  without a construction of our own. HPKE (RFC 9180) base mode does not
  authenticate the sender and costs the server an X25519 per packet.
* ``~`` is outside base64 and ``=``: fwknopd's pre-filter drops such data as
  "not an SPA message", so no fwknop receiver can take one of ours for one
  of its own, and ours are told apart by the first byte alone. ``~`` is
  also unreserved in URLs, so the packet survives fwknop's HTTP transport.
* The key id is a hash of both public keys, so the server finds the one
  client that can have sent a packet with one dict lookup, on the text, with
  no decoding and no cryptography; an unknown id is refused right there.
  Hashing the server key in too means one client key shows different ids
  to different servers.
* The 9-byte key id and the 12-byte nonce are multiples of 3 bytes, so each
  is a fixed slice of the text: ``wire[2:14]`` and ``wire[14:30]``.
* Base64 is decoded strictly (one spelling per byte string) and the message
  must be in its canonical encoding: the replay cache keys on the wire text,
  as for fwknop packets, so no packet may be replayed under another spelling.
* The plaintext is padded with NUL bytes to a multiple of 32 and at least
  96 bytes: the smallest packet (180 characters) clears fwknopd's 140-byte
  floor that capture applies to every packet, and lengths leak less.

Static-static X25519 gives no forward secrecy (fwknop's shared keys give
none either), and whoever holds the server's private key can forge packets
from every client: it is as secret as all of access.conf's keys were.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519 as _x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._b64 import ALPHABET, b64_decode_padded, b64s_decode_strict, b64s_encode
from ._errors import InvalidPacket, RejectReason, UsageError
from ._message import SpaMessage
from ._packet import MAX_PACKET, MIN_PACKET, as_wire, check_age

__all__ = [
    "X25519_MARK",
    "X25519_PREFIX",
    "X25519Client",
    "X25519Keyring",
    "X25519Opened",
    "X25519PrivateKey",
    "X25519PublicKey",
    "X25519SharedKey",
    "build_x25519_packet",
    "build_x25519_packet_from_parts",
    "looks_like_x25519",
    "open_x25519_packet",
]

X25519_MARK = b"~"  # outside fwknop's base64 alphabet: never one of its packets
X25519_PREFIX = b"~1"  # the mark and the format version
PUBLIC_PREFIX = "x25519-pub:"
PRIVATE_PREFIX = "x25519-priv:"
KEY_BYTES = 32
KEY_ID_BYTES = 9
NONCE_BYTES = 12
TAG_BYTES = 16
PAD_BLOCK = 32
MIN_PADDED = 96
KDF_LABEL = b"fwknop-tui x25519-spa v1 client->server key"
KEY_ID_LABEL = b"fwknop-tui x25519-spa v1 key id"
_ID_END = 2 + KEY_ID_BYTES * 4 // 3  # 14: the key id's characters are wire[2:14]
HEADER_CHARS = _ID_END + NONCE_BYTES * 4 // 3  # 30: the associated data is wire[:30]
_PRINTABLE = bytes(range(0x20, 0x7F))

T = TypeVar("T")
Rng = Callable[[int], bytes]


def _padded_length(n: int) -> int:
    """The plaintext length for an encoded message of ``n`` bytes."""
    return max(MIN_PADDED, -(-n // PAD_BLOCK) * PAD_BLOCK)


def _key_text(text: str, prefix: str, other: str, what: str) -> bytes:
    """The 32 bytes of ``prefix`` + base64 text; refuses the other kind of key by name."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str")
    text = text.strip()
    if text.startswith(other):
        if other == PRIVATE_PREFIX:
            raise UsageError(
                f"that is a private key ({PRIVATE_PREFIX}...), not a public one: keep it "
                f"secret and give the public key ({PUBLIC_PREFIX}...) instead"
            )
        raise UsageError(f"that is a public key ({PUBLIC_PREFIX}...), not a private one")
    if not text.startswith(prefix):
        raise UsageError(f"{what} must be written {prefix}<base64 of 32 bytes>")
    try:
        raw = b64_decode_padded(text[len(prefix) :])
    except ValueError:
        raise UsageError(f"{what} is not valid base64 after {prefix}") from None
    if len(raw) != KEY_BYTES:
        raise UsageError(f"{what} must be {KEY_BYTES} bytes, not {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True, repr=False)
class X25519PublicKey:
    """A client's or a server's X25519 public key: not secret, printable, shareable."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes):
            raise TypeError("X25519PublicKey takes bytes")
        if len(self.raw) != KEY_BYTES:
            raise UsageError(f"an X25519 public key is {KEY_BYTES} bytes, not {len(self.raw)}")

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"X25519PublicKey({self.to_text()!r})"

    @classmethod
    def from_text(cls, text: str) -> X25519PublicKey:
        """Parse ``x25519-pub:<base64>``; a private key given here is refused by name."""
        return cls(_key_text(text, PUBLIC_PREFIX, PRIVATE_PREFIX, "an X25519 public key"))

    def to_text(self) -> str:
        """``x25519-pub:`` and the key in padded base64 (what access.conf and profiles hold)."""
        import base64  # noqa: PLC0415 - binascii's padded form, spelled plainly

        return PUBLIC_PREFIX + base64.b64encode(self.raw).decode("ascii")


@dataclass(frozen=True, slots=True, repr=False)
class X25519PrivateKey:
    """An X25519 private key (32 random bytes); its ``repr`` never shows them."""

    secret: bytes
    public_key: X25519PublicKey = field(init=False, compare=False)
    _key: _x25519.X25519PrivateKey = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes):
            raise TypeError("X25519PrivateKey takes bytes")
        if len(self.secret) != KEY_BYTES:
            raise UsageError(f"an X25519 private key is {KEY_BYTES} bytes, not {len(self.secret)}")
        key = _x25519.X25519PrivateKey.from_private_bytes(self.secret)
        object.__setattr__(self, "_key", key)
        public = key.public_key().public_bytes_raw()
        object.__setattr__(self, "public_key", X25519PublicKey(public))

    def __repr__(self) -> str:
        return f"X25519PrivateKey(<secret>, public_key={self.public_key.to_text()!r})"

    @classmethod
    def generate(cls, rng: Rng | None = None) -> X25519PrivateKey:
        """A new random key (``rng`` defaults to ``os.urandom``)."""
        return cls((rng or os.urandom)(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> X25519PrivateKey:
        """Parse ``x25519-priv:<base64>`` (the keyring entry and the server key file)."""
        return cls(_key_text(text, PRIVATE_PREFIX, PUBLIC_PREFIX, "an X25519 private key"))

    def to_text(self) -> str:
        """``x25519-priv:`` and the key in padded base64: keep it secret."""
        import base64  # noqa: PLC0415

        return PRIVATE_PREFIX + base64.b64encode(self.secret).decode("ascii")

    def exchange(self, peer: X25519PublicKey) -> bytes:
        """The raw X25519 shared secret with ``peer``; ``UsageError`` for a low-order point."""
        if not isinstance(peer, X25519PublicKey):
            raise TypeError("peer must be an X25519PublicKey")
        try:
            return self._key.exchange(_x25519.X25519PublicKey.from_public_bytes(peer.raw))
        except ValueError:
            raise UsageError(
                f"{peer.to_text()} is not a usable X25519 public key (a low-order point)"
            ) from None


def key_id(client: X25519PublicKey, server: X25519PublicKey) -> bytes:
    """The 9-byte key id a client puts in the clear: SHA-256 of the label and both keys."""
    return hashlib.sha256(KEY_ID_LABEL + client.raw + server.raw).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True, slots=True, repr=False)
class X25519SharedKey:
    """What one client and one server share: the packet key and the key id, derived once.

    Build it with :meth:`for_client` (client side) or :meth:`for_server`
    (server side, once per client at config load); both derive the same.
    """

    client: X25519PublicKey
    server: X25519PublicKey
    key: bytes
    key_id: bytes = field(init=False, compare=False)
    key_id_text: str = field(init=False, compare=False)
    _header_id: bytes = field(init=False, compare=False)
    _aead: ChaCha20Poly1305 = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.client, X25519PublicKey) or not isinstance(
            self.server, X25519PublicKey
        ):
            raise TypeError("client and server must be X25519PublicKey values")
        if not isinstance(self.key, bytes) or len(self.key) != KEY_BYTES:
            raise UsageError(f"the shared key is {KEY_BYTES} bytes")
        ident = key_id(self.client, self.server)
        text = b64s_encode(ident)
        object.__setattr__(self, "key_id", ident)
        object.__setattr__(self, "key_id_text", text)
        object.__setattr__(self, "_header_id", X25519_PREFIX + text.encode("ascii"))
        object.__setattr__(self, "_aead", ChaCha20Poly1305(self.key))

    def __repr__(self) -> str:
        return f"X25519SharedKey(key_id={self.key_id_text!r}, client={self.client.to_text()!r})"

    @classmethod
    def derive(
        cls, shared_secret: bytes, client: X25519PublicKey, server: X25519PublicKey
    ) -> X25519SharedKey:
        """HKDF-SHA256 of the X25519 shared secret, bound to both public keys."""
        info = KDF_LABEL + client.raw + server.raw
        key = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(
            shared_secret
        )
        return cls(client, server, key)

    @classmethod
    def for_client(cls, own: X25519PrivateKey, server: X25519PublicKey) -> X25519SharedKey:
        """The client's side: its private key and the server's public key."""
        return cls.derive(own.exchange(server), own.public_key, server)

    @classmethod
    def for_server(cls, own: X25519PrivateKey, client: X25519PublicKey) -> X25519SharedKey:
        """The server's side: its private key and one client's public key."""
        return cls.derive(own.exchange(client), client, own.public_key)


@dataclass(frozen=True, slots=True)
class X25519Opened(Generic[T]):
    """What a valid x25519 packet carried, whose key sealed it, and who owns that key."""

    message: SpaMessage
    encoded: str
    key_id: str
    nonce: bytes
    client: X25519PublicKey
    owners: tuple[T, ...] = ()


def looks_like_x25519(data: bytes | str) -> bool:
    """Whether ``data`` is in the x25519 format at all (its first byte; any version)."""
    return data[:1] in (b"~", "~")


# -- building ---------------------------------------------------------------------------


def build_x25519_packet_from_parts(
    message: SpaMessage, shared: X25519SharedKey, *, nonce: bytes
) -> str:
    """Deterministic x25519 packet from every part, including the 12-byte nonce.

    Never reuse a nonce with the same shared key: :func:`build_x25519_packet`
    draws a fresh one; this variant exists for test vectors.
    """
    if not isinstance(message, SpaMessage):
        raise TypeError("message must be a SpaMessage")
    if not isinstance(shared, X25519SharedKey):
        raise TypeError("shared must be an X25519SharedKey")
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
        raise UsageError(f"nonce must be {NONCE_BYTES} bytes")
    encoded = message.encode().encode("ascii")
    plaintext = encoded.ljust(_padded_length(len(encoded)), b"\0")
    header = shared._header_id + b64s_encode(nonce).encode("ascii")
    sealed = shared._aead.encrypt(nonce, plaintext, header)
    return (header + b64s_encode(sealed).encode("ascii")).decode("ascii")


def build_x25519_packet(
    message: SpaMessage, shared: X25519SharedKey, *, rng: Rng | None = None
) -> str:
    """Seal ``message`` for the server of ``shared``, with a fresh random nonce."""
    return build_x25519_packet_from_parts(message, shared, nonce=(rng or os.urandom)(NONCE_BYTES))


# -- opening ------------------------------------------------------------------------------


def _screen(wire: bytes) -> None:
    """The checks before the key id: size, mark and version (no cryptography)."""
    n = len(wire)
    if n < MIN_PACKET:
        raise InvalidPacket(RejectReason.TOO_SHORT, f"{n} characters, fewer than {MIN_PACKET}")
    if n >= MAX_PACKET:
        raise InvalidPacket(RejectReason.TOO_LONG, f"{n} characters")
    if wire[:1] != X25519_MARK:
        raise InvalidPacket(RejectReason.WRONG_ENCRYPTION_TYPE, "not an x25519 packet")
    if wire[1:2] != X25519_PREFIX[1:]:
        shown = wire[1:2].decode("ascii", "replace")
        detail = f"version {shown!r}" if shown.isprintable() else ""
        raise InvalidPacket(RejectReason.UNSUPPORTED_VERSION, detail)


def _unknown_id(wire: bytes) -> InvalidPacket:
    ident = wire[2:_ID_END]
    # the id is the sender's text: shown only when it is plain base64 (safe in a log line)
    detail = "" if ident.translate(None, ALPHABET) else f"key id {ident.decode('ascii')}"
    return InvalidPacket(RejectReason.UNKNOWN_KEY_ID, detail)


def _open(
    wire: bytes, shared: X25519SharedKey, now: float | None, max_age: int | None
) -> tuple[SpaMessage, str, bytes]:
    """Verify and decrypt a packet whose key id is ``shared``'s; (message, encoded, nonce)."""
    try:
        raw = b64s_decode_strict(wire[2:])
    except ValueError:
        raise InvalidPacket(RejectReason.NOT_BASE64, "not canonical base64") from None
    nonce = raw[KEY_ID_BYTES : KEY_ID_BYTES + NONCE_BYTES]
    sealed = raw[KEY_ID_BYTES + NONCE_BYTES :]
    size = len(sealed) - TAG_BYTES
    if size < MIN_PADDED or size % PAD_BLOCK:
        raise InvalidPacket(RejectReason.BAD_CIPHERTEXT_LENGTH, f"{len(sealed)} bytes")
    try:
        plain = shared._aead.decrypt(nonce, sealed, wire[:HEADER_CHARS])
    except InvalidTag:
        raise InvalidPacket(RejectReason.AUTH_FAILED) from None
    encoded = plain.rstrip(b"\0")
    if len(plain) != _padded_length(len(encoded)):
        raise InvalidPacket(RejectReason.BAD_PLAINTEXT_LENGTH, "padding longer than needed")
    if encoded.translate(None, _PRINTABLE):
        raise InvalidPacket(RejectReason.NON_ASCII)
    text = encoded.decode("ascii")
    try:
        message = SpaMessage.decode(text)
    except ValueError as exc:
        raise InvalidPacket(RejectReason.MALFORMED, str(exc)) from None
    if message.encode() != text:
        raise InvalidPacket(RejectReason.MALFORMED, "the message is not in its canonical encoding")
    if max_age is not None:
        check_age(message, now=now, max_age=max_age)
    return message, text, nonce


def open_x25519_packet(
    data: str | bytes,
    shared: X25519SharedKey,
    *,
    now: float | None = None,
    max_age: int | None = None,
) -> X25519Opened[Any]:
    """Verify, decrypt and parse one x25519 packet sealed with ``shared``.

    Raises only ``InvalidPacket`` for bad data: a packet whose key id is not
    ``shared``'s is refused (``UNKNOWN_KEY_ID``) before any cryptography.
    With ``max_age`` the timestamp must be within that many seconds of ``now``.
    """
    if not isinstance(shared, X25519SharedKey):
        raise TypeError("shared must be an X25519SharedKey")
    client: X25519Client[Any] = X25519Client(shared, ())
    return client.open(data, now=now, max_age=max_age)


@dataclass(frozen=True, slots=True)
class X25519Client(Generic[T]):
    """One client of a keyring: the key it shares with the server, and who names that key."""

    shared: X25519SharedKey
    owners: tuple[T, ...]

    def open(
        self, data: str | bytes, *, now: float | None = None, max_age: int | None = None
    ) -> X25519Opened[T]:
        """Verify and decrypt a packet :meth:`X25519Keyring.find` gave to this client."""
        wire = as_wire(data)
        _screen(wire)
        if wire[2:_ID_END] != self.shared._header_id[2:]:
            raise _unknown_id(wire)
        return self._open(wire, now, max_age)

    def _open(self, wire: bytes, now: float | None, max_age: int | None) -> X25519Opened[T]:
        """``open`` once the size, version and key id are known to be right."""
        message, text, nonce = _open(wire, self.shared, now, max_age)
        shared = self.shared
        return X25519Opened(message, text, shared.key_id_text, nonce, shared.client, self.owners)


class X25519Keyring(Generic[T]):
    """A server's x25519 clients by key id: one lookup per packet, then one AEAD.

    Built once at config load from the server's private key and every
    client public key with its owner (an access stanza, say; a key named by
    several owners is derived once and keeps them all, in order). Each
    client's shared key is derived here, so a packet costs a dict lookup on
    its text, and one ChaCha20-Poly1305 verification when the id is known.
    """

    __slots__ = ("_by_id", "server")

    def __init__(
        self, server_key: X25519PrivateKey, clients: Iterable[tuple[X25519PublicKey, T]] = ()
    ) -> None:
        if not isinstance(server_key, X25519PrivateKey):
            raise TypeError("server_key must be an X25519PrivateKey")
        owners: dict[X25519PublicKey, list[T]] = {}
        for public, owner in clients:
            if not isinstance(public, X25519PublicKey):
                raise TypeError("client keys must be X25519PublicKey values")
            owners.setdefault(public, []).append(owner)
        by_id: dict[bytes, X25519Client[T]] = {}
        for public, named_by in owners.items():
            shared = X25519SharedKey.for_server(server_key, public)
            ident = shared._header_id[2:]
            if ident in by_id:  # 72 bits: only a key made to collide gets here
                raise UsageError(
                    f"{public.to_text()} and {by_id[ident].shared.client.to_text()} "
                    "have the same key id: drop one of them"
                )
            by_id[ident] = X25519Client(shared, tuple(named_by))
        self.server = server_key.public_key
        self._by_id = by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[X25519Client[T]]:
        return iter(self._by_id.values())

    def __repr__(self) -> str:
        return f"X25519Keyring(server={self.server.to_text()!r}, clients={len(self)})"

    def lookup(self, data: bytes) -> X25519Client[T] | None:
        """The client whose key id ``data`` carries, or None; never raises, no cryptography.

        The flood path: for junk, an unknown id or another format this is one
        slice and one dict lookup. It does not check the size or the version
        (:meth:`find` and :meth:`X25519Client.open` do).
        """
        if data[:2] != X25519_PREFIX:
            return None
        return self._by_id.get(data[2:_ID_END])

    def find(self, data: str | bytes) -> X25519Client[T]:
        """The client whose key id ``data`` carries; ``InvalidPacket`` says why there is none.

        Size, mark, version and key id only: an unknown key id is refused
        (``UNKNOWN_KEY_ID``) before any cryptography.
        """
        wire = as_wire(data)
        _screen(wire)
        client = self._by_id.get(wire[2:_ID_END])
        if client is None:
            raise _unknown_id(wire)
        return client

    def open(
        self, data: str | bytes, *, now: float | None = None, max_age: int | None = None
    ) -> X25519Opened[T]:
        """``find`` then the client's ``open``: at most one AEAD verification per packet."""
        wire = as_wire(data)
        return self.find(wire)._open(wire, now, max_age)
