"""History answers of any allowed size, in pages under max_payload, and client cursors."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient

from opswire.contract import rpc as calls
from opswire.runtime.rpc import PagedReply, RpcClient, RpcError
from tests.ingest.support import Telemetry, base_time

pytestmark = pytest.mark.usefixtures("ingest")


async def insert_samples(
    telemetry: Telemetry, server: uuid.UUID, t0: datetime, count: int, padding: int = 0
) -> None:
    """`count` samples 1 s apart from `t0`, each with `padding` bytes of extra field."""
    await telemetry.fetch(
        """
        INSERT INTO ingest.metrics (server_id, timestamp, received_at, cpu_percent,
                                    memory_percent, data)
        SELECT $1::uuid, ts, ts, i % 100, 50,
               jsonb_build_object('server_id', $1::text, 'seq', i,
                                  'timestamp', to_char(ts AT TIME ZONE 'UTC',
                                                       'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                  'padding', repeat('x', $4))
        FROM generate_series(0, $3 - 1) AS i,
             LATERAL (SELECT $2::timestamptz + make_interval(secs => i) AS ts) AS t
        """,
        server,
        t0,
        count,
        padding,
    )


async def everything(reply: PagedReply) -> tuple[list[Any], int]:
    items: list[Any] = []
    pages = 0
    async for page in reply.pages():
        items += page
        pages += 1
    return items, pages


async def test_limit_10000_returns_every_sample_in_pages(
    telemetry: Telemetry, rpc: RpcClient, nc: NatsClient
) -> None:
    server = uuid.uuid4()
    t0 = base_time() - timedelta(hours=3)
    await insert_samples(telemetry, server, t0, 10_500, padding=300)
    request = calls.MetricsHistory(
        server_id=server, start=t0, end=t0 + timedelta(hours=4), limit=10_000, resolution="raw"
    )
    items, pages = await everything(await rpc.call_paged(calls.METRICS_HISTORY, request))
    # The newest 10,000 of the window, ascending, none twice: far more than one reply holds.
    assert [item["seq"] for item in items] == list(range(500, 10_500))
    assert pages > 1
    assert 10_000 * 300 > nc.max_payload


async def test_big_samples_page_under_max_payload(
    telemetry: Telemetry, rpc: RpcClient, nc: NatsClient
) -> None:
    server = uuid.uuid4()
    t0 = base_time()
    big = nc.max_payload // 3  # three of them do not fit one reply
    await insert_samples(telemetry, server, t0, 12, padding=big)
    request = calls.MetricsHistory(server_id=server, start=t0, end=t0 + timedelta(minutes=1), limit=10_000)
    items, pages = await everything(await rpc.call_paged(calls.METRICS_HISTORY, request))
    assert [item["seq"] for item in items] == list(range(12))
    assert all(len(item["padding"]) == big for item in items)
    assert pages >= 6


async def test_metrics_cursor_leads_to_older_samples(telemetry: Telemetry, rpc: RpcClient) -> None:
    server = uuid.uuid4()
    t0 = base_time()
    await insert_samples(telemetry, server, t0, 25)
    window = {"start": t0, "end": t0 + timedelta(minutes=5)}
    seen: list[list[int]] = []
    cursor: str | None = None
    while True:
        request = calls.MetricsHistory(server_id=server, limit=10, cursor=cursor, **window)
        reply = await rpc.call_paged(calls.METRICS_HISTORY, request)
        items, _ = await everything(reply)
        seen.append([item["seq"] for item in items])
        if reply.more is None:
            break
        cursor = reply.more
    assert seen == [list(range(15, 25)), list(range(5, 15)), list(range(5))]


async def test_logs_cursor_pages_through_equal_timestamps(telemetry: Telemetry, rpc: RpcClient) -> None:
    server = uuid.uuid4()
    t0 = base_time()
    await telemetry.fetch(
        """
        INSERT INTO ingest.logs (server_id, timestamp, received_at, level, message, digest)
        SELECT $1::uuid, $2::timestamptz, $2::timestamptz, 20, 'line ' || i, md5(i::text)
        FROM generate_series(0, 24) AS i
        """,
        server,
        t0,
    )
    messages: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        request = calls.LogsQuery(server_id=server, limit=10, cursor=cursor)
        reply = await rpc.call_paged(calls.LOGS_QUERY, request)
        items, _ = await everything(reply)
        messages += [item["message"] for item in items]
        if reply.more is None:
            break
        cursor = reply.more
    # All 25 share one timestamp: the keyset still gives each exactly once.
    assert sorted(messages) == sorted(f"line {i}" for i in range(25))


async def test_a_malformed_cursor_is_invalid(rpc: RpcClient) -> None:
    with pytest.raises(RpcError) as refused:
        await rpc.call(calls.LOGS_QUERY, {"server_id": str(uuid.uuid4()), "cursor": "bm90IG91cnM="})
    assert refused.value.code == "invalid"
