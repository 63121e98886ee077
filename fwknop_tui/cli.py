"""The ``fwknop`` command: argparse, one ``_add_<cmd>`` and one ``_cmd_<cmd>`` per command.

Data goes to stdout, diagnostics to stderr; ``main`` returns an ``ExitCode``
(documented in the README: scripts may rely on it). Every failure a user can
meet is one line on stderr and its own exit code.

Speed: ``fwknop send PROFILE`` is the hot path. This module imports only
argparse and the headless wallet/send modules; tomlkit (writes), keyring
(only when the remembered Secret Service fast path does not apply), qrcode,
urllib (``-R``) and GnuPG load only on the paths that need them, and Textual
never does.

Keys never come from argv: the options that name a key name a place
(``--key-file``, ``--key-command``, ``--keys-stdin``, ``--keys-fd``,
``--keys-from``), never a value.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from fwknop_core import HmacType, UsageError, generate_keys

from . import __version__
from .errors import ClientError, ClientUsageError, ExitCode, VerifyTimeoutError
from .wallet.profiles import Profile
from .wallet.secrets import SLOT_PREFIX, SLOTS, SecretStore
from .wallet.validate import FieldError
from .wallet.wallet import Wallet

if TYPE_CHECKING:
    from .send import VerifyResult
    from .wallet.keys import KeyOverrides

__all__ = ["main", "main_tui"]

SHARE_WARNING = (
    "fwknop: this QR code holds the profile's keys: anyone who sees it can knock as you\n"
)
PUBLIC_SHARE_NOTE = (
    "fwknop: this QR code holds only the profile's x25519 public key (the server's "
    "CLIENT_PUBLIC_KEY line): sharing it is harmless\n"
)


class _Ctx:
    """What every handler gets: the wallet, and the streams."""

    def __init__(self, secrets: SecretStore | None, *, quiet: bool = False) -> None:
        self.wallet = Wallet(secrets=secrets)
        self.out = sys.stdout
        self.err = sys.stderr
        self.inp = sys.stdin
        self.quiet = quiet

    def say(self, text: str) -> None:
        self.err.write(f"fwknop: {text}\n")

    @property
    def interactive(self) -> bool:
        """Whether a person is there to answer a question (stdin is a terminal)."""
        try:
            return self.inp.isatty()
        except (AttributeError, ValueError):
            return False

    def ask(self, question: str) -> str | None:
        """Ask on stderr, read one line from the terminal; None when nobody can answer."""
        if not self.interactive:
            return None
        self.err.write(f"fwknop: {question} ")
        self.err.flush()
        line = self.inp.readline()
        if not line:
            return None
        return line.strip()


class _ArgumentError(Exception):
    """A command line argparse refused (raised instead of argparse's own exit)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, asking the terminal's width itself.

    argparse builds a formatter for every option it adds (to check its
    metavar), and the stock one imports shutil (and with it bz2, lzma and
    fnmatch) to learn the width: a cost on every run, help or not.
    """

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(1).columns
        except (ValueError, OSError):
            width = 80
        super().__init__(prog, width=max(width, 40) - 2)


class _Parser(argparse.ArgumentParser):
    """argparse that lets ``main`` report a bad command line (also as JSON with --json)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing and exiting."""
        raise _ArgumentError(self, message)


def _json() -> Any:
    import json  # noqa: PLC0415 - only --json pays for it

    return json


# -- parsing helpers ---------------------------------------------------------------


def _hmac_type(text: str) -> HmacType:
    try:
        return HmacType.from_name(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _setter(field: str, value: Any = None) -> Callable[[str], tuple[str, Any]]:
    def convert(text: str) -> tuple[str, Any]:
        return field, text if value is None else value

    return convert


class _FieldAction(argparse.Action):
    """Collect ``(field, raw value)`` pairs into ``args.changes`` in command-line order."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        self.field: str = kwargs.pop("field")
        self.const_value: Any = kwargs.pop("value", None)
        self.transform: Callable[[str], Any] | None = kwargs.pop("transform", None)
        if self.const_value is not None:
            kwargs["nargs"] = 0
        super().__init__(option_strings, "changes", **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        changes = list(getattr(namespace, "changes", None) or [])
        value = self.const_value if self.const_value is not None else values
        if self.transform is not None:
            value = self.transform(value)
        changes.append((self.field, value))
        namespace.changes = changes


class _SetAction(argparse.Action):
    """``--set FIELD=VALUE`` for any profile field (the value is read as TOML when it can be)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        name, sep, raw = str(values).partition("=")
        if not sep:
            parser.error(f"{option_string} takes FIELD=VALUE, not {values!r}")
        import tomllib  # noqa: PLC0415

        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except (tomllib.TOMLDecodeError, RecursionError):
            value = raw
        changes = list(getattr(namespace, "changes", None) or [])
        changes.append((name.strip(), value))
        namespace.changes = changes


# (flags, profile field, extra add_argument keywords); "value" makes a flag that sets a constant
_FIELD_OPTIONS: tuple[tuple[tuple[str, ...], str, dict[str, Any]], ...] = (
    (("-D", "--destination"), "host", {"metavar": "HOST", "help": "the fwknopd host"}),
    (("-p", "--server-port"), "port", {"metavar": "PORT", "help": "destination port (62201)"}),
    (
        ("-P", "--server-proto"),
        "transport",
        {"metavar": "PROTO", "help": "udp, tcp, http, icmp or udpraw"},
    ),
    (("-r", "--rand-port"), "random_port", {"value": True, "help": "random destination port"}),
    (
        ("-S", "--source-port"),
        "source_port",
        {"metavar": "PORT", "help": "source port of the packet (0: any)"},
    ),
    (
        ("-4", "--ipv4", "--server-resolve-ipv4"),
        "address_family",
        {"value": "ipv4", "help": "reach the server over IPv4 only"},
    ),
    (("-6", "--ipv6"), "address_family", {"value": "ipv6", "help": "reach it over IPv6 only"}),
    (("-A", "--access"), "access", {"metavar": "LIST", "help": "tcp/22[,udp/53...]"}),
    (
        ("-a", "--allow-ip"),
        "allow_ip",
        {"metavar": "IP", "help": "address to allow (IPv4; IPv6 needs --server-type fwknop-tui)"},
    ),
    (
        ("--server-type",),
        "server_type",
        {"metavar": "T", "help": "fwknopd (the C 2.6 one, default) or fwknop-tui (ours)"},
    ),
    (("-s", "--source-ip"), "allow_ip", {"value": "source", "help": "allow the packet source"}),
    (
        ("-R", "--resolve-ip-https", "--resolve-ip-http"),
        "allow_ip",
        {"value": "resolve", "help": "learn the external address over HTTPS"},
    ),
    (("--ask-ip",), "allow_ip", {"value": "ask", "help": "prompt for the allow IP"}),
    (("--resolve-url",), "resolve_url", {"metavar": "URL", "help": "https:// URL for -R"}),
    (
        ("-f", "--fw-timeout"),
        "client_timeout",
        {"metavar": "SECONDS", "help": "ask the server to keep the port open this long"},
    ),
    (
        ("-U", "--spoof-user"),
        "username",
        {"metavar": "NAME", "help": "user name in the packet (default: your login)"},
    ),
    (
        ("--time-offset-plus",),
        "time_offset",
        {
            "metavar": "T",
            "transform": lambda t: f"+{t}",
            "help": "move the packet's time forward (30s, 5m, 2h, 1d)",
        },
    ),
    (
        ("--time-offset-minus",),
        "time_offset",
        {"metavar": "T", "transform": lambda t: f"-{t}", "help": "move it back"},
    ),
    (
        ("-C", "--server-cmd"),
        "server_command",
        {"metavar": "CMD", "help": "ask the server to run CMD instead of opening a port"},
    ),
    (
        ("-N", "--nat-access"),
        "nat_access",
        {"metavar": "HOST[:PORT]", "help": "forward to this internal host (NAT)"},
    ),
    (("--nat-local",), "nat_local", {"value": True, "help": "forward to the server itself"}),
    (("--nat-port",), "nat_port", {"metavar": "PORT", "help": "external port to ask for"}),
    (
        ("--nat-rand-port",),
        "nat_random_port",
        {"value": True, "help": "a random external port"},
    ),
    (
        ("-m", "--digest-type"),
        "digest_type",
        {"metavar": "T", "help": "message digest: md5, sha1, sha256 (default), ..."},
    ),
    (
        ("-M", "--encryption-mode"),
        "encryption_mode",
        {"metavar": "M", "help": "cbc (default), ctr, cfb, ofb, ecb or legacy"},
    ),
    (("--hmac-digest-type",), "hmac_type", {"metavar": "T", "help": "HMAC type, or none"}),
    (("--gpg-encryption",), "encryption", {"value": "gpg", "help": "GnuPG instead of AES"}),
    (
        ("--gpg-recipient-key",),
        "gpg_recipient",
        {"metavar": "ID", "help": "the server's GnuPG key"},
    ),
    (("--gpg-signer-key",), "gpg_signer", {"metavar": "ID", "help": "your key, to sign"}),
    (("--gpg-home-dir",), "gpg_home", {"metavar": "DIR", "help": "GnuPG home directory"}),
    (("--gpg-exe",), "gpg_exe", {"metavar": "PATH", "help": "the gpg program"}),
    (
        ("-H", "--http-proxy"),
        "http_proxy",
        {"metavar": "HOST[:PORT]", "help": "send -P http through this proxy"},
    ),
    (
        ("-u", "--user-agent"),
        "user_agent",
        {"metavar": "UA", "help": "User-Agent for -P http and -R"},
    ),
    (
        ("-Q", "--spoof-source", "--spoof-src"),
        "spoof_source",
        {"metavar": "IP", "help": "spoofed source (udpraw, icmp; root)"},
    ),
    (("--icmp-type",), "icmp_type", {"metavar": "N", "help": "ICMP type for -P icmp"}),
    (("--icmp-code",), "icmp_code", {"metavar": "N", "help": "ICMP code for -P icmp"}),
    (("--key-format",), "key_format", {"metavar": "F", "help": "base64 or passphrase"}),
    (("--key-command",), "key_command", {"metavar": "CMD", "help": "prints the key(s)"}),
    (
        ("--hmac-key-command",),
        "hmac_key_command",
        {"metavar": "CMD", "help": "prints the HMAC key"},
    ),
    (
        ("-G", "--key-file", "--get-key"),
        "key_file",
        {"metavar": "FILE", "help": "0600 file holding the key(s)"},
    ),
    (
        ("--hmac-key-file", "--get-hmac-key"),
        "hmac_key_file",
        {"metavar": "FILE", "help": "0600 file holding the HMAC key"},
    ),
    (("--probe",), "verify", {"metavar": "HOST:PORT", "help": "where --verify connects"}),
    (
        ("--verify-retries",),
        "verify_retries",
        {"metavar": "N", "help": "verify gives up after N x the interval"},
    ),
    (
        ("--verify-interval",),
        "verify_interval",
        {"metavar": "SECONDS", "help": "longest pause between probes"},
    ),
    (
        ("--keep-open",),
        "keep_open",
        {"metavar": "SECONDS", "help": "re-knock this often while connect/ssh runs"},
    ),
    (("--description",), "description", {"metavar": "TEXT", "help": "a note for you"}),
    (
        ("--server-public-key",),
        "server_public_key",
        {"metavar": "KEY", "help": "the server's x25519-pub:... key (encryption x25519)"},
    ),
    # fwknop 1.x knock sequences (fwknop knock)
    (("--mode",), "mode", {"metavar": "MODE", "help": "spa, or knock (a fwknop 1.x sequence)"}),
    (
        ("--shared-sequence",),
        "knock_sequence",
        {"metavar": "LIST", "help": "tcp/N,udp/N,icmp: a shared 1.x sequence"},
    ),
    (("--offset",), "knock_offset", {"metavar": "N", "help": "knock port offset (61000)"}),
    (("--time-delay",), "knock_delay", {"metavar": "SECONDS", "help": "between knocks (1)"}),
    (("--rotate-proto",), "knock_rotate_proto", {"value": True, "help": "odd knocks as UDP"}),
)


# True while _build_parser builds for a command line whose subcommand has no options at all
# (``fwknop send home``): the 50-odd field options cannot match anything then, and argparse's
# per-option bookkeeping is a measurable part of the cold start, so they are left out
_LEAN = False


def _field_options(parser: argparse.ArgumentParser) -> None:
    """Options that set profile fields, named like the C client's where it has one."""
    parser.set_defaults(changes=[])
    if _LEAN:
        return
    group = parser.add_argument_group("profile fields (override or set)")
    for flags, name, extra in _FIELD_OPTIONS:
        group.add_argument(*flags, action=_FieldAction, field=name, **extra)
    group.add_argument(
        "--set", metavar="FIELD=VALUE", action=_SetAction, dest="changes", help="any profile field"
    )


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in getattr(args, "changes", None) or []:
        out[name] = value
    return out


def _flag_of(field: str) -> str:
    """The option that sets ``field`` (``-p/--server-port``), for messages."""
    for flags, name, extra in _FIELD_OPTIONS:
        if name == field and "value" not in extra:
            return "/".join(flags[:2])
    return f"--set {field}=..."


def _checked(name: str, table: dict[str, Any]) -> Profile:
    """A validated profile, or ``ClientUsageError`` listing every problem (as ``check`` does)."""
    from .wallet.profiles import check_profile  # noqa: PLC0415

    profile, problems = check_profile(name, table)
    if profile is None:
        raise ClientUsageError(
            "\n".join(
                f"{field} ({_flag_of(field)}): {message}"
                if field not in ("name", "host")
                else f"{field}: {message}"
                for field, message in problems
            )
        )
    return profile


def _apply(profile: Profile, changes: dict[str, Any], unset: Sequence[str] = ()) -> Profile:
    """``profile`` with ``unset`` fields back at their defaults and ``changes`` applied."""
    from .wallet.profiles import FIELDS  # noqa: PLC0415

    if not changes and not unset:
        return profile
    table = profile.to_table()
    for name in unset:
        if name not in FIELDS or name == "host":
            raise ClientUsageError(f"--unset {name}: cannot unset {name!r}")
        table.pop(name, None)
    table.update(changes)
    return _checked(profile.name, table)


def _new_profile(name: str, changes: dict[str, Any]) -> Profile:
    if "host" not in changes:
        raise ClientUsageError(
            "a new profile needs the server: -D HOST (the fwknopd host or IP address)"
        )
    return _checked(name, changes)


def _profile_arg(
    parser: argparse.ArgumentParser,
    *,
    nargs: str | None = None,
    text: str = "profile name",
    metavar: str = "PROFILE",
) -> None:
    parser.add_argument("profile", metavar=metavar, nargs=nargs, help=text)


# -- send ------------------------------------------------------------------------------


def _add_send(sub: Any) -> None:
    p = sub.add_parser(
        "send",
        help="knock with a profile (or ad hoc with -D ...)",
        description="Send an SPA packet with a saved profile, overriding any field, or ad hoc.",
    )
    _send_arguments(p)
    p.set_defaults(func=_cmd_send)


def _add_knock(sub: Any) -> None:
    p = sub.add_parser(
        "knock",
        help="send a fwknop 1.x knock sequence (encrypted, or shared with --shared-sequence)",
        description=(
            "Send a fwknop 1.x port-knock sequence with a profile (mode = knock is implied). "
            "Weaker than SPA: the knocks are visible and carry a one-byte checksum; "
            "use it only for servers that cannot do SPA."
        ),
    )
    _send_arguments(p)
    p.set_defaults(func=_cmd_knock)


def _cmd_knock(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    args.changes = [("mode", "knock"), *(getattr(args, "changes", None) or [])]
    return _cmd_send(args, ctx)


def _send_arguments(p: argparse.ArgumentParser) -> None:
    """What ``send`` and ``knock`` both take."""
    _profile_arg(p, nargs="?", text="saved profile (omit for an ad-hoc send with -D ...)")
    p.add_argument("-n", "--named-config", metavar="PROFILE", help="the profile, C-client style")
    p.add_argument(
        "-T",
        "--test",
        "--dry-run",
        dest="dry_run",
        action="store_true",
        help="build the packet and print it; send nothing",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument(
        "--verify",
        dest="verify",
        action="store_true",
        default=None,
        help="after the knock, probe the port until it answers",
    )
    p.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="do not probe, even if the profile says so",
    )
    _key_options(p)
    _field_options(p)


def _key_options(p: argparse.ArgumentParser, *, stdin: bool = True) -> None:
    """Where this run's keys come from (never the command line itself)."""
    k = p.add_argument_group("keys for this run (never on the command line)")
    if stdin:
        k.add_argument(
            "--keys-stdin",
            "--stdin",
            action="store_true",
            help="read the key (or KEY_BASE64:/HMAC_KEY_BASE64: text) from stdin",
        )
    k.add_argument(
        "--keys-fd", "--fd", metavar="N", type=int, help="read it from file descriptor N"
    )
    k.add_argument(
        "--keys-from", metavar="PROFILE", help="use the keyring entries of another profile"
    )


def _key_overrides(args: argparse.Namespace, ctx: _Ctx) -> KeyOverrides:
    """The keys given for this run (stdin, an fd, another profile's entries)."""
    from .wallet.keys import KeyOverrides  # noqa: PLC0415

    text = None
    source = "stdin"
    if getattr(args, "keys_stdin", False):
        text = sys.stdin.read(1 << 16)
    elif args.keys_fd is not None:
        text, source = _read_fd(args.keys_fd), f"fd {args.keys_fd}"
    if args.keys_from:
        ctx.wallet.get(args.keys_from)  # must exist
    return KeyOverrides(text=text, text_source=source, keyring_profile=args.keys_from)


def _send_what(ctx: _Ctx) -> str:
    """What to do when ``fwknop send`` is given nothing to knock with."""
    adhoc = "or knock without a profile: fwknop send -D HOST -A tcp/22 --keys-stdin"
    names = ctx.wallet.names()
    if names:
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        return f"which profile? fwknop send PROFILE (yours: {shown}); {adhoc}"
    return (
        "no profiles yet: create one with fwknop add NAME -D HOST --keygen (or fwknop "
        f"import-rc), then fwknop send NAME; {adhoc}"
    )


def _read_fd(fd: int) -> str:
    try:
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(1 << 16)
    except OSError as exc:
        raise ClientUsageError(f"cannot read file descriptor {fd}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientUsageError(f"file descriptor {fd} did not give UTF-8 text") from None


def _cmd_send(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    from .send import knock  # noqa: PLC0415

    name = args.profile or args.named_config
    if args.profile and args.named_config and args.profile != args.named_config:
        raise ClientUsageError("give the profile once (PROFILE or -n)")
    changes = _changes(args)
    if not name and not changes:
        raise ClientUsageError(_send_what(ctx))
    profile = _apply(ctx.wallet.get(name), changes) if name else _new_profile("adhoc", changes)
    overrides = _key_overrides(args, ctx)
    if (
        not name
        and overrides.text is None
        and not args.keys_from
        and ctx.wallet.keyring_slots(profile)
    ):
        raise ClientUsageError(
            "an ad-hoc send needs keys: --keys-stdin, --keys-fd N, --key-file FILE, "
            "--key-command CMD or --keys-from PROFILE"
        )

    def ask() -> str:
        ctx.err.write(f"fwknop: allow which IPv4 address for {profile.name}? ")
        ctx.err.flush()
        return sys.stdin.readline()

    can_ask = sys.stdin.isatty() and not args.keys_stdin
    result = knock(
        profile,
        lambda p: ctx.wallet.keys(p, overrides),
        dry_run=args.dry_run,
        verify=args.verify,
        ask_allow_ip=ask if can_ask else None,
    )
    failed = None
    if result.verify is not None and not result.verify.ok:
        v = result.verify
        failed = VerifyTimeoutError(
            f"{v.host}:{v.port} did not answer after {v.attempts} attempt(s) in "
            f"{v.seconds:.1f} s (the knock was sent)"
        )
    if args.json:
        data = result.to_dict()
        if not args.dry_run:
            data.pop("packet")
        if failed is not None:
            data["error"] = _error_object(failed)
        ctx.out.write(_json().dumps(data, indent=2) + "\n")
    elif args.dry_run:
        ctx.out.write(result.packet + "\n")
    if not args.json and not args.quiet:
        what = "built (not sent)" if args.dry_run else "sent"
        ctx.say(
            f"{what} {result.message_type} for {result.request} to {result.host} "
            f"({result.address}) {result.transport}/{result.port}, allow {result.allow_ip}"
        )
    if failed is not None:
        ctx.say(str(failed))
        return failed.exit_code
    if result.verify is not None and not args.json and not args.quiet:
        ctx.say(_verified(result.verify))
    return ExitCode.OK


def _verified(v: VerifyResult) -> str:
    """One line saying what the verify proved."""
    if v.open_before:
        return (
            f"{v.host}:{v.port} already answered before the knock, so the verify proves "
            "nothing (another grant, or the port is not behind the firewall)"
        )
    return (
        f"verified: {v.host}:{v.port} answered {v.seconds * 1000:.0f} ms after the knock "
        f"({v.attempts} attempt(s))"
    )


# -- connect / ssh / ssh-config: knock, then ssh ------------------------------------------


def _add_connect(sub: Any) -> None:
    p = sub.add_parser(
        "connect",
        help="knock, then carry stdin/stdout over the TCP connection (an ssh ProxyCommand)",
        description="Knock with PROFILE, wait until HOST:PORT answers, then relay stdin and "
        "stdout over that connection: ssh -o ProxyCommand='fwknop connect PROFILE %%h %%p' HOST",
    )
    _profile_arg(p)
    p.add_argument("host", metavar="HOST", nargs="?", help="connect here (ssh's %%h)")
    p.add_argument("port", metavar="PORT", nargs="?", type=int, help="and this port (%%p)")
    _key_options(p, stdin=False)
    _field_options(p)
    p.set_defaults(func=_cmd_connect)


def _cmd_connect(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    import socket  # noqa: PLC0415

    from .connect import relay  # noqa: PLC0415
    from .send import knock, tcp_target  # noqa: PLC0415

    if (args.host is None) != (args.port is None):
        raise ClientUsageError("give HOST and PORT (ssh passes %h %p), or neither")
    profile = _apply(ctx.wallet.get(args.profile), _changes(args))
    target = (args.host, args.port) if args.host is not None else tcp_target(profile)
    keys = ctx.wallet.keys(profile, _key_overrides(args, ctx))
    got: list[socket.socket] = []
    result = knock(profile, keys, verify_target=target, on_connect=got.append)
    v = result.verify
    if v is None or not got:
        raise VerifyTimeoutError(
            f"knocked with {profile.name!r}, but {target[0]}:{target[1]} did not answer"
            + (f" after {v.attempts} attempt(s) in {v.seconds:.1f} s" if v else "")
        )
    if args.verbose:
        ctx.say(_verified(v))

    def reknock() -> None:
        try:
            knock(profile, keys, verify=False)
        except ClientError as exc:  # the session goes on; the next re-knock may work
            ctx.say(f"keep-open: knock failed: {exc}")
        else:
            if args.verbose:
                ctx.say(f"keep-open: knocked {profile.name!r} again")

    with got[0] as conn:
        try:
            relay(
                conn,
                ctx.inp.fileno(),
                ctx.out.fileno(),
                every=profile.keep_open or None,
                reknock=reknock,
            )
        except ConnectionError as exc:
            ctx.say(f"{target[0]}:{target[1]}: {exc.strerror or type(exc).__name__}")
            return ExitCode.FAILURE
    return ExitCode.OK


def _ssh_options() -> tuple[str, str]:
    """ssh's option letters: those that stand alone, those that take a value."""
    return "46AaCfGgKkMNnqsTtVvXxYy", "BbcDEeFIiJLlmOoPpQRSWw"


def _split_ssh_args(words: Sequence[str]) -> tuple[list[str], list[str]]:
    """ssh options, and the remote command (everything from the first non-option, or after --)."""
    flags, valued = _ssh_options()
    options: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            return options, list(words[i + 1 :])
        if not word.startswith("-") or word == "-":
            break
        options.append(word)
        letters = word[1:]
        for j, letter in enumerate(letters):
            if letter in valued:
                if j == len(letters) - 1:  # the value is the next word
                    if i + 1 >= len(words):
                        raise ClientUsageError(f"ssh option -{letter} needs a value")
                    options.append(words[i + 1])
                    i += 1
                break
            if letter not in flags:
                raise ClientUsageError(f"ssh has no option -{letter} (in {word!r})")
        i += 1
    return options, list(words[i:])


def _proxy_command(profile: str) -> str:
    """The ProxyCommand that runs this very fwknop (``%`` escaped for ssh)."""
    import shlex  # noqa: PLC0415

    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "fwknop" and os.access(script, os.X_OK):
        argv = [str(script.resolve())]
    else:
        argv = [sys.executable, "-m", "fwknop_tui"]
    return shlex.join([*argv, "connect", profile]).replace("%", "%%") + " %h %p"


def _add_ssh(sub: Any) -> None:
    p = sub.add_parser(
        "ssh",
        help="knock, then ssh to the profile's host in one step",
        description="Run ssh to PROFILE's host with fwknop connect as its ProxyCommand. "
        "SSH_ARGS are ssh options, then the remote command, e.g. "
        "fwknop ssh home -l admin -- uptime",
    )
    _profile_arg(p)
    p.add_argument(
        "ssh_args",
        metavar="SSH_ARGS",
        nargs=argparse.REMAINDER,
        help="ssh options, then an optional command",
    )
    p.set_defaults(func=_cmd_ssh)


def _ssh_argv(profile: Profile, ssh_args: Sequence[str]) -> list[str]:
    """The ssh command line for ``fwknop ssh``."""
    from .send import tcp_target  # noqa: PLC0415

    options, command = _split_ssh_args(ssh_args)
    host, port = tcp_target(profile)
    argv = ["ssh", "-o", f"ProxyCommand={_proxy_command(profile.name)}"]
    given = {o[:2] for o in options if o.startswith("-")}
    if "-p" not in given and port != 22:
        argv += ["-p", str(port)]
    return [*argv, *options, "--", host, *command]


def _cmd_ssh(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    import shutil  # noqa: PLC0415

    profile = ctx.wallet.get(args.profile)
    argv = _ssh_argv(profile, args.ssh_args)
    ssh = shutil.which("ssh")
    if ssh is None:
        raise ClientUsageError("ssh is not installed (the OpenSSH client)")
    ctx.out.flush()
    ctx.err.flush()
    os.execv(ssh, argv)  # noqa: S606 - the user's own ssh, argv built above, no shell


def _add_ssh_config(sub: Any) -> None:
    p = sub.add_parser(
        "ssh-config", help="print a Host block for ~/.ssh/config that knocks before connecting"
    )
    _profile_arg(p)
    p.add_argument("--alias", metavar="NAME", help="the Host name to use (default: PROFILE)")
    p.set_defaults(func=_cmd_ssh_config)


def _cmd_ssh_config(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    from .send import tcp_target  # noqa: PLC0415

    profile = ctx.wallet.get(args.profile)
    host, port = tcp_target(profile)
    alias = args.alias or profile.name
    if not alias or any(c.isspace() or c in "*?!" for c in alias):
        raise ClientUsageError(f"--alias {alias!r}: one word without spaces or * ? !")
    ctx.out.write(
        f"# fwknop-tui profile {profile.name!r}: knock, then connect\n"
        f"Host {alias}\n"
        f"    HostName {host}\n"
        f"    Port {port}\n"
        f"    ProxyCommand {_proxy_command(profile.name)}\n"
    )
    return ExitCode.OK


# -- list / show / check -----------------------------------------------------------


def _add_list(sub: Any) -> None:
    p = sub.add_parser("list", help="list profiles")
    p.add_argument("-l", "--long", action="store_true", help="host, transport and access too")
    p.add_argument("--json", action="store_true", help="print them as JSON on stdout")
    p.add_argument("--path", action="store_true", help="print where profiles.toml is")
    p.set_defaults(func=_cmd_list)


def _cmd_list(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    store = ctx.wallet.profiles
    if args.path:
        ctx.out.write(f"{store.path}\n")
        return ExitCode.OK
    names = store.names()
    if args.json or args.long:
        tables = store.tables()
        rows = []
        for name in names:
            t = tables[name] if isinstance(tables[name], dict) else {}
            access = (t.get("server_command") and f"cmd: {t['server_command']}") or ",".join(
                t.get("access", ["tcp/22"])
                if isinstance(t.get("access", []), list)
                else [str(t.get("access"))]
            )
            rows.append(
                {
                    "name": name,
                    "host": str(t.get("host", "")),
                    "transport": str(t.get("transport", "udp")),
                    "port": t.get("port", 62201),
                    "access": access,
                    "description": str(t.get("description", "")),
                }
            )
        if args.json:
            ctx.out.write(_json().dumps(rows, indent=2) + "\n")
        else:
            for r in rows:
                ctx.out.write(
                    f"{r['name']:<20} {r['host']:<28} {r['transport']}/{r['port']:<6} "
                    f"{r['access']}\n"
                )
        return ExitCode.OK
    for name in names:
        ctx.out.write(f"{name}\n")
    return ExitCode.OK


def _add_show(sub: Any) -> None:
    p = sub.add_parser("show", help="show a profile (no secrets unless --reveal)")
    _profile_arg(p)
    p.add_argument("--json", action="store_true", help="print it as JSON on stdout")
    p.add_argument(
        "--reveal",
        metavar="KEY",
        choices=SLOTS,
        help="print this key (rijndael, hmac, gpg-signing-pw or x25519) and nothing else",
    )
    p.set_defaults(func=_cmd_show)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return str(_json().dumps(value))


def _cmd_show(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    profile = ctx.wallet.get(args.profile)
    if args.reveal:
        keys = ctx.wallet.keys(profile)
        value: str | None = {
            "rijndael": keys.rijndael.to_base64() if keys.rijndael else None,
            "hmac": keys.hmac.to_base64() if keys.hmac else None,
            "gpg-signing-pw": keys.gpg_signing_pw,
            "x25519": keys.x25519.to_text() if keys.x25519 else None,
        }[args.reveal]
        if value is None:
            raise ClientUsageError(f"profile {profile.name!r} has no {args.reveal} key")
        ctx.say(f"printing the {args.reveal} key of {profile.name!r}: keep it secret")
        ctx.out.write(value + "\n")
        return ExitCode.OK
    data = profile.to_dict()
    status: dict[str, str] = {}
    slots = ctx.wallet.keyring_slots(profile)
    stored: list[str] | None = None
    if slots:
        try:
            stored = ctx.wallet.stored_slots(profile.name)
        except ClientError as exc:
            ctx.say(f"cannot read the keyring: {exc}")
            status = dict.fromkeys(slots, "keyring unavailable")
    for slot in profile.key_slots():
        if slot not in slots:
            prefix = SLOT_PREFIX[slot]
            status[slot] = (
                f"{prefix}_command" if getattr(profile, f"{prefix}_command") else f"{prefix}_file"
            )
        elif stored is not None:
            status[slot] = "keyring" if slot in stored else "missing"
    if args.json:
        ctx.out.write(_json().dumps({"profile": data, "keys": status}, indent=2) + "\n")
        return ExitCode.OK
    ctx.out.write(f"[profiles.{profile.name}]\n")
    for key, value in data.items():
        if key != "name":
            ctx.out.write(f"{key} = {_toml_value(value)}\n")
    ctx.out.write(
        "# keys: " + (", ".join(f"{s}: {w}" for s, w in status.items()) or "none needed") + "\n"
    )
    return ExitCode.OK


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="validate profiles.toml and report every problem")
    p.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    problems = ctx.wallet.profiles.problems()
    for problem in problems:
        ctx.err.write(f"fwknop: {problem}\n")
    if problems:
        return ExitCode.CONFIG
    ctx.say(f"{ctx.wallet.profiles.path}: {len(ctx.wallet.names())} profile(s), no problems")
    return ExitCode.OK


# -- add / edit / rm / rename ---------------------------------------------------------


def _add_add(sub: Any) -> None:
    p = sub.add_parser("add", help="add a profile")
    _profile_arg(p, text="new profile name", metavar="NAME")
    p.add_argument("--keygen", action="store_true", help="also generate keys into the keyring")
    _field_options(p)
    p.set_defaults(func=_cmd_add)


def _cmd_add(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    profile = _new_profile(args.profile, _changes(args))
    ctx.wallet.add(profile)
    ctx.say(f"added profile {profile.name!r} to {ctx.wallet.profiles.path}")
    if args.keygen:
        keys = ctx.wallet.generate(profile.name)
        from .wallet.rc import access_stanza  # noqa: PLC0415

        ctx.out.write(access_stanza(ctx.wallet.get(profile.name), keys))
        ctx.say("keys stored in the keyring; the server's access.conf stanza is above")
    return ExitCode.OK


def _add_edit(sub: Any) -> None:
    p = sub.add_parser("edit", help="change fields of a profile")
    _profile_arg(p)
    p.add_argument(
        "--unset", metavar="FIELD", action="append", default=[], help="reset a field to its default"
    )
    _field_options(p)
    p.set_defaults(func=_cmd_edit)


def _cmd_edit(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    changes = _changes(args)
    if not changes and not args.unset:
        raise ClientUsageError(
            "nothing to change: give field options, --set FIELD=VALUE or --unset FIELD"
        )
    profile = ctx.wallet.get(args.profile)
    ctx.wallet.update(_apply(profile, changes, args.unset))
    ctx.say(f"updated profile {profile.name!r}")
    return ExitCode.OK


def _add_rm(sub: Any) -> None:
    p = sub.add_parser("rm", help="delete a profile and its keyring entries")
    _profile_arg(p)
    p.add_argument("--keep-keys", action="store_true", help="leave the keyring entries")
    p.add_argument(
        "-y", "--yes", action="store_true", help="do not ask (needed when not on a terminal)"
    )
    p.set_defaults(func=_cmd_rm)


def _cmd_rm(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    ctx.wallet.get(args.profile)  # it must exist before anyone is asked
    if not args.yes:
        what = "" if args.keep_keys else " and its keys in the keyring"
        answer = ctx.ask(f"delete profile {args.profile!r}{what}? [y/N]")
        if answer is None:
            raise ClientUsageError(
                f"rm deletes {args.profile!r}{what}: confirm with --yes when not on a terminal"
            )
        if answer.lower() not in ("y", "yes"):
            ctx.say(f"kept profile {args.profile!r}: nothing was deleted")
            return ExitCode.FAILURE
    deleted = ctx.wallet.remove(args.profile, keep_keys=args.keep_keys)
    extra = f" and its keyring entries ({', '.join(deleted)})" if deleted else ""
    ctx.say(f"deleted profile {args.profile!r}{extra}")
    return ExitCode.OK


def _add_rename(sub: Any) -> None:
    p = sub.add_parser("rename", help="rename a profile (its keyring entries move too)")
    _profile_arg(p, text="current name")
    p.add_argument("new_name", metavar="NEW", help="new name")
    p.set_defaults(func=_cmd_rename)


def _cmd_rename(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    try:
        from .wallet.validate import check_profile_name  # noqa: PLC0415

        check_profile_name(args.new_name)
    except FieldError as exc:
        raise ClientUsageError(exc.message) from None
    ctx.wallet.rename(args.profile, args.new_name)
    ctx.say(f"renamed profile {args.profile!r} to {args.new_name!r}")
    return ExitCode.OK


# -- keys ------------------------------------------------------------------------------


def _add_keygen(sub: Any) -> None:
    p = sub.add_parser("keygen", help="generate keys (into a profile's keyring entries)")
    p.add_argument(
        "--profile",
        metavar="PROFILE",
        help="store the keys for this profile and print its access.conf stanza",
    )
    p.add_argument(
        "--hmac-type",
        type=_hmac_type,
        default=None,
        help="HMAC algorithm the key is for (default: the profile's, or sha256)",
    )
    p.add_argument("--key-len", type=int, default=32, help="Rijndael key bytes (1..32)")
    p.add_argument("--hmac-key-len", type=int, default=None, help="HMAC key bytes (1..128)")
    p.add_argument("--force", action="store_true", help="replace the profile's existing keys")
    p.set_defaults(func=_cmd_keygen)


def _cmd_keygen(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    if args.profile is None:
        keys = generate_keys(
            args.hmac_type or HmacType.SHA256, key_len=args.key_len, hmac_key_len=args.hmac_key_len
        )
        ctx.out.write(keys.as_text())
        return ExitCode.OK
    generated = ctx.wallet.generate(
        args.profile,
        hmac_type=args.hmac_type,
        key_len=args.key_len,
        hmac_key_len=args.hmac_key_len,
        replace=args.force,
    )
    from .wallet.rc import access_stanza  # noqa: PLC0415

    profile = ctx.wallet.get(args.profile)
    ctx.out.write(access_stanza(profile, generated))
    held = "only your public key: it is not secret" if profile.uses_x25519 else "the keys"
    ctx.say(
        f"new keys for {args.profile!r} are in {ctx.wallet.secrets.describe()}; add the stanza "
        f"above to the server's access.conf (it holds {held})"
    )
    return ExitCode.OK


def _add_server_stanza(sub: Any) -> None:
    p = sub.add_parser("server-stanza", help="print the access.conf stanza for a profile's server")
    _profile_arg(p)
    p.set_defaults(func=_cmd_server_stanza)


def _cmd_server_stanza(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    ctx.out.write(ctx.wallet.server_stanza(args.profile))
    if ctx.wallet.get(args.profile).uses_x25519:
        ctx.say("the stanza holds only public keys: it can be sent in the clear")
    else:
        ctx.say("the stanza holds the profile's keys: send it to the server privately")
    return ExitCode.OK


# -- rc files --------------------------------------------------------------------------


def _add_import_rc(sub: Any) -> None:
    p = sub.add_parser("import-rc", help="import the stanzas of a ~/.fwknoprc as profiles")
    p.add_argument("file", metavar="FILE", nargs="?", help="rc file (default ~/.fwknoprc)")
    p.add_argument(
        "-D",
        "--destination",
        metavar="HOST",
        help="the fwknopd host of stanzas without SPA_SERVER (the C client's -D); "
        "asked for on a terminal",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be imported")
    p.add_argument("--force", action="store_true", help="replace profiles of the same name")
    p.set_defaults(func=_cmd_import_rc)


def _cmd_import_rc(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    path = Path(args.file).expanduser() if args.file else Path.home() / ".fwknoprc"
    plans = ctx.wallet.plan_rc_file(path, destination=args.destination)
    hosts: dict[str, str] = {}
    for plan in plans:
        if plan.needs_host:
            answer = ctx.ask(
                f"[{plan.stanza}] names no server (SPA_SERVER): which host runs its fwknopd? "
                "(empty: skip it)"
            )
            if answer:
                hosts[plan.stanza] = answer
    if hosts:
        plans = ctx.wallet.plan_rc_file(path, hosts=hosts)
    for plan in plans:
        for warning in plan.warnings:
            ctx.say(warning)
    ready = [p for p in plans if p.profile is not None]
    for plan in ready:
        keys = ", ".join(plan.keys) or "none"
        state = " (replaces the existing profile)" if plan.exists else ""
        ctx.out.write(
            f"{plan.name}: {plan.profile.host if plan.profile else ''}, keys: {keys}{state}\n"
        )
    if args.dry_run:
        ctx.say(f"dry run: {len(ready)} profile(s) would be imported; nothing was written")
        return ExitCode.OK
    if not ready:
        hint = ""
        if any(p.needs_host for p in plans):
            hint = "; give the server with --destination HOST"
        if not plans:
            raise ClientUsageError(f"{path}: no stanza holds keys or a server to import")
        raise ClientUsageError(f"{path}: no stanza could be imported (why is above){hint}")
    names = ctx.wallet.apply_rc_import(ready, replace=args.force)
    skipped = len(plans) - len(ready)
    also = f"; {skipped} stanza(s) not imported (why is above)" if skipped else ""
    ctx.say(
        f"imported {len(names)} profile(s); their keys are in {ctx.wallet.secrets.describe()}{also}"
    )
    return ExitCode.OK


def _add_export_rc(sub: Any) -> None:
    p = sub.add_parser("export-rc", help="write profiles as ~/.fwknoprc stanzas (keys included)")
    p.add_argument("profiles", metavar="PROFILE", nargs="+", help="profiles to export")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="rc file to write (created 0600; other stanzas are kept)",
    )
    p.set_defaults(func=_cmd_export_rc)


def _cmd_export_rc(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    path = Path(args.output).expanduser()
    lost = ctx.wallet.export_rc(args.profiles, path)
    for item in lost:
        ctx.say(f"not exported (no rc variable): {item}")
    ctx.say(f"wrote {len(args.profiles)} stanza(s) to {path} (mode 0600: it holds the keys)")
    return ExitCode.OK


# -- sharing -----------------------------------------------------------------------------


def _add_share(sub: Any) -> None:
    p = sub.add_parser("share", help="show a profile's keys as a QR code (Fwknop2 format)")
    _profile_arg(p)
    p.add_argument("--png", metavar="FILE", help="write a PNG instead (mode 0600)")
    p.add_argument("--svg", metavar="FILE", help="write an SVG instead (mode 0600)")
    p.add_argument("--text", action="store_true", help="print the share text instead")
    p.add_argument("--invert", action="store_true", help="for terminals with a light background")
    p.set_defaults(func=_cmd_share)


def _cmd_share(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    from . import qr  # noqa: PLC0415

    text = ctx.wallet.share_text(args.profile)
    public = ctx.wallet.get(args.profile).uses_x25519
    ctx.err.write(PUBLIC_SHARE_NOTE if public else SHARE_WARNING)
    if args.png:
        qr.write_png(text, Path(args.png).expanduser())
        ctx.say(f"wrote {args.png}")
    if args.svg:
        qr.write_svg(text, Path(args.svg).expanduser())
        ctx.say(f"wrote {args.svg}")
    if args.text:
        ctx.out.write(text + "\n")
    elif not args.png and not args.svg:
        ctx.out.write(qr.render_terminal(text, invert=args.invert))
    return ExitCode.OK


def _add_import_share(sub: Any) -> None:
    p = sub.add_parser("import-share", help="store keys from share text (QR, keygen output)")
    _profile_arg(p, text="profile to store the keys for (created with -D HOST ...)")
    p.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        default="-",
        help="file holding the share text (default: stdin)",
    )
    p.add_argument("--image", metavar="IMAGE", help="decode a QR image with zbarimg")
    p.add_argument("--force", action="store_true", help="replace keys the profile already has")
    _field_options(p)
    p.set_defaults(func=_cmd_import_share)


def _cmd_import_share(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    if args.image:
        from .qr import decode_image  # noqa: PLC0415

        text = decode_image(args.image)
    elif args.file == "-":
        text = sys.stdin.read(1 << 16)
    else:
        from .wallet.keys import read_key_file  # noqa: PLC0415

        text = read_key_file(args.file, "share file")
    changes = _changes(args)
    create = None
    if ctx.wallet.profiles.exists(args.profile):
        if changes:
            ctx.wallet.update(_apply(ctx.wallet.get(args.profile), changes))
    else:
        create = _new_profile(args.profile, changes)
    written = ctx.wallet.import_share_into(args.profile, text, create=create, replace=args.force)
    ctx.say(f"stored {', '.join(written)} for {args.profile!r} in {ctx.wallet.secrets.describe()}")
    return ExitCode.OK


# -- completion ----------------------------------------------------------------------------


def _add_completion(sub: Any) -> None:
    p = sub.add_parser("completion", help="print a shell completion script")
    p.add_argument("shell", choices=["bash", "zsh", "fish"], help="bash, zsh or fish")
    p.set_defaults(func=_cmd_completion)


def _cmd_completion(args: argparse.Namespace, ctx: _Ctx) -> ExitCode:
    from .completion import script  # noqa: PLC0415

    ctx.out.write(script(args.shell, _build_parser()))
    return ExitCode.OK


# -- main --------------------------------------------------------------------------------


_ADDERS: tuple[Callable[[Any], None], ...] = (
    _add_send,
    _add_knock,
    _add_connect,
    _add_ssh,
    _add_ssh_config,
    _add_list,
    _add_show,
    _add_add,
    _add_edit,
    _add_rm,
    _add_rename,
    _add_keygen,
    _add_server_stanza,
    _add_import_rc,
    _add_export_rc,
    _add_share,
    _add_import_share,
    _add_check,
    _add_completion,
)

VERSION = (
    f"fwknop-tui {__version__} (the fwknop command; SPA compatible with fwknop 2.6.10, "
    "FKO protocol 3.0.0)"
)


def _build_parser(only: str | None = None, *, lean: bool = False) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that subcommand is built (the hot path).

    ``lean``: the command line gives that subcommand no options, so its field
    options are not built (``_LEAN``).
    """
    global _LEAN  # noqa: PLW0603 - set only while this builds
    _LEAN = lean
    try:
        return _build(only)
    finally:
        _LEAN = False


def _build(only: str | None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fwknop",
        description="Single Packet Authorization client, wire-compatible with fwknop 2.6.",
        epilog="Exit codes: 0 ok, 1 failure, 2 usage, 3 no such profile, 4 bad profiles.toml, "
        "5 key missing, 6 keyring locked, 7 no keyring, 8 cannot resolve, 9 send failed, "
        "10 verify timed out, 130 interrupted. With --json, a failure prints "
        '{"error": {"code": N, "reason": "...", "message": "..."}} on stdout.',
    )
    parser.add_argument("-V", "--version", action="version", version=VERSION)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more diagnostics")
    parser.add_argument("-q", "--quiet", action="store_true", help="no diagnostics on success")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _ADDERS:
        name = add.__name__.removeprefix("_add_").replace("_", "-")
        if only is None or name == only:
            add(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    if verbosity <= 0:
        return
    import logging  # noqa: PLC0415 - only -v pays for logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fwknop: %(name)s: %(message)s"))
    root = logging.getLogger("fwknop_tui")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)


def _error_object(exc: ClientError) -> dict[str, Any]:
    """What ``--json`` prints for a failure: the exit code, its name, the message."""
    code = exc.exit_code
    return {
        "code": int(code),
        "reason": code.name.lower(),
        "message": "; ".join(str(exc).splitlines()),
    }


def _fail(ctx: _Ctx, exc: ClientError, *, json: bool) -> ExitCode:
    """Report a failure: one line per problem on stderr, and the JSON object with --json."""
    for line in str(exc).splitlines() or [type(exc).__name__]:
        ctx.err.write(f"fwknop: {line}\n")
    if json:
        ctx.out.write(_json().dumps({"error": _error_object(exc)}, indent=2) + "\n")
    return exc.exit_code


def main(argv: Sequence[str] | None = None, *, secrets: SecretStore | None = None) -> ExitCode:
    """Entry point of ``fwknop``; ``secrets`` replaces the keyring (tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv and secrets is None and sys.stdin.isatty() and sys.stdout.isatty():
        return ExitCode(main_tui([]))
    first = next((a for a in argv if not a.startswith("-")), None)
    known = first is not None and f"_add_{first.replace('-', '_')}" in globals()
    only = first if known and "-h" not in argv and "--help" not in argv else None
    after = argv[argv.index(first) + 1 :] if only is not None and first is not None else []
    parser = _build_parser(only, lean=not any(a.startswith("-") for a in after))
    json = "--json" in argv[: argv.index("--") if "--" in argv else len(argv)]
    ctx = _Ctx(secrets)
    try:
        args = parser.parse_args(argv)
    except _ArgumentError as exc:
        if not json:
            exc.parser.print_usage(ctx.err)
        return _fail(ctx, ClientUsageError(f"{exc.parser.prog}: {exc}"), json=json)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return ExitCode.OK
    _setup_logging(args.verbose)
    ctx.quiet = args.quiet
    try:
        code: ExitCode = args.func(args, ctx)
    except ClientError as exc:
        return _fail(ctx, exc, json=json)
    except (FieldError, UsageError) as exc:
        return _fail(ctx, ClientUsageError(str(exc)), json=json)
    except KeyboardInterrupt:
        ctx.err.write("fwknop: interrupted\n")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.FAILURE
    return code


def main_tui(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fwknop-tui`` (and of ``fwknop`` with no arguments, on a terminal)."""
    from .ui import run  # noqa: PLC0415 - only the TUI pays for Textual

    return run(argv)
