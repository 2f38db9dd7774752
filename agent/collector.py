"""System metrics with psutil, shaped as the contract's `MetricsFrame` (DESIGN §2, §9).

`collect()` is synchronous and takes well under a millisecond on a typical host;
the agent calls it through `asyncio.to_thread` so a slow /proc or a hung network
mount never stalls the event loop.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import psutil

from opswire.contract.frames import MetricsFrame
from opswire.contract.types import utc_now

log = logging.getLogger(__name__)

# Read-only images (snaps, CDs) are always 100 % full; reporting them only adds noise.
_SKIPPED_FSTYPES = frozenset({"squashfs", "iso9660", "udf"})


class MetricsCollector:
    def __init__(self) -> None:
        # psutil's cpu_percent(None) compares with the previous call: prime it so the
        # first real sample covers the first interval instead of returning 0.0.
        psutil.cpu_percent(interval=None)
        self._boot_time = psutil.boot_time()

    def collect(self) -> MetricsFrame:
        fields: dict[str, Any] = {
            "type": "metrics",
            "timestamp": utc_now(),
            "cpu_percent": _percent(psutil.cpu_percent(interval=None)),
            "memory_percent": _percent(psutil.virtual_memory().percent),
            "swap_percent": _percent(psutil.swap_memory().percent),
            "disk_usage": disk_usage(),
            "network": network(),
            "uptime_seconds": max(0.0, time.time() - self._boot_time),
        }
        try:
            fields["load_average"] = [max(0.0, value) for value in psutil.getloadavg()]
        except (AttributeError, OSError):
            pass
        try:
            fields["processes"] = len(psutil.pids())
        except OSError:
            pass
        temps = temperatures()
        if temps:
            fields["temperatures"] = temps
        return MetricsFrame.model_validate(fields)


def disk_usage() -> list[dict[str, Any]]:
    """One entry per real mounted filesystem; a device mounted twice is reported once."""
    seen: set[str] = set()
    disks: list[dict[str, Any]] = []
    for part in psutil.disk_partitions(all=False):
        if part.fstype in _SKIPPED_FSTYPES or part.device in seen:
            continue
        seen.add(part.device)
        entry = _usage(part.mountpoint)
        if entry is not None:
            entry["fstype"] = part.fstype
            disks.append(entry)
    if not disks:
        # In a container the root is an overlay, which psutil does not count as "real".
        root = _usage("/")
        disks = [root] if root is not None else []
    return disks


def _usage(path: str) -> dict[str, Any] | None:
    try:
        usage = psutil.disk_usage(path)
    except OSError:  # unmounted meanwhile, permission denied, stale NFS handle
        return None
    return {
        "path": path,
        "total": usage.total,
        "used": usage.used,
        "free": usage.free,
        "percent": _percent(usage.percent),
    }


def network() -> list[dict[str, Any]]:
    counters = psutil.net_io_counters(pernic=True)
    return [
        {
            "interface": name,
            "bytes_sent": c.bytes_sent,
            "bytes_recv": c.bytes_recv,
            "packets_sent": c.packets_sent,
            "packets_recv": c.packets_recv,
            "errin": c.errin,
            "errout": c.errout,
            "dropin": c.dropin,
            "dropout": c.dropout,
        }
        for name, c in counters.items()
    ]


def temperatures() -> dict[str, float]:
    """`chip/label` -> °C, where the platform exposes sensors (empty otherwise)."""
    reader = getattr(psutil, "sensors_temperatures", None)
    if reader is None:
        return {}
    try:
        chips = reader()
    except (OSError, RuntimeError):
        return {}
    result: dict[str, float] = {}
    for chip, sensors in chips.items():
        for index, sensor in enumerate(sensors):
            if sensor.current is None or not math.isfinite(sensor.current):
                continue
            result[f"{chip}/{sensor.label or index}"] = float(sensor.current)
    return result


def _percent(value: float) -> float:
    # Rounding noise can put psutil a hair outside 0-100, which the contract rejects.
    return min(100.0, max(0.0, float(value)))
