"""~/.fwknoprc import and export, and the server's access.conf stanza.

Import reads the C client's rc syntax (client.md §3): ``[name]`` stanzas,
``NAME VALUE`` lines whose value ends at the first space, tab, ``;`` or
``#``, booleans true only for ``Y``. ``[default]`` is merged under every
named stanza, as the C client does; a ``[default]`` that holds keys (or a
server) is also a profile of its own, because that is what the C client
uses when no ``-n`` is given. A stanza without ``SPA_SERVER`` (the C client
takes ``-D`` on its command line) needs a destination from the user: one
for all such stanzas, or one per stanza; until it has one, its plan says so
(``needs_host``) and it is not imported. ``GPG_SIGNING_PW`` sets the same
client option as ``KEY``, so in a stanza without GnuPG it is the Rijndael
passphrase, as the C client uses it. ``CLIENT_TIMEOUT`` (written by
fwknop-gui and shown in fwknop's own rc template, but never read by the C
client) is accepted as ``FW_TIMEOUT``. Import is two steps: ``plan_import``
turns the text into profiles and keys with warnings and touches nothing;
the wallet then applies the plan all or nothing.

Export writes stanzas the real client reads, keys inline (the rc format
has nowhere else to put them), so the file is written 0600. Fields with no
rc variable (a server command, verify, keep_open, an HTTP proxy, the ICMP
type) are reported, not silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fwknop_core import DEFAULT_KNOCK_OFFSET, HmacType, RijndaelKey, UsageError

from .keys import ProfileKeys, encode_stored
from .profiles import DEFAULT_RESOLVE_URL, DEFAULT_USER_AGENT, Profile
from .validate import FieldError, format_time_offset

__all__ = [
    "RcImport",
    "RcStanza",
    "access_stanza",
    "check_exportable",
    "client_public_key_line",
    "export_stanza",
    "merge_rc",
    "parse_rc",
    "plan_import",
]

_HEADER = re.compile(r"^\s*\[([^\]]*)\]")
_SETTING = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:?\s*(.*)$")
_VALUE_END = re.compile(r"[ \t;#]")
_IGNORED = {
    "VERBOSE",
    "NO_SAVE_ARGS",
    "WGET_CMD",
    "USE_WGET_USER_AGENT",
    "USE_GPG_AGENT",
    "GPG_NO_SIGNING_PW",
}
COLUMN = 28
_LABEL = {"rijndael": "Rijndael key", "hmac": "HMAC key", "gpg-signing-pw": "GnuPG passphrase"}
# the rc variable behind a profile field, to name it (and its line) when its value is refused
_VAR_OF = {
    "host": "SPA_SERVER",
    "port": "SPA_SERVER_PORT",
    "transport": "SPA_SERVER_PROTO",
    "source_port": "SPA_SOURCE_PORT",
    "client_timeout": "FW_TIMEOUT",
    "allow_ip": "ALLOW_IP",
    "time_offset": "TIME_OFFSET",
    "digest_type": "DIGEST_TYPE",
    "encryption_mode": "ENCRYPTION_MODE",
    "hmac_type": "HMAC_DIGEST_TYPE",
    "username": "SPOOF_USER",
    "spoof_source": "SPOOF_SOURCE_IP",
    "nat_access": "NAT_ACCESS",
    "nat_port": "NAT_PORT",
    "user_agent": "HTTP_USER_AGENT",
    "access": "ACCESS",
    "gpg_recipient": "GPG_RECIPIENT",
    "gpg_signer": "GPG_SIGNER",
    "gpg_home": "GPG_HOMEDIR",
    "gpg_exe": "GPG_EXE",
    "resolve_url": "RESOLVE_URL",
}


@dataclass
class RcStanza:
    """One ``[name]`` stanza: variable -> (value, line)."""

    name: str
    line: int
    values: dict[str, tuple[str, int]] = field(default_factory=dict)


def parse_rc(text: str) -> list[RcStanza]:
    """Stanzas in file order (settings before any header are ignored, as fwknop does)."""
    stanzas: list[RcStanza] = []
    current: RcStanza | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if m := _HEADER.match(line):
            current = RcStanza(m.group(1).strip(), number)
            stanzas.append(current)
            continue
        m = _SETTING.match(line)
        if m and current is not None:
            value = _VALUE_END.split(m.group(2), maxsplit=1)[0]
            current.values[m.group(1).upper()] = (value, number)
    return stanzas


@dataclass(repr=False)
class RcImport:
    """What importing one stanza would do: a profile, its keys, what was skipped."""

    stanza: str
    name: str
    line: int
    profile: Profile | None
    keys: dict[str, str] = field(default_factory=dict)  # slot -> stored value
    warnings: list[str] = field(default_factory=list)
    exists: bool = False
    reason: str = ""  # why it is not imported (profile None)
    needs_host: bool = False  # only the destination is missing

    def __repr__(self) -> str:
        return f"RcImport({self.name!r}, keys={sorted(self.keys)}, warnings={len(self.warnings)})"


def _yes(value: str) -> bool:
    return value.upper() == "Y"


def _profile_name(stanza: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stanza).strip("-._")[:64]
    return name or "imported"


_KEY_VARS = {
    "KEY",
    "KEY_BASE64",
    "HMAC_KEY",
    "HMAC_KEY_BASE64",
    "GPG_SIGNING_PW",
    "GPG_SIGNING_PW_BASE64",
}


def _is_profile(default: RcStanza) -> bool:
    """Whether ``[default]`` is a knock setup of its own: it holds keys or names a server."""
    wanted = _KEY_VARS | {"SPA_SERVER", "USE_GPG"}
    return any(value for var, (value, _line) in default.values.items() if var in wanted)


def plan_import(
    text: str,
    source: str,
    existing: set[str] | frozenset[str] = frozenset(),
    *,
    destination: str | None = None,
    hosts: Mapping[str, str] | None = None,
) -> list[RcImport]:
    """Turn rc text into profiles and keys; nothing is written.

    ``destination`` is the host for every stanza without ``SPA_SERVER``;
    ``hosts`` (stanza name -> host) gives one stanza its own.
    """
    stanzas = parse_rc(text)
    default = next((s for s in stanzas if s.name.lower() == "default"), None)
    plans = []
    for st in stanzas:
        if st is default:
            if not _is_profile(st):
                continue
            merged = dict(st.values)
        elif st.name.lower() == "default":
            continue  # a second [default]: the C client reads only the first
        else:
            merged = dict(default.values) if default else {}
            merged.update(st.values)
        host = (hosts or {}).get(st.name) or destination
        plans.append(_plan_one(st, merged, source, existing, host))
    return plans


def _plan_one(
    st: RcStanza,
    values: dict[str, tuple[str, int]],
    source: str,
    existing: set[str] | frozenset[str],
    destination: str | None = None,
) -> RcImport:
    name = _profile_name(st.name)
    plan = RcImport(stanza=st.name, name=name, line=st.line, profile=None, exists=name in existing)
    if name != st.name:
        plan.warnings.append(f"stanza [{st.name}] becomes profile {name!r}")
    fields: dict[str, Any] = {}
    secrets_text: dict[str, tuple[str, bool]] = {}  # slot -> (value, is_base64)
    secret_lines: dict[str, int] = {}  # slot -> its line
    use_hmac = False

    def warn(var: str, message: str) -> None:
        plan.warnings.append(f"{source}:{values[var][1]}: {var}: {message}")

    for var, (value, at_line) in values.items():
        if not value:
            plan.warnings.append(f"{source}:{at_line}: {var}: no value; skipped")
            continue
        if var == "SPA_SERVER":
            fields["host"] = value
        elif var == "SPA_SERVER_PORT":
            fields["port"] = value
        elif var == "SPA_SERVER_PROTO":
            if value.lower() == "tcpraw":
                warn(var, "tcpraw is not supported; using tcp")
                fields["transport"] = "tcp"
            else:
                fields["transport"] = value
        elif var == "SPA_SOURCE_PORT":
            fields["source_port"] = value
        elif var == "RAND_PORT":
            fields["random_port"] = _yes(value)
        elif var in ("FW_TIMEOUT", "CLIENT_TIMEOUT"):
            fields["client_timeout"] = value
        elif var == "ALLOW_IP":
            fields["allow_ip"] = value
        elif var in ("RESOLVE_IP_HTTPS", "RESOLVE_IP_HTTP"):
            if _yes(value):
                fields["allow_ip"] = "resolve"
        elif var == "RESOLVE_URL":
            if value.lower().startswith("https://"):
                fields["resolve_url"] = value
            else:
                warn(var, "only https:// resolvers are used; keeping the default URL")
        elif var == "RESOLVE_HTTP_ONLY":
            if _yes(value):
                warn(var, "plain-HTTP address lookup is not supported; HTTPS is used")
        elif var == "TIME_OFFSET":
            fields["time_offset"] = value
        elif var == "DIGEST_TYPE":
            fields["digest_type"] = value
        elif var == "ENCRYPTION_MODE":
            fields["encryption_mode"] = value
        elif var == "HMAC_DIGEST_TYPE":
            fields["hmac_type"] = value
        elif var == "USE_HMAC":
            use_hmac = _yes(value)
        elif var in ("KEY", "KEY_BASE64"):
            secrets_text["rijndael"] = (value, var == "KEY_BASE64")
            secret_lines["rijndael"] = at_line
        elif var in ("HMAC_KEY", "HMAC_KEY_BASE64"):
            secrets_text["hmac"] = (value, var == "HMAC_KEY_BASE64")
            secret_lines["hmac"] = at_line
            use_hmac = True
        elif var in ("GPG_SIGNING_PW", "GPG_SIGNING_PW_BASE64"):
            secrets_text["gpg-signing-pw"] = (value, var.endswith("_BASE64"))
            secret_lines["gpg-signing-pw"] = at_line
        elif var == "USE_GPG":
            if _yes(value):
                fields["encryption"] = "gpg"
        elif var == "GPG_RECIPIENT":
            fields["gpg_recipient"] = value
        elif var == "GPG_SIGNER":
            fields["gpg_signer"] = value
        elif var == "GPG_HOMEDIR":
            fields["gpg_home"] = value
        elif var == "GPG_EXE":
            fields["gpg_exe"] = value
        elif var == "SPOOF_USER":
            fields["username"] = value
        elif var == "SPOOF_SOURCE_IP":
            fields["spoof_source"] = value
        elif var == "NAT_ACCESS":
            fields["nat_access"] = value
        elif var == "NAT_LOCAL":
            fields["nat_local"] = _yes(value)
        elif var == "NAT_RAND_PORT":
            fields["nat_random_port"] = _yes(value)
        elif var == "NAT_PORT":
            fields["nat_port"] = value
        elif var == "HTTP_USER_AGENT":
            fields["user_agent"] = value
        elif var == "SERVER_RESOLVE_IPV4":
            if _yes(value):
                fields["address_family"] = "ipv4"
        elif var == "ACCESS":
            fields["access"] = value
        elif var in ("KEY_FILE", "HMAC_KEY_FILE"):
            warn(
                var,
                "key files in fwknop's 'host: key' format are not read; import the key "
                "with `fwknop import-share`",
            )
        elif var in _IGNORED:
            continue
        else:
            warn(var, "unknown variable, skipped")

    where = f"{source}:{st.line}: [{st.name}]"

    def refuse(reason: str, line: int | None = None) -> RcImport:
        plan.reason = reason
        plan.warnings.append(f"{source}:{line or st.line}: [{st.name}]: {reason}; not imported")
        return plan

    if "host" not in fields:
        if not destination:
            plan.needs_host = True
            return refuse(
                "has no SPA_SERVER (the C client takes -D on its command line): "
                "give the destination (fwknop import-rc --destination HOST)"
            )
        fields["host"] = destination
    gpg = fields.get("encryption") == "gpg"
    if gpg and "rijndael" in secrets_text and "gpg-signing-pw" not in secrets_text:
        secrets_text["gpg-signing-pw"] = secrets_text.pop("rijndael")  # KEY doubles as it
        secret_lines["gpg-signing-pw"] = secret_lines["rijndael"]
    if not gpg and "gpg-signing-pw" in secrets_text and "rijndael" not in secrets_text:
        # GPG_SIGNING_PW sets the C client's KEY: without GnuPG it is the Rijndael passphrase
        secrets_text["rijndael"] = secrets_text.pop("gpg-signing-pw")
        secret_lines["rijndael"] = secret_lines["gpg-signing-pw"]
        plan.warnings.append(
            f"{where}: GPG_SIGNING_PW without USE_GPG is the Rijndael key, as the C client uses it"
        )
    if fields.get("nat_random_port") and not (fields.get("nat_access") or fields.get("nat_local")):
        del fields["nat_random_port"]
        plan.warnings.append(
            f"{where}: NAT_RAND_PORT without NAT_ACCESS (the C client takes -N on its command "
            "line) is dropped: set nat_access and nat_random_port later"
        )
    if not use_hmac:
        fields["hmac_type"] = "none"
    elif "hmac_type" not in fields:
        fields["hmac_type"] = "sha256"
    if "rijndael" in secrets_text and not secrets_text["rijndael"][1]:
        fields["key_format"] = "passphrase"
    if "allow_ip" not in fields:
        plan.warnings.append(f'{where}: sets no ALLOW_IP; using "source"')
    if "access" not in fields and "server_command" not in fields:
        plan.warnings.append(f"{where}: sets no ACCESS; using tcp/22")
    try:
        profile = Profile.from_table(name, fields)
    except FieldError as exc:
        var = _VAR_OF.get(exc.field, "")
        if var in values:
            return refuse(f"{var}: {exc.message}", values[var][1])
        return refuse(f"{exc.field}: {exc.message}")
    for slot, (value, is_b64) in secrets_text.items():
        try:
            plan.keys[slot] = _stored(slot, value, is_b64, profile)
        except (UsageError, ValueError) as exc:
            return refuse(f"{_LABEL[slot]}: {exc}", secret_lines.get(slot))
    if {"rijndael", "hmac"} <= plan.keys.keys() and plan.keys["rijndael"] == plan.keys["hmac"]:
        return refuse(
            "the Rijndael key and the HMAC key are the same (the C client refuses that too)"
        )
    for slot in profile.key_slots():
        if slot not in plan.keys and slot != "gpg-signing-pw":
            plan.warnings.append(f"{where}: holds no {_LABEL[slot]}; add it later")
    plan.profile = profile
    return plan


def _stored(slot: str, value: str, is_b64: bool, profile: Profile) -> str:
    """The keyring form of an rc key value (validated by building the key)."""
    import base64  # noqa: PLC0415

    if slot == "gpg-signing-pw":
        return base64.b64decode(value).decode("utf-8") if is_b64 else value
    if is_b64:
        if slot == "rijndael":
            return encode_stored(RijndaelKey.from_base64(value, profile.encryption_mode).secret)
        from fwknop_core import HmacKey  # noqa: PLC0415

        return encode_stored(
            HmacKey.from_base64(value, profile.hmac_type or HmacType.SHA256).secret
        )
    raw = value.encode("utf-8")
    if slot == "rijndael":
        RijndaelKey(raw, profile.encryption_mode)
    else:
        from fwknop_core import HmacKey  # noqa: PLC0415

        HmacKey.from_passphrase(raw, profile.hmac_type or HmacType.SHA256)
    return encode_stored(raw)


# -- export ----------------------------------------------------------------------


def _line(var: str, value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in " \t;#"):
        raise UsageError(
            f"{var} value cannot be written to an rc file (it ends at a space, ';' or '#')"
        )
    return f"{var:<{COLUMN}}{text}"


_RC_SAFE = re.compile(r"[!-~]+")


def _key_lines(var: str, secret: bytes, as_text: bool) -> str:
    if as_text:
        try:
            text = secret.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if _RC_SAFE.fullmatch(text) and not set(text) & set(";#"):
            return _line(var, text)
    return _line(f"{var}_BASE64", encode_stored(secret))


def check_exportable(profile: Profile) -> None:
    """``ValueError`` if the C client could not knock with ``profile`` at all."""
    if profile.uses_x25519:
        raise ValueError(
            f"profile {profile.name!r} uses x25519, fwknop-tui's own mode: the C client "
            "cannot send it, so there is no rc stanza for it"
        )


def export_stanza(profile: Profile, keys: ProfileKeys) -> tuple[str, list[str]]:
    """An rc stanza for ``profile`` with its keys inline, and what it could not carry."""
    check_exportable(profile)
    lost: list[str] = []
    out = [f"[{profile.name}]"]
    if profile.description:
        out.insert(0, f"# {profile.description}")
    out.append(_line("SPA_SERVER", profile.host))
    if profile.random_port:
        out.append(_line("RAND_PORT", "Y"))
    out.append(_line("SPA_SERVER_PORT", profile.port))
    out.append(_line("SPA_SERVER_PROTO", profile.transport.value))
    if profile.source_port:
        out.append(_line("SPA_SOURCE_PORT", profile.source_port))
    if profile.address_family == "ipv4":
        out.append(_line("SERVER_RESOLVE_IPV4", "Y"))
    elif profile.address_family == "ipv6":
        lost.append("address_family = ipv6 (the C client has no IPv6-only switch)")
    if profile.server_type != "fwknopd":
        lost.append(f"server_type = {profile.server_type} (the C client knows only fwknopd)")
    if profile.server_command:
        lost.append("server_command (the rc file has no variable for -C)")
    out.append(_line("ACCESS", ",".join(profile.access)))
    if profile.allow_ip == "ask":
        lost.append('allow_ip = "ask" (give -a, -s or -R to the C client)')
    elif ":" in profile.allow_ip:
        lost.append(f"allow_ip = {profile.allow_ip} (the C client takes only an IPv4 allow IP)")
    else:
        out.append(_line("ALLOW_IP", profile.allow_ip))
    if profile.resolve_url != DEFAULT_RESOLVE_URL:
        out.append(_line("RESOLVE_URL", profile.resolve_url))
    if profile.client_timeout:
        out.append(_line("FW_TIMEOUT", profile.client_timeout))
    if profile.username:
        out.append(_line("SPOOF_USER", profile.username))
    if profile.time_offset:
        out.append(_line("TIME_OFFSET", format_time_offset(profile.time_offset).lstrip("+")))
    if profile.nat_access and ":" in profile.nat_host:
        lost.append(f"nat_access = {profile.nat_access} (the C client takes no IPv6 NAT host)")
    elif profile.nat_access:
        out.append(_line("NAT_ACCESS", profile.nat_access.replace(":", ",")))
    if profile.nat_local:
        out.append(_line("NAT_LOCAL", "Y"))
    if profile.nat_port:
        out.append(_line("NAT_PORT", profile.nat_port))
    if profile.nat_random_port:
        out.append(_line("NAT_RAND_PORT", "Y"))
    out.append(_line("DIGEST_TYPE", profile.digest_type.label))
    if profile.uses_gpg:
        out.append(_line("USE_GPG", "Y"))
        out.append(_line("GPG_RECIPIENT", profile.gpg_recipient))
        if profile.gpg_signer:
            out.append(_line("GPG_SIGNER", profile.gpg_signer))
            if keys.gpg_signing_pw:
                import base64  # noqa: PLC0415

                out.append(
                    _line(
                        "GPG_SIGNING_PW_BASE64",
                        base64.b64encode(keys.gpg_signing_pw.encode()).decode(),
                    )
                )
            else:
                out.append(_line("GPG_NO_SIGNING_PW", "Y"))
        if profile.gpg_home:
            out.append(_line("GPG_HOMEDIR", profile.gpg_home))
        if profile.gpg_exe != "gpg":
            out.append(_line("GPG_EXE", profile.gpg_exe))
    else:
        out.append(_line("ENCRYPTION_MODE", profile.encryption_mode.label))
        if keys.rijndael is not None:
            out.append(_key_lines("KEY", keys.rijndael.secret, profile.key_format == "passphrase"))
    if profile.hmac_type is not None:
        out.append(_line("USE_HMAC", "Y"))
        out.append(_line("HMAC_DIGEST_TYPE", profile.hmac_type.fwknop_name))
        if keys.hmac is not None:
            out.append(_key_lines("HMAC_KEY", keys.hmac.secret, profile.key_format == "passphrase"))
    if profile.user_agent != DEFAULT_USER_AGENT:
        out.append(_line("HTTP_USER_AGENT", profile.user_agent))
    if profile.spoof_source:
        out.append(_line("SPOOF_SOURCE_IP", profile.spoof_source))
    if profile.http_proxy:
        lost.append("http_proxy (give -H to the C client)")
    if profile.icmp_type or profile.icmp_code:
        lost.append("icmp_type / icmp_code (give --icmp-type/--icmp-code to the C client)")
    if profile.verify:
        lost.append("verify (the C client does not probe)")
    if profile.keep_open:
        lost.append("keep_open (the C client does not re-knock)")
    return "\n".join(out) + "\n", lost


def merge_rc(existing: str, stanzas: dict[str, str]) -> str:
    """``existing`` rc text with these stanzas replaced in place or appended."""
    lines = existing.splitlines(keepends=True)
    out: list[str] = []
    done: set[str] = set()
    skipping = False
    for line in lines:
        m = _HEADER.match(line)
        if m:
            name = m.group(1).strip()
            skipping = name in stanzas
            if skipping:
                if out and out[-1].strip():
                    out.append("\n")
                out.append(stanzas[name])
                done.add(name)
                continue
        if not skipping:
            out.append(line)
    text = "".join(out)
    for name, stanza in stanzas.items():
        if name not in done:
            if text and not text.endswith("\n"):
                text += "\n"
            if text.strip():
                text += "\n"
            text += stanza
    return text


def client_public_key_line(keys: ProfileKeys) -> str:
    """The access.conf line naming an x25519 client by its public key (nothing secret)."""
    if keys.x25519 is None:
        raise ValueError("no x25519 key")
    return _line("CLIENT_PUBLIC_KEY", keys.x25519.public_key.to_text())


def access_stanza(profile: Profile, keys: ProfileKeys) -> str:
    """The access.conf stanza the server needs for this profile (keys included).

    For an x25519 profile it holds public keys only: the client's, and in a
    comment the server's that the profile expects, so the administrator can
    check that fwknopd.conf's SERVER_PRIVATE_KEY_FILE holds its private half.
    """
    if profile.knocks_sequence:
        return _sequence_stanza(profile, keys)
    out = [f"# fwknop-tui profile {profile.name!r}: add this to the server's access.conf"]
    if profile.uses_x25519:
        out.append("# x25519: public keys only, nothing secret. For the server whose public key is")
        out.append(f"# {profile.server_public_key} (SERVER_PRIVATE_KEY_FILE in fwknopd.conf)")
    out.append(_line("SOURCE", "ANY"))
    if profile.uses_x25519:
        out.append(
            client_public_key_line(keys)
            if keys.x25519 is not None
            else "# CLIENT_PUBLIC_KEY: none yet (generate the profile's key first)"
        )
    elif profile.uses_gpg:
        out.append(_line("GPG_DECRYPT_ID", profile.gpg_recipient))
        out.append("# GPG_DECRYPT_PW            <passphrase of that key>, or:")
        out.append(_line("GPG_ALLOW_NO_PW", "Y"))
        if profile.gpg_signer:
            out.append(_line("GPG_REMOTE_ID", profile.gpg_signer[-8:]))
        else:
            out.append(_line("GPG_REQUIRE_SIG", "N"))
    elif keys.rijndael is not None:
        out.append(_line("KEY_BASE64", keys.rijndael.to_base64()))
        out.append(_line("ENCRYPTION_MODE", profile.encryption_mode.label))
    if keys.hmac is not None and profile.hmac_type is not None:
        out.append(_line("HMAC_KEY_BASE64", keys.hmac.to_base64()))
        out.append(_line("HMAC_DIGEST_TYPE", profile.hmac_type.fwknop_name))
    if profile.server_command:
        out.append(_line("ENABLE_CMD_EXEC", "Y"))
    if profile.client_timeout:
        out.append(_line("MAX_FW_TIMEOUT", max(profile.client_timeout, 300)))
    return "\n".join(out) + "\n"


def _sequence_stanza(profile: Profile, keys: ProfileKeys) -> str:
    """A knock-sequence profile's stanza, in the fwknop 1.x access.conf syntax (``KEY: value;``)."""
    out = [
        f"# fwknop-tui profile {profile.name!r}: a fwknop 1.x knock-sequence stanza",
        "SOURCE: ANY;",
    ]
    if profile.knock_sequence:
        out.append(f"SHARED_SEQUENCE: {', '.join(profile.knock_sequence)};")
    else:
        out.append("ENCRYPT_SEQUENCE;")
        if keys.rijndael is not None:
            out.append(f"KEY: {keys.rijndael.secret.decode('utf-8', 'replace')};")
        if profile.knock_offset != DEFAULT_KNOCK_OFFSET:
            out.append(f"PORT_OFFSET: {profile.knock_offset};")
    out.append(f"OPEN_PORTS: {', '.join(profile.access)};")
    out.append(f"FW_ACCESS_TIMEOUT: {profile.client_timeout or 30};")
    return "\n".join(out) + "\n"
