"""What ``fwknop send PROFILE`` loads: nothing it does not use (its cold start is a goal).

tests/bench/bench_send.py measures the time; this pins the causes found by
profiling, so they do not come back unnoticed: the core's optional parts
(SPA over HTTP, key sharing, 1.x knock sequences, x25519, GnuPG), the
keyring libraries' own Secret Service stack (secretstorage, cryptography's
OpenSSL backend), argparse's shutil, and tomllib when the profile cache
holds the file's text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fwknop_core import generate_keys

OPTIONAL = {
    "fwknop_core._http",
    "fwknop_core._share",
    "fwknop_core._knockseq",
    "fwknop_core._x25519",
    "fwknop_core.gpg",
    "secretstorage",
    "cryptography.hazmat.backends.openssl",
    "shutil",
    "getpass",
    "encodings.idna",
}


def _loaded_by_send(env: dict[str, str]) -> set[str]:
    code = (
        "import json, sys; from fwknop_tui.cli import main; "
        "code = main(['-q', 'send', 'lab']); print(json.dumps([code, sorted(sys.modules)]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    code, modules = json.loads(res.stdout.splitlines()[-1])
    assert code == 0, res.stderr
    return set(modules)


def test_a_udp_send_loads_none_of_the_optional_parts(private_config: Path, tmp_path: Path) -> None:
    keys = tmp_path / "key"  # a bare key: share text (KEY_BASE64: ...) would need _share
    keys.write_text(generate_keys().rijndael.to_base64() + "\n")
    keys.chmod(0o600)
    private_config.mkdir(parents=True)
    (private_config / "profiles.toml").write_text(
        f'[profiles.lab]\nhost = "127.0.0.1"\nport = 9\nhmac_type = "none"\nkey_file = "{keys}"\n'
    )
    env = os.environ | {"LOGNAME": "tester"}
    first = _loaded_by_send(env)  # parses profiles.toml, fills the cache
    again = _loaded_by_send(env)
    assert not again & OPTIONAL, again & OPTIONAL
    assert "tomllib" in first and "tomllib" not in again
