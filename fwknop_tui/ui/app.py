"""The fwknop-tui application: wiring and app-wide state, nothing else.

The app owns the wallet (profiles + keyring), the knock history, the
settings (theme, key map) and the demo server; screens do the rest.
Everything that may block runs through ``background``: a thread worker
whose result is handed to a callback on the UI thread, and whose failure
is reported in one place (``on_worker_state_changed``) as a one-line
notification, never a traceback.

No command writes key material where others could read it: Textual's
"Screenshot" command (an SVG in ~/Downloads, mode 0644) is not offered
while a screen that can show keys (``Dialog.SECRET``: the QR code, the
stanza) is open, and ``deliver_screenshot`` refuses there too.

A closed terminal sends SIGHUP: the app then quits as on ctrl+q, so the
demo's server and profile go with it (the server's lifeline would stop it
anyway; see ``demo``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.theme import Theme
from textual.worker import Worker, WorkerState

from ..errors import ClientError
from ..history import KnockHistory
from ..wallet import Wallet
from ..wallet.profiles import Profile
from ..wallet.validate import FieldError
from .collector import Collector
from .layout import HORIZONTAL, VERTICAL
from .screens.main import MainScreen
from .settings import Settings, SettingsError, load_settings, save_theme

if TYPE_CHECKING:
    from textual.command import Provider

    from ..demo import DemoServer

__all__ = ["EXIT_WHEN_READY", "FwknopApp", "describe_error"]

T = TypeVar("T")
EXIT_WHEN_READY = "FWKNOP_TUI_EXIT_WHEN_READY"  # benchmarks: quit once the first screen is up


def describe_error(exc: BaseException) -> str:
    """One line for a user: our errors as they are, anything else by type and message."""
    from fwknop_core import UsageError  # noqa: PLC0415

    if isinstance(exc, ClientError | UsageError | SettingsError):
        return str(exc)
    if isinstance(exc, FieldError):
        return f"{exc.field}: {exc.message}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _commands() -> type[Provider]:
    """Our command palette provider, imported when the palette first opens."""
    from .commands import FwknopCommands  # noqa: PLC0415

    return FwknopCommands


class FwknopApp(App[None]):
    """The interactive SPA client."""

    CSS_PATH = "app.tcss"
    TITLE = "fwknop-tui"
    BINDINGS = [  # noqa: RUF012
        Binding("f1,question_mark", "help", "Help", id="help", tooltip="Keys and what they do"),
        Binding("ctrl+q", "quit", "Quit", id="quit", tooltip="Leave fwknop-tui", priority=True),
        Binding(
            "ctrl+p",
            "command_palette",
            "palette",
            id="command_palette",
            tooltip="Every action and every profile, by name",
            show=False,
            priority=True,
        ),
    ]
    COMMANDS = App.COMMANDS | {_commands}
    HORIZONTAL_BREAKPOINTS = HORIZONTAL
    VERTICAL_BREAKPOINTS = VERTICAL

    def __init__(
        self,
        *,
        wallet: Wallet | None = None,
        history: KnockHistory | None = None,
        settings: Settings | None = None,
        demo: bool = False,
        first_run: bool = True,
        clock: Callable[[], float] = time.time,
        rc_path: Path | None = None,
        collector: Collector | None = None,
    ) -> None:
        if settings is None:
            settings, problems = load_settings()
        else:
            problems = []
        super().__init__()
        self.wallet = wallet or Wallet()
        self.history = history or KnockHistory()
        self.settings = settings
        self.setting_problems = problems
        self.clock = clock
        self.rc_path = rc_path
        self.collector = collector or Collector()  # the garbage collector's schedule
        self.start_demo = demo
        self.first_run = first_run
        self.demo: DemoServer | None = None  # imported on first use: subprocess, tempfile
        self.demo_profile: str | None = None
        self._demo_starting = False
        self._pending: dict[
            Worker[Any],
            tuple[Callable[[Any], object] | None, Callable[[BaseException], None] | None, str],
        ] = {}
        if settings.keymap:
            self.set_keymap(settings.keymap)

    # -- start and stop -------------------------------------------------------------

    def on_mount(self) -> None:
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        else:
            self.setting_problems.append(
                f"{self.settings.path}: theme: no theme named {self.settings.theme!r}"
            )
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.push_screen(MainScreen())
        for problem in self.setting_problems:
            self.notify(problem, title="tui.toml", severity="warning", timeout=10)
        with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
            # a closed terminal: quit cleanly (only the main thread's loop can take signals)
            import asyncio  # noqa: PLC0415

            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)

    def main_ready(self, main: MainScreen) -> None:
        """The main screen has read the profiles: start the demo, or offer it on a first run."""
        if self.start_demo:
            self.action_demo()
        elif self.first_run and not main.profiles and not main.problems:
            self._offer_first_run()
        if os.environ.get(EXIT_WHEN_READY):
            self.call_after_refresh(self.exit)
            return
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        """Work that must not delay the first frame: leftover demo profiles, key map ids."""
        self.collector.started()
        from ..demo import DEMO_DESCRIPTION  # noqa: PLC0415

        if any(p.description == DEMO_DESCRIPTION for p in self.main_screen.profiles.values()):
            self._remove_dead_demo_profiles()
        self.set_timer(0.05, self._check_keymap)

    def _remove_dead_demo_profiles(self) -> None:
        wallet = self.wallet

        def work() -> list[str]:
            from ..demo import remove_dead_demo_profiles  # noqa: PLC0415

            return remove_dead_demo_profiles(wallet)

        def done(names: list[str]) -> None:
            if names:
                main = self.main_screen
                main.log_line(
                    f"removed the demo profile(s) {', '.join(names)} left by an earlier session "
                    "(their fwknopd is gone)"
                )
                main.reload()

        self.background(work, done=done, what="removing leftover demo profiles", group="demo")

    def _check_keymap(self) -> None:
        """Warn about ids in tui.toml's [keymap] that no binding has (a typo does nothing)."""
        from .bindings import unknown_ids  # noqa: PLC0415 - imports every screen: after start-up

        for problem in unknown_ids(self.settings):
            self.setting_problems.append(problem)
            self.notify(problem, title="tui.toml", severity="warning", timeout=10)

    def _offer_first_run(self) -> None:
        from .screens.first_run import FirstRunScreen  # noqa: PLC0415

        def chosen(choice: str | None) -> None:
            if choice == "demo":
                self.action_demo()
            elif choice == "new":
                self.main_screen.action_new()
            elif choice == "import":
                self.main_screen.action_import()

        self.push_screen(FirstRunScreen(), chosen)

    def on_unmount(self) -> None:
        if self.demo is not None:
            self.demo.stop()
            if self.demo_profile is not None:
                from ..demo import remove_demo_profile  # noqa: PLC0415

                with contextlib.suppress(ClientError, OSError):
                    remove_demo_profile(self.wallet, self.demo_profile)

    # -- no key material in screenshots ------------------------------------------------

    def _shows_secrets(self, screen: Screen[Any] | None = None) -> bool:
        screens = [screen] if screen is not None else self.screen_stack
        return any(getattr(s, "SECRET", False) for s in screens)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's commands, without "Screenshot" over a screen that can show keys."""
        for command in super().get_system_commands(screen):
            if command.title == "Screenshot" and self._shows_secrets(screen):
                continue
            yield command

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Textual's screenshot, refused while a screen that can show keys is open."""
        if self._shows_secrets():
            self.notify(
                "This screen can show keys: no screenshot is saved of it.",
                title="Screenshot",
                severity="warning",
            )
            return None
        return super().deliver_screenshot(filename, path, time_format)

    @property
    def main_screen(self) -> MainScreen:
        """The main screen (always at the bottom of the stack)."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        raise LookupError("the main screen is not up")

    def wallet_names(self) -> list[str]:
        """Profile names, or none when the file cannot be read (the main screen says why)."""
        try:
            return self.wallet.names()
        except ClientError:
            return []

    # -- background work --------------------------------------------------------------

    def background(
        self,
        work: Callable[[], T],
        *,
        done: Callable[[T], object] | None = None,
        failed: Callable[[BaseException], None] | None = None,
        what: str,
        group: str = "work",
        exclusive: bool = False,
    ) -> Worker[T]:
        """Run ``work`` in a thread; ``done(result)`` on the UI thread, errors reported here."""
        worker: Worker[T] = self.run_worker(
            work,
            name=what,
            group=group,
            description=what,
            exclusive=exclusive,
            thread=True,
            exit_on_error=False,
        )
        self._pending[worker] = (done, failed, what)
        return worker

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        entry = self._pending.get(event.worker)
        if entry is None or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        del self._pending[event.worker]
        done, failed, what = entry
        if event.state is WorkerState.SUCCESS:
            if done is not None:
                done(event.worker.result)
        elif event.state is WorkerState.ERROR:
            error = event.worker.error
            assert error is not None  # noqa: S101 - Textual sets it for the ERROR state
            self.notify(
                describe_error(error), title=f"Failed: {what}", severity="error", timeout=10
            )
            if failed is not None:
                failed(error)

    # -- the demo -----------------------------------------------------------------------

    def demo_for(self, profile: Profile) -> DemoServer | None:
        """The demo server, when ``profile`` is the demo's and the server runs."""
        demo = self.demo
        if demo is not None and demo.running and profile.name == self.demo_profile:
            return demo
        return None

    def action_demo(self) -> None:
        """Start the companion fwknopd on loopback, add the demo profile, and knock it."""
        if self._demo_starting:
            return
        from ..demo import DemoServer, install_demo_profile  # noqa: PLC0415 - demo only

        self._demo_starting = True
        server = self.demo if self.demo is not None and self.demo.running else DemoServer()
        wallet = self.wallet

        def start() -> tuple[Profile, str]:
            server.start()
            return install_demo_profile(wallet, server)

        def started(result: tuple[Profile, str]) -> None:
            self._demo_starting = False
            profile, where = result
            self.demo, self.demo_profile = server, profile.name
            main = self.main_screen
            main.log_line(
                f"demo: our fwknopd listens on 127.0.0.1 UDP port {server.port} with a log-only "
                f"firewall (pid {server.pid}); profile {profile.name!r}, keys in {where}"
            )
            main.reload(select=profile.name)
            main.knock(main.profiles[profile.name])

        def failed(_exc: BaseException) -> None:
            self._demo_starting = False
            if server is not self.demo:
                server.stop()

        self.background(start, done=started, failed=failed, what="starting the demo", group="demo")

    # -- app-wide actions ------------------------------------------------------------------

    def action_help(self) -> None:
        """The help screen."""
        self.main_screen.action_help()

    def _theme_changed(self, theme: Theme) -> None:
        if theme.name == self.settings.theme:
            return
        self.settings = Settings(
            theme=theme.name, keymap=self.settings.keymap, path=self.settings.path
        )
        path = self.settings.path
        self.background(
            lambda: save_theme(theme.name, path), what="saving the theme", group="settings"
        )
