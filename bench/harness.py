"""What the benchmarks share: the two systems under test and a fleet of simulated agents.

`opswire_stack` runs `opswire up` (its own secured NATS, every service) on an
embedded PostgreSQL; `floor_stack` runs `bench/floor.py` on a bare
nats-server. Both yield a `Target`: where to connect, the gateway's process
(for CPU and RSS), how to count what was stored. A `Fleet` connects agents
(timing the connect + auth of all of them), makes them send samples at a rate
and collects agent -> dashboard latencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import nats
import orjson
import psutil
import websockets
from websockets.asyncio.client import ClientConnection

from opswire.launcher.embedded import EmbeddedNats, EmbeddedPostgres, free_port

BENCH = Path(__file__).resolve().parent
# The throughput figures measure the hot path, not the per-connection budgets or the
# handshake ceiling (one load generator on one address): those are lifted for them.
UNLIMITED = {
    "OPSWIRE_AGENT_SAMPLES_PER_S": "100000",
    "OPSWIRE_AGENT_BYTES_PER_S": str(1 << 40),
    "OPSWIRE_UNAUTHENTICATED_PER_ADDRESS": "100000",
    "OPSWIRE_PUBLISH_BUFFER_SIZE": "100000",
}
SERVERS_PER_USER = 50


@dataclass
class Target:
    name: str
    base: str
    gateway_pid: int
    stored: Callable[[], Awaitable[int | None]]  # rows (opswire) or stream messages (floor)
    stored_for: Callable[[list[str]], Awaitable[int]] | None = None  # rows of these servers (opswire)
    keys: list[str] = field(default_factory=list)  # API keys (any string for the floor)
    tokens: dict[str, str] = field(default_factory=dict)  # server id -> an access token of its owner

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://", 1)

    def process(self) -> psutil.Process:
        return psutil.Process(self.gateway_pid)


def sample(ts: datetime, padding: str = "") -> str:
    frame = {
        "type": "metrics",
        "cpu_percent": random.uniform(0, 100),
        "memory_percent": random.uniform(0, 100),
        "disk_usage": [
            {
                "path": "/",
                "total": 100_000_000_000,
                "used": 40_000_000_000,
                "free": 60_000_000_000,
                "percent": 40.0,
            }
        ],
        "network": [
            {
                "interface": "eth0",
                "bytes_sent": 123456,
                "bytes_recv": 654321,
                "packets_sent": 1000,
                "packets_recv": 2000,
            }
        ],
        "load_average": [0.5, 0.4, 0.3],
        "timestamp": ts.isoformat(),
        "bench_sent_ns": time.time_ns(),
    }
    if padding:
        frame["padding"] = padding
    return orjson.dumps(frame).decode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _wait_for_line(path: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{process.args!r} did not start:\n{path.read_text()[-3000:]}")
        time.sleep(0.2)


def _spawn(
    argv: list[str], log_path: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child with its output in `log_path` (or nowhere); a blocking call kept out of async code."""
    if log_path is None:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with log_path.open("w") as log_file:
        return subprocess.Popen(argv, env=env, stdout=log_file, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


async def _provision(base: str, servers: int) -> tuple[list[str], dict[str, str]]:
    """`servers` servers with a key each, spread over users of SERVERS_PER_USER servers."""
    keys: list[str] = []
    tokens: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for first in range(0, servers, SERVERS_PER_USER):
            creds = {"email": f"bench-{os.getpid()}-{first}@example.com", "password": "bench-password"}
            (await http.post("/api/v1/auth/register", json=creds)).raise_for_status()
            token = (await http.post("/api/v1/auth/login", json=creds)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}

            async def one(i: int, headers: dict[str, str] = headers, token: str = token) -> None:
                server = (await http.post("/api/v1/servers", headers=headers, json={"name": f"b{i}"})).json()
                key = (
                    await http.post(
                        "/api/v1/api-keys", headers=headers, json={"server_id": server["id"], "name": "bench"}
                    )
                ).json()
                keys.append(key["key"])
                tokens[server["id"]] = token

            await asyncio.gather(*(one(i) for i in range(first, min(first + SERVERS_PER_USER, servers))))
    return keys, tokens


@contextlib.asynccontextmanager
async def opswire_stack(servers: int, env: dict[str, str] | None = None) -> AsyncIterator[Target]:
    with tempfile.TemporaryDirectory(prefix="opswire-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg")
        pg.start()
        port = free_port()
        child_env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
        child_env |= {"DATABASE_URL": pg.url, "OPSWIRE_LOG_LEVEL": "WARNING", **(env or {})}
        log_path = Path(tmp) / "up.log"
        up = _spawn(
            [sys.executable, "-m", "opswire", "up", "--port", str(port), "--data-dir", f"{tmp}/data"],
            log_path,
            child_env,
        )
        try:
            await asyncio.to_thread(_wait_for_line, log_path, "opswire is up", up, 180)
            gateway = next(
                p for p in psutil.Process(up.pid).children(recursive=True) if "gateway" in p.cmdline()
            )
            db = await asyncpg.connect(pg.url.replace("postgresql+asyncpg://", "postgresql://"))

            async def rows() -> int:
                return int(await db.fetchval("SELECT count(*) FROM ingest.metrics"))

            async def rows_for(server_ids: list[str]) -> int:
                query = "SELECT count(*) FROM ingest.metrics WHERE server_id = ANY($1::uuid[])"
                return int(await db.fetchval(query, server_ids))

            base = f"http://127.0.0.1:{port}"
            keys, tokens = await _provision(base, servers)
            try:
                yield Target("opswire", base, gateway.pid, rows, rows_for, keys, tokens)
            finally:
                await db.close()
        finally:
            _stop(up)
            pg.stop()


@contextlib.asynccontextmanager
async def floor_stack(servers: int) -> AsyncIterator[Target]:
    with tempfile.TemporaryDirectory(prefix="opswire-floor-") as tmp:
        broker = EmbeddedNats(Path(tmp) / "nats")
        await asyncio.to_thread(broker.start)
        port = free_port()
        log_path = Path(tmp) / "floor.log"
        nats_url = broker.url
        floor = _spawn(
            [sys.executable, str(BENCH / "floor.py"), "--port", str(port), "--nats", nats_url], log_path
        )
        try:
            await _until_healthy(f"http://127.0.0.1:{port}/health", floor)
            nc = await nats.connect(nats_url)

            async def messages() -> int:
                return int((await nc.jetstream().stream_info("FLOOR_METRICS")).state.messages)

            keys = [f"floor-key-{i}" for i in range(servers)]
            try:
                yield Target("floor", f"http://127.0.0.1:{port}", floor.pid, messages, keys=keys)
            finally:
                await nc.close()
        finally:
            _stop(floor)
            broker.stop()


async def _until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{process.args!r} did not start")
            await asyncio.sleep(0.2)


@dataclass
class Agent:
    ws: ClientConnection
    server_id: str
    sent: int = 0
    refused: int = 0
    # Unique, increasing, recent timestamps (stored samples are keyed by (server, timestamp)).
    ts: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(minutes=4))

    def next_ts(self) -> datetime:
        self.ts = max(self.ts + timedelta(microseconds=1), datetime.now(UTC))
        return self.ts


