"""PostgreSQL goes away: every REST route answers 503 with a clear detail (never 500), the
services say so once per interval without tracebacks, and nothing accepted is lost."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from opswire.launcher.embedded import EmbeddedPostgres
from tests.helpers.backends import Namespace, create_database
from tests.helpers.client import Api, Socket, eventually, log_frame, metrics_frame
from tests.helpers.stack import Stack, running_stack


@pytest.fixture
async def own_postgres() -> AsyncIterator[EmbeddedPostgres]:
    # Not under pytest's tmp dir (mode 0700): see tests/helpers/backends.postgres_server.
    root = Path(tempfile.mkdtemp(prefix="opswire-test-pg-outage-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "pg")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def stack_on_own_postgres(
    nats_url: str, own_postgres: EmbeddedPostgres, jwt_secret: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    database_url = await create_database(own_postgres.url)
    async with running_stack(nats_url, database_url, Namespace.new(), jwt_secret, tmp_path) as stack:
        yield stack


def routes(server_id: str) -> list[tuple[str, str, dict[str, object] | None]]:
    """A route of every resource, reads and writes."""
    return [
        ("GET", "/servers", None),
        ("GET", f"/servers/{server_id}", None),
        ("POST", "/servers", {"name": "db-1"}),
        ("PUT", f"/servers/{server_id}", {"name": "renamed"}),
        ("GET", f"/api-keys?server_id={server_id}", None),
        ("POST", "/api-keys", {"server_id": server_id, "name": "second"}),
        ("GET", "/auth/me", None),
        ("GET", f"/metrics/{server_id}", None),
        ("GET", f"/metrics/{server_id}/history", None),
        ("GET", f"/logs/{server_id}", None),
        ("GET", "/alerts", None),
        ("GET", "/alerts/thresholds", None),
        ("GET", f"/commands/{server_id}/history", None),
        ("POST", f"/commands/{server_id}", {"command": "true"}),
        ("GET", "/audit", None),
    ]


async def test_database_outage_is_503_everywhere_and_told_once(
    own_postgres: EmbeddedPostgres, stack_on_own_postgres: Stack
) -> None:
    stack = stack_on_own_postgres
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        api = await Api.new_user(http)
        server_id, key = await api.new_server_with_key()
        agent = await Socket.agent(stack.ws_url, key)
        start = datetime.now(UTC) - timedelta(minutes=1)
        await agent.send(metrics_frame(timestamp=start.isoformat()))
        await eventually(lambda: _count(api, server_id, start, 1))

        await asyncio.to_thread(own_postgres.stop)
        # Accepted while the database is down: stored once it is back.
        sent_during_outage = 20
        for i in range(1, sent_during_outage + 1):
            await agent.send(metrics_frame(timestamp=(start + timedelta(seconds=i)).isoformat()))
            await agent.send(log_frame(f"line {i}"))
        answers = {
            f"{method} {path}": await api.request(method, path, json=body)
            for method, path, body in routes(server_id)
        }
        login = await http.post(
            "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever123"}
        )
        answers["POST /auth/login"] = login
        statuses = {route: reply.status_code for route, reply in answers.items()}
        assert statuses == dict.fromkeys(answers, 503)
        details = {reply.json()["detail"] for reply in answers.values()}
        assert details and all("unavailable" in detail.lower() for detail in details), details
        ready = await http.get("/ready")
        assert ready.status_code == 503

        await asyncio.to_thread(own_postgres.start)
        await eventually(lambda: _count(api, server_id, start, 1 + sent_during_outage), timeout_s=60)
        await agent.close()

    for service in ("auth", "ingest", "commands", "gateway"):
        text = (stack.log_dir / f"{service}.log").read_text(errors="replace")
        assert "Traceback" not in text, f"{service} logged a traceback:\n{stack.log_tail(service)}"
        # Once per consumer/report per interval, not once per batch or request.
        warnings = [line for line in text.splitlines() if " WARNING " in line]
        assert len(warnings) <= 12, f"{service}: {len(warnings)} warnings\n" + "\n".join(warnings)


async def _count(api: Api, server_id: str, start: datetime, expected: int) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        reply = await api.get(
            f"/metrics/{server_id}/history", params={"start": start.isoformat(), "limit": 10000}
        )
        return reply.status_code == 200 and len(reply.json()) >= expected
    return False
