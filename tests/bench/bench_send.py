"""Cold-start cost of ``fwknop send PROFILE``, keyring read included, next to the C client.

    python tests/bench/bench_send.py [--runs N]

Starts a private Secret Service (gnome-keyring on its own session bus, as
the keyring tests do), creates a profile whose keys ``fwknop keygen`` puts
in it, then times whole processes, each the best and the median of N runs:

* ``python -c pass`` with the virtualenv's interpreter (the "bare" start),
* our ``fwknop send PROFILE`` (UDP to 127.0.0.1; keys from the keyring),
* the same with keyring's own code path (``KEYRING_PROPERTY_*`` set turns
  the direct Secret Service read off: what a plain ``keyring`` user pays),
* the C client ``/usr/bin/fwknop`` sending the same kind of packet.

Compiled bytecode is used as an installed package would (a private
``PYTHONPYCACHEPREFIX``, warmed once), so an environment with
``PYTHONDONTWRITEBYTECODE`` does not make every run compile from source.
Goal: ``fwknop send`` <= 4x the bare interpreter start (issue 13). Prints figures and
ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers.ourclient import FWKNOP_CLI
from tests.helpers.secret_service import secret_service

C_CLIENT = "/usr/bin/fwknop"
GOAL = 4.0


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """(best, median) wall seconds of ``argv`` over ``runs`` runs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-send-"))
    try:
        with secret_service(root / "ss") as session:
            env = session.env | {
                "FWKNOP_TUI_CONFIG_DIR": str(root / "config"),
                "PYTHONPYCACHEPREFIX": str(root / "pycache"),
                "LOGNAME": "bench",
            }
            fwknop = [str(FWKNOP_CLI)]
            session.run([*fwknop, "add", "bench", "-D", "127.0.0.1", "-A", "tcp/22"], env=env)
            stanza = session.run([*fwknop, "keygen", "--profile", "bench"], env=env).stdout.decode()
            keys = dict(
                line.split(None, 1)
                for line in stanza.splitlines()
                if line.startswith(("KEY_", "HMAC_KEY_"))
            )
            rc = root / "fwknoprc"
            rc.write_text("[default]\n")
            rc.chmod(0o600)
            c_argv = [
                C_CLIENT,
                "--rc-file",
                str(rc),
                "--no-save-args",
                "-A",
                "tcp/22",
                "-s",
                "-D",
                "127.0.0.1",
                "--key-base64-rijndael",
                keys["KEY_BASE64"].strip(),
                "--key-base64-hmac",
                keys["HMAC_KEY_BASE64"].strip(),
            ]
            ours = [*fwknop, "-q", "send", "bench"]
            for argv in ([sys.executable, "-c", "pass"], ours):  # warm the bytecode and the hint
                subprocess.run(argv, env=env, check=True, capture_output=True)
            rows = [
                ("python -c pass (bare)", timed([sys.executable, "-c", "pass"], env, args.runs)),
                ("fwknop send PROFILE", timed(ours, env, args.runs)),
                (
                    "  via keyring's own path",
                    timed(ours, env | {"KEYRING_PROPERTY_SCHEME": "default"}, args.runs),
                ),
            ]
            if shutil.which(C_CLIENT):
                rows.append(
                    ("C fwknop 2.6.10", timed(c_argv, env | {"HOME": str(root)}, args.runs))
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    bare = rows[0][1][0]
    c_best = rows[-1][1][0] if rows[-1][0].startswith("C ") else None
    print(f"{'command':<28} {'best ms':>9} {'median ms':>10} {'x bare':>7} {'x C':>7}")
    for name, (best, median) in rows:
        vs_c = f"{best / c_best:7.1f}" if c_best else "      -"
        print(f"{name:<28} {best * 1000:9.1f} {median * 1000:10.1f} {best / bare:7.2f} {vs_c}")
    ratio = rows[1][1][0] / bare
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"goal: fwknop send <= {GOAL:g}x bare: {verdict} ({ratio:.2f}x)")
    print(f"(cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
