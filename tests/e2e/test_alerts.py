"""Alerts end to end: thresholds over REST -> samples from the agent -> ingest's rules ->
the alert over REST, on the metrics dashboard socket and on NATS; resolving by rule and by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient

from tests.helpers.client import Api, Events, Socket, metrics_frame
from tests.helpers.stack import Stack


def _at(base: datetime, seconds: float, **fields: Any) -> dict[str, Any]:
    """A sample `seconds` after `base`: rules run on the samples' own timestamps."""
    return metrics_frame(timestamp=(base + timedelta(seconds=seconds)).isoformat(), **fields)


def _base() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)


async def test_thresholds_crud_and_ownership(stack: Stack, http: httpx.AsyncClient) -> None:
    owner = await Api.new_user(http)
    stranger = await Api.new_user(http)
    server_id, _ = await owner.new_server_with_key()
    other_server, _ = await owner.new_server_with_key("other")

    created = await owner.post(
        "/alerts/thresholds",
        json={"server_id": server_id, "metric_type": "cpu", "comparison": "gt", "threshold_value": 90},
    )
    assert created.status_code == 201, created.text
    threshold = created.json()
    assert threshold["duration_s"] == 0 and threshold["enabled"] is True
    tid = threshold["id"]
    await owner.post(
        "/alerts/thresholds",
        json={"server_id": other_server, "metric_type": "disk", "comparison": "gt", "threshold_value": 95},
    )

    listed = (await owner.get("/alerts/thresholds", params={"server_id": server_id})).json()
    assert [t["id"] for t in listed] == [tid]
    assert len((await owner.get("/alerts/thresholds")).json()) == 2

    # PUT changes only what it names.
    updated = await owner.put(f"/alerts/thresholds/{tid}", json={"threshold_value": 85})
    assert updated.status_code == 200, updated.text
    assert updated.json() == threshold | {"threshold_value": 85}
    disabled = (await owner.put(f"/alerts/thresholds/{tid}", json={"enabled": False})).json()
    assert disabled == threshold | {"threshold_value": 85, "enabled": False}

    # Wrong input: 422, nothing changes.
    for body in (
        {"server_id": server_id, "metric_type": "gpu", "comparison": "gt", "threshold_value": 1},
        {"server_id": server_id, "metric_type": "cpu", "comparison": "eq", "threshold_value": 1},
        {"server_id": server_id, "metric_type": "cpu", "comparison": "gt", "threshold_value": 150},
        {
            "server_id": server_id,
            "metric_type": "cpu",
            "comparison": "gt",
            "threshold_value": 5,
            "duration_s": -1,
        },
        {"server_id": "nope", "metric_type": "cpu", "comparison": "gt", "threshold_value": 5},
    ):
        assert (await owner.post("/alerts/thresholds", json=body)).status_code == 422, body
    assert (await owner.put(f"/alerts/thresholds/{tid}", json={"comparison": "eq"})).status_code == 422
    assert (await owner.get("/alerts/thresholds", params={"server_id": server_id})).json() == [disabled]

    # Someone else's server or threshold: 404, and they see none of it.
    theirs = await stranger.post(
        "/alerts/thresholds",
        json={"server_id": server_id, "metric_type": "cpu", "comparison": "gt", "threshold_value": 1},
    )
    assert theirs.status_code == 404, theirs.text
    assert (await stranger.put(f"/alerts/thresholds/{tid}", json={"enabled": True})).status_code == 404
    assert (await stranger.delete(f"/alerts/thresholds/{tid}")).status_code == 404
    assert (await stranger.get("/alerts/thresholds")).json() == []
    assert (await stranger.get("/alerts", params={"server_id": server_id})).json() == []

    deleted = await owner.delete(f"/alerts/thresholds/{tid}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await owner.get("/alerts/thresholds", params={"server_id": server_id})).json() == []
    assert (await owner.delete(f"/alerts/thresholds/{tid}")).status_code == 404
    assert (await owner.put(f"/alerts/thresholds/{tid}", json={"enabled": True})).status_code == 404
    assert (await http.get("/api/v1/alerts/thresholds")).status_code == 401


async def test_a_breach_fires_once_pushes_everywhere_and_resolves(
    stack: Stack, http: httpx.AsyncClient, nc: NatsClient
) -> None:
    owner = await Api.new_user(http)
    stranger = await Api.new_user(http)
    me = (await owner.get("/auth/me")).json()
    server_id, key = await owner.new_server_with_key()
    created = await owner.post(
        "/alerts/thresholds",
        json={"server_id": server_id, "metric_type": "cpu", "comparison": "gt", "threshold_value": 80},
    )
    assert created.status_code == 201, created.text
    events = await Events.watch(nc, stack.subjects.alerts(server_id))
    agent = await Socket.agent(stack.ws_url, key)
    dashboard = await Socket.dashboard(stack.ws_url, "metrics", server_id, owner.token or "")
    base = _base()

    await agent.send(_at(base, 0, cpu_percent=91.0))
    fired = await events.next_data()
    assert fired["event"] == "fired" and fired["status"] == "active" and fired["value"] == 91.0
    assert fired["server_id"] == server_id and fired["threshold_id"] == created.json()["id"]
    pushed = await dashboard.recv_type("alert")
    assert pushed["data"]["id"] == fired["id"] and pushed["data"]["status"] == "active"
    active = (await owner.get("/alerts", params={"status": "active", "server_id": server_id})).json()
    assert [a["id"] for a in active] == [fired["id"]]

    # Hovering around the line (within the hysteresis): no second alert, no resolve.
    for i, cpu in enumerate((79.0, 85.0, 79.5, 95.0), start=1):
        await agent.send(_at(base, i, cpu_percent=cpu))
    # Clearly below: resolved — and, ingest running in time order, the hover came before.
    await agent.send(_at(base, 10, cpu_percent=40.0))
    resolved = await events.next_data()
    assert resolved["event"] == "resolved" and resolved["id"] == fired["id"], resolved
    assert resolved["status"] == "resolved" and resolved["resolved_by"] is None
    pushed = await dashboard.recv_type("alert")
    assert pushed["data"]["id"] == fired["id"] and pushed["data"]["status"] == "resolved"
    every = (await owner.get("/alerts", params={"server_id": server_id})).json()
    assert [(a["id"], a["status"]) for a in every] == [(fired["id"], "resolved")]
    assert (await owner.get("/alerts", params={"status": "active", "server_id": server_id})).json() == []

    # A new breach is a new alert; resolving it by hand: a stranger gets 404, the owner resolves.
    await agent.send(_at(base, 20, cpu_percent=99.0))
    second = await events.next_data()
    assert second["event"] == "fired" and second["id"] != fired["id"]
    pushed = await dashboard.recv_type("alert")
    assert (pushed["data"]["id"], pushed["data"]["status"]) == (second["id"], "active")
    assert (await stranger.post(f"/alerts/{second['id']}/resolve")).status_code == 404
    by_hand = await owner.post(f"/alerts/{second['id']}/resolve")
    assert by_hand.status_code == 200, by_hand.text
    assert by_hand.json()["status"] == "resolved" and by_hand.json()["resolved_by"] == me["id"]
    hand_event = await events.next_data()
    assert (hand_event["event"], hand_event["id"]) == ("resolved", second["id"])
    pushed = await dashboard.recv_type("alert")
    assert (pushed["data"]["id"], pushed["data"]["status"]) == (second["id"], "resolved")
    again = await owner.post(f"/alerts/{second['id']}/resolve")  # idempotent
    assert again.status_code == 200 and again.json()["resolved_at"] == by_hand.json()["resolved_at"]
    assert (await owner.post("/alerts/00000000-0000-0000-0000-000000000000/resolve")).status_code == 404
    assert (await owner.get("/alerts", params={"status": "open"})).status_code == 422

    # Still over the line after the hand resolve: no new alert until the breach clears.
    await agent.send(_at(base, 21, cpu_percent=97.0))
    await agent.send(_at(base, 30, cpu_percent=10.0))
    await agent.send(_at(base, 40, cpu_percent=88.0))
    third = await events.next_data()
    assert third["event"] == "fired" and third["value"] == 88.0, third
    statuses = [a["status"] for a in (await owner.get("/alerts", params={"server_id": server_id})).json()]
    assert statuses == ["active", "resolved", "resolved"]
    await events.stop()
    for sock in (agent, dashboard):
        await sock.close()


async def test_duration_s_needs_the_breach_to_last(
    stack: Stack, http: httpx.AsyncClient, nc: NatsClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    slow = await api.post(
        "/alerts/thresholds",
        json={
            "server_id": server_id,
            "metric_type": "memory",
            "comparison": "gt",
            "threshold_value": 70,
            "duration_s": 10,
        },
    )
    # A sentinel on cpu with no duration: its events show how far ingest has got.
    await api.post(
        "/alerts/thresholds",
        json={"server_id": server_id, "metric_type": "cpu", "comparison": "gt", "threshold_value": 50},
    )
    events = await Events.watch(nc, stack.subjects.alerts(server_id))
    agent = await Socket.agent(stack.ws_url, key)
    base = _base()

    await agent.send(_at(base, 0, memory_percent=80.0, cpu_percent=90.0))
    await agent.send(_at(base, 5, memory_percent=81.0, cpu_percent=5.0))
    seen = [await events.next_data() for _ in range(2)]
    assert [(e["metric_type"], e["event"]) for e in seen] == [("cpu", "fired"), ("cpu", "resolved")]
    # Memory has been over the line for 5 s of the 10 required: no alert yet.
    alerts = (await api.get("/alerts", params={"server_id": server_id})).json()
    assert [a["metric_type"] for a in alerts] == ["cpu"]

    await agent.send(_at(base, 10, memory_percent=82.0, cpu_percent=5.0))
    fired = await events.next_data()
    assert (fired["metric_type"], fired["event"], fired["value"]) == ("memory", "fired", 82.0)
    assert fired["threshold_id"] == slow.json()["id"] and "for 10 s" in fired["message"]
    await events.stop()
    await agent.close()


async def test_deleting_a_server_drops_its_rules_and_resolves_its_alerts(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    owner = await Api.new_user(http)
    server_id, key = await owner.new_server_with_key()
    await owner.post(
        "/alerts/thresholds",
        json={"server_id": server_id, "metric_type": "cpu", "comparison": "gt", "threshold_value": 50},
    )
    agent = await Socket.agent(stack.ws_url, key)
    dashboard = await Socket.dashboard(stack.ws_url, "metrics", server_id, owner.token or "")
    await agent.send(_at(_base(), 0, cpu_percent=99.0))
    fired = (await dashboard.recv_type("alert"))["data"]
    assert fired["status"] == "active"

    assert (await owner.request("DELETE", f"/servers/{server_id}")).status_code == 204
    assert (await owner.get("/alerts/thresholds")).json() == []
    assert (await owner.get("/alerts", params={"status": "active"})).json() == []
    history = (await owner.get("/alerts")).json()
    assert [(a["id"], a["status"]) for a in history] == [(fired["id"], "resolved")]
    await dashboard.close()
