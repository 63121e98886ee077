"""Command messages and command cycles: what fwknopd runs, decided (server-config.md §3.5).

The pure half of commands: a stanza's command settings, the argv a command
becomes, the cycle substitutions. Running them is ``cmdexec.py``'s, the one
place that starts a process; the module docstring there says how fwknopd
2.6.10 runs commands and where we differ.
"""

from __future__ import annotations

import grp
import pwd
from collections.abc import Mapping
from dataclasses import dataclass

from .vocab import IPAddress, RunAs

__all__ = [
    "MAX_CYCLE_LEN",
    "CommandPolicy",
    "CyclePolicy",
    "cycle_values",
    "lookup_group",
    "lookup_user",
    "split_words",
    "substitute",
]

MAX_CYCLE_LEN = 255  # CMD_CYCLE_OPEN/CLOSE: fwknopd's buffer is 256 bytes with the NUL
# cycle variables, in fwknopd's order: the first whose name follows the "$" wins
_VARIABLES = ("IP", "SRC", "PKT_SRC", "DST", "PORT", "PROTO", "TIMEOUT", "CLIENT_TIMEOUT")


def split_words(text: str) -> tuple[str, ...]:
    """``text`` as fwknopd splits a command into argv: on runs of whitespace, nothing else."""
    return tuple(text.split())


def lookup_user(name: str) -> tuple[int, int] | None:
    """(uid, primary gid) of a user name, or None when there is no such user."""
    try:
        entry = pwd.getpwnam(name)
    except (KeyError, ValueError):  # ValueError: a NUL in the name, which no user has
        return None
    return entry.pw_uid, entry.pw_gid


def lookup_group(name: str) -> int | None:
    """The gid of a group name, else of a user's primary group (fwknopd's lookup), else None."""
    try:
        return grp.getgrnam(name).gr_gid
    except (KeyError, ValueError):
        user = lookup_user(name)
        return None if user is None else user[1]


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """A stanza with ``ENABLE_CMD_EXEC Y``: how its command messages run."""

    sudo: bool = False
    sudo_user: str | None = None
    sudo_group: str | None = None
    run_as: RunAs | None = None

    def argv(self, command: str, sudo_exe: str) -> tuple[str, ...]:
        """The argv for ``command``: its words, after the sudo prefix when sudo is on.

        The client's words come after ``--``, which ends sudo's options: fwknopd
        puts none there, so a command ``-u root sh`` is sudo's ``-u root``.
        """
        words = split_words(command)
        if not self.sudo or not words:
            return words
        prefix = [sudo_exe]
        if self.sudo_user and not self.sudo_user.lower().startswith("root"):
            prefix += ["-u", self.sudo_user]
        if self.sudo_group and not self.sudo_group.lower().startswith("root"):
            prefix += ["-g", self.sudo_group]
        # the prefix is split once, as fwknopd builds it: SUDO_EXE may carry options of its own
        return (*split_words(" ".join(prefix)), "--", *words)

    def words(self, argv: tuple[str, ...]) -> int:
        """How many words fwknopd would run for ``argv`` (our ``--`` is not one of them)."""
        return len(argv) - (1 if self.sudo and argv else 0)


@dataclass(frozen=True, slots=True)
class CyclePolicy:
    """``CMD_CYCLE_OPEN`` / ``CMD_CYCLE_CLOSE`` / ``CMD_CYCLE_TIMER``: commands instead of rules."""

    open: str
    close: str | None  # None: CMD_CYCLE_CLOSE NONE
    timer: int  # seconds (0 only when there is no close command and no timer)

    def close_after(self, client_timeout: int) -> int:
        """Seconds until the close command: the client's timeout, but never past the timer.

        fwknopd takes the client's timeout as it comes (up to 18 hours), so a
        client could keep what the open command did in place for a day; the
        timer is the administrator's word for how long that may be.
        """
        if not client_timeout:
            return self.timer
        return min(client_timeout, self.timer) if self.timer else client_timeout


def cycle_values(
    *,
    source: IPAddress,
    packet_src: IPAddress,
    packet_dst: IPAddress | None,
    proto: int,
    port: int,
    timestamp: int,
    wait: int,
) -> dict[str, str]:
    """What each cycle variable stands for (server-config.md §3.5); ``wait``: its close delay."""
    return {
        "IP": str(source),
        "SRC": str(source),
        "PKT_SRC": str(packet_src),
        "DST": str(packet_dst) if packet_dst is not None else "0.0.0.0",  # noqa: S104
        "PORT": str(port),
        "PROTO": str(proto),
        "TIMEOUT": str(timestamp + wait),
        "CLIENT_TIMEOUT": str(wait),
    }


def substitute(template: str, values: Mapping[str, str]) -> str:
    """``template`` with ``$IP`` etc. replaced; any other ``$`` is dropped, as fwknopd does."""
    out: list[str] = []
    i, end = 0, len(template)
    while i < end:
        char = template[i]
        i += 1
        if char != "$":
            out.append(char)
            continue
        for name in _VARIABLES:
            if template.startswith(name, i):
                out.append(values[name])
                i += len(name)
                break
    return "".join(out)
