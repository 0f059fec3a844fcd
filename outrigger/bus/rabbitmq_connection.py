"""The bus's robust connection: one warning per outage, not the libraries' own account of it.

aio-pika reconnects by itself, and on the way it and aiormq tell of the lost connection several
times: a warning with the reader's traceback, an error for each channel whose restore raced the
reconnection, a warning and an error for each failed attempt while the broker is down. The bus
reports an outage itself instead, through `Outages`: one warning when the connection is lost,
one info line when it is back. `ReconnectNoise` demotes those library records (matched by
their logger and message template) to DEBUG: they are logged only where DEBUG is enabled for
their logger. Any other record of these libraries passes as it is.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection

log = logging.getLogger("outrigger.bus")

_NOISE: dict[str, frozenset[str]] = {
    "aiormq.connection": frozenset(
        {
            "Cancelling cause reader exited abnormally",
            'Unexpected connection close from remote "%s", '
            "Connection.Close(reply_code=%r, reply_text=%r)",
            "error when creating transport: %r",
        }
    ),
    "aio_pika.robust_connection": frozenset(
        {
            "Connection to %s closed. Reconnecting after %r seconds.",
            'Connection attempt to "%s" failed: %s. Reconnecting after %r seconds.',
            'Connection attempt to "%s" cancelled. Reconnecting after %r seconds.',
        }
    ),
    "aio_pika.tools": frozenset({"Callback %r error: %s: %s"}),
}


class ReconnectNoise(logging.Filter):
    """Demotes what aio-pika and aiormq log about a lost connection and reconnecting to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not _is_noise(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _is_noise(record: logging.LogRecord) -> bool:
    if record.msg not in _NOISE.get(record.name, ()):
        return False
    if record.name == "aio_pika.tools":  # only a robust channel's restore that raced the loss
        args = record.args if isinstance(record.args, tuple) else ()
        callback = getattr(args[0], "callback", None) if args else None
        return getattr(callback, "__qualname__", "") == "RobustChannel._on_close"
    return True


_filter = ReconnectNoise()


def quiet_reconnect_noise() -> None:
    """Installs `ReconnectNoise` on the loggers it applies to (once per process)."""
    for name in _NOISE:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)


class Outages:
    """Logs one warning when the connection is lost and one info line when it is back."""

    def __init__(self, where: str, reconnect_interval: float) -> None:
        self.where = where
        self.reconnect_interval = reconnect_interval
        self.since: float | None = None
        self._connection: AbstractRobustConnection | None = None

    def watch(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        connection.close_callbacks.add(self._lost)
        connection.reconnect_callbacks.add(self._back)

    def stop(self) -> None:
        """Stops watching (before the bus closes the connection itself)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close_callbacks.discard(self._lost)
            connection.reconnect_callbacks.discard(self._back)

    def _lost(self, _: Any, reason: BaseException | None = None) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "lost the connection to %s (%s); reconnecting every %gs",
                self.where,
                _describe(reason),
                self.reconnect_interval,
            )

    def _back(self, _: Any) -> None:
        if self.since is not None:
            log.info("reconnected to %s after %.1fs", self.where, time.monotonic() - self.since)
            self.since = None


def _describe(reason: BaseException | None) -> str:
    if reason is None:
        return "closed"
    text = str(reason)
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__
