"""atheris fuzz target: the server's packet pipeline decides anything, and never raises.

    python tests/fuzz/fuzz_server.py [libFuzzer options, e.g. -runs=100000 corpus/]

Every input is one packet for ``Processor.process`` (the flood screen, HTTP
extraction, each stanza's HMAC, decryption, the replay cache, the policy),
from a source the first byte picks, against an access.conf of stanzas of
every kind (ports open and restricted, a required user and source address,
commands with sudo, a command cycle, forced NAT, HMAC and none, GnuPG). The
second byte picks what the rest is:

* ``0``: a raw datagram;
* ``1``: an HTTP request, the rest split into the URL and headers (with an
  ``X-Forwarded-For`` and a User-Agent the fuzzer chooses or a good one);
* ``2``: an SPA message whose fields the fuzzer chooses (user, timestamp,
  version, type, access string, NAT field, server auth, timeout; base64
  encoded or not), with its digest, encrypted and HMAC'd with the keys of a
  stanza, so the fuzzer reaches the policy code behind the HMAC;
* ``3``: a plaintext of the fuzzer's own, digest appended, encrypted and HMAC'd;
* ``4``: a GnuPG-sized packet (its decryption answers with a refusal).

A decision must be a ``Decision``; anything raised is a crash. What a
decision allows is checked too: a grant or a cycle only for ports the
stanza's OPEN_PORTS/RESTRICT_PORTS allow, a sudo command's words after
``--``, a cycle's close due no later than its CMD_CYCLE_TIMER.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from fwknop_server.access import load_access
    from fwknop_server.config import load_server_config
    from fwknop_server.gpgpool import settle
    from fwknop_server.nat import nat_settings
    from fwknop_server.processor import Processor, Settings
    from fwknop_server.replay.sqlite import ReplayCache
    from fwknop_server.vocab import (
        MUTED,
        Accepted,
        Deferred,
        GpgJob,
        GpgOutcome,
        Packet,
        Refused,
        RunCommand,
        RunCycle,
    )

    from fwknop_core import (
        DigestType,
        EncryptionMode,
        EncryptionType,
        HmacKey,
        HmacType,
        InvalidPacket,
        RejectReason,
        RijndaelKey,
        b64s_encode,
    )
    from fwknop_core._primitives import (
        SALTED,
        aes_encrypt,
        derive_key_iv,
        digest_b64,
        pkcs7_pad,
    )

NOW = 1_800_000_000
KEY_A, HMAC_A = RijndaelKey(b"A" * 32), HmacKey(b"a" * 64)
KEY_B = RijndaelKey(b"fuzz-passphrase", EncryptionMode.CTR)
KEY_C, HMAC_C = RijndaelKey(b"C" * 32), HmacKey(b"c" * 64, HmacType.SHA512)
KEY_D, HMAC_D = RijndaelKey(b"D" * 16), HmacKey(b"d" * 32, HmacType.MD5)
OPEN = frozenset({("tcp", 22), ("udp", 53)})
RESTRICT = frozenset({("tcp", 23)})
CYCLE_TIMER = 60
SOURCES = [  # the n-th is taken by the stanza of the n-th KEYS (among others)
    ipaddress.ip_address(a) for a in ("198.18.0.2", "2001:db8::2", "203.0.113.7", "198.18.5.9")
]
_DIR = Path(
    tempfile.mkdtemp(prefix="fuzz-server-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
)
_GPG_HOME = _DIR / "gnupg"
_GPG_HOME.mkdir()
(_DIR / "access.conf").write_text(
    # 1: ports open and restricted, a user and a source address required
    "SOURCE 198.18.0.0/24\n"
    f"KEY_BASE64 {KEY_A.to_base64()}\nHMAC_KEY_BASE64 {HMAC_A.to_base64()}\n"
    "OPEN_PORTS tcp/22, udp/53\nRESTRICT_PORTS tcp/23\nREQUIRE_USERNAME fuzz\n"
    "REQUIRE_SOURCE_ADDRESS Y\nMAX_FW_TIMEOUT 600\n"
    # 2: no HMAC, a passphrase, CTR, commands through sudo
    "SOURCE ANY\nKEY fuzz-passphrase\nENCRYPTION_MODE CTR\nENABLE_CMD_EXEC Y\n"
    "ENABLE_CMD_SUDO_EXEC Y\nCMD_SUDO_EXEC_USER nobody\n"
    # 3: a command cycle, ports restricted
    "SOURCE 198.18.0.0/16, 203.0.113.0/24\n"
    f"KEY_BASE64 {KEY_C.to_base64()}\nHMAC_KEY_BASE64 {HMAC_C.to_base64()}\n"
    "HMAC_DIGEST_TYPE sha512\nRESTRICT_PORTS tcp/23\nOPEN_PORTS tcp/22, udp/53\n"
    f"CMD_CYCLE_OPEN /bin/echo open $IP $PORT $PROTO $TIMEOUT\n"
    f"CMD_CYCLE_CLOSE /bin/echo close $SRC $CLIENT_TIMEOUT\nCMD_CYCLE_TIMER {CYCLE_TIMER}\n"
    # 4: forced NAT, a destination
    "SOURCE ANY\nDESTINATION 198.18.0.0/16\n"
    f"KEY_BASE64 {KEY_D.to_base64()}\nHMAC_KEY_BASE64 {HMAC_D.to_base64()}\n"
    "HMAC_DIGEST_TYPE md5\nFORCE_NAT 192.168.1.9 2222\nFORCE_SNAT 198.18.0.1\n"
    # 5: GnuPG, for GnuPG-sized packets
    f"SOURCE ANY\nGPG_HOME_DIR {_GPG_HOME}\nGPG_ALLOW_NO_PW Y\nGPG_REMOTE_ID 67CD0C2C\n"
)
(_DIR / "fwknopd.conf").write_text(
    "ENABLE_IPT_FORWARDING Y\nENABLE_IPT_LOCAL_NAT Y\nENABLE_IPT_SNAT Y\n"
    "ENABLE_SPA_OVER_HTTP Y\nENABLE_X_FORWARDED_FOR Y\n"
)
CONFIG = load_server_config(_DIR / "fwknopd.conf")
STANZAS = load_access([_DIR / "access.conf"], gpg_home_dir=str(_GPG_HOME), nat_enabled=True)
SETTINGS = [
    Settings(
        max_age=120,
        http=True,
        x_forwarded_for=True,
        destination_rule=True,
        ipv6_grants=ipv6,
        nat=nat_settings(CONFIG),
    )
    for ipv6 in (False, True)
]
KEYS = [(KEY_A, HMAC_A), (KEY_B, None), (KEY_C, HMAC_C), (KEY_D, HMAC_D)]
REPLAY = [ReplayCache(None, max_age=120, now=NOW)]
PROCESSORS = [Processor(STANZAS, s, replay=REPLAY[0]) for s in SETTINGS]
RESET_EVERY = 20000  # inputs between fresh replay caches: memory stays bounded
COUNT = [0]


def _refuse_gpg(job: GpgJob) -> GpgOutcome:
    return InvalidPacket(RejectReason.DECRYPT_FAILED, f"{len(job.data)} bytes")


def _wrap(plain: bytes, key: RijndaelKey, hmac_key: HmacKey | None, salt: bytes) -> bytes:
    aes_key, iv = derive_key_iv(key.kdf_secret, salt)
    body = aes_encrypt(key.mode, aes_key, iv, pkcs7_pad(plain))
    text = b64s_encode(SALTED + salt + body).encode("ascii")
    if hmac_key is not None:
        text += hmac_key.mac(text)
    return text[len(EncryptionType.RIJNDAEL.wire_prefix) :]


def _field(fdp: atheris.FuzzedDataProvider, choices: list[str]) -> bytes:
    """A message field: one of ``choices`` or the fuzzer's own, base64 encoded (mostly)."""
    raw = (
        fdp.PickValueInList(choices).encode()
        if fdp.ConsumeIntInRange(0, 7)
        else fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 60))
    )
    return b64s_encode(raw).encode() if fdp.ConsumeIntInRange(0, 15) else raw


