"""History tiers: rolled-up avg/min/max, resolution selection, retention per tier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.history import choose_resolution
from ingest.retention import purge_tiers
from ingest.settings import IngestSettings
from ingest.tiers import rollup
from opswire.contract import rpc as calls
from opswire.runtime.db import create_engine
from opswire.runtime.rpc import RpcClient
from tests.ingest.support import Telemetry, eventually, running_ingest, sample


def hour_ago() -> datetime:
    return (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)


async def history(rpc: RpcClient, server: uuid.UUID, **query: Any) -> list[dict[str, Any]]:
    reply = await rpc.call_paged(calls.METRICS_HISTORY, calls.MetricsHistory(server_id=server, **query))
    return [item async for page in reply.pages() for item in page]


async def test_tiers_hold_avg_min_max_of_each_bucket(
    telemetry: Telemetry, rpc: RpcClient, ingest_settings: IngestSettings
) -> None:
    server = uuid.uuid4()
    t0 = hour_ago()
    # Minute 0: cpu 10, 20, 30 (disks /d0 and /d1); minute 1: cpu 50. Swap only on some.
    samples = [
        {**sample(server, t0, cpu=10, disks=(40, 80)), "swap_percent": 2.0},
        {**sample(server, t0 + timedelta(seconds=20), cpu=20, disks=(50, 70))},
        {**sample(server, t0 + timedelta(seconds=40), cpu=30, disks=(60, 60)), "swap_percent": 4.0},
        sample(server, t0 + timedelta(seconds=60), cpu=50),
    ]
    samples[1]["network"] = [
        {"interface": "eth0", "bytes_sent": 10, "bytes_recv": 100},
        {"interface": "eth1", "bytes_sent": 5, "bytes_recv": 50},
    ]
    async with running_ingest(ingest_settings.model_copy(update={"tier_interval_s": 0.1})):
        for item in samples:
            await telemetry.publish_sample(item)
        window = {"start": t0, "end": t0 + timedelta(hours=1)}

        async def minutes() -> list[dict[str, Any]]:
            return await history(rpc, server, resolution="1m", **window)

        points = await eventually(minutes, lambda p: [x["samples"] for x in p] == [3, 1])
        hours = await eventually(
            lambda: history(rpc, server, resolution="1h", **window),
            lambda p: [x["samples"] for x in p] == [4],
        )
    first = points[0]
    assert first["timestamp"] == t0.isoformat().replace("+00:00", "Z")
    assert (first["cpu_percent"], first["min"]["cpu_percent"], first["max"]["cpu_percent"]) == (
        pytest.approx(20),
        10,
        30,
    )
    assert first["swap_percent"] == pytest.approx(3) and first["max"]["swap_percent"] == 4
    assert first["disk_usage"] == [
        {"path": "/d0", "percent": pytest.approx(50)},
        {"path": "/d1", "percent": pytest.approx(70)},
    ]
    assert first["min"]["disk_usage"][1] == {"path": "/d1", "percent": 60}
    assert first["load_average"] == [pytest.approx(0.5), pytest.approx(0.25), pytest.approx(0.125)]
    # Network totals across interfaces: 20, 150, 20 bytes received.
    assert first["max"]["network_bytes_recv"] == 150 and first["min"]["network_bytes_recv"] == 20
    assert points[1]["cpu_percent"] == 50
    [hour] = hours
    assert hour["samples"] == 4 and hour["max"]["cpu_percent"] == 50
    assert hour["cpu_percent"] == pytest.approx(27.5)


async def test_rolling_up_again_counts_nothing_twice(
    telemetry: Telemetry, ingest_settings: IngestSettings, database_url: str
) -> None:
    server = uuid.uuid4()
    t0 = hour_ago()
    async with running_ingest(ingest_settings):
        for i in range(3):
            await telemetry.publish_sample(sample(server, t0 + timedelta(seconds=i), cpu=10 * i))
        await telemetry.wait_count("metrics", server, 3)
    engine = create_engine(database_url)
    try:
        touched = [(server, t0), (server, t0 + timedelta(seconds=2))]
        await rollup(engine, touched)
        await rollup(engine, touched)  # a redelivered batch, a second replica...
    finally:
        await engine.dispose()
    [row] = await telemetry.fetch(
        "SELECT samples, point FROM ingest.metrics_10m WHERE server_id = $1", server
    )
    assert row["samples"] == 3


async def test_samples_stored_before_a_restart_are_rolled_up_at_start(
    telemetry: Telemetry, ingest_settings: IngestSettings
) -> None:
    server = uuid.uuid4()
    t0 = hour_ago()
    slow = ingest_settings.model_copy(update={"tier_interval_s": 3600})
    async with running_ingest(slow):
        await telemetry.publish_sample(sample(server, t0))
        await telemetry.wait_count("metrics", server, 1)
    async with running_ingest(slow):
        rows = await eventually(
            lambda: telemetry.fetch("SELECT samples FROM ingest.metrics_1h WHERE server_id = $1", server),
            lambda rows: len(rows) == 1,
        )
    assert rows[0]["samples"] == 1


def test_default_resolution_keeps_about_a_thousand_points() -> None:
    now = datetime.now(UTC)
    assert choose_resolution(now - timedelta(hours=1), now, 5.0) == "raw"
    assert choose_resolution(now - timedelta(hours=6), now, 5.0) == "1m"
    assert choose_resolution(now - timedelta(days=3), now, 5.0) == "10m"
    assert choose_resolution(now - timedelta(days=30), now, 5.0) == "1h"


@pytest.mark.usefixtures("ingest")
async def test_retention_per_tier(telemetry: Telemetry, database_url: str) -> None:
    server = uuid.uuid4()
    old = datetime.now(UTC) - timedelta(days=10)
    for table in ("metrics_1m", "metrics_1h"):
        await telemetry.fetch(
            f"INSERT INTO ingest.{table} (server_id, bucket, samples, point) "
            "VALUES ($1, $2, 1, '{}'), ($1, now(), 1, '{}')",
            server,
            old,
        )
    engine = create_engine(database_url)
    try:
        deleted = await purge_tiers(engine, {"1m": 7, "10m": 90, "1h": 730})
    finally:
        await engine.dispose()
    assert deleted == 1
    assert len(await telemetry.fetch("SELECT 1 FROM ingest.metrics_1m WHERE server_id = $1", server)) == 1
    assert len(await telemetry.fetch("SELECT 1 FROM ingest.metrics_1h WHERE server_id = $1", server)) == 2
