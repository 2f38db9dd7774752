"""`temperatures` in another common shape (psutil's own) is kept as it came and never a reason
to refuse the whole sample (DESIGN §9 'Lenient where it costs nothing')."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from opswire.contract.frames import MetricsFrame, parse_agent_frame
from opswire.contract.telemetry import MetricsSample

PSUTIL = {
    "coretemp": [
        {"label": "Package id 0", "current": 47.0, "high": 84.0, "critical": 100.0},
        {"label": "Core 0", "current": 45.0, "high": 84.0, "critical": 100.0},
    ],
    "acpitz": [{"label": "", "current": 27.8, "high": None, "critical": None}],
}


def _frame(temperatures: Any) -> bytes:
    return orjson.dumps(
        {
            "type": "metrics",
            "cpu_percent": 12.5,
            "memory_percent": 40.0,
            "disk_usage": [],
            "network": [],
            "timestamp": datetime.now(UTC).isoformat(),
            "temperatures": temperatures,
        }
    )


@pytest.mark.parametrize(
    "temperatures",
    [
        PSUTIL,
        {"cpu": 45.5, "nvme": 38.0},
        {"gpu": {"edge": 51}},
        [["cpu", 45.0]],
    ],
    ids=["psutil", "name-to-degrees", "nested", "a-list"],
)
def test_the_sample_is_accepted_and_temperatures_kept_as_they_came(temperatures: Any) -> None:
    frame = parse_agent_frame(_frame(temperatures))
    assert isinstance(frame, MetricsFrame)
    assert frame.cpu_percent == 12.5
    assert frame.temperatures == temperatures
    sample = MetricsSample.model_validate(
        {**frame.model_dump(exclude={"type"}), "server_id": "s", "received_at": datetime.now(UTC)}
    )
    assert orjson.loads(sample.model_dump_json())["temperatures"] == temperatures
