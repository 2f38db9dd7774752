"""Metrics and logs flow from JetStream into PostgreSQL: stored once, bad messages skipped."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest

from opswire.contract import rpc as calls
from opswire.runtime.rpc import RpcClient, RpcError
from tests.ingest.support import Telemetry, base_time, log_line, sample

pytestmark = pytest.mark.usefixtures("ingest")


async def test_sample_is_stored_as_published_and_deduplicated(telemetry: Telemetry, rpc: RpcClient) -> None:
    server = uuid.uuid4()
    data = sample(server, base_time(), cpu=42.5)
    await telemetry.publish_sample(data, msg_id="first")
    await telemetry.publish_sample(data, msg_id="second")  # a retried publish the stream did not dedupe
    await telemetry.publish_sample(sample(server, base_time() + timedelta(seconds=5)))

    await telemetry.wait_count("metrics", server, 2)
    history = await rpc.call(calls.METRICS_HISTORY, {"server_id": str(server)})
    assert history[0] == data  # extra fields kept, the same object dashboards see live
    latest = await rpc.call(calls.METRICS_LATEST, {"server_id": str(server)})
    assert latest["timestamp"] == history[1]["timestamp"]


async def test_latest_without_samples_is_not_found(rpc: RpcClient) -> None:
    with pytest.raises(RpcError) as err:
        await rpc.call(calls.METRICS_LATEST, {"server_id": str(uuid.uuid4())})
    assert (err.value.code, err.value.detail) == ("not_found", "No metrics yet")


async def test_invalid_messages_are_skipped_and_later_ones_stored(telemetry: Telemetry) -> None:
    server = uuid.uuid4()
    subject = telemetry.subjects.metrics(str(server))
    t0 = base_time()
    await telemetry.publish_sample(sample(server, t0))
    bad = [
        b"not json",
        b"[1, 2]",
        orjson.dumps({**sample(server, t0 + timedelta(seconds=1)), "cpu_percent": 150}),
        orjson.dumps(sample(uuid.uuid4(), t0 + timedelta(seconds=2))),  # server differs from subject
        orjson.dumps({**sample(server, t0 + timedelta(seconds=3)), "vendor_extra": "nul\u0000byte"}),
    ]
    for payload in bad:
        await telemetry.publish_raw(subject, payload)
    await telemetry.publish_raw(telemetry.subjects.metrics("not-a-uuid"), orjson.dumps(sample(server, t0)))
    for i in range(4, 7):
        await telemetry.publish_sample(sample(server, t0 + timedelta(seconds=i)))

    await telemetry.wait_count("metrics", server, 4)
    rows = await telemetry.fetch(
        "SELECT timestamp FROM ingest.metrics WHERE server_id = $1 ORDER BY timestamp", server
    )
    assert [r["timestamp"] for r in rows] == [t0 + timedelta(seconds=s) for s in (0, 4, 5, 6)]


async def test_logs_stored_once_filtered_by_level_newest_first(telemetry: Telemetry, rpc: RpcClient) -> None:
    server = uuid.uuid4()
    t0 = base_time()
    levels = ["debug", "INFO", "warning", "error", "critical", "info"]
    lines = [log_line(server, t0 + timedelta(seconds=i), lvl, f"line {i}") for i, lvl in enumerate(levels)]
    for line in lines[:-1]:
        await telemetry.publish_log(line)
    await telemetry.publish_log(lines[2])  # published twice
    await telemetry.publish_raw(telemetry.subjects.logs(str(server)), b'{"level": "loud"}')
    await telemetry.publish_log(lines[-1])  # stored only after everything before it was handled

    await telemetry.wait_count("logs", server, len(lines))
    everything = await rpc.call(calls.LOGS_QUERY, {"server_id": str(server)})
    assert [item["message"] for item in everything] == [f"line {i}" for i in reversed(range(6))]
    assert set(everything[0]) == {
        "level",
        "message",
        "timestamp",
        "source",
        "server_id",
        "received_at",
    }

    warnings_up = await rpc.call(calls.LOGS_QUERY, {"server_id": str(server), "level": "WARNING"})
    assert [(i["level"], i["message"]) for i in warnings_up] == [
        ("critical", "line 4"),
        ("error", "line 3"),
        ("warning", "line 2"),
    ]
    limited = await rpc.call(calls.LOGS_QUERY, {"server_id": str(server), "limit": 2})
    assert [i["message"] for i in limited] == ["line 5", "line 4"]
