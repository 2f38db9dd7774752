"""History query benchmark: 30 days of a 5 s server (518,400 samples), answered by ingest.

Fills an embedded PostgreSQL with the samples (in SQL), rolls them up into the
tiers, starts ingest in-process against an embedded nats-server, and times over RPC
(medians of --repeat calls, each to the last item of the last page):
the 30-day history at its default resolution, and `limit=10000` raw samples.

    python bench/history_query.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import nats

from ingest.app import create_app
from ingest.settings import IngestSettings
from ingest.tiers import rollup
from opswire.contract import rpc as calls
from opswire.contract.subjects import Subjects
from opswire.launcher.embedded import EmbeddedNats, EmbeddedPostgres
from opswire.runtime.db import create_engine
from opswire.runtime.rpc import RpcClient

FILL = """
INSERT INTO ingest.metrics (server_id, timestamp, received_at, cpu_percent, memory_percent, data)
SELECT $1::uuid, ts, ts, 50 + 40 * sin(i / 500.0), 40, jsonb_build_object(
    'server_id', $1::text, 'cpu_percent', 50 + 40 * sin(i / 500.0), 'memory_percent', 40,
    'disk_usage', jsonb_build_array(jsonb_build_object('path', '/', 'total', 100, 'used', 40,
                                                       'free', 60, 'percent', 40)),
    'network', jsonb_build_array(jsonb_build_object('interface', 'eth0', 'bytes_sent', i,
                                                    'bytes_recv', 2 * i)),
    'load_average', jsonb_build_array(0.5, 0.4, 0.3), 'swap_percent', 1.0,
    'timestamp', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'received_at', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
FROM generate_series(0, $3 - 1) AS i,
     LATERAL (SELECT $2::timestamptz + make_interval(secs => 5 * i) AS ts) AS t
"""


async def timed(rpc: RpcClient, request: calls.MetricsHistory, repeat: int) -> tuple[float, int]:
    runs, count = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        reply = await rpc.call_paged(calls.METRICS_HISTORY, request)
        count = sum([len(page) async for page in reply.pages()])
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000, count


async def bench(args: argparse.Namespace, nats_url: str, db_url: str) -> None:
    settings = IngestSettings.model_validate(
        {"nats_url": nats_url, "database_url": db_url, "log_level": "WARNING"}
    )
    app = create_app(settings)
    await app.start()  # migrations first, so the tables exist
    print("ingest started", flush=True)
    server = uuid.uuid4()
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=args.days)
    count = args.days * 86_400 // 5
    plain = db_url.replace("+asyncpg", "", 1)
    db = await asyncpg.connect(plain)
    filling = time.perf_counter()
    day = 86_400 // 5
    for first in range(0, count, day):  # a day per statement: one huge INSERT spills
        await db.execute(FILL, server, start + timedelta(seconds=5 * first), min(day, count - first))
    await db.execute("ANALYZE ingest.metrics")
    await db.close()
    print(f"filled {count:,} samples in {time.perf_counter() - filling:.0f} s", flush=True)
    engine = create_engine(db_url)
    minutes = [(server, start + timedelta(minutes=m)) for m in range(args.days * 24 * 60)]
    for i in range(0, len(minutes), 1440):  # a day at a time
        await rollup(engine, minutes[i : i + 1440])
    await engine.dispose()
    print(f"... and rolled them up in {time.perf_counter() - filling:.0f} s in all", flush=True)
    nc = await nats.connect(nats_url)
    rpc = RpcClient(nc, Subjects(), timeout_s=30)
    month = calls.MetricsHistory(server_id=server, start=start, end=end)
    ms, points = await timed(rpc, month, args.repeat)
    print(f"{args.days}-day history, default resolution: {points} points in {ms:.0f} ms (target < 200 ms)")
    raw = calls.MetricsHistory(server_id=server, start=start, end=end, limit=10_000, resolution="raw")
    ms, points = await timed(rpc, raw, args.repeat)
    print(f"limit=10000 raw: {points} samples in {ms:.0f} ms (target < 1000 ms)")
    await nc.close()
    await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opswire-history-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        server = EmbeddedNats(Path(tmp) / "nats")
        pg.start()
        server.start()
        try:
            asyncio.run(bench(args, server.url, pg.url))
        finally:
            server.stop()
            pg.stop()


if __name__ == "__main__":
    main()
