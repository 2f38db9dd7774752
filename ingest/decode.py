"""Turning JetStream messages into rows: validate against the contract or refuse.

Anyone with NATS access can publish on the telemetry subjects, so nothing is
trusted: a message that is not a valid MetricsSample / LogLine for the server
named in its subject is refused here and never reaches the database.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from opswire.contract.jsonlimits import UnfitJson, load_object
from opswire.contract.telemetry import LogLevel, LogLine, MetricsSample


class InvalidMessage(ValueError):
    """The message can never be stored; the reason is safe to log."""


@dataclass(frozen=True)
class DecodedSample:
    server_id: uuid.UUID
    sample: MetricsSample
    row: dict[str, Any]


def _load(raw: bytes) -> dict[str, Any]:
    # PostgreSQL text and jsonb cannot hold U+0000, and storing JSON nested beyond any
    # real payload fails with a recursion error: either would fail its whole batch.
    try:
        return load_object(raw)
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
    data = _load(raw)
    try:
        sample = MetricsSample.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(_validation_reason(exc)) from None
    server_id = _server_id(sample.server_id, subject)
    row = {
        "server_id": server_id,
        "timestamp": sample.timestamp,
        "received_at": sample.received_at,
        "cpu_percent": sample.cpu_percent,
        "memory_percent": sample.memory_percent,
        # Stored as published, so REST and WebSocket show dashboards the same object.
        "data": data,
    }
    return DecodedSample(server_id, sample, row)


def log_digest(timestamp: datetime, source: str | None, message: str) -> str:
    """Identity of a log line within its server: a redelivered line has the same digest."""
    key = "\x1f".join((timestamp.isoformat(), source or "", message))
    return hashlib.sha256(key.encode()).hexdigest()


def decode_log(subject: str, raw: bytes) -> dict[str, Any]:
    data = _load(raw)
    try:
        line = LogLine.model_validate(data)
    except ValidationError as exc:
        raise InvalidMessage(_validation_reason(exc)) from None
    return {
        "server_id": _server_id(line.server_id, subject),
        "timestamp": line.timestamp,
        "received_at": line.received_at,
        "level": int(LogLevel[line.level.upper()]),
        "message": line.message,
        "source": line.source,
        "digest": log_digest(line.timestamp, line.source, line.message),
    }
