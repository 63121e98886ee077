"""A profile at a glance (never its keys: only where they come from)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ...wallet.profiles import Profile
from .profile_table import destination, ports

__all__ = ["ProfileDetail", "key_source", "summary_lines"]


def key_source(profile: Profile) -> str:
    """Where the profile's keys come from."""
    if profile.uses_gpg:
        signer = f", signed by {profile.gpg_signer}" if profile.gpg_signer else ", unsigned"
        return f"GnuPG to {profile.gpg_recipient}{signer}"
    if profile.uses_x25519 and not (profile.key_command or profile.key_file):
        return "OS keyring (x25519 private key)"
    if profile.key_command:
        return f"key command: {profile.key_command[0]} …"
    if profile.key_file:
        return f"key file: {profile.key_file}"
    return "OS keyring"


def summary_lines(profile: Profile) -> list[tuple[str, str]]:
    """(label, value) pairs describing a profile."""
    allow = {"source": "packet source (0.0.0.0)", "resolve": "resolved over HTTPS", "ask": "ask"}
    hmac = profile.hmac_type.fwknop_name if profile.hmac_type else "none"
    digest = profile.digest_type.fwknop_name
    lines = [
        ("Destination", f"{destination(profile)} over {profile.transport.value}"),
        ("Requests", ports(profile)),
        ("Allow IP", allow.get(profile.allow_ip, profile.allow_ip)),
        (
            "Crypto",
            "x25519 public keys, ChaCha20-Poly1305"
            if profile.uses_x25519
            else f"{profile.encryption_mode.label}, HMAC {hmac}, digest {digest}",
        ),
        ("Keys", key_source(profile)),
    ]
    if profile.nat_access or profile.nat_local:
        lines.append(("NAT", profile.nat_access or "local"))
    if profile.client_timeout:
        lines.append(("Timeout", f"{profile.client_timeout} s"))
    if profile.verify:
        lines.append(("Verify", f"{profile.verify}, {profile.verify_retries} tries"))
    if profile.keep_open:
        lines.append(("Keep open", f"re-knock every {profile.keep_open} s"))
    if profile.description:
        lines.append(("Note", profile.description))
    return lines


class ProfileDetail(Static):
    """The selected profile's settings; a long value wraps under itself, not under its label."""

    def show(self, profile: Profile | None) -> None:
        """Render a profile (or a hint when there is none)."""
        if profile is None:
            self.update(Text("No profile selected.", "dim"))
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", no_wrap=True, style="dim")
        grid.add_column(ratio=1, overflow="fold")
        for label, value in summary_lines(profile):
            grid.add_row(label, Text(value))
        self.update(Group(Text(profile.name, "bold"), grid))