def _message(fdp: atheris.FuzzedDataProvider) -> bytes:
    """The encoded fields of an SPA message, chosen by the fuzzer."""
    mtype = fdp.ConsumeIntInRange(0, 7)
    allow = fdp.PickValueInList(
        ["198.18.0.2", "0.0.0.0", "198.018.0.2", "2001:db8::2", "203.0.113.7", "1.2.3", "::"]
    )
    access = (
        allow + "," + fdp.PickValueInList(
            ["tcp/22", "udp/53", "tcp/23", "tcp/22,udp/53", "icmp/8", "tcp/0", "tcp/65536",
             "tcp/22,tcp/23", "echo hi", "sh -c x", "-u root id", ""]
        )
    )  # fmt: skip
    fields = [
        b"%016d" % fdp.ConsumeIntInRange(0, 10**16 - 1),
        _field(fdp, ["fuzz", "root", "x" * 40]),
        str(
            NOW + fdp.ConsumeIntInRange(-150, 150)
            if fdp.ConsumeIntInRange(0, 7)
            else fdp.ConsumeIntInRange(0, 10**12)
        ).encode(),
        fdp.PickValueInList([b"2.0.2", b"3.0.0", b"2.0.2", b"", b"1"]),
        str(mtype).encode(),
        _field(fdp, [access]),
    ]
    if mtype in (2, 4, 5, 6) or fdp.ConsumeIntInRange(0, 15) == 0:
        fields.append(_field(fdp, ["192.168.1.9,22", "host.invalid,22", "10.0.0.1,0", "x"]))
    if fdp.ConsumeIntInRange(0, 7) == 0:
        fields.append(_field(fdp, ["crypt,pw"]))
    if mtype in (3, 4, 6) or fdp.ConsumeIntInRange(0, 15) == 0:
        fields.append(str(fdp.ConsumeIntInRange(0, 99999)).encode())
    return b":".join(fields)


