"""Loggers that cost nothing until logging is in use.

``import logging`` costs a few milliseconds of the ``fwknop send`` cold
start. If nothing has imported it, nothing can have configured a handler,
so debug and info records would go nowhere anyway: these loggers drop them
without importing it. Warnings and errors always go through ``logging``
(its last-resort handler prints them). ``fwknop -v`` and any host program
that configures logging get every record, as with ``logging.getLogger``.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["LazyLogger", "get_logger"]


class LazyLogger:
    """The subset of ``logging.Logger`` this package uses."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _real(self, *, force: bool = False) -> Any:
        module: Any = sys.modules.get("logging")
        if module is None:
            if not force:
                return None
            import logging as module  # noqa: PLC0415

        return module.getLogger(self.name)

    def debug(self, msg: str, *args: object) -> None:
        """``Logger.debug`` if logging is in use."""
        if (real := self._real()) is not None:
            real.debug(msg, *args)

    def info(self, msg: str, *args: object) -> None:
        """``Logger.info`` if logging is in use."""
        if (real := self._real()) is not None:
            real.info(msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        """``Logger.warning``, always."""
        self._real(force=True).warning(msg, *args)


def get_logger(name: str) -> LazyLogger:
    """A lazy logger for ``name`` (use ``__name__``)."""
    return LazyLogger(name)
