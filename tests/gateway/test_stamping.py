"""The one serialisation of an accepted frame is exactly what the payload models would dump."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from gateway.realtime.stamping import stamped
from opswire.contract.frames import LogFrame, MetricsFrame, parse_agent_frame
from opswire.contract.telemetry import LogLine, MetricsSample

SID = "4b0ef6a4-5b53-4d2e-9d8e-1f3f1c6c9a01"
RECEIVED = datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _metrics(**extra: Any) -> dict[str, Any]:
    return {
        "type": "metrics",
        "cpu_percent": 12,
        "memory_percent": 40.25,
        "disk_usage": [
            {
                "path": "/",
                "total": 10**12,
                "used": 4 * 10**11,
                "free": 6 * 10**11,
                "percent": 40,
                "fstype": "ext4",
            }
        ],
        "network": [{"interface": "eth0", "bytes_sent": 1, "bytes_recv": 2, "packets_sent": 3}],
        "timestamp": (datetime.now(UTC) - timedelta(seconds=3)).isoformat(),
        **extra,
    }


CASES = [
    _metrics(),
    _metrics(load_average=[0.5, 1e-7, 3], uptime_seconds=1.5e9, temperatures={"cpu": -3.25}),
    _metrics(containers=[{"id": "a", "nested": {"x": [1, 2.5, None, True]}}], processes=412),
    _metrics(bench_sent_ns=12345678901234567, note='ünïcode \u2028 "quoted"'),
    _metrics(received_at="1999-01-01T00:00:00Z", server_id=SID),  # the agent's own stamps are replaced
    _metrics(timestamp=datetime.now(timezone(timedelta(hours=2))).replace(microsecond=0).isoformat()),
    {
        "type": "log",
        "level": "WARN",
        "message": 'disk "full" \u00e9',
        "timestamp": datetime.now(UTC).isoformat(),
    },
    {
        "type": "log",
        "level": "info",
        "message": "",
        "source": "syslog",
        "timestamp": datetime.now(UTC).isoformat(),
    },
]


@pytest.mark.parametrize("raw", CASES)
def test_payload_is_byte_identical_to_the_model_dump(raw: dict[str, Any]) -> None:
    frame = parse_agent_frame(orjson.dumps(raw))
    assert isinstance(frame, MetricsFrame | LogFrame)
    fields = dict(frame)
    del fields["type"]
    fields.update(server_id=SID, received_at=RECEIVED)
    model = MetricsSample if isinstance(frame, MetricsFrame) else LogLine
    expected = model.model_validate(fields).model_dump_json().encode()
    assert stamped(frame, SID, RECEIVED) == expected