async def connect_agent(target: Target, key: str) -> Agent:
    ws = await websockets.connect(
        f"{target.ws}/api/v1/agents/ws",
        max_size=2**20,
        compression=None,
        open_timeout=120,
        ping_interval=None,
    )
    await ws.send(orjson.dumps({"type": "auth", "api_key": key}).decode())
    reply = orjson.loads(await ws.recv())
    if reply.get("type") != "auth_success":
        raise RuntimeError(f"agent not authenticated: {reply}")
    return Agent(ws, reply["server_id"])


async def connect_all(target: Target, keys: list[str], parallel: int = 500) -> tuple[list[Agent], float]:
    """Connect and authenticate an agent per key; returns them and the seconds it took for all."""
    gate = asyncio.Semaphore(parallel)  # the client's own limit, the same for every target

    async def one(key: str) -> Agent:
        async with gate:
            return await connect_agent(target, key)

    started = time.monotonic()
    agents = await asyncio.gather(*(one(key) for key in keys))
    return list(agents), time.monotonic() - started


# Flat out, an agent sends a ping every PING_EVERY samples and keeps at most PINGS_AHEAD
# of them unanswered: what it has sent is then at most ~PING_EVERY * PINGS_AHEAD frames
# ahead of what the gateway has read. Unbounded, the kernel's socket buffers hold tens of
# seconds of frames, the server's keepalive ping times out behind them, and frames counted
# as sent were never read (nor refused).
PING_EVERY = 50
PINGS_AHEAD = 4


