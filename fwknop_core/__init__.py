"""fwknop_core: a sans-I/O implementation of fwknop's Single Packet Authorization.

Two calls carry the protocol: :func:`build_packet` turns a :class:`SpaMessage`
into the wire text that the real ``fwknop`` client would send, and
:func:`open_packet` verifies, decrypts and parses wire text as ``fwknopd``
does. Beside fwknop's formats, fwknop-tui's own public-key format
(docs/x25519-spa.md) has :func:`build_x25519_packet` and, on a server,
:class:`X25519Keyring`. Hostile input raises :class:`InvalidPacket` (with a
:class:`RejectReason`); caller mistakes raise :class:`UsageError`.

The fwknop 1.x port-knock sequences have their own pair:
:func:`build_knock_sequence` and :func:`decode_knock_sequence` (refusals are
:class:`InvalidKnockSequence` with a :class:`KnockReject`).

The package does no I/O: no sockets, no files, no subprocesses (GnuPG aside,
behind :mod:`fwknop_core.gpg`). Time and randomness are keyword arguments
with real defaults, so every result can be reproduced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._b64 import b64s_decode, b64s_encode
from ._errors import InvalidPacket, RejectReason, SpaError, UsageError
from ._message import (
    PROTOCOL_VERSION,
    AccessSpec,
    NatAccess,
    SpaMessage,
    dotted_decimal,
    random_value,
    validate_access_list,
    validate_allow_ip,
    validate_ipv4,
    validate_nat_access,
    validate_username,
)
from ._types import (
    DEFAULT_KNOCK_OFFSET,
    MAX_KNOCK_OFFSET,
    DigestType,
    EncryptionMode,
    EncryptionType,
    HmacType,
    MessageType,
)

if TYPE_CHECKING:
    from ._hmac import HmacVerifier, MacMatch
    from ._http import DEFAULT_USER_AGENT, HttpSpa, encode_http_request, extract_http_spa
    from ._keys import (
        MAX_HMAC_KEY,
        MAX_RIJNDAEL_KEY,
        MAX_SERVER_HMAC_KEY,
        GeneratedKeys,
        HmacKey,
        RijndaelKey,
        decode_key_base64,
        generate_keys,
    )
    from ._knockseq import (
        KNOCK_PROTOCOLS,
        MAX_SEQUENCE_USER,
        MIN_KNOCK_KEY,
        DecodedSequence,
        InvalidKnockSequence,
        KnockKey,
        KnockReject,
        KnockRequest,
        KnockStep,
        build_knock_sequence,
        build_knock_sequence_from_parts,
        decode_knock_sequence,
        knock_checksum,
        legacy_access,
        parse_shared_sequence,
    )
    from ._packet import (
        MAX_PACKET,
        MIN_ENCODED,
        MIN_GPG_PACKET,
        MIN_PACKET,
        OpenedPacket,
        build_packet,
        build_packet_from_parts,
        check_age,
        classify,
        hmac_matches,
        open_packet,
        replay_digest,
        size_problem,
    )
    from ._share import SharedKeys, encode_share, parse_share
    from ._shareitem import is_share_text
    from ._x25519 import (
        X25519Client,
        X25519Keyring,
        X25519Opened,
        X25519PrivateKey,
        X25519PublicKey,
        X25519SharedKey,
        build_x25519_packet,
        build_x25519_packet_from_parts,
        looks_like_x25519,
        open_x25519_packet,
    )
    from .gpg import GpgDecryption, GpgEncryption, GpgSignature
else:
    # The keys and packets (and with them cryptography), SPA over HTTP, key sharing, 1.x
    # knock sequences, x25519 and the GnuPG adapter load on first use (PEP 562): a client
    # that knocks over UDP with a Rijndael key never pays for most of them, and one that
    # only lists profiles (the TUI's first frame) pays for none
    _LAZY = {
        "GeneratedKeys": "._keys",
        "HmacKey": "._keys",
        "RijndaelKey": "._keys",
        "generate_keys": "._keys",
        "MAX_HMAC_KEY": "._keys",
        "MAX_RIJNDAEL_KEY": "._keys",
        "MAX_SERVER_HMAC_KEY": "._keys",
        "decode_key_base64": "._keys",
        "MAX_PACKET": "._packet",
        "MIN_ENCODED": "._packet",
        "MIN_GPG_PACKET": "._packet",
        "MIN_PACKET": "._packet",
        "OpenedPacket": "._packet",
        "build_packet": "._packet",
        "build_packet_from_parts": "._packet",
        "check_age": "._packet",
        "classify": "._packet",
        "hmac_matches": "._packet",
        "open_packet": "._packet",
        "replay_digest": "._packet",
        "size_problem": "._packet",
        "HmacVerifier": "._hmac",
        "MacMatch": "._hmac",
        "KNOCK_PROTOCOLS": "._knockseq",
        "MAX_SEQUENCE_USER": "._knockseq",
        "MIN_KNOCK_KEY": "._knockseq",
        "DecodedSequence": "._knockseq",
        "InvalidKnockSequence": "._knockseq",
        "KnockKey": "._knockseq",
        "KnockReject": "._knockseq",
        "KnockRequest": "._knockseq",
        "KnockStep": "._knockseq",
        "build_knock_sequence": "._knockseq",
        "build_knock_sequence_from_parts": "._knockseq",
        "decode_knock_sequence": "._knockseq",
        "knock_checksum": "._knockseq",
        "legacy_access": "._knockseq",
        "parse_shared_sequence": "._knockseq",
        "X25519Client": "._x25519",
        "X25519Keyring": "._x25519",
        "X25519Opened": "._x25519",
        "X25519PrivateKey": "._x25519",
        "X25519PublicKey": "._x25519",
        "X25519SharedKey": "._x25519",
        "build_x25519_packet": "._x25519",
        "build_x25519_packet_from_parts": "._x25519",
        "looks_like_x25519": "._x25519",
        "open_x25519_packet": "._x25519",
        "SharedKeys": "._share",
        "encode_share": "._share",
        "parse_share": "._share",
        "is_share_text": "._shareitem",
        "DEFAULT_USER_AGENT": "._http",
        "HttpSpa": "._http",
        "encode_http_request": "._http",
        "extract_http_spa": "._http",
        "GpgDecryption": ".gpg",
        "GpgEncryption": ".gpg",
        "GpgSignature": ".gpg",
    }

    def __getattr__(name: str) -> object:
        """The lazily loaded public names."""
        if name in _LAZY:
            from importlib import import_module  # noqa: PLC0415

            value = getattr(import_module(_LAZY[name], __name__), name)
            globals()[name] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_KNOCK_OFFSET",
    "DEFAULT_USER_AGENT",
    "KNOCK_PROTOCOLS",
    "MAX_HMAC_KEY",
    "MAX_KNOCK_OFFSET",
    "MAX_PACKET",
    "MAX_RIJNDAEL_KEY",
    "MAX_SEQUENCE_USER",
    "MAX_SERVER_HMAC_KEY",
    "MIN_ENCODED",
    "MIN_GPG_PACKET",
    "MIN_KNOCK_KEY",
    "MIN_PACKET",
    "PROTOCOL_VERSION",
    "AccessSpec",
    "DecodedSequence",
    "DigestType",
    "EncryptionMode",
    "EncryptionType",
    "GeneratedKeys",
    "GpgDecryption",
    "GpgEncryption",
    "GpgSignature",
    "HmacKey",
    "HmacType",
    "HmacVerifier",
    "HttpSpa",
    "InvalidKnockSequence",
    "InvalidPacket",
    "KnockKey",
    "KnockReject",
    "KnockRequest",
    "KnockStep",
    "MacMatch",
    "MessageType",
    "NatAccess",
    "OpenedPacket",
    "RejectReason",
    "RijndaelKey",
    "SharedKeys",
    "SpaError",
    "SpaMessage",
    "UsageError",
    "X25519Client",
    "X25519Keyring",
    "X25519Opened",
    "X25519PrivateKey",
    "X25519PublicKey",
    "X25519SharedKey",
    "b64s_decode",
    "b64s_encode",
    "build_knock_sequence",
    "build_knock_sequence_from_parts",
    "build_packet",
    "build_packet_from_parts",
    "build_x25519_packet",
    "build_x25519_packet_from_parts",
    "check_age",
    "classify",
    "decode_key_base64",
    "decode_knock_sequence",
    "dotted_decimal",
    "encode_http_request",
    "encode_share",
    "extract_http_spa",
    "generate_keys",
    "hmac_matches",
    "is_share_text",
    "knock_checksum",
    "legacy_access",
    "looks_like_x25519",
    "open_packet",
    "open_x25519_packet",
    "parse_share",
    "parse_shared_sequence",
    "random_value",
    "replay_digest",
    "size_problem",
    "validate_access_list",
    "validate_allow_ip",
    "validate_ipv4",
    "validate_nat_access",
    "validate_username",
]

__version__ = "0.1.0"
