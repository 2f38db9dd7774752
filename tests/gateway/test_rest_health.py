"""GET /health and GET /ready."""

from __future__ import annotations

from opswire.contract import rpc as calls
from tests.gateway.stubs import Api


async def test_health_needs_nothing(api: Api) -> None:
    response = await api.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_every_service_answers(api: Api) -> None:
    for ping in calls.PINGS:
        await api.stubs.ok(ping, {"status": "ok"})
    response = await api.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "nats": "connected",
        "services": {"auth": "ok", "ingest": "ok", "commands": "ok"},
    }


async def test_not_ready_names_the_missing_service(api: Api) -> None:
    await api.stubs.ok(calls.AUTH_PING, {})
    await api.stubs.ok(calls.COMMANDS_PING, {})
    response = await api.client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["services"] == {"auth": "ok", "ingest": "unavailable", "commands": "ok"}
    assert body["detail"] == "Not answering: ingest"


async def test_not_ready_when_a_service_hangs(api: Api) -> None:
    await api.stubs.ok(calls.AUTH_PING, {})
    await api.stubs.ok(calls.INGEST_PING, {})
    await api.stubs.silent(calls.COMMANDS_PING)
    response = await api.client.get("/ready")
    assert response.status_code == 503
    assert response.json()["services"]["commands"] == "unavailable"


async def test_not_ready_with_no_services(api: Api) -> None:
    response = await api.client.get("/ready")
    assert response.status_code == 503
    assert set(response.json()["services"].values()) == {"unavailable"}
