"""`opswire up`: the whole stack on one machine.

Starts an embedded nats-server and PostgreSQL unless NATS_URL / DATABASE_URL
are set, then the four services as child processes (output prefixed with the
service name), waits until the gateway reports ready and prints where
everything is. A child that dies is restarted with backoff. SIGINT/SIGTERM stop
every child, then the embedded servers, and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

import asyncpg
import httpx

from opswire.contract.subjects import Subjects
from opswire.launcher.credentials import Credentials, load_or_create
from opswire.launcher.embedded import EmbeddedNats, EmbeddedPostgres, free_port, missing_embedded
from opswire.launcher.supervisor import Child, Supervisor
from opswire.runtime.db import async_url
from opswire.runtime.natsconf import authorization_block
from opswire.runtime.permissions import Role

log = logging.getLogger("opswire.launcher.up")

SERVICE_ORDER: tuple[Role, ...] = ("auth", "ingest", "commands", "gateway")
READY_TIMEOUT_S = 90.0


def _jwt_secret(data_dir: Path) -> str:
    """OPSWIRE_JWT_SECRET, else one generated once and kept in the data dir (mode 600)."""
    if secret := os.environ.get("OPSWIRE_JWT_SECRET"):
        return secret
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret


async def _ensure_database(admin_url: str, name: str) -> str:
    plain = admin_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(plain)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, query = admin_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


async def _wait_ready(base_url: str, supervisor: Supervisor, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline and not supervisor.stopping:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base_url}/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"the stack was not ready within {timeout_s:.0f} s")


async def _up(host: str, port: int, data_dir: Path, demo: bool) -> int:
    started = time.monotonic()
    data_dir.mkdir(parents=True, exist_ok=True)
    embedded_nats: EmbeddedNats | None = None
    embedded_pg: EmbeddedPostgres | None = None
    supervisor = Supervisor()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, supervisor.request_stop)
    try:
        nats_url = os.environ.get("NATS_URL")
        credentials: Credentials | None = None
        if not nats_url:
            # Nothing connects without credentials, and each child only as its own role.
            credentials = load_or_create(data_dir / "credentials")
            subjects = Subjects(
                os.environ.get("OPSWIRE_SUBJECT_PREFIX", "opswire"),
                os.environ.get("OPSWIRE_STREAM_PREFIX", "OPSWIRE"),
            )
            embedded_nats = EmbeddedNats(
                data_dir / "nats",
                log_file=data_dir / "nats-server.log",
                authorization=authorization_block(subjects, credentials.passwords),
            )
            await asyncio.to_thread(embedded_nats.start)
            nats_url = embedded_nats.url
        database_url = os.environ.get("DATABASE_URL")
        if database_url:
            db_where = "DATABASE_URL"
        else:
            embedded_pg = EmbeddedPostgres(data_dir / "postgres")
            await asyncio.to_thread(embedded_pg.start)
            database_url = await _ensure_database(embedded_pg.url, "opswire")
            db_where = f"embedded PostgreSQL in {data_dir / 'postgres'}"
        env = {
            "NATS_URL": nats_url,
            "DATABASE_URL": async_url(database_url),
            "OPSWIRE_JWT_SECRET": _jwt_secret(data_dir),
            "OPSWIRE_HOST": host,
            "OPSWIRE_PORT": str(port),
            # The dashboard's address in notification links: this stack's, unless set.
            "OPSWIRE_PUBLIC_URL": os.environ.get("OPSWIRE_PUBLIC_URL") or f"http://{host}:{port}",
        }
        metrics_ports = _metrics_ports(host, data_dir)
        for name in SERVICE_ORDER:
            child_env = dict(env)
            child_env |= {"OPSWIRE_METRICS_HOST": host, "OPSWIRE_METRICS_PORT": str(metrics_ports[name])}
            if credentials is not None:
                child_env |= credentials.child_env(name)
            supervisor.add(Child(name, [sys.executable, "-m", "opswire", name], child_env))
        await supervisor.start()
        base_url = f"http://{host}:{port}"
        try:
            await _wait_ready(base_url, supervisor, READY_TIMEOUT_S)
        except TimeoutError as exc:
            if not supervisor.stopping:
                print(f"opswire: {exc}; see the output above", file=sys.stderr, flush=True)
                return 1
        if supervisor.stopping:
            return 0
        demo_note = ""
        if demo:
            from opswire.launcher.demo import start_demo_agent

            demo_note = await start_demo_agent(base_url, data_dir, supervisor)
        _banner(
            base_url,
            nats_url,
            db_where,
            data_dir,
            time.monotonic() - started,
            demo_note,
            credentials,
            {name: f"http://{host}:{p}" for name, p in metrics_ports.items()},
        )
        await supervisor.wait()
        return 0
    finally:
        await supervisor.stop()
        if embedded_pg is not None:
            await asyncio.to_thread(embedded_pg.stop)
        if embedded_nats is not None:
            await asyncio.to_thread(embedded_nats.stop)
        print("opswire: stopped", flush=True)


PROMETHEUS_TARGETS = "prometheus-targets.json"


def _metrics_ports(host: str, data_dir: Path) -> dict[Role, int]:
    """A free ops port per service (OPSWIRE_METRICS_PORT), also written to the data dir as a
    Prometheus file_sd target list (deploy/prometheus/prometheus.yml reads it)."""
    ports = {name: free_port(host) for name in SERVICE_ORDER}
    targets = [{"targets": [f"{host}:{port}"], "labels": {"service": name}} for name, port in ports.items()]
    (data_dir / PROMETHEUS_TARGETS).write_text(json.dumps(targets, indent=2) + "\n")
    return ports


def _banner(
    base_url: str,
    nats_url: str,
    db_where: str,
    data_dir: Path,
    took_s: float,
    demo_note: str,
    credentials: Credentials | None,
    ops_urls: dict[Role, str],
) -> None:
    nats_line = f"  NATS      {nats_url}"
    if credentials is not None:
        # Only the read-only door is printed: the services' secrets stay in their files.
        host_port = nats_url.removeprefix("nats://")
        subscriber = credentials.passwords["subscriber"]
        nats_line += (
            "   (credentials required)\n"
            f"            other systems connect read-only as: nats://subscriber:{subscriber}@{host_port}\n"
            f'            (user "subscriber", password in {credentials.file("subscriber").resolve()})'
        )
    lines = [
        "",
        f"opswire is up ({took_s:.1f} s)",
        f"  gateway   {base_url}   (API docs: {base_url}/docs)",
        nats_line,
        f"  database  {db_where}",
        f"  data      {data_dir.resolve()}",
        "  metrics   each service's /metrics, /health and /ready:",
        *(f"            {name:<9} {url}/metrics" for name, url in ops_urls.items()),
        f"            Prometheus targets: {(data_dir / PROMETHEUS_TARGETS).resolve()}",
        "",
        "Create a user and log in:",
        f"  curl -s -X POST {base_url}/api/v1/auth/register -H 'content-type: application/json' \\",
        '       -d \'{"email":"you@example.com","password":"a-long-password"}\'',
        f"  curl -s -X POST {base_url}/api/v1/auth/login -H 'content-type: application/json' \\",
        '       -d \'{"email":"you@example.com","password":"a-long-password"}\'',
    ]
    if demo_note:
        lines += ["", demo_note]
    lines += ["", "Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


def _refusal(host: str, port: int, data_dir: Path) -> str | None:
    """Why `opswire up` cannot start with these options, checked before anything starts."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / ".write-test").touch()
        (data_dir / ".write-test").unlink()
    except OSError as exc:
        return f"cannot use {data_dir} as the data dir: {exc.strerror}"
    try:
        with socket.socket() as probe:
            # As uvicorn binds: a port in TIME_WAIT after our own restart is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror} (choose another with --port/--host)"
    return None


def run_up(host: str, port: int, data_dir: str, demo: bool) -> int:
    if port == 0:
        port = free_port(host)
    missing = missing_embedded(not os.environ.get("NATS_URL"), not os.environ.get("DATABASE_URL"))
    if missing is not None:
        print(f"opswire up: {missing}", file=sys.stderr)
        return 2
    if (reason := _refusal(host, port, Path(data_dir))) is not None:
        print(f"opswire: {reason}", file=sys.stderr)
        return 2
    return asyncio.run(_up(host, port, Path(data_dir), demo))
