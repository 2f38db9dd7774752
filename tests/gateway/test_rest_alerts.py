"""REST /alerts, /alerts/thresholds and /audit."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from opswire.contract import rpc as calls
from opswire.runtime.rpc import NotFound, RpcError
from tests.gateway.stubs import Api, now_iso


def threshold(server_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "server_id": str(server_id),
        "metric_type": "cpu",
        "comparison": "gt",
        "threshold_value": 90.0,
        "duration_s": 0,
        "enabled": True,
        "created_at": now_iso(),
        **fields,
    }


def alert(server_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "server_id": str(server_id),
        "threshold_id": None,
        "metric_type": "cpu",
        "comparison": "gt",
        "threshold_value": 90.0,
        "value": 97.0,
        "status": "active",
        "message": "cpu above 90",
        "created_at": now_iso(),
        **fields,
    }


async def test_create_threshold_checks_ownership_then_is_201(api: Api) -> None:
    created = threshold(api.server_id, threshold_value=80.0)
    await api.stubs.ok(calls.THRESHOLDS_CREATE, created)
    body = {
        "server_id": str(api.server_id),
        "metric_type": "cpu",
        "comparison": "gt",
        "threshold_value": 80,
    }
    async with api.audit_events() as next_event:
        response = await api.client.post("/api/v1/alerts/thresholds", json=body, headers=api.headers)
        event = await next_event()
    assert response.status_code == 201
    assert response.json() == created
    assert api.stubs.calls(calls.AUTH_AUTHORIZE)[0]["server_id"] == str(api.server_id)
    [sent] = api.stubs.calls(calls.THRESHOLDS_CREATE)
    assert (sent["user_id"], sent["duration_s"], sent["enabled"]) == (str(api.user_id), 0, True)
    assert (event.action, event.target) == ("threshold.create", f"threshold:{created['id']}")


async def test_threshold_on_someone_elses_server_is_404_and_not_created(api: Api) -> None:
    await api.stubs.ok(calls.THRESHOLDS_CREATE, threshold(api.server_id))
    body = {
        "server_id": str(uuid.uuid4()),
        "metric_type": "memory",
        "comparison": "lt",
        "threshold_value": 5,
    }
    response = await api.client.post("/api/v1/alerts/thresholds", json=body, headers=api.headers)
    assert response.status_code == 404
    assert api.stubs.calls(calls.THRESHOLDS_CREATE) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"metric_type": "load"},
        {"comparison": "eq"},
        {"threshold_value": 101},
        {"threshold_value": -1},
        {"duration_s": -5},
    ],
)
async def test_bad_threshold_is_422(api: Api, changes: dict[str, Any]) -> None:
    body = {
        "server_id": str(api.server_id),
        "metric_type": "cpu",
        "comparison": "gt",
        "threshold_value": 50,
        **changes,
    }
    response = await api.client.post("/api/v1/alerts/thresholds", json=body, headers=api.headers)
    assert response.status_code == 422
    assert api.stubs.calls(calls.AUTH_AUTHORIZE) == []


async def test_list_thresholds_is_a_bare_array(api: Api) -> None:
    await api.stubs.ok(calls.THRESHOLDS_LIST, [threshold(api.server_id)])
    response = await api.client.get(
        "/api/v1/alerts/thresholds", params={"server_id": str(api.server_id)}, headers=api.headers
    )
    assert response.status_code == 200
    assert len(response.json()) == 1
    assert api.stubs.calls(calls.THRESHOLDS_LIST) == [
        {"user_id": str(api.user_id), "server_id": str(api.server_id)}
    ]


async def test_update_threshold_is_partial(api: Api) -> None:
    threshold_id = uuid.uuid4()
    await api.stubs.ok(calls.THRESHOLDS_UPDATE, threshold(api.server_id, enabled=False))
    async with api.audit_events() as next_event:
        response = await api.client.put(
            f"/api/v1/alerts/thresholds/{threshold_id}",
            json={"enabled": False},
            headers=api.headers,
        )
        event = await next_event()
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    assert api.stubs.calls(calls.THRESHOLDS_UPDATE) == [
        {"user_id": str(api.user_id), "threshold_id": str(threshold_id), "enabled": False}
    ]
    assert event.detail == {"fields": ["enabled"]}


async def test_update_accepts_the_object_get_returned(api: Api) -> None:
    threshold_id = uuid.uuid4()
    current = threshold(api.server_id, id=str(threshold_id))
    await api.stubs.ok(calls.THRESHOLDS_UPDATE, {**current, "enabled": False})
    response = await api.client.put(
        f"/api/v1/alerts/thresholds/{threshold_id}", json={**current, "enabled": False}, headers=api.headers
    )
    assert response.status_code == 200, response.text
    # server_id goes to ingest, which checks it against the stored one (tests/ingest/test_thresholds.py).
    (sent,) = api.stubs.calls(calls.THRESHOLDS_UPDATE)
    assert sent["server_id"] == str(api.server_id) and "id" not in sent and "created_at" not in sent


async def test_update_cannot_move_a_threshold_to_another_server(api: Api) -> None:
    def ingest(request: dict[str, Any]) -> None:
        if request.get("server_id") not in (None, str(api.server_id)):
            raise RpcError("invalid", "server_id cannot be changed: create a threshold on that server")

    await api.stubs.answer(calls.THRESHOLDS_UPDATE, ingest)
    response = await api.client.put(
        f"/api/v1/alerts/thresholds/{uuid.uuid4()}",
        json={"server_id": str(uuid.uuid4())},
        headers=api.headers,
    )
    assert response.status_code == 422
    assert "server_id" in response.json()["detail"]


async def test_update_naming_another_threshold_is_422(api: Api) -> None:
    response = await api.client.put(
        f"/api/v1/alerts/thresholds/{uuid.uuid4()}",
        json=threshold(api.server_id),  # its own, different id
        headers=api.headers,
    )
    assert response.status_code == 422
    assert api.stubs.calls(calls.THRESHOLDS_UPDATE) == []


async def test_delete_threshold_is_204_and_others_404(api: Api) -> None:
    mine = uuid.uuid4()

    def delete(request: dict[str, Any]) -> None:
        if request["threshold_id"] != str(mine):
            raise NotFound("Threshold not found")

    await api.stubs.answer(calls.THRESHOLDS_DELETE, delete)
    assert (
        await api.client.delete(f"/api/v1/alerts/thresholds/{mine}", headers=api.headers)
    ).status_code == 204
    other = await api.client.delete(f"/api/v1/alerts/thresholds/{uuid.uuid4()}", headers=api.headers)
    assert other.status_code == 404


async def test_list_alerts_filters(api: Api) -> None:
    alerts = [alert(api.server_id)]
    await api.stubs.ok(calls.ALERTS_LIST, alerts)
    response = await api.client.get(
        "/api/v1/alerts",
        params={"status": "active", "server_id": str(api.server_id)},
        headers=api.headers,
    )
    assert response.status_code == 200
    assert response.json()[0]["id"] == alerts[0]["id"]
    assert api.stubs.calls(calls.ALERTS_LIST) == [
        {
            "user_id": str(api.user_id),
            "status": "active",
            "server_id": str(api.server_id),
            "limit": 1000,
        }
    ]


@pytest.mark.parametrize("params", [{"status": "open"}, {"server_id": "x"}, {"limit": 0}])
async def test_list_alerts_bad_filter_is_422(api: Api, params: dict[str, str]) -> None:
    response = await api.client.get("/api/v1/alerts", params=params, headers=api.headers)
    assert response.status_code == 422


async def test_resolve_alert_is_audited(api: Api) -> None:
    alert_id = uuid.uuid4()
    resolved = alert(
        api.server_id,
        id=str(alert_id),
        status="resolved",
        resolved_at=now_iso(),
        resolved_by=str(api.user_id),
    )
    await api.stubs.ok(calls.ALERTS_RESOLVE, resolved)
    async with api.audit_events() as next_event:
        response = await api.client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=api.headers)
        event = await next_event()
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    assert api.stubs.calls(calls.ALERTS_RESOLVE) == [{"user_id": str(api.user_id), "alert_id": str(alert_id)}]
    assert (event.action, event.target) == ("alert.resolve", f"alert:{alert_id}")


async def test_thresholds_path_is_never_an_alert_id(api: Api) -> None:
    await api.stubs.ok(calls.ALERTS_RESOLVE, alert(api.server_id))
    response = await api.client.post("/api/v1/alerts/thresholds/resolve", headers=api.headers)
    assert response.status_code == 422  # alert ids are UUIDs
    assert api.stubs.calls(calls.ALERTS_RESOLVE) == []


async def test_audit_log_lists_the_users_entries(api: Api) -> None:
    entries = [
        {
            "id": str(uuid.uuid4()),
            "user_id": str(api.user_id),
            "action": "server.create",
            "target": "server:x",
            "detail": None,
            "timestamp": now_iso(),
        }
    ]
    await api.stubs.ok(calls.AUDIT_LIST, entries)
    response = await api.client.get("/api/v1/audit", params={"limit": 5}, headers=api.headers)
    assert response.status_code == 200
    assert response.json()[0]["action"] == "server.create"
    assert api.stubs.calls(calls.AUDIT_LIST) == [{"user_id": str(api.user_id), "limit": 5}]
    too_many = await api.client.get("/api/v1/audit", params={"limit": 1001}, headers=api.headers)
    assert too_many.status_code == 422
