"""Pipeline benchmark: N simulated agents push metrics through a real stack for S seconds.

Starts an embedded PostgreSQL and `opswire up` (with its own secured NATS) on a free port,
creates a user, N servers and keys over REST, connects N agent WebSockets and D
dashboard WebSockets, then sends samples at --rate frames/s per agent (0 = as
fast as the socket takes them). Prints frames accepted/s, rows stored/s and
agent -> dashboard latency p50/p99.

    python bench/pipeline.py --agents 100 --rate 1 --seconds 20
    python bench/pipeline.py --agents 100 --rate 0 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import websockets
from harness import sample

from opswire.launcher.embedded import EmbeddedPostgres, free_port


async def provision(base: str, agents: int) -> tuple[str, list[tuple[str, str]]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        creds = {"email": f"bench-{os.getpid()}@example.com", "password": "bench-password"}
        (await http.post("/api/v1/auth/register", json=creds)).raise_for_status()
        token = (await http.post("/api/v1/auth/login", json=creds)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        servers = []
        for i in range(agents):
            server = (await http.post("/api/v1/servers", headers=headers, json={"name": f"bench-{i}"})).json()
            key = (
                await http.post(
                    "/api/v1/api-keys", headers=headers, json={"server_id": server["id"], "name": "bench"}
                )
            ).json()
            servers.append((server["id"], key["key"]))
        return token, servers


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Counters:
    def __init__(self) -> None:
        self.sent = 0
        self.errors = 0
        self.latencies_ms: list[float] = []


async def agent(
    ws_base: str, api_key: str, rate: float, seconds: float, counters: Counters, connected: asyncio.Barrier
) -> None:
    async with websockets.connect(f"{ws_base}/api/v1/agents/ws", max_size=2**20, compression=None) as ws:
        await ws.send(orjson.dumps({"type": "auth", "api_key": api_key}).decode())
        reply = orjson.loads(await ws.recv())
        assert reply["type"] == "auth_success", reply
        # Every agent connected before any sends: the handshakes are not measured under load.
        await connected.wait()
        until = time.monotonic() + seconds

        async def count_errors() -> None:
            # Frames are handled in order: the pong after the last sample means every
            # refusal (an error frame) for this agent has been counted.
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    kind = orjson.loads(raw).get("type")
                    if kind == "error":
                        counters.errors += 1
                    elif kind == "pong":
                        return

        reader = asyncio.create_task(count_errors())
        # Unique, increasing, recent timestamps (the table's key is (server_id, timestamp)).
        ts = datetime.now(UTC) - timedelta(minutes=4)
        interval = 1.0 / rate if rate > 0 else 0.0
        next_at = time.monotonic() + random.uniform(0, interval)
        while time.monotonic() < until:
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
            ts = max(ts + timedelta(microseconds=1), datetime.now(UTC))
            await ws.send(sample(ts))
            counters.sent += 1
            if not interval:
                await asyncio.sleep(0)  # let the other agents and the dashboards run
        await ws.send('{"type":"ping"}')
        await reader


async def dashboard(
    ws_base: str, server_id: str, token: str, counters: Counters, ready: asyncio.Event
) -> None:
    async with websockets.connect(f"{ws_base}/api/v1/ws/metrics/{server_id}", compression=None) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
        assert orjson.loads(await ws.recv())["type"] == "auth_success"
        ready.set()
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                frame = orjson.loads(raw)
                if frame.get("type") == "metrics" and "bench_sent_ns" in frame["data"]:
                    counters.latencies_ms.append((time.time_ns() - frame["data"]["bench_sent_ns"]) / 1e6)


async def stored_rows(db_url: str) -> int:
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM ingest.metrics"))
    finally:
        await conn.close()


async def run(args: argparse.Namespace, base: str, db_url: str) -> None:
    ws_base = base.replace("http://", "ws://")
    token, servers = await provision(base, args.agents)
    counters = Counters()
    dashboards = []
    for server_id, _ in servers[: args.dashboards]:
        ready = asyncio.Event()
        dashboards.append(asyncio.create_task(dashboard(ws_base, server_id, token, counters, ready)))
        await ready.wait()
    before = await stored_rows(db_url)
    connected = asyncio.Barrier(len(servers) + 1)
    agents = [
        asyncio.create_task(agent(ws_base, key, args.rate, args.seconds, counters, connected))
        for _, key in servers
    ]
    await connected.wait()
    started = time.monotonic()
    await asyncio.gather(*agents)
    send_s = time.monotonic() - started  # until the gateway has handled every frame
    accepted = counters.sent - counters.errors
    deadline = time.monotonic() + 120
    # Nothing to await: the database is polled until ingest has caught up.
    while (stored := await stored_rows(db_url) - before) < accepted and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    store_s = time.monotonic() - started
    for task in dashboards:
        task.cancel()
    lat = sorted(counters.latencies_ms)
    print(
        f"agents={args.agents} rate={'max' if args.rate == 0 else args.rate}/s seconds={args.seconds} "
        f"dashboards={args.dashboards}"
    )
    print(f"frames sent          {counters.sent} ({counters.errors} refused)")
    print(f"frames accepted/s    {accepted / send_s:,.0f}")
    print(f"rows stored          {stored} in {store_s:.1f} s -> {stored / store_s:,.0f} rows/s")
    mean = statistics.fmean(lat) if lat else float("nan")
    print(
        f"agent->dashboard ms  p50 {percentile(lat, 0.50):.1f}  p99 {percentile(lat, 0.99):.1f}  "
        f"(n={len(lat)}, mean {mean:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1.0, help="frames/s per agent; 0 = full speed")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--dashboards", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opswire-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        pg.start()
        port = free_port()
        # NATS as `opswire up` runs it (its own server, every service on its own identity).
        env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
        env |= {"DATABASE_URL": pg.url, "OPSWIRE_LOG_LEVEL": "WARNING"}
        log_path = Path(tmp) / "up.log"
        with log_path.open("w") as log_file:
            up = subprocess.Popen(
                [sys.executable, "-m", "opswire", "up", "--port", str(port), "--data-dir", f"{tmp}/data"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 120
            while "opswire is up" not in log_path.read_text():
                if up.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"opswire up did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            asyncio.run(run(args, f"http://127.0.0.1:{port}", pg.url))
        finally:
            up.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                up.wait(30)
            pg.stop()


if __name__ == "__main__":
    main()
