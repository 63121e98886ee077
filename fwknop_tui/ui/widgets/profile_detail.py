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


def _sequence_lines(profile: Profile, allow: dict[str, str]) -> list[tuple[str, str]]:
    """A fwknop 1.x knock sequence: its knocks are its destination, and a shared one has no key."""
    apart = f"{profile.knock_delay:g} s apart"
    if profile.knock_sequence:
        steps = profile.knock_sequence
        return [
            ("Destination", profile.host),
            ("Sequence", f"shared, {len(steps)} knocks {apart}: {', '.join(steps)}"),
            ("Allow IP", "the knocking source"),
            ("Crypto", "none: the sequence itself is the secret"),
            ("Keys", "none"),
        ]
    rotate = ", odd knocks over udp" if profile.knock_rotate_proto else ""
    return [
        ("Destination", profile.host),
        ("Requests", ports(profile)),
        (
            "Sequence",
            f"encrypted (1.x), knocks {apart}, port offset {profile.knock_offset}{rotate}",
        ),
        ("Allow IP", allow.get(profile.allow_ip, profile.allow_ip)),
        ("Crypto", "the 1.x knock key (Rijndael)"),
        ("Keys", key_source(profile)),
    ]


def summary_lines(profile: Profile) -> list[tuple[str, str]]:
    """(label, value) pairs describing a profile."""
    allow = {"source": "packet source (0.0.0.0)", "resolve": "resolved over HTTPS", "ask": "ask"}
    if profile.knocks_sequence:
        lines = _sequence_lines(profile, allow)
        if profile.verify:
            lines.append(("Verify", f"{profile.verify}, {profile.verify_retries} tries"))
        if profile.description:
            lines.append(("Note", profile.description))
        return lines
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
