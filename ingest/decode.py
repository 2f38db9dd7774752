"""Turning JetStream messages into rows: validate against the contract or refuse.

Anyone with NATS access can publish on the telemetry subjects, so nothing is
trusted: a message that is not a valid MetricsSample / LogLine for the server
named in its subject is refused here and never reaches the database.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from ingest.samplecheck import CheckedSample, check_sample
from opswire.contract.jsonlimits import MAX_JSON_DEPTH, UnfitJson, load_object, mentions_nul
from opswire.contract.telemetry import LogLevel, LogLine, MetricsSample


class InvalidMessage(ValueError):
    """The message can never be stored; the reason is safe to log."""


# The columns of the rows below, in order, as COPY writes them (ingest.writer).
METRICS_COLUMNS = ("server_id", "timestamp", "received_at", "cpu_percent", "memory_percent", "data")
LOGS_COLUMNS = ("server_id", "timestamp", "received_at", "level", "message", "source", "digest")


class DecodedSample(NamedTuple):
    """One per message: a named tuple, cheaper to build than a frozen dataclass."""

    server_id: uuid.UUID
    # CheckedSample when the cheap check was sure (the common case), else MetricsSample.
    sample: MetricsSample | CheckedSample
    # METRICS_COLUMNS; `data` is the message's own JSON text, stored as published.
    row: tuple[Any, ...]


def _check_bounds(raw: bytes) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000, and storing JSON nested beyond any
    real payload fails with a recursion error: either would fail its whole batch.
    Cheap looks at the bytes decide whether the full check must parse at all."""
    if mentions_nul(raw) or raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
        try:
            load_object(raw)
        except UnfitJson as exc:
            raise InvalidMessage(str(exc)) from None


def _server_id(value: str, subject: str) -> uuid.UUID:
    try:
        server_id = uuid.UUID(value)
    except ValueError:
        raise InvalidMessage("server_id is not a UUID") from None
    if subject.rsplit(".", 1)[-1] != value:
        raise InvalidMessage("server_id differs from the subject")
    return server_id


def _validation_reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def decode_sample(subject: str, raw: bytes) -> DecodedSample:
    """Checked cheaply when it has the gateway's shape (ingest.samplecheck), else validated
    by pydantic, which alone refuses; the JSON text itself is what is stored, so REST and
    WebSocket show dashboards the same object."""
    _check_bounds(raw)
    try:
        text = raw.decode()
        sample: MetricsSample | CheckedSample | None = check_sample(orjson.loads(raw))
    except UnicodeDecodeError:
        raise InvalidMessage("not valid UTF-8") from None
    except orjson.JSONDecodeError:
        sample = None
    if sample is None:
        try:
            sample = MetricsSample.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidMessage(_validation_reason(exc)) from None
    server_id = _server_id(sample.server_id, subject)
    row = (
        server_id,
        sample.timestamp,
        sample.received_at,
        sample.cpu_percent,
        sample.memory_percent,
        text,
    )
    return DecodedSample(server_id, sample, row)


def log_digest(timestamp: datetime, source: str | None, message: str) -> str:
    """Identity of a log line within its server: a redelivered line has the same digest."""
    key = "\x1f".join((timestamp.isoformat(), source or "", message))
    return hashlib.sha256(key.encode()).hexdigest()


def decode_log(subject: str, raw: bytes) -> tuple[Any, ...]:
    """A LOGS_COLUMNS row."""
    _check_bounds(raw)
    try:
        line = LogLine.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidMessage(_validation_reason(exc)) from None
    return (
        _server_id(line.server_id, subject),
        line.timestamp,
        line.received_at,
        int(LogLevel[line.level.upper()]),
        line.message,
        line.source,
        log_digest(line.timestamp, line.source, line.message),
    )
