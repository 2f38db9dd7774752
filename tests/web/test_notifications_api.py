"""Notification channels over REST, end to end on the real stack (secured NATS, each service
on its own identity): the URL never comes back in full, wrong input is 422 and changes
nothing, others' channels are 404; an agent's breach and its disconnect reach a local
receiver as fired and offline alerts."""

from __future__ import annotations

import httpx

from opswire.launcher.embedded import free_port
from tests.helpers.client import Api, Socket, eventually, metrics_frame
from tests.helpers.receiver import receiver
from tests.helpers.stack import Stack


async def test_channels_over_rest(stack: Stack, http: httpx.AsyncClient) -> None:
    owner, stranger = await Api.new_user(http), await Api.new_user(http)
    secret = f"json://127.0.0.1:{free_port()}/hook?token=very-secret-token"
    created = await owner.post("/notifications/channels", json={"name": "pager", "url": secret})
    assert created.status_code == 201, created.text
    channel = created.json()
    assert "very-secret-token" not in created.text and channel["url"].startswith("json://")
    for body in (
        {"name": "x", "url": "not-a-url"},
        {"name": "", "url": secret},
        {"url": secret},
        {"name": "x", "url": secret, "extra": 1},
    ):
        refused = await owner.post("/notifications/channels", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert "detail" in refused.json()
    listed = await owner.get("/notifications/channels")
    assert listed.json() == [channel] and "very-secret-token" not in listed.text

    renamed = await owner.put(f"/notifications/channels/{channel['id']}", json={"name": "on-call"})
    assert renamed.status_code == 200 and renamed.json() == channel | {"name": "on-call"}
    tested = await owner.post(f"/notifications/channels/{channel['id']}/test")
    assert tested.status_code == 200 and tested.json()["sent"] is False and tested.json()["error"]

    one = f"/notifications/channels/{channel['id']}"
    for method, path in (("PUT", one), ("DELETE", one), ("POST", f"{one}/test")):
        denied = await stranger.request(method, path, json={"enabled": False} if method == "PUT" else None)
        assert denied.status_code == 404, (method, path, denied.text)
    assert (await stranger.get("/notifications/channels")).json() == []
    assert (await http.get("/api/v1/notifications/channels")).status_code == 401

    assert (await owner.delete(one)).status_code == 204
    assert (await owner.get("/notifications/channels")).json() == []

    async def audited() -> bool:
        # The audit log is written by auth from the audit stream: it follows, not at once.
        actions = {entry["action"] for entry in (await owner.get("/audit")).json()}
        return {"channel.create", "channel.update", "channel.delete"} <= actions

    assert await eventually(audited)


async def test_breach_and_disconnect_reach_the_receiver(stack: Stack, http: httpx.AsyncClient) -> None:
    user = await Api.new_user(http)
    server_id, key = await user.new_server_with_key()
    async with receiver() as hook:
        added = await user.post("/notifications/channels", json={"name": "hook", "url": hook.url})
        assert added.status_code == 201, added.text
        for rule in (
            {"metric_type": "cpu", "comparison": "gt", "threshold_value": 80},
            {"metric_type": "offline", "comparison": "gt", "threshold_value": 0},
        ):
            made = await user.post("/alerts/thresholds", json={"server_id": server_id, **rule})
            assert made.status_code == 201, made.text

        agent = await Socket.agent(stack.ws_url, key)
        await agent.send(metrics_frame(cpu_percent=93.0))
        title, fired = await hook.next(timeout_s=30)
        assert "FIRING" in title and fired["metric"] == "cpu" and fired["value"] == 93.0
        assert fired["server_id"] == server_id and fired["link"].endswith(f"/#/servers/{server_id}")

        await agent.close()
        title, offline = await hook.next(timeout_s=30)
        assert "FIRING" in title and offline["metric"] == "offline" and offline["state"] == "active"
        agent = await Socket.agent(stack.ws_url, key)
        title, back = await hook.next(timeout_s=30)
        assert "RESOLVED" in title and back["alert_id"] == offline["alert_id"]
        await agent.close()
        listed = (await user.get("/notifications/channels")).json()
        assert listed[0]["last_sent_at"] and listed[0]["last_error"] is None
