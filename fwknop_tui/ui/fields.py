"""The editor's view of the profile fields: group, label, widget kind and help for each.

Every field of ``wallet.profiles.FIELDS`` appears here exactly once (a test
holds us to it), so a new profile field cannot be forgotten by the editor.
Conversions between a field's value and what its widget holds are here too;
validation is the wallet's (``check_field``), never repeated.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from fwknop_core import DigestType, EncryptionMode, HmacType

from ..wallet.profiles import Profile, default_of, to_toml_value
from ..wallet.validate import Transport

__all__ = ["GROUPS", "SPECS", "FieldSpec", "display_value", "raw_value"]

GROUPS = (
    ("target", "Target"),
    ("access", "Access"),
    ("crypto", "Crypto"),
    ("gnupg", "GnuPG"),
    ("advanced", "Advanced"),
)

_MODES = tuple(
    (m.label.lower(), m.label) for m in EncryptionMode if m is not EncryptionMode.ASYMMETRIC
)
_DIGESTS = tuple((d.fwknop_name, d.fwknop_name.upper()) for d in DigestType)
_HMACS = (("none", "none"), *((h.fwknop_name, h.fwknop_name.upper()) for h in HmacType))


@dataclass(frozen=True)
class FieldSpec:
    """How the editor shows one field."""

    name: str
    label: str
    group: str
    kind: str  # text, int, bool, choice, list, command
    help: str
    choices: tuple[tuple[str, str], ...] = ()


# fmt: off
_TABLE: tuple[tuple[Any, ...], ...] = (
    # target
    ("host", "Host", "target", "text", "fwknopd's host name or address (IPv4 or IPv6)"),
    ("port", "Port", "target", "int", "the port fwknopd watches (62201)"),
    ("transport", "Transport", "target", "choice", "how the packet travels",
       ((t.value, t.value) for t in Transport)),
    ("random_port", "Random port", "target", "bool",
       "send to a random port 10000-65534 (the server needs a wide PCAP_FILTER)"),
    ("source_port", "Source port", "target", "int", "0 lets the system choose"),
    ("address_family", "Address family", "target", "choice", "which address of the host",
       (("any", "any"), ("ipv4", "IPv4"), ("ipv6", "IPv6"))),
    ("server_type", "Server", "target", "choice",
       "fwknopd: the C fwknopd 2.6 (or compatible); fwknop-tui: ours, which also takes IPv6",
       (("fwknopd", "fwknopd 2.6"), ("fwknop-tui", "fwknop-tui's fwknopd"))),
    ("description", "Description", "target", "text", "a note for yourself"),
    # access
    ("access", "Access", "access", "list", "proto/port list, e.g. tcp/22, udp/53"),
    ("allow_ip", "Allow IP", "access", "text",
       "source (the packet's address), resolve, ask, or an address (IPv6: server fwknop-tui)"),
    ("resolve_url", "Resolve URL", "access", "text",
       "HTTPS URL that answers with your address (allow IP resolve)"),
    ("client_timeout", "Timeout", "access", "int",
       "seconds the server keeps the port open (0: the server's default)"),
    ("username", "Username", "access", "text", "name in the packet (empty: your login name)"),
    ("time_offset", "Time offset", "access", "text", "+5m, -30s, ... for a server clock off"),
    ("server_command", "Server command", "access", "text",
       "a command for the server to run instead of opening ports"),
    ("nat_access", "NAT access", "access", "text",
       "internal host[:port] the server should forward to"),
    ("nat_port", "NAT port", "access", "int", "external port to ask for (0: the access port)"),
    ("nat_random_port", "Random NAT port", "access", "bool", "ask for a random external port"),
    ("nat_local", "Local NAT", "access", "bool", "forward to a port on the server itself"),
    # crypto
    ("encryption", "Encryption", "crypto", "choice",
       "Rijndael (shared key), GnuPG, or x25519 (public keys, fwknop-tui server)",
       (("rijndael", "Rijndael"), ("gpg", "GnuPG"), ("x25519", "x25519"))),
    ("server_public_key", "Server key", "crypto", "text",
       "x25519: the server's x25519-pub:... key (fwknopd --key-gen-server)"),
    ("encryption_mode", "Cipher mode", "crypto", "choice", "the server's ENCRYPTION_MODE",
       _MODES),
    ("digest_type", "Digest", "crypto", "choice", "the inner digest", _DIGESTS),
    ("hmac_type", "HMAC", "crypto", "choice", "the server's HMAC_DIGEST_TYPE", _HMACS),
    ("key_format", "Key format", "crypto", "choice", "KEY_BASE64 or a KEY passphrase",
       (("base64", "base64"), ("passphrase", "passphrase"))),
    ("key_command", "Key command", "crypto", "command",
       "print the key instead of the keyring, e.g. pass show spa/home"),
    ("hmac_key_command", "HMAC key command", "crypto", "command", "same, for the HMAC key"),
    ("key_file", "Key file", "crypto", "text", "a 0600 file holding the key"),
    ("hmac_key_file", "HMAC key file", "crypto", "text", "a 0600 file holding the HMAC key"),
    # gnupg
    ("gpg_recipient", "Recipient", "gnupg", "text", "the server's key (GPG_DECRYPT_ID)"),
    ("gpg_signer", "Signer", "gnupg", "text", "your key, to sign with (optional)"),
    ("gpg_home", "GnuPG home", "gnupg", "text", "GnuPG home directory (empty: the default)"),
    ("gpg_exe", "gpg", "gnupg", "text", "the gpg program"),
    ("gpg_signing_pw_command", "Passphrase command", "gnupg", "command",
       "print the signing passphrase instead of the keyring"),
    ("gpg_signing_pw_file", "Passphrase file", "gnupg", "text", "a 0600 file holding it"),
    # advanced
    ("verify", "Verify", "advanced", "text",
       "host:port to probe after the knock (empty: the first tcp port, on --verify)"),
    ("verify_retries", "Verify tries", "advanced", "int", "give up after tries x interval s"),
    ("verify_interval", "Verify interval", "advanced", "text", "longest pause between probes"),
    ("keep_open", "Keep open", "advanced", "int",
       "keep-open re-knock interval in seconds (0: 80% of the timeout)"),
    ("http_proxy", "HTTP proxy", "advanced", "text", "host[:port] (transport http)"),
    ("user_agent", "User agent", "advanced", "text", "for http and resolve"),
    ("spoof_source", "Spoof source", "advanced", "text", "source address (udpraw, icmp; root)"),
    ("icmp_type", "ICMP type", "advanced", "int", "for transport icmp"),
    ("icmp_code", "ICMP code", "advanced", "int", "for transport icmp"),
    # fwknop 1.x knock sequences (on the advanced tab while the TUI layout is reworked)
    ("mode", "Mode", "advanced", "choice", "spa: one SPA packet; knock: a fwknop 1.x sequence",
       (("spa", "SPA"), ("knock", "knock sequence (1.x)"))),
    ("knock_sequence", "Shared sequence", "advanced", "list",
       "tcp/N, udp/N, icmp steps (empty: an encrypted sequence, key = the 1.x KEY)"),
    ("knock_offset", "Knock offset", "advanced", "int", "the server's PORT_OFFSET (61000)"),
    ("knock_delay", "Knock delay", "advanced", "text", "seconds between knocks (1)"),
    ("knock_rotate_proto", "Rotate proto", "advanced", "bool",
       "odd knocks of an encrypted sequence as UDP (1.x --rotate-proto)"),
)
# fmt: on
SPECS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(n, label, g, kind, h, tuple(c[0]) if c else ()) for n, label, g, kind, h, *c in _TABLE
)


BY_NAME = {s.name: s for s in SPECS}


def display_value(spec: FieldSpec, profile: Profile | None) -> Any:
    """What the widget shows for the field (a str, or a bool for switches)."""
    if profile is None and spec.name == "host":
        return ""
    value = default_of(spec.name) if profile is None else getattr(profile, spec.name)
    toml = to_toml_value(spec.name, value)
    if spec.kind == "bool":
        return bool(toml)
    if spec.kind == "list":
        return ", ".join(toml)
    if spec.kind == "command":
        return shlex.join(toml) if toml else ""
    if spec.name == "time_offset" and toml == "0s":
        return ""
    return str(toml)


def raw_value(spec: FieldSpec, shown: Any) -> Any:
    """The raw value to validate from what the widget holds ("" means the default)."""
    if spec.kind == "bool":
        return bool(shown)
    text = str(shown).strip() if spec.kind != "text" or spec.name != "description" else str(shown)
    if text == "" and spec.name != "host":
        return to_toml_value(spec.name, default_of(spec.name))
    return text
