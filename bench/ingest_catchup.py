"""Ingest catch-up benchmark: a backlog of N samples in JetStream, stored by `opswire ingest`,
beside the floor of plain asyncpg COPY of the same rows (issue 10, "ingest catch-up").

Starts an embedded nats-server and PostgreSQL, publishes N gateway-shaped samples
(1 s apart, over --servers servers) while no ingest runs, then starts `opswire ingest`
and times it from its first stored row until all N are stored. The floor copies the
same rows, already built, into a table shaped like `ingest.metrics` with
`copy_records_to_table` in batches of --batch rows, one transaction each.

It also prints the CPU time the ingest process spent per stored row over the same
span: on a shared machine rows/s swing with the load, CPU per row much less.

    python bench/ingest_catchup.py              # 200,000 samples
    python bench/ingest_catchup.py --samples 50000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats
import orjson
import psutil

from opswire.contract.subjects import Subjects
from opswire.launcher.embedded import EmbeddedNats, EmbeddedPostgres
from opswire.runtime.nats import ensure_streams

COLUMNS = ("server_id", "timestamp", "received_at", "cpu_percent", "memory_percent", "data")


def sample(server_id: str, ts: datetime, i: int) -> dict[str, Any]:
    """What the gateway publishes for an ordinary agent sample (~800 bytes)."""
    stamp = ts.isoformat().replace("+00:00", "Z")
    return {
        "server_id": server_id,
        "cpu_percent": float(i % 100),
        "memory_percent": 40.0 + (i % 7),
        "disk_usage": [
            {
                "path": "/",
                "total": 100_000_000_000,
                "used": 40_000_000_000,
                "free": 60_000_000_000,
                "percent": 40.0,
            },
            {
                "path": "/data",
                "total": 500_000_000_000,
                "used": 100_000_000_000,
                "free": 400_000_000_000,
                "percent": 20.0,
            },
        ],
        "network": [
            {
                "interface": "eth0",
                "bytes_sent": 123_456 + i,
                "bytes_recv": 654_321 + i,
                "packets_sent": 1000,
                "packets_recv": 2000,
            }
        ],
        "load_average": [0.5, 0.4, 0.3],
        "swap_percent": 1.5,
        "uptime_seconds": 86_400.0 + i,
        "timestamp": stamp,
        "received_at": stamp,
    }


def backlog(count: int, servers: int) -> list[tuple[str, bytes, dict[str, Any]]]:
    ids = [str(uuid.uuid4()) for _ in range(servers)]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=count // servers + 60)
    out = []
    for i in range(count):
        server_id = ids[i % servers]
        data = sample(server_id, start + timedelta(seconds=i // servers), i)
        out.append((server_id, orjson.dumps(data), data))
    return out


async def publish(nats_url: str, subjects: Subjects, items: list[tuple[str, bytes, Any]]) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, subjects)
    for n, (server_id, payload, _) in enumerate(items, 1):
        # Core publishes land in the stream too; flushing in steps keeps the server ahead.
        await nc.publish(subjects.metrics(server_id), payload)
        if n % 5000 == 0:
            await nc.flush()
    await nc.flush()
    # Nothing to await: the stream is polled until it holds the whole backlog.
    while (await js.stream_info(subjects.metrics_stream)).state.messages < len(items):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    await nc.close()


async def count_rows(db: asyncpg.Connection, table: str) -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM {table}"))


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def run_ingest(
    nats_url: str, db_url: str, subjects: Subjects, total: int, log: Path
) -> tuple[float, float]:
    """Rows/s of `opswire ingest` from its first stored row to the last, and its CPU µs per row."""
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "DATABASE_URL": db_url,
        "OPSWIRE_SUBJECT_PREFIX": subjects.prefix,
        "OPSWIRE_STREAM_PREFIX": subjects.stream_prefix,
        "OPSWIRE_LOG_LEVEL": "WARNING",
    }
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "opswire", "ingest", env=env, stdout=out, stderr=subprocess.STDOUT
        )
    ingest = psutil.Process(proc.pid)
    db = await asyncpg.connect(db_url)
    try:
        first_at = first = None
        cpu_at_first = 0.0
        deadline = time.monotonic() + 600
        # Nothing to await across processes: the table is polled.
        while time.monotonic() < deadline:
            try:
                stored = await count_rows(db, "ingest.metrics")
            except asyncpg.UndefinedTableError:
                stored = 0
            now = time.monotonic()
            if stored and first_at is None:
                first_at, first, cpu_at_first = now, stored, _cpu_s(ingest)
            if stored >= total:
                assert first_at is not None and first is not None
                rows = max(stored - first, 1)
                cpu_us = (_cpu_s(ingest) - cpu_at_first) / rows * 1e6
                return rows / max(now - first_at, 1e-9), cpu_us
            if proc.returncode is not None:
                raise SystemExit(f"opswire ingest exited; see {log}")
            await asyncio.sleep(0.05)
        raise SystemExit("ingest did not catch up within 600 s")
    finally:
        await db.close()
        proc.terminate()
        await proc.wait()


async def run_floor(db_url: str, items: list[tuple[str, bytes, dict[str, Any]]], batch: int) -> float:
    """Rows/s of asyncpg COPY of the same rows into a table shaped like ingest.metrics."""
    records = [
        (
            uuid.UUID(server_id),
            datetime.fromisoformat(d["timestamp"]),
            datetime.fromisoformat(d["received_at"]),
            d["cpu_percent"],
            d["memory_percent"],
            payload.decode(),
        )
        for server_id, payload, d in items
    ]
    db = await asyncpg.connect(db_url)
    try:
        await db.execute("DROP TABLE IF EXISTS public.floor_metrics")
        await db.execute("CREATE TABLE public.floor_metrics (LIKE ingest.metrics INCLUDING ALL)")
        started = time.monotonic()
        for i in range(0, len(records), batch):
            async with db.transaction():
                await db.copy_records_to_table(
                    "floor_metrics",
                    records=records[i : i + batch],
                    columns=COLUMNS,
                    schema_name="public",
                )
        return len(records) / (time.monotonic() - started)
    finally:
        await db.close()


async def bench(args: argparse.Namespace, tmp: Path, nats_url: str, db_url: str) -> None:
    ours, floors, cpus = [], [], []
    for round_ in range(args.rounds):
        subjects = Subjects(f"bench{round_}", f"BENCH{round_}")
        items = backlog(args.samples, args.servers)
        await publish(nats_url, subjects, items)
        db = await asyncpg.connect(db_url)
        await db.execute("DROP SCHEMA IF EXISTS ingest CASCADE")
        await db.close()
        rate, cpu_us = await run_ingest(nats_url, db_url, subjects, args.samples, tmp / "ingest.log")
        ours.append(rate)
        cpus.append(cpu_us)
        floors.append(await run_floor(db_url, items, args.batch))
        print(
            f"round {round_ + 1}: opswire {rate:,.0f} rows/s ({cpu_us:.0f} µs ingest CPU/row), "
            f"floor {floors[-1]:,.0f} rows/s"
        )
    mine, floor, cpu = (sorted(xs)[len(xs) // 2] for xs in (ours, floors, cpus))
    print(
        f"ingest catch-up of {args.samples:,} samples: opswire {mine:,.0f} rows/s, "
        f"asyncpg COPY floor {floor:,.0f} rows/s, ratio {mine / floor:.3f}, "
        f"ingest CPU {cpu:.0f} µs/row (medians of {args.rounds})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000, help="rows per COPY of the floor")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opswire-catchup-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        server = EmbeddedNats(Path(tmp) / "nats")
        pg.start()
        server.start()
        try:
            asyncio.run(bench(args, Path(tmp), server.url, pg.url.replace("+asyncpg", "", 1)))
        finally:
            server.stop()
            pg.stop()


if __name__ == "__main__":
    main()