async def drive(agent: Agent, rate: float, seconds: float, padding: str = "") -> None:
    """Send samples at `rate`/s (0: as fast as the gateway reads them), then ping; count
    refusals. Every sample counted in `sent` was read by the gateway: the pong after the
    last one proves it."""
    credit = asyncio.Semaphore(PINGS_AHEAD)

    async def count_refusals() -> None:
        # Frames are handled in order: a pong says everything before its ping was read.
        try:
            async for raw in agent.ws:
                kind = orjson.loads(raw).get("type")
                if kind == "error":
                    agent.refused += 1
                elif kind == "pong":
                    credit.release()
                    if done:
                        return
        except websockets.ConnectionClosed:
            pass
        for _ in range(PINGS_AHEAD):  # the sender must not wait on pongs that cannot come
            credit.release()

    done = False
    reader = asyncio.create_task(count_refusals())
    interval = 1.0 / rate if rate > 0 else 0.0
    until = time.monotonic() + seconds
    next_at = time.monotonic() + random.uniform(0, interval)
    sent = 0
    try:
        while time.monotonic() < until:
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
            await agent.ws.send(sample(agent.next_ts(), padding))
            sent += 1
            if not interval and sent % PING_EVERY == 0:
                await credit.acquire()
                await agent.ws.send('{"type":"ping"}')
            if not interval:
                await asyncio.sleep(0)  # let the other agents and the dashboards run
        for _ in range(PINGS_AHEAD):  # every ping answered: all was read
            await credit.acquire()
        done = True
        await agent.ws.send('{"type":"ping"}')
        await reader
        if agent.ws.close_code is not None:
            raise RuntimeError(
                f"agent {agent.server_id} was closed during the run: "
                f"{agent.ws.close_code} {agent.ws.close_reason}"
            )
        agent.sent += sent
    except websockets.ConnectionClosed as exc:
        reader.cancel()
        raise RuntimeError(f"agent {agent.server_id} disconnected during the run: {exc}") from exc


@contextlib.asynccontextmanager
async def dashboards(target: Target, server_ids: list[str]) -> AsyncIterator[list[float]]:
    """Dashboards on these servers; yields the list their agent -> dashboard latencies (ms) go to."""
    latencies: list[float] = []
    sockets = []
    for sid in server_ids:
        ws = await websockets.connect(
            f"{target.ws}/api/v1/ws/metrics/{sid}", compression=None, max_size=None, ping_interval=None
        )
        await ws.send(orjson.dumps({"type": "auth", "token": target.tokens.get(sid, "floor")}).decode())
        reply = orjson.loads(await ws.recv())
        if reply.get("type") != "auth_success":
            raise RuntimeError(f"dashboard not authenticated: {reply}")
        sockets.append(ws)

    since = time.time_ns()  # the latest stored sample, sent first, is not a live one

    async def read(ws: ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                frame = orjson.loads(raw)
                data = frame.get("data") or {}
                if frame.get("type") == "metrics" and data.get("bench_sent_ns", 0) > since:
                    latencies.append((time.time_ns() - data["bench_sent_ns"]) / 1e6)

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    try:
        yield latencies
    finally:
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)


async def caught_up(target: Target, expected: int, timeout_s: float = 120) -> tuple[int, float]:
    """Wait (polling: nothing to await) until `expected` more are stored; (stored, seconds)."""
    started = time.monotonic()
    stored = 0
    while time.monotonic() - started < timeout_s:
        stored = await target.stored() or 0
        if stored >= expected:
            break
        await asyncio.sleep(0.25)
    return stored, time.monotonic() - started


async def close_all(agents: list[Agent]) -> None:
    await asyncio.gather(*(a.ws.close() for a in agents), return_exceptions=True)