def _spa(fdp: atheris.FuzzedDataProvider, encoded: bytes, src: int) -> bytes:
    """``encoded`` with its digest, encrypted and HMAC'd with one stanza's keys."""
    digest = fdp.PickValueInList([DigestType.SHA256, DigestType.MD5, DigestType.SHA512])
    plain = encoded + b":" + digest_b64(digest, encoded).encode()
    # mostly the keys of a stanza that takes the packet's source
    key, hmac_key = KEYS[fdp.ConsumeIntInRange(0, 3) if fdp.ConsumeIntInRange(0, 3) == 0 else src]
    return _wrap(plain, key, hmac_key, fdp.ConsumeBytes(8).ljust(8, b"\0"))


def _http(fdp: atheris.FuzzedDataProvider, src: int) -> bytes:
    spa = _spa(fdp, _message(fdp), src) if fdp.ConsumeBool() else fdp.ConsumeBytes(400)
    url = spa.replace(b"+", b"-").replace(b"/", b"_") if fdp.ConsumeBool() else spa
    agent = b"Fwknop/2.6.10" if fdp.ConsumeBool() else fdp.ConsumeBytes(20)
    xff = fdp.PickValueInList(
        [b"198.18.0.9", b"999.1.1.1", b"198.017.0.2", b"0.0.0.0", b"::1", b"1.2.3.4, 5.6.7.8"]
    ) if fdp.ConsumeBool() else fdp.ConsumeBytes(30)  # fmt: skip
    headers = [b"Host: fuzz", b"User-Agent: " + agent, b"X-Forwarded-For: " + xff]
    if fdp.ConsumeBool():
        headers.append(fdp.ConsumeBytes(40))
    return b"GET /" + url + b" HTTP/1.1\r\n" + b"\r\n".join(headers) + b"\r\n\r\n"


def _payload(kind: int, rest: bytes, src: int) -> bytes:
    if kind == 0:
        return rest
    fdp = atheris.FuzzedDataProvider(rest)
    if kind == 1:
        return _http(fdp, src)
    if kind == 2:
        return _spa(fdp, _message(fdp), src)
    if kind == 3:
        return _spa(fdp, fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 260)), src)
    if kind == 4:
        body = base64.b64encode(fdp.ConsumeBytes(fdp.ConsumeIntInRange(300, 900)))
        return body.rstrip(b"=")[2:]  # the hQ prefix is dropped on the wire
    return fdp.ConsumeBytes(len(rest))


def _check(decision: object, packet: Packet) -> None:
    """What a decision allows must be what its stanza allows."""
    if isinstance(decision, Accepted):
        stanza = STANZAS[decision.grant.stanza - 1]
        ports = set(decision.grant.ports)
        if stanza.open_ports is not None and not ports <= stanza.open_ports:
            raise AssertionError(f"granted {ports} outside OPEN_PORTS")
        if stanza.restrict_ports and ports & stanza.restrict_ports:
            raise AssertionError(f"granted {ports} in RESTRICT_PORTS")
        if stanza.require_source_address and decision.grant.source != ipaddress.ip_address(
            decision.opened.message.allow_address
        ):
            raise AssertionError("granted a source other than the required allow IP")
    elif isinstance(decision, RunCycle):
        if decision.close_after > CYCLE_TIMER:
            raise AssertionError(f"a cycle closes after {decision.close_after} s")
        # "/bin/echo open $IP $PORT $PROTO $TIMEOUT": the first port requested
        port, proto = decision.open_text.split()[3:5]
        if (proto, port) not in {("6", "22"), ("17", "53")}:
            raise AssertionError(f"a cycle for {proto}/{port}: {decision.open_text!r}")
    elif isinstance(decision, RunCommand):
        if decision.argv[:1] == ("/usr/bin/sudo",) and "--" not in decision.argv:
            raise AssertionError(f"sudo argv without --: {decision.argv}")
    elif decision is not MUTED and not isinstance(decision, Refused):
        raise AssertionError(f"not a decision: {decision!r}")


def test_one_input(data: bytes) -> None:
    """Decide one packet; only a decision may come out, and only an allowed one."""
    if len(data) < 2:
        return
    COUNT[0] += 1
    if COUNT[0] % RESET_EVERY == 0:
        REPLAY[0].close()
        REPLAY[0] = ReplayCache(None, max_age=120, now=NOW)
        for processor in PROCESSORS:
            processor.replay = REPLAY[0]
    src = SOURCES[data[0] % len(SOURCES)]
    dst = ipaddress.ip_address("198.18.0.1") if data[0] & 4 else None
    packet = Packet(
        _payload(data[1] % 5, data[2:], data[0] % len(SOURCES)), src, dst, 17, 40000, 62201
    )
    processor = PROCESSORS[(data[0] >> 3) & 1]
    decision = settle(processor.process(packet, NOW), _refuse_gpg)
    if isinstance(decision, Deferred):
        raise AssertionError("a settled decision is still deferred")
    _check(decision, packet)


def main() -> None:
    """libFuzzer entry point."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
