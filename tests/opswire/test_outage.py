"""The outage report: once per interval with a count, no traceback; outage errors told
apart from bugs and refused data."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from opswire.runtime.outage import OutageLog, database_unavailable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeated_failures_are_one_line_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outage = OutageLog(logging.getLogger("t.outage"), "db down", interval_s=30, clock=clock)
    caplog.set_level(logging.INFO, "t.outage")
    for _ in range(100):
        outage.failed(ConnectionRefusedError("refused"))
        clock.now += 0.1  # 10 s in all: one report
    clock.now = 31
    outage.failed(ConnectionRefusedError("refused"))
    outage.recovered()
    outage.recovered()  # nothing more to say
    lines = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records]
    assert lines == [
        ("WARNING", "db down (1 times since the last report): ConnectionRefusedError: refused", None),
        ("WARNING", "db down (100 times since the last report): ConnectionRefusedError: refused", None),
        ("INFO", "db down: recovered after 101 failures", None),
    ]
    outage.failed(OSError("again"))  # a new outage is news at once
    assert caplog.records[-1].getMessage().startswith("db down (1 times")


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_which_database_errors_are_an_outage() -> None:
    assert database_unavailable(ConnectionRefusedError())
    assert database_unavailable(FileNotFoundError())  # a unix socket that is gone
    assert database_unavailable(OperationalError("x", None, Exception()))
    assert database_unavailable(DBAPIError("x", None, _PgError("57P01")))  # admin shutdown
    assert database_unavailable(DBAPIError("x", None, _PgError("08006")))
    assert not database_unavailable(IntegrityError("x", None, _PgError("23505")))
    assert not database_unavailable(DBAPIError("x", None, _PgError("42P01")))
    assert not database_unavailable(ValueError("a bug"))
