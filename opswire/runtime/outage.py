"""Outages told as outages: one warning per interval with a count, no tracebacks.

While PostgreSQL is down or a NATS node is lost, the same failure repeats many times a
second (every batch, every fetch, every request). A traceback per try buries the news
and says nothing new (DESIGN §10), so each place that expects such failures keeps one
`OutageLog`:

    db_outage = OutageLog(log, "ingest-metrics: database unavailable")
    try: ...
    except Exception as exc:
        if not database_unavailable(exc): raise
        db_outage.failed(exc)       # warns at once, then at most once per interval
    else:
        db_outage.recovered()       # one info line when it works again

`database_unavailable` says which database errors are an outage (the server cannot be
reached or is shutting down) rather than a bug or refused data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# How often a failure that keeps repeating is reported again.
DEFAULT_INTERVAL_S = 30.0

# SQLSTATE classes of an unreachable or stopping server: 08 connection exception,
# 53 insufficient resources (too many connections), 57 operator intervention (shutdown).
_OUTAGE_SQLSTATE_CLASSES = {"08", "53", "57"}


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database is unreachable (not a bug, not refused data)."""
    if isinstance(exc, OSError | TimeoutError | PoolTimeoutError | DisconnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError | SAInterfaceError):
            return True
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        if sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES:
            return True
        return isinstance(exc.orig, OSError) or isinstance(getattr(exc.orig, "__cause__", None), OSError)
    return False


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message` — enough to recognise the failure, no traceback."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class OutageLog:
    """Reports a repeating failure once per `interval_s` with how often it happened."""

    def __init__(
        self,
        logger: logging.Logger,
        message: str,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._message = message
        self._interval_s = interval_s
        self._clock = clock
        self._unreported = 0
        self._total = 0
        self._last_report: float | None = None

    @property
    def failing(self) -> bool:
        return self._total > 0

    def failed(self, exc: BaseException, **fields: object) -> None:
        """One more failure: logged now if it is the first or the interval has passed."""
        self._total += 1
        self._unreported += 1
        now = self._clock()
        if self._last_report is not None and now - self._last_report < self._interval_s:
            return
        self._log.warning(
            "%s (%d times since the last report): %s",
            self._message,
            self._unreported,
            one_line(exc),
            extra={**fields, "failures": self._unreported, "error": type(exc).__name__},
        )
        self._last_report = now
        self._unreported = 0

    def recovered(self, **fields: object) -> None:
        """It works again: one line with the outage's total, then the next failure is news."""
        if not self._total:
            return
        self._log.info(
            "%s: recovered after %d failures",
            self._message,
            self._total,
            extra={**fields, "failures": self._total},
        )
        self._total = 0
        self._unreported = 0
        self._last_report = None
