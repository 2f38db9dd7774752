"""Metrics history windows and retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ingest.retention import purge_old
from opswire.contract import rpc as calls
from opswire.runtime.db import create_engine
from opswire.runtime.rpc import RpcClient, RpcError
from tests.ingest.support import Telemetry, base_time, log_line, sample

pytestmark = pytest.mark.usefixtures("ingest")


def iso(value: datetime) -> str:
    return value.isoformat()


async def test_history_window_limit_and_order(telemetry: Telemetry, rpc: RpcClient) -> None:
    server = uuid.uuid4()
    t0 = base_time()
    stamps = [t0 + timedelta(seconds=10 * i) for i in range(10)]
    for ts in reversed(stamps):  # arrival order does not matter
        await telemetry.publish_sample(sample(server, ts, cpu=float(stamps.index(ts))))
    await telemetry.publish_sample(sample(server, datetime.now(UTC) - timedelta(hours=2)))
    await telemetry.wait_count("metrics", server, 11)

    async def history(**query: object) -> list[float]:
        items = await rpc.call(calls.METRICS_HISTORY, {"server_id": str(server), **query})
        return [item["cpu_percent"] for item in items]

    # Default window: the last hour ending now, ascending; the 2-hour-old sample is outside.
    assert await history() == [float(i) for i in range(10)]
    # start inclusive, end exclusive.
    assert await history(start=iso(stamps[2]), end=iso(stamps[5])) == [2.0, 3.0, 4.0]
    # limit keeps the newest N of the window, still ascending.
    assert await history(limit=3) == [7.0, 8.0, 9.0]
    assert await history(end=iso(stamps[5]), limit=2) == [3.0, 4.0]
    with pytest.raises(RpcError) as err:
        await history(start=iso(stamps[5]), end=iso(stamps[5]))
    assert err.value.code == "invalid"
    with pytest.raises(RpcError) as err:
        await history(limit=0)
    assert err.value.code == "invalid"


async def test_retention_deletes_only_old_rows(telemetry: Telemetry, database_url: str) -> None:
    server = uuid.uuid4()
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=1)
    for ts in (old, recent):
        await telemetry.publish_sample(sample(server, ts))
        await telemetry.publish_log(log_line(server, ts, "info", "hello"))
    await telemetry.wait_count("metrics", server, 2)
    await telemetry.wait_count("logs", server, 2)

    engine = create_engine(database_url)
    try:
        assert await purge_old(engine, retention_days=30) == (1, 1)
    finally:
        await engine.dispose()
    for table in ("metrics", "logs"):
        rows = await telemetry.fetch(f"SELECT timestamp FROM ingest.{table} WHERE server_id = $1", server)
        assert [r["timestamp"] for r in rows] == [recent]
