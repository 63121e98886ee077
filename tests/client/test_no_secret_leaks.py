"""A full run never shows a key where it was not asked for.

Every command a user would run (keygen, send with -vv, failing sends, show,
list, rename, export, imports with bad input, a failing key command) runs
as a process against the real Secret Service. Then the argv of every run,
every stderr (logs and errors), every stdout except the outputs that exist to
print keys (keygen's stanza, share, show --reveal, server-stanza), the
profiles file and every other file we left in the config and cache
directories are searched for the keys in every spelling a leak could take.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from tests.helpers.ourclient import OurClient
from tests.helpers.secret_service import SecretServiceSession

pytestmark = [pytest.mark.keyring]


def _spellings(b64: str) -> set[str]:
    raw = base64.b64decode(b64)
    out = {
        b64,
        b64.rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    out |= {b64.rstrip("=").translate(str.maketrans("+/", "-_"))}
    try:
        text = raw.decode("ascii")
        if text.isprintable() and len(text) >= 8:
            out.add(text)
    except UnicodeDecodeError:
        pass
    return {s for s in out if len(s) >= 8}


def test_no_key_appears_outside_what_was_asked_for(
    tmp_path: Path, session: SecretServiceSession
) -> None:
    client = OurClient(
        tmp_path / "c", env=session.env | {"FWKNOP_TUI_CONFIG_DIR": str(tmp_path / "c" / "config")}
    )
    runs: list[tuple[list[str], subprocess.CompletedProcess[bytes], bool]] = []

    def run(
        args: list[str], *, reveals: bool = False, stdin: bytes | None = None, code: int | None = 0
    ) -> subprocess.CompletedProcess[bytes]:
        res = client.run(args, stdin=stdin)
        if code is not None:
            assert res.returncode == code, (args, res.stderr.decode())
        runs.append((client.argv(args), res, reveals))
        return res

    run(["add", "lab", "-D", "127.0.0.1", "-A", "tcp/22", "--description", "leak test"])
    run(["keygen", "--profile", "lab"], reveals=True)
    run(["-vv", "send", "lab", "--dry-run"])
    run(["-vv", "send", "lab"])
    run(["-vv", "send", "lab", "--json"])
    run(
        [
            "-vv",
            "send",
            "lab",
            "--verify",
            "--probe",
            "127.0.0.1:9",
            "--verify-retries",
            "2",
            "--verify-interval",
            "0.1",
        ],
        code=10,
    )
    run(["-vv", "send", "lab", "-D", "no-such-host.invalid"], code=8)
    run(["-vv", "send", "lab", "-P", "tcp", "-p", "9"], code=9)
    run(["-vv", "show", "lab"])
    run(["show", "lab", "--json"])
    run(["list", "-l"])
    run(["share", "lab", "--text"], reveals=True)
    run(["show", "lab", "--reveal", "hmac"], reveals=True)
    run(["server-stanza", "lab"], reveals=True)
    run(["rename", "lab", "lab2"])
    run(["export-rc", "lab2", "-o", str(tmp_path / "out.rc")])
    run(
        [
            "-vv",
            "add",
            "broken",
            "-D",
            "127.0.0.1",
            "--key-command",
            "sh -c 'echo KEY_BASE64:AAAA; exit 3'",
        ]
    )
    run(["-vv", "send", "broken", "--dry-run"], code=5)
    rijndael = session.lookup("lab2/rijndael")
    hmac = session.lookup("lab2/hmac")
    assert rijndael and hmac
    bad_rc = tmp_path / "bad.rc"
    bad_rc.write_text(
        f"[x]\nSPA_SERVER 127.0.0.1\nKEY_BASE64 {rijndael}\nHMAC_KEY_BASE64 {hmac}\n"
        "ENCRYPTION_MODE nope\n"
    )
    run(["-vv", "import-rc", str(bad_rc)], code=None)
    run(
        ["-vv", "import-share", "lab2", "--force"],
        stdin=f"KEY_BASE64:{rijndael} HMAC_KEY_BASE64:{hmac}".encode(),
    )
    run(
        ["-vv", "import-share", "lab2", "--force"],
        stdin=f"KEY_BASE64:{rijndael}* HMAC_KEY_BASE64:{hmac}".encode(),
        code=2,
    )
    run(
        ["-vv", "send", "lab2", "--keys-stdin", "--dry-run"],
        stdin=f"KEY_BASE64:{rijndael}\nHMAC_KEY_BASE64:{hmac}\n".encode(),
    )

    needles = _spellings(rijndael) | _spellings(hmac)
    revealed = 0
    for argv, res, reveals in runs:
        for needle in needles:
            assert needle not in " ".join(argv), f"key in argv of {argv}"
            assert needle not in res.stderr.decode(errors="replace"), f"key on stderr of {argv}"
            if not reveals:
                assert needle not in res.stdout.decode(errors="replace"), f"key on stdout of {argv}"
        revealed += reveals and any(n in res.stdout.decode() for n in needles)
    assert revealed == 4  # the outputs that exist to show keys did show them
    files = [p for root in (client.config, client.home) for p in root.rglob("*") if p.is_file()]
    assert client.profiles in files
    for path in files:
        content = path.read_bytes().decode(errors="replace")
        for needle in needles:
            assert needle not in content, f"key in {path}"
    exported = (tmp_path / "out.rc").read_text()
    assert f"KEY_BASE64                  {rijndael}" in exported  # asked for, written 0600
    assert oct((tmp_path / "out.rc").stat().st_mode & 0o777) == "0o600"
