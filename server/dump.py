"""What ``fwknopd -D`` prints of the loaded settings beyond fwknopd.conf's lines.

Each access stanza with everything it decides (sources, ports, timeouts,
expiry, NAT, commands and command cycles, GnuPG), and what the daemon
makes of fwknopd.conf (NAT, the replay cache). A key is shown only by its
length and kind, never its bytes, and a GnuPG passphrase not at all;
commands are shown as written (they are configuration, not secrets).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from fwknop_core import X25519PublicKey

from .access import AccessStanza
from .config import redact_url
from .nat import NatPolicy
from .settings import ServerSettings

__all__ = ["describe_settings", "describe_stanza"]

_WIDTH = 26


def _line(name: str, value: object) -> str:
    return f"  {name:<{_WIDTH}}{value}"


def _ports(ports: frozenset[tuple[str, int]]) -> str:
    return ", ".join(f"{proto}/{port}" for proto, port in sorted(ports))


def _nat(nat: NatPolicy) -> list[str]:
    lines = []
    if nat.force_nat is not None:
        address, port = nat.force_nat
        lines.append(_line("FORCE_NAT", f"{address} {port}" if port else "(FORWARD_ALL)"))
    if nat.force_snat is not None:
        lines.append(_line("FORCE_SNAT", nat.force_snat))
    for name, on in (
        ("FORCE_MASQUERADE", nat.force_masquerade),
        ("FORWARD_ALL", nat.forward_all),
        ("DISABLE_DNAT", nat.disable_dnat),
    ):
        if on:
            lines.append(_line(name, "Y"))
    return lines


def describe_stanza(
    stanza: AccessStanza, key_ids: Mapping[X25519PublicKey, str] | None = None
) -> str:
    """The stanza's block of ``-D`` (``key_ids``: each x25519 client key's id)."""
    lines = [
        f"\nstanza #{stanza.number} ({stanza.path}:{stanza.line})",
        _line("SOURCE", stanza.source_text),
    ]
    if stanza.destination is not None:
        lines.append(_line("DESTINATION", ", ".join(str(n) for n in stanza.destination)))
    if stanza.key is not None:
        lines.append(
            _line("Rijndael key", f"<{len(stanza.key.secret)} bytes, {stanza.key.mode.label}>")
        )
    if stanza.hmac_key is not None:
        kind = stanza.hmac_key.type.label
        lines.append(_line("HMAC key", f"<{len(stanza.hmac_key.secret)} bytes, {kind}>"))
    if stanza.unusable is not None:
        lines.append(_line("refuses every packet", stanza.unusable))
    if stanza.gpg is not None:
        signatures = "required" if stanza.gpg.require_sig else "not required"
        lines.append(_line("GnuPG", f"home {stanza.gpg.home_dir}, signatures {signatures}"))
    lines.extend(
        _line(
            "CLIENT_PUBLIC_KEY",
            f"{c.public.to_text()} (key id {(key_ids or {}).get(c.public, '?')})",
        )
        for c in stanza.client_keys
    )
    if stanza.open_ports is not None:
        lines.append(_line("OPEN_PORTS", _ports(stanza.open_ports)))
    if stanza.restrict_ports is not None:
        lines.append(_line("RESTRICT_PORTS", _ports(stanza.restrict_ports)))
    lines.append(_line("FW_ACCESS_TIMEOUT", stanza.fw_access_timeout))
    lines.append(_line("MAX_FW_TIMEOUT", stanza.max_fw_timeout))
    if stanza.require_username is not None:
        lines.append(_line("REQUIRE_USERNAME", stanza.require_username))
    lines.append(_line("REQUIRE_SOURCE_ADDRESS", "Y" if stanza.require_source_address else "N"))
    if stanza.expires_at is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(stanza.expires_at))
        lines.append(_line("expires", when))
    if stanza.nat is not None:
        lines.extend(_nat(stanza.nat))
    command = stanza.command_exec
    lines.append(_line("ENABLE_CMD_EXEC", "Y" if command is not None else "N"))
    if command is not None:
        if command.run_as is not None:
            lines.append(_line("commands run as", command.run_as.describe()))
        if command.sudo:
            who = "/".join(w for w in (command.sudo_user, command.sudo_group) if w) or "root"
            lines.append(_line("ENABLE_CMD_SUDO_EXEC", f"Y (as {who})"))
    if stanza.cycle is not None:
        lines.append(_line("CMD_CYCLE_OPEN", stanza.cycle.open))
        lines.append(_line("CMD_CYCLE_CLOSE", stanza.cycle.close or "NONE"))
        lines.append(_line("CMD_CYCLE_TIMER", stanza.cycle.timer))
    return "\n".join(lines)


def describe_settings(settings: ServerSettings) -> str:
    """What the daemon makes of fwknopd.conf: NAT, commands, the replay cache."""
    nat = settings.nat
    replay = settings.replay
    where = redact_url(replay.url) if replay.url else str(replay.path)  # never a password
    cache = where if replay.enabled else "off"
    lines = [
        "\nin effect",
        _line("NAT", _nat_summary(settings)),
        _line("NAT host names", "looked up (ENABLE_NAT_DNS)" if nat.dns else "not looked up"),
        _line("command timeout", f"{settings.command_timeout:g} s"),
        _line("replay cache", cache),
        _line("fwknopd's digest file", replay.legacy_file or "none"),
    ]
    return "\n".join(lines)


def _nat_summary(settings: ServerSettings) -> str:
    nat = settings.nat
    parts = [
        name
        for name, on in (
            ("forwarding", nat.forwarding),
            ("local NAT", nat.local),
            ("SNAT", nat.snat),
        )
        if on
    ]
    if nat.translate_ip is not None:
        parts.append(f"SNAT_TRANSLATE_IP {nat.translate_ip}")
    return ", ".join(parts) or "off"
