"""The real fwknopd 2.6.10 accepts packets built by fwknop_core, shown by its firewall rules.

One real fwknopd per HMAC type runs in a namespace with a stanza for every
cipher mode and key kind (passphrase or base64 keys, each stanza its own
keys); our core builds one packet per message type for every stanza, each
asking for its own port, and sends them from a client namespace. The proof
is the rule fwknopd puts in iptables for that port (or, for a command
message, the file the command creates), not its log.

fwknopd handles one packet at a time, running several iptables processes
for each, and its capture drops packets that arrive while a backlog waits:
the packets are fed to it as fast as it takes them (``RealFwknopd.feed``),
the wait lasts as long as it keeps taking them, and the packets (built
before it starts) may be minutes old by then.
"""

from __future__ import annotations

import re
import secrets
import string
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from fwknop_core import (
    DigestType,
    EncryptionMode,
    HmacKey,
    HmacType,
    MessageType,
    RijndaelKey,
    SpaMessage,
    UsageError,
    build_packet,
)
from tests.helpers.cfwknopd import RealFwknopd
from tests.helpers.netns import CLIENT_IP, SERVER_IP, net_pair, wait_for

pytestmark = [pytest.mark.interop, pytest.mark.netns, pytest.mark.slow]

HMACS: list[HmacType | None] = [None, *HmacType]
MODES = [
    EncryptionMode.CBC,
    EncryptionMode.ECB,
    EncryptionMode.CFB,
    EncryptionMode.OFB,
    EncryptionMode.CTR,
    EncryptionMode.LEGACY,
]
KINDS = ["passphrase", "base64"]
TYPES = list(MessageType)
NAT_HOST = "198.18.0.50"
CLIENT_TIMEOUT = 900  # distinguishable from FW_ACCESS_TIMEOUT below
FW_ACCESS_TIMEOUT = 600


def _combos() -> list[tuple[HmacType | None, EncryptionMode, str]]:
    # the C client refuses legacy mode with an HMAC key, and so does our builder
    return [
        (h, m, k)
        for h in HMACS
        for m in MODES
        for k in KINDS
        if not (m is EncryptionMode.LEGACY and h is not None)
    ]


COMBOS = _combos()


def _port(combo: tuple[HmacType | None, EncryptionMode, str], mtype: MessageType) -> int:
    return 20000 + COMBOS.index(combo) * 10 + int(mtype)


@dataclass
class Stanza:
    key: RijndaelKey
    hmac: HmacKey | None
    text: str


def _stanza(hmac_type: HmacType | None, mode: EncryptionMode, kind: str, cmd_dir: Path) -> Stanza:
    alphabet = string.ascii_letters + string.digits
    if kind == "passphrase":
        phrase = "".join(
            secrets.choice(alphabet) for _ in range(12 if mode is EncryptionMode.LEGACY else 24)
        )
        key = RijndaelKey.from_passphrase(phrase, mode)
        lines = [f"KEY                 {phrase}"]
    else:
        key = RijndaelKey(
            secrets.token_bytes(32 if mode is not EncryptionMode.LEGACY else 16), mode
        )
        lines = [f"KEY_BASE64          {key.to_base64()}"]
    hkey = None
    if hmac_type is not None:
        if kind == "passphrase":
            hphrase = "".join(secrets.choice(alphabet) for _ in range(40))
            hkey = HmacKey.from_passphrase(hphrase, hmac_type)
            lines.append(f"HMAC_KEY            {hphrase}")
        else:
            hkey = HmacKey(secrets.token_bytes(hmac_type.default_key_length), hmac_type)
            lines.append(f"HMAC_KEY_BASE64     {hkey.to_base64()}")
        lines.append(f"HMAC_DIGEST_TYPE    {hmac_type.fwknop_name}")
    lines += [
        f"ENCRYPTION_MODE     {mode.label}",
        "ENABLE_CMD_EXEC     Y",
        f"FW_ACCESS_TIMEOUT   {FW_ACCESS_TIMEOUT}",
        "MAX_FW_TIMEOUT      1000",
    ]
    return Stanza(key, hkey, "SOURCE              ANY\n" + "\n".join(lines) + "\n\n")


def _message(
    combo: tuple[HmacType | None, EncryptionMode, str], mtype: MessageType, cmd_dir: Path
) -> SpaMessage:
    port = _port(combo, mtype)
    common = {"username": "root"}
    if mtype is MessageType.COMMAND:
        return SpaMessage.command_request(CLIENT_IP, f"/usr/bin/touch {cmd_dir}/c{port}", **common)
    nat = None
    if mtype.has_nat:
        nat = f"{SERVER_IP if mtype.is_local_nat else NAT_HOST},{port - 10000}"
    return SpaMessage.access_request(
        CLIENT_IP,
        f"tcp/{port}",
        nat=nat,
        local_nat=mtype.is_local_nat,
        client_timeout=CLIENT_TIMEOUT if mtype.has_timeout else 0,
        **common,
    )


