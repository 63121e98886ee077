"""Both configuration files, loaded once into typed, frozen settings: what a daemon runs on.

``load`` reads fwknopd.conf (``config.py``: every key's kind, default and
reload behaviour) and access.conf (``access.py``), and each part of the
daemon reads its own keys into its own frozen settings, once
(``CaptureSettings``, ``ReplaySettings``, ``NatSettings``, the pipeline's
``Settings``, ``KnockSettings``; each firewall backend reads its own when it
is made). The
daemon then works from these, never from the file by key. A SIGHUP loads
anew and swaps the whole; what ``Reload`` marks for a restart is named.
The x25519 clients' keys are derived here too, once per load
(``serverkey.client_keyring``): a SIGHUP that adds a ``CLIENT_PUBLIC_KEY``
swaps in a keyring that knows it, and open grants stay.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from fwknop_core import X25519Keyring

from .access import AccessPolicy, AccessStanza, load_policy
from .capture import CaptureSettings
from .cmdexec import command_timeout
from .config import Overrides, ServerConfig, listen_address, read_server_config
from .errors import ConfigError
from .grantsync import SyncSettings
from .knocks import KnockSettings
from .nat import NatSettings, nat_settings
from .processor import Settings
from .replay import ReplaySettings
from .serverkey import client_keyring

__all__ = ["Options", "ServerSettings", "load"]


@dataclass(frozen=True)
class Options:
    """What the command line decided."""

    config_file: Path
    overrides: Overrides = field(default_factory=Overrides)
    access_paths: tuple[Path, ...] | None = None  # -a / --access-folder
    test_mode: bool = False
    packet_limit: int = 0  # -C
    foreground: bool = True
    exit_after_file: bool = False  # --pcap-file: exit once the file is read (fwknopd goes on)


@dataclass(frozen=True)
class ServerSettings:
    """Everything a daemon runs on, typed: each part's settings, and the stanzas."""

    config: ServerConfig  # the file as read: for -D, and for what a reload changed
    stanzas: tuple[AccessStanza, ...]  # the SPA stanzas (``knock`` has the sequence ones)
    capture: CaptureSettings
    replay: ReplaySettings
    nat: NatSettings
    pipeline: Settings  # before the firewall says what it can open (pipeline_for)
    command_timeout: float  # CMD_EXEC_TIMEOUT, else our default
    exit_at_intf_down: bool  # EXIT_AT_INTF_DOWN
    rules_check: bool  # RULES_CHECK_THRESHOLD > 0: the periodic firewall scan
    run_dir: Path  # FWKNOP_RUN_DIR: the status socket
    sync: SyncSettings | None  # GRANT_SYNC_GROUP: grants shared with an HA group
    metrics_listen: tuple[str, int] | None  # METRICS_LISTEN
    knock: KnockSettings  # knock sequences and OS fingerprints
    # the x25519 clients (CLIENT_PUBLIC_KEY), each client's key derived once; None: there are none
    x25519: X25519Keyring[AccessStanza] | None = None

    @classmethod
    def from_config(
        cls,
        config: ServerConfig,
        policy: AccessPolicy,
        *,
        test_mode: bool = False,
        x25519: X25519Keyring[AccessStanza] | None = None,
    ) -> ServerSettings:
        """Each part's settings from ``config``; ``ConfigError`` where one cannot be had."""
        replay = ReplaySettings.from_config(config, test_mode=test_mode)
        metrics = config.text("METRICS_LISTEN")
        return cls(
            config=config,
            stanzas=policy.stanzas,
            capture=CaptureSettings.from_config(config),
            replay=replay,
            nat=nat_settings(config),
            pipeline=Settings.from_config(config, test_mode=test_mode),
            command_timeout=command_timeout(config),
            exit_at_intf_down=config.flag("EXIT_AT_INTF_DOWN"),
            rules_check=config.number("RULES_CHECK_THRESHOLD") > 0,
            run_dir=config.file("FWKNOP_RUN_DIR"),
            sync=SyncSettings.from_config(config, replay),
            metrics_listen=listen_address(metrics) if metrics else None,
            knock=KnockSettings.from_config(config, policy, test_mode=test_mode),
            x25519=x25519,
        )

    def pipeline_for(self, *, ipv6: bool, nat: bool, nat_ipv6: bool = False) -> Settings:
        """The pipeline's settings for a firewall that can (or cannot) open for IPv6, or NAT
        (``nat_ipv6``: for IPv6 clients too)."""
        # NAT requests are taken only where the firewall can serve them
        return dataclasses.replace(
            self.pipeline,
            ipv6_grants=ipv6,
            nat=self.nat if nat else NatSettings(),
            nat_ipv6=nat and nat_ipv6,
        )


def load(options: Options, warnings: list[str] | None = None) -> ServerSettings:
    """Both files, validated, as settings; ``ConfigError`` with every problem of both.

    A bad fwknopd.conf does not hide access.conf's problems: the access files
    it names are checked all the same.
    """
    config, problems = read_server_config(options.config_file, options.overrides, warnings=warnings)
    if options.access_paths is not None:
        paths: tuple[Path, ...] = options.access_paths
    elif config.text("ACCESS_FOLDER"):
        paths = (config.file("ACCESS_FOLDER"),)
    else:
        paths = (config.file("ACCESS_FILE"),)
    try:
        nat_enabled = nat_settings(config).enabled
    except ValueError:  # a bad SNAT_TRANSLATE_IP, among fwknopd.conf's problems
        nat_enabled = True  # so that no stanza is refused for needing NAT on top of it
    try:
        policy = load_policy(
            paths,
            gpg_home_dir=config.required("GPG_HOME_DIR"),
            gpg_exe=config.required("GPG_EXE"),
            warnings=warnings,
            nat_enabled=nat_enabled,
        )
    except ConfigError as exc:
        raise ConfigError([*problems.items, *exc.problems]) from None
    problems.raise_if_any()
    if warnings is not None:
        files = [options.config_file, *options.overrides.override_files]
        files += [stanza.path for stanza in policy.stanzas]
        files += [sequence.path for sequence in policy.sequences]  # their KEYs too
        warnings.extend(w for path in dict.fromkeys(files) if (w := permission_warning(path)))
    return ServerSettings.from_config(
        config, policy, test_mode=options.test_mode, x25519=client_keyring(config, policy.stanzas)
    )


def permission_warning(path: Path) -> str | None:
    """fwknopd's warning for a configuration file other users can read or write, or not ours.

    In fwknopd's words, so that what watches its log still matches. Such a
    file holds keys (access.conf) or says which commands run as root.
    """
    try:
        st = path.stat()
    except OSError:
        return None
    euid = os.geteuid()
    if st.st_uid != euid:
        return (
            f"[-] file: {path} (owner: {st.st_uid}) not owned by current effective user id: {euid}"
        )
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"[-] file: {path} permissions should only be user read/write (0600, -rw-------)"
    return None
