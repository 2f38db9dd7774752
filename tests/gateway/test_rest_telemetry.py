"""REST /metrics and /logs: ownership, query validation and shapes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from opswire.contract import rpc as calls
from tests.gateway.stubs import Api, now_iso


def sample(server_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {
        "server_id": str(server_id),
        "cpu_percent": 12.5,
        "memory_percent": 40.0,
        "disk_usage": [{"path": "/", "total": 100, "used": 40, "free": 60, "percent": 40.0}],
        "network": [{"interface": "eth0", "bytes_sent": 1, "bytes_recv": 2}],
        "timestamp": now_iso(),
        "received_at": now_iso(),
        **extra,
    }


def log_line(server_id: uuid.UUID, level: str, message: str) -> dict[str, Any]:
    return {
        "server_id": str(server_id),
        "level": level,
        "message": message,
        "timestamp": now_iso(),
        "source": "/var/log/syslog",
        "received_at": now_iso(),
    }


async def test_latest_sample_is_the_bare_sample_with_extra_fields(api: Api) -> None:
    stored = sample(api.server_id, load_average=[0.1, 0.2, 0.3], gpu={"util": 3})
    await api.stubs.ok(calls.METRICS_LATEST, stored)
    response = await api.client.get(f"/api/v1/metrics/{api.server_id}", headers=api.headers)
    assert response.status_code == 200
    assert response.json() == stored
    assert api.stubs.calls(calls.METRICS_LATEST) == [{"server_id": str(api.server_id)}]


async def test_no_sample_yet_is_404(api: Api) -> None:
    await api.stubs.error(calls.METRICS_LATEST, "not_found", "No metrics yet")
    response = await api.client.get(f"/api/v1/metrics/{api.server_id}", headers=api.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "No metrics yet"}


@pytest.mark.parametrize("path", ["/metrics/{sid}", "/metrics/{sid}/history", "/logs/{sid}"])
async def test_someone_elses_server_is_404_and_ingest_is_not_asked(api: Api, path: str) -> None:
    await api.stubs.ok(calls.METRICS_LATEST, sample(api.server_id))
    await api.stubs.ok(calls.METRICS_HISTORY, [])
    await api.stubs.ok(calls.LOGS_QUERY, [])
    other = uuid.uuid4()
    response = await api.client.get("/api/v1" + path.format(sid=other), headers=api.headers)
    assert response.status_code == 404
    assert api.stubs.calls(calls.AUTH_AUTHORIZE) == [{"user_id": str(api.user_id), "server_id": str(other)}]
    assert not any(
        api.stubs.requests[key]
        for key in ("ingest.metrics.latest", "ingest.metrics.history", "ingest.logs.query")
    )


async def test_history_forwards_a_utc_window_and_limit(api: Api) -> None:
    samples = [sample(api.server_id), sample(api.server_id)]
    await api.stubs.ok(calls.METRICS_HISTORY, samples)
    response = await api.client.get(
        f"/api/v1/metrics/{api.server_id}/history",
        params={"start": "2024-05-01T10:00:00", "end": "2024-05-01T13:00:00+02:00", "limit": 5},
        headers=api.headers,
    )
    assert response.status_code == 200
    assert response.json() == samples
    [sent] = api.stubs.calls(calls.METRICS_HISTORY)
    assert sent["start"].startswith("2024-05-01T10:00:00") and sent["start"].endswith("Z")
    assert sent["end"].startswith("2024-05-01T11:00:00") and sent["end"].endswith("Z")
    assert sent["limit"] == 5


async def test_history_defaults_are_left_to_ingest(api: Api) -> None:
    await api.stubs.ok(calls.METRICS_HISTORY, [])
    response = await api.client.get(f"/api/v1/metrics/{api.server_id}/history", headers=api.headers)
    assert response.status_code == 200 and response.json() == []
    assert api.stubs.calls(calls.METRICS_HISTORY) == [
        {"server_id": str(api.server_id), "start": None, "end": None, "limit": 1000}
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 10_001},
        {"limit": "many"},
        {"start": "yesterday"},
        {"start": "2024-05-01T12:00:00Z", "end": "2024-05-01T12:00:00Z"},
        {"start": "2024-05-02T00:00:00Z", "end": "2024-05-01T00:00:00Z"},
    ],
)
@pytest.mark.parametrize("path", ["/metrics/{sid}/history", "/logs/{sid}"])
async def test_bad_queries_are_422(api: Api, path: str, params: dict[str, Any]) -> None:
    await api.stubs.ok(calls.METRICS_HISTORY, [])
    await api.stubs.ok(calls.LOGS_QUERY, [])
    response = await api.client.get(
        "/api/v1" + path.format(sid=api.server_id), params=params, headers=api.headers
    )
    assert response.status_code == 422
    assert api.stubs.calls(calls.METRICS_HISTORY) == api.stubs.calls(calls.LOGS_QUERY) == []


async def test_logs_level_is_case_insensitive_and_passed_on(api: Api) -> None:
    lines = [
        log_line(api.server_id, "error", "disk failing"),
        log_line(api.server_id, "warning", "hot"),
    ]
    await api.stubs.ok(calls.LOGS_QUERY, lines)
    response = await api.client.get(
        f"/api/v1/logs/{api.server_id}",
        params={"level": "WARNING", "limit": 10000},
        headers=api.headers,
    )
    assert response.status_code == 200
    assert response.json() == lines
    [sent] = api.stubs.calls(calls.LOGS_QUERY)
    assert (sent["level"], sent["limit"]) == ("warning", 10000)


@pytest.mark.parametrize("level", ["verbose", "", "5"])
async def test_unknown_log_level_is_422(api: Api, level: str) -> None:
    await api.stubs.ok(calls.LOGS_QUERY, [])
    response = await api.client.get(
        f"/api/v1/logs/{api.server_id}", params={"level": level}, headers=api.headers
    )
    assert response.status_code == 422
    assert api.stubs.calls(calls.LOGS_QUERY) == []


async def test_malformed_server_id_is_422_before_any_call(api: Api) -> None:
    response = await api.client.get("/api/v1/metrics/123", headers=api.headers)
    assert response.status_code == 422
    assert api.stubs.calls(calls.AUTH_AUTHORIZE) == []


async def test_ingest_down_is_503(api: Api) -> None:
    response = await api.client.get(f"/api/v1/metrics/{api.server_id}", headers=api.headers)
    assert response.status_code == 503
    assert "ingest" in response.json()["detail"]


async def test_ingest_hung_is_503(api: Api) -> None:
    await api.stubs.silent(calls.LOGS_QUERY)
    response = await api.client.get(f"/api/v1/logs/{api.server_id}", headers=api.headers)
    assert response.status_code == 503
    assert response.json() == {"detail": "The ingest service did not answer in time"}
    assert len(api.stubs.calls(calls.LOGS_QUERY)) == 1