def _build(msg: SpaMessage, st: Stanza, digest: DigestType) -> str:
    """Build with ``digest``, or with MD5 when that would not fit a Rijndael packet.

    With a SHA-512-sized HMAC, a NAT message and a 86-character digest the
    packet passes 399 characters, which fwknopd would take for GnuPG; our
    builder refuses it, so such a combination falls back to a short digest.
    """
    try:
        return build_packet(msg, st.key, hmac_key=st.hmac, digest_type=digest)
    except UsageError as exc:
        assert "at most 399" in str(exc)
        return build_packet(msg, st.key, hmac_key=st.hmac, digest_type=DigestType.MD5)


def _evidence(
    combo: tuple[HmacType | None, EncryptionMode, str],
    mtype: MessageType,
    rules: list[str],
    cmd_dir: Path,
) -> str | None:
    """The expiry epoch of the rule granted for this packet ('cmd' for a command), or None."""
    port = _port(combo, mtype)
    if mtype is MessageType.COMMAND:
        return "cmd" if (cmd_dir / f"c{port}").exists() else None
    if mtype.has_nat:
        target = f"{SERVER_IP if mtype.is_local_nat else NAT_HOST}:{port - 10000}"
        pattern = (
            rf"^-A FWKNOP_PREROUTING -s {CLIENT_IP}/32 -p tcp -m tcp --dport {port} "
            rf"-m comment --comment _exp_(\d+) -j DNAT --to-destination {target}$"
        )
    else:
        pattern = (
            rf"^-A FWKNOP_INPUT -s {CLIENT_IP}/32 -p tcp -m tcp --dport {port} "
            rf"-m comment --comment _exp_(\d+) -j ACCEPT$"
        )
    for rule in rules:
        if m := re.match(pattern, rule):
            return m.group(1)
    return None


@dataclass
class Outcome:
    rules: list[str]
    sent_at: float
    collected_at: float
    cmd_dir: Path
    log: str


@cache
def run_against_fwknopd(hmac_type: HmacType | None) -> Outcome:
    """Start one real fwknopd, knock it with every packet of this HMAC type, collect evidence."""
    combos = [c for c in COMBOS if c[0] is hmac_type]
    work = Path(tempfile.mkdtemp(prefix="fwknopd-interop-"))
    cmd_dir = work / "commands"
    cmd_dir.mkdir()
    stanzas = {c: _stanza(*c, cmd_dir) for c in combos}
    digests = list(DigestType)
    packets = []
    for i, combo in enumerate(combos):
        st = stanzas[combo]
        for mtype in TYPES:
            msg = _message(combo, mtype, cmd_dir)
            packets.append(_build(msg, st, digests[(i + int(mtype)) % len(digests)]))
    with net_pair("fi") as pair:
        conf_extra = (
            "ENABLE_IPT_FORWARDING       Y;\nENABLE_IPT_LOCAL_NAT        Y;\n"
            "MAX_SPA_PACKET_AGE          3600;\n"  # built before the start, handled in turn
        )
        server = RealFwknopd(
            pair.server,
            work / "srv",
            interface=pair.server_if,
            access_conf="".join(s.text for s in stanzas.values()),
            conf_extra=conf_extra,
        ).start()
        sent_at = time.time()
        server.feed(pair, packets)
        expected = [(c, t) for c in combos for t in TYPES]

        def done() -> bool:
            if server.packets_seen() < len(packets):
                return False
            rules = server.iptables_rules()
            return all(_evidence(c, t, rules, cmd_dir) for c, t in expected)

        wait_for(done, timeout=60, interval=0.5, progress=server.packets_seen)
        collected_at = time.time()
        rules = server.iptables_rules()
        log = server.log()
        server.stop()
    return Outcome(rules, sent_at, collected_at, cmd_dir, log)


def _param_id(combo: tuple[HmacType | None, EncryptionMode, str], mtype: MessageType) -> str:
    h, m, k = combo
    return f"{h.fwknop_name if h else 'nohmac'}-{m.label}-{k}-{mtype.name.lower()}"


PARAMS = [
    pytest.param(
        combo,
        mtype,
        id=_param_id(combo, mtype),
        marks=pytest.mark.xdist_group(f"fwknopd-{combo[0].name if combo[0] else 'none'}"),
    )
    for combo in COMBOS
    for mtype in TYPES
]


@pytest.mark.usefixtures("real_fwknop", "namespaces")
@pytest.mark.parametrize(("combo", "mtype"), PARAMS)
def test_real_fwknopd_grants_access_for_our_packet(
    combo: tuple[HmacType | None, EncryptionMode, str], mtype: MessageType
) -> None:
    outcome = run_against_fwknopd(combo[0])
    found = _evidence(combo, mtype, outcome.rules, outcome.cmd_dir)
    port = str(_port(combo, mtype))
    about = "\n".join(line for line in outcome.log.splitlines() if port in line)
    assert found, (
        f"no grant for port {port}; fwknopd took "
        f"{outcome.log.count('(stanza #1) SPA Packet from IP')} packets; its lines about it:\n"
        f"{about}\nits log tail:\n{outcome.log[-3000:]}"
    )
    if mtype is not MessageType.COMMAND:
        # granted (at whole seconds) between the send and the collection of the rules
        expected = CLIENT_TIMEOUT if mtype.has_timeout else FW_ACCESS_TIMEOUT
        expires = int(found)
        assert outcome.sent_at + expected - 1 <= expires <= outcome.collected_at + expected + 1, (
            expires - outcome.sent_at,
            outcome.collected_at - outcome.sent_at,
        )
