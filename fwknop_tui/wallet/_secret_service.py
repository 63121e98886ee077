"""Reading keyring's entries from the Secret Service in two D-Bus round trips.

This is the read half of keyring's Secret Service backend (secretstorage),
done the way a command that starts, reads two secrets and exits needs it:

* One connection (jeepney), then one batch of calls sent together and
  answered together: ``SearchItems`` in the default collection for each
  entry (the attributes keyring writes: ``service``, ``username``), the
  collection's ``Locked`` property and ``OpenSession``; then one
  ``GetSecrets`` for every item found. secretstorage makes each call in
  turn and reads each secret separately (about a dozen round trips).
* The session is the same encrypted one secretstorage opens
  (``dh-ietf1024-sha256-aes128-cbc-pkcs7``: Diffie-Hellman in the 1024-bit
  IETF group, HKDF-SHA256, AES-128-CBC), so no secret crosses the bus in
  clear. Our private exponent is 256 random bits, not 1024: the group gives
  about 80 bits of strength, and an exponent of twice that is what NIST SP
  800-56A asks; it is a quarter of the modular exponentiation in pure
  Python. AES comes from cryptography's cipher module, which the protocol
  core has already loaded (secretstorage also loads cryptography's whole
  OpenSSL backend for it).

Anything unexpected (a locked collection, an error reply, a malformed
answer) raises, and the caller falls back to keyring, which unlocks,
prompts or explains, as it always does.
"""

from __future__ import annotations

import hmac
import os
from hashlib import sha256
from typing import Any

from jeepney import DBusAddress, HeaderFields, MessageType, Properties, new_method_call
from jeepney.io.blocking import open_dbus_connection

__all__ = ["read"]

BUS_NAME = "org.freedesktop.secrets"
SERVICE_PATH = "/org/freedesktop/secrets"
DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"  # where keyring looks
ALGORITHM = "dh-ietf1024-sha256-aes128-cbc-pkcs7"
TIMEOUT = 10.0
# RFC 2409 section 6.2, the second Oakley group (the one the Secret Service spec names)
P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E"
    "3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF"
    "5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)
PRIVATE_BITS = 256


class SecretServiceError(Exception):
    """The Secret Service did not answer as expected (the caller asks keyring instead)."""


def _session_key(server_public: int, private: int) -> bytes:
    """The AES key both sides derive (the Secret Service spec's HKDF, as secretstorage has it)."""
    if not 1 < server_public < P - 1:
        raise SecretServiceError("the service's public key is out of range")
    shared = pow(server_public, private, P).to_bytes(128, "big")
    prk = hmac.new(b"\0" * 32, shared, sha256).digest()
    return hmac.new(prk, b"\x01", sha256).digest()[:16]


def _decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CBC with PKCS#7 padding, checked."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: PLC0415

    if len(iv) != 16 or not data or len(data) % 16:
        raise SecretServiceError("malformed secret")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = dec.update(data) + dec.finalize()
    pad = padded[-1]
    if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
        raise SecretServiceError("bad padding")
    return padded[:-pad]


def _exchange(conn: Any, calls: list[Any]) -> list[Any]:
    """Send ``calls`` together, then collect their replies in order (errors raise)."""
    serials = []
    for message in calls:
        serial = next(conn.outgoing_serial)
        conn.send(message, serial=serial)
        serials.append(serial)
    replies: dict[int, Any] = {}
    while len(replies) < len(serials):
        msg = conn.receive(timeout=TIMEOUT)
        to = msg.header.fields.get(HeaderFields.reply_serial)
        if to in serials:
            if msg.header.message_type == MessageType.error:
                raise SecretServiceError(str(msg.header.fields.get(HeaderFields.error_name)))
            replies[to] = msg.body
    return [replies[s] for s in serials]


def read(service: str, names: list[str]) -> dict[str, str | None]:
    """The secrets of keyring entries ``service``/``name`` (None where there is no entry)."""
    secret_service = DBusAddress(SERVICE_PATH, BUS_NAME, "org.freedesktop.Secret.Service")
    collection = DBusAddress(DEFAULT_COLLECTION, BUS_NAME, "org.freedesktop.Secret.Collection")
    private = int.from_bytes(os.urandom(PRIVATE_BITS // 8), "big") | 1 << (PRIVATE_BITS - 1)
    public = pow(2, private, P).to_bytes(128, "big")
    conn = open_dbus_connection("SESSION")
    try:
        *found, locked, opened = _exchange(
            conn,
            [
                *(
                    new_method_call(
                        collection, "SearchItems", "a{ss}", ({"service": service, "username": n},)
                    )
                    for n in names
                ),
                Properties(collection).get("Locked"),
                new_method_call(secret_service, "OpenSession", "sv", (ALGORITHM, ("ay", public))),
            ],
        )
        if locked[0] != ("b", False):
            raise SecretServiceError("the default collection is locked")
        (kind, server_public), session_path = opened
        if kind != "ay":
            raise SecretServiceError("no encrypted session")
        key = _session_key(int.from_bytes(server_public, "big"), private)
        first = {name: items[0][0] for name, items in zip(names, found, strict=True) if items[0]}
        secrets: dict[str, Any] = {}
        if first:
            (reply,) = _exchange(
                conn,
                [
                    new_method_call(
                        secret_service,
                        "GetSecrets",
                        "aoo",
                        (sorted(set(first.values())), session_path),
                    )
                ],
            )
            secrets = reply[0]
        out: dict[str, str | None] = {}
        for name in names:
            path = first.get(name)
            if path is None:
                out[name] = None
                continue
            if path not in secrets:
                raise SecretServiceError("an item did not give its secret")
            _session, iv, value, _content_type = secrets[path]
            out[name] = _decrypt(key, bytes(iv), bytes(value)).decode("utf-8")
        return out
    finally:
        conn.close()
