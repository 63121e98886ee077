"""End to end: the installed fwknop-tui in a real terminal (tmux) knocks the real fwknopd.

The client namespace runs a private tmux server, and in it the console
script ``fwknop-tui`` of this virtualenv with a private Secret Service
(gnome-keyring on a session bus reached through a socket path, so it works
across namespaces). The test types like a user: skips the first-run offer,
opens the editor, types the name, host, verify target and the keys (share
text pasted into the masked key field), saves, knocks. The real C fwknopd
2.6.10 sniffs in the server namespace behind a default-drop iptables
policy: TCP 22 is closed before the knock, and open after it, both for the
TUI's own verify stage and for a connect made by the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fwknop_core import generate_keys
from tests.helpers.cfwknopd import RealFwknopd
from tests.helpers.netns import NetPair, drop_policy_iptables, net_pair
from tests.helpers.secret_service import SecretServiceSession
from tests.helpers.wait import DEADLINE, wait_for, wait_process_idle

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.keyring, pytest.mark.slow]

TUI = Path(sys.executable).with_name("fwknop-tui")


class Tmux:
    """One private tmux server and session, inside a namespace."""

    def __init__(self, pair: NetPair, socket: Path, env: dict[str, str]) -> None:
        self.pair = pair
        self.socket = socket
        self.env = env

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=check,
        )

    def start(self, argv: list[str]) -> None:
        env_args = [a for k, v in self.env.items() for a in ("-e", f"{k}={v}")]
        cmd = self.pair.client.argv(
            [
                "tmux",
                "-S",
                str(self.socket),
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "150",
                "-y",
                "50",
                *env_args,
                *argv,
            ]
        )
        # the tmux server's own environment is the session's: nothing of the test's leaks in
        subprocess.run(cmd, check=True, timeout=30, capture_output=True, env=self.env)
        self._tmux("set-option", "-s", "escape-time", "0")

    def keys(self, *keys: str) -> None:
        """Named keys (Enter, Tab, Escape, C-s ...), each handled before the next is sent."""
        for key in keys:
            self._tmux("send-keys", key)
            self.settle()

    def settle(self) -> None:
        """Wait until the app has handled what it was sent (a key moving the focus, say).

        A key that reaches a Textual app while the focus change of the one
        before is still queued goes to the old widget; the app's threads all
        sleeping is the sign that nothing is queued.
        """
        # a second command: the server has written the keys to the pane by the time it answers
        pid = int(self._tmux("display-message", "-p", "#{pane_pid}").stdout)
        assert wait_process_idle(pid), f"the app is still busy; the screen shows:\n{self.screen()}"

    def type(self, text: str) -> None:
        """Literal text, as typed."""
        self._tmux("send-keys", "-l", text)
        self.settle()

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", check=False).stdout

    def wait(self, text: str, timeout: float = DEADLINE) -> str:
        shown = ""

        def showing() -> bool:
            nonlocal shown
            shown = self.screen()
            return text in shown

        if not wait_for(showing, timeout=timeout, interval=0.2):
            raise AssertionError(f"{text!r} never appeared; the screen shows:\n{shown}")
        return shown

    def wait_gone(self, text: str, timeout: float = DEADLINE) -> None:
        """Until ``text`` is off the screen (a dialog closed: the screen beneath it showed
        through, so its own text cannot tell)."""
        if not wait_for(lambda: text not in self.screen(), timeout=timeout, interval=0.2):
            raise AssertionError(f"{text!r} stayed; the screen shows:\n{self.screen()}")

    def kill(self) -> None:
        self._tmux("kill-server", check=False)


def test_typing_a_profile_in_a_real_terminal_then_knocking_the_real_fwknopd(
    real_fwknop: None, namespaces: None, session: SecretServiceSession, tmp_path: Path
) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    assert TUI.exists(), f"{TUI} is not installed (pip install -e .)"
    keys = generate_keys()
    stanza = f"SOURCE ANY\n{keys.as_text()}"
    with net_pair("tm") as pair:
        drop_policy_iptables(pair.server)
        pair.listen_tcp(22)
        server = RealFwknopd(
            pair.server, tmp_path / "srv", interface=pair.server_if, access_conf=stanza
        ).start()
        assert not pair.tcp_open(22), "the port is open before the knock"
        config = tmp_path / "config"
        env = session.env | {
            "FWKNOP_TUI_CONFIG_DIR": str(config),
            "TERM": "xterm-256color",
            "LOGNAME": "root",
            "PATH": f"{TUI.parent}:/usr/sbin:/usr/bin:/sbin:/bin",
        }
        tmux = Tmux(pair, tmp_path / "tmux.sock", env)
        tmux.start([str(TUI)])
        try:
            tmux.wait("Welcome to fwknop-tui")
            tmux.keys("Escape")
            # a lone escape waits a moment for the rest of a key sequence, the app idle
            # meanwhile: an n sent in that moment would make it alt+n
            tmux.wait_gone("Welcome to fwknop-tui")
            tmux.wait("No profiles yet")
            tmux.keys("n")
            tmux.wait("New profile")
            tmux.type("lab")  # the name field has the focus
            tmux.wait("Name lab")
            tmux.keys("Tab", "Tab")  # past the tab bar, into Host
            tmux.type(pair.server_ip)
            tmux.wait(f"Host {pair.server_ip}")
            # the Advanced tab: a verify target
            tmux.keys("BTab", "Right", "Right", "Right", "Right")  # the tab bar, then Advanced
            tmux.wait("Verify tries")
            tmux.settle()
            tmux.keys("Tab")
            tmux.type(f"{pair.server_ip}:22")
            tmux.wait(f"Verify {pair.server_ip}:22")
            # the Crypto tab: paste the keys (share text) into the masked key field
            tmux.keys("BTab", "Left", "Left")
            tmux.wait("Encryption Rijndael")
            tmux.settle()
            tmux.keys(*["Tab"] * 10)  # Encryption, Cipher mode, ... HMAC key file, Rijndael key
            tmux.type(keys.as_text().replace("\n", " ").strip())
            shown = tmux.wait("Rijndael key ••••")
            assert keys.rijndael.to_base64() not in shown, "the key was shown while typed"
            tmux.keys("C-s")
            tmux.wait("lab: saved")
            tmux.keys("k")
            shown = tmux.wait("the port answered", timeout=2 * DEADLINE)
            assert "verify" in shown
            assert keys.rijndael.to_base64() not in shown
        finally:
            screen = tmux.screen()
            tmux.kill()
        assert pair.tcp_open(22), f"the port did not open; TUI screen:\n{screen}"
        assert "198.18.0.2" in "\n".join(server.iptables_rules())  # the port is open: it is there
        server.stop()
    text = (config / "profiles.toml").read_text()
    assert "198.18.0.1:22" in text and keys.rijndael.to_base64() not in text
    assert session.lookup("lab/rijndael") == keys.rijndael.to_base64()
    assert session.lookup("lab/hmac") == keys.hmac.to_base64()
    assert os.stat(config / "profiles.toml").st_mode & 0o077 == 0
