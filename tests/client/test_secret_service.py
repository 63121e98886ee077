"""The direct Secret Service read: the same answers as keyring, over an encrypted session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fwknop_tui.wallet._secret_service import P, SecretServiceError, _decrypt, _session_key
from tests.helpers.secret_service import SecretServiceSession

READ = (
    "import json, sys; from fwknop_tui.wallet._secret_service import read; "
    "print(json.dumps(read('fwknop-tui', sys.argv[1:])))"
)


@pytest.mark.keyring
def test_reads_what_keyring_wrote_and_none_for_what_is_not_there(
    session: SecretServiceSession,
) -> None:
    value = "ünïcode key / with spaces"
    store = "import keyring, sys; keyring.set_password('fwknop-tui', sys.argv[1], sys.argv[2])"
    session.run([sys.executable, "-c", store, "p/rijndael", value])
    session.run([sys.executable, "-c", store, "p/hmac", "second"])
    session.run([sys.executable, "-c", store, "other/hmac", "not this one"])
    res = session.run([sys.executable, "-c", READ, "p/rijndael", "p/hmac", "p/gpg-signing-pw"])
    assert json.loads(res.stdout) == {
        "p/rijndael": value,
        "p/hmac": "second",
        "p/gpg-signing-pw": None,
    }


@pytest.mark.keyring
def test_a_locked_collection_is_not_read(session: SecretServiceSession) -> None:
    store = "import keyring; keyring.set_password('fwknop-tui', 'p/hmac', 'x')"
    session.run([sys.executable, "-c", store])
    lock = "import secretstorage as s; s.get_default_collection(s.dbus_init()).lock()"
    session.run([sys.executable, "-c", lock])
    res = session.run([sys.executable, "-c", READ, "p/hmac"], check=False)
    assert res.returncode != 0 and b"SecretServiceError" in res.stderr


def test_the_session_key_matches_the_other_side() -> None:
    ours, theirs = int.from_bytes(os.urandom(32), "big"), int.from_bytes(os.urandom(128), "big")
    key = _session_key(pow(2, theirs, P), ours)
    assert key == _session_key(pow(2, ours, P), theirs)
    for bad in (0, 1, P - 1, P):
        with pytest.raises(SecretServiceError):
            _session_key(bad, ours)


def test_padding_is_checked() -> None:
    key, iv = os.urandom(16), os.urandom(16)

    def encrypt(padded: bytes) -> bytes:
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        return enc.update(padded) + enc.finalize()

    assert _decrypt(key, iv, encrypt(b"secret" + b"\x0a" * 10)) == b"secret"
    for padded in (b"secret" + b"\x01" * 9 + b"\x0a", b"x" * 15 + b"\x00", b"x" * 15 + b"\x11"):
        with pytest.raises(SecretServiceError):
            _decrypt(key, iv, encrypt(padded))


def test_the_read_module_loads_no_secretstorage_and_no_openssl_backend() -> None:
    code = (
        "import sys, fwknop_tui.wallet._secret_service; "
        "print(sorted(m for m in sys.modules if m.startswith(('secretstorage', "
        "'cryptography.hazmat.backends'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
