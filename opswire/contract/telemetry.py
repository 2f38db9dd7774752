"""Metrics samples and log lines: what agents send and what NATS carries (DESIGN §2, §4, §9)."""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from opswire.contract.types import (
    Counter,
    FiniteFloat,
    NonNegativeFloat,
    Percent,
    SampleTimestamp,
    UtcDatetime,
)


class DiskUsage(BaseModel):
    model_config = ConfigDict(extra="allow")

    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    total: Counter
    used: Counter
    free: Counter
    percent: Percent


class NetworkInterface(BaseModel):
    model_config = ConfigDict(extra="allow")

    interface: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    bytes_sent: Counter
    bytes_recv: Counter
    packets_sent: Counter | None = None
    packets_recv: Counter | None = None
    errin: Counter | None = None
    errout: Counter | None = None
    dropin: Counter | None = None
    dropout: Counter | None = None


class MetricsFields(BaseModel):
    """The fields of one sample as the agent reports them.

    Extra fields are kept as they came (DESIGN §9 'Metric fields'); the named
    optional ones are validated.
    """

    model_config = ConfigDict(extra="allow")

    cpu_percent: Percent
    memory_percent: Percent
    # Hosts with thousands of mounts exist; the frame size limit is what bounds these lists.
    disk_usage: list[DiskUsage]
    network: list[NetworkInterface]
    timestamp: SampleTimestamp
    load_average: Annotated[list[NonNegativeFloat], Field(min_length=3, max_length=3)] | None = None
    uptime_seconds: NonNegativeFloat | None = None
    swap_percent: Percent | None = None
    # name -> °C; psutil's own `{sensor: [{label, current, high, critical}]}` or any other
    # shape is kept as it came: an optional field never refuses a whole sample (DESIGN §9).
    temperatures: dict[str, FiniteFloat] | dict[str, list[dict[str, Any]]] | Any = None
    containers: list[dict[str, Any]] | None = None
    processes: Counter | list[dict[str, Any]] | None = None


class MetricsSample(MetricsFields):
    """A sample as published on `opswire.metrics.<server_id>`, stored and shown to dashboards."""

    server_id: str
    received_at: UtcDatetime


class LogLevel(IntEnum):
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    CRITICAL = 50

    @classmethod
    def parse(cls, value: str) -> LogLevel:
        """Case-insensitive; 'warn' and 'fatal' are accepted as the usual aliases."""
        name = value.strip().upper()
        name = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR"}.get(name, name)
        try:
            return cls[name]
        except KeyError:
            raise ValueError("level must be one of debug, info, warning, error, critical") from None


LevelName = Literal["debug", "info", "warning", "error", "critical"]


class LogFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: LevelName
    message: Annotated[str, StringConstraints(max_length=64 * 1024)]
    timestamp: SampleTimestamp
    source: Annotated[str, StringConstraints(max_length=255)] | None = None

    @field_validator("level", mode="before")
    @classmethod
    def _normalise_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            return LogLevel.parse(value).name.lower()
        return value


class LogLine(LogFields):
    """A log line as published on `opswire.logs.<server_id>`, stored and streamed."""

    server_id: str
    received_at: UtcDatetime
