"""A cheap check of a metrics sample in the shape the gateway publishes it.

Catching up on a backlog, pydantic's validation of each MetricsSample (nested models,
two Python timestamp validators) was the largest cost of ingest. This check reads the
orjson-parsed object with plain type and range tests and answers only "certainly
valid" (with the values ingest needs) or "not sure" (None): anything it does not
recognise — another timestamp format, a bool or a float where a counter goes, a value
out of range, a missing field — goes to the full pydantic validation, which alone
refuses. So it can never accept what MetricsSample refuses, nor refuse what it
accepts; tests/ingest/test_samplecheck.py runs both over valid and hostile samples
and asserts they agree.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

from opswire.contract.types import MAX_CLOCK_SKEW

# What the gateway and agents write: ISO 8601 in UTC, seconds, up to microseconds.
_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|\+00:00)")
_INF = float("inf")
_NETWORK_COUNTERS = ("packets_sent", "packets_recv", "errin", "errout", "dropin", "dropout")


# Named tuples: built once per message, and cheaper to build than frozen dataclasses.
class Disk(NamedTuple):
    percent: float


class CheckedSample(NamedTuple):
    """The values of a checked sample that ingest uses (rules, tiers, the row)."""

    server_id: str
    timestamp: datetime
    received_at: datetime
    cpu_percent: float
    memory_percent: float
    disk_usage: tuple[Disk, ...]


def _stamp(value: Any) -> datetime | None:
    if type(value) is not str or _STAMP.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:  # e.g. February 30th: pydantic says why
        return None


# bool is an int subclass: `type(...) in` keeps it (and anything else) for pydantic.
_NUMBERS = (float, int)


def _is_percent(value: Any) -> bool:
    return type(value) in _NUMBERS and 0 <= value <= 100


def _is_non_negative(value: Any) -> bool:
    return type(value) in _NUMBERS and 0 <= value < _INF


def _is_counter(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_text(value: Any, longest: int) -> bool:
    return type(value) is str and 1 <= len(value) <= longest


def _is_dict_list(value: Any) -> bool:
    return type(value) is list and all(type(item) is dict for item in value)


def _disks(value: Any) -> tuple[Disk, ...] | None:
    if type(value) is not list:
        return None
    disks = []
    for disk in value:
        if not (
            type(disk) is dict
            and _is_text(disk.get("path"), 4096)
            and _is_counter(disk.get("total"))
            and _is_counter(disk.get("used"))
            and _is_counter(disk.get("free"))
            and _is_percent(disk.get("percent"))
        ):
            return None
        disks.append(Disk(float(disk["percent"])))
    return tuple(disks)


def _network_ok(value: Any) -> bool:
    if type(value) is not list:
        return False
    for nic in value:
        if not (
            type(nic) is dict
            and _is_text(nic.get("interface"), 255)
            and _is_counter(nic.get("bytes_sent"))
            and _is_counter(nic.get("bytes_recv"))
        ):
            return False
        for name in _NETWORK_COUNTERS:
            counter = nic.get(name)
            if counter is not None and not _is_counter(counter):
                return False
    return True


def _optionals_ok(obj: dict[str, Any]) -> bool:
    """The named optional fields; `temperatures` is Any and never refuses."""
    load = obj.get("load_average")
    if load is not None and not (
        type(load) is list
        and len(load) == 3
        and _is_non_negative(load[0])
        and _is_non_negative(load[1])
        and _is_non_negative(load[2])
    ):
        return False
    uptime = obj.get("uptime_seconds")
    if uptime is not None and not _is_non_negative(uptime):
        return False
    swap = obj.get("swap_percent")
    if swap is not None and not _is_percent(swap):
        return False
    containers = obj.get("containers")
    if containers is not None and not _is_dict_list(containers):
        return False
    processes = obj.get("processes")
    return processes is None or _is_counter(processes) or _is_dict_list(processes)


def check_sample(obj: Any, now: datetime | None = None) -> CheckedSample | None:
    """The sample's values if `obj` (parsed JSON) is certainly a valid MetricsSample, else None."""
    if type(obj) is not dict:
        return None
    timestamp = _stamp(obj.get("timestamp"))
    received_at = _stamp(obj.get("received_at"))
    server_id = obj.get("server_id")
    cpu: Any = obj.get("cpu_percent")
    memory: Any = obj.get("memory_percent")
    if (
        timestamp is None
        or received_at is None
        or type(server_id) is not str
        or not _is_percent(cpu)
        or not _is_percent(memory)
        or timestamp > (now or datetime.now(UTC)) + MAX_CLOCK_SKEW
    ):
        return None
    disks = _disks(obj.get("disk_usage"))
    if disks is None or not _network_ok(obj.get("network")) or not _optionals_ok(obj):
        return None
    return CheckedSample(server_id, timestamp, received_at, float(cpu), float(memory), disks)
