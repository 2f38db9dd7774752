"""What other systems and the user see afterwards: every finished command and Docker action
as an event on NATS, and the user's own audit log over REST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient

from tests.helpers.client import Api, Events, Socket, answering, eventually, metrics_frame
from tests.helpers.stack import Stack

# Keeps the timed-out command short: the service waits timeout_s + this grace.
STACK_ENV = {"OPSWIRE_COMMAND_GRACE_S": "1"}


def fake_agent(frame: dict[str, Any]) -> dict[str, Any] | None:
    """`true` succeeds, `false` fails, `sleep` never answers; Docker actions succeed."""
    if frame["type"] == "docker_command":
        return {
            "type": "docker_response",
            "command_id": frame["command_id"],
            "success": True,
            "message": f"{frame['action']} ok",
        }
    if frame["command"].startswith("sleep"):
        return None
    return {
        "type": "command_response",
        "command_id": frame["command_id"],
        "output": "",
        "exit_code": 0 if frame["command"] == "true" else 1,
        "duration_ms": 3,
    }


async def test_each_finished_command_is_an_event(
    stack: Stack, http: httpx.AsyncClient, nc: NatsClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    other_id, _ = await api.new_server_with_key("other")
    results = await Events.watch(nc, stack.subjects.command_results(server_id))
    elsewhere = await Events.watch(nc, stack.subjects.command_results(other_id))
    agent = await Socket.agent(stack.ws_url, key)

    async with answering(agent, fake_agent):
        replies = [
            await api.post(f"/commands/{server_id}", json={"command": command, "timeout_s": 1})
            for command in ("true", "false", "sleep 60")
        ]
        restart = await api.post(f"/docker/{server_id}/containers/web/restart")
    assert [r.status_code for r in replies] == [200, 200, 200] and restart.status_code == 200
    assert [r.json()["status"] for r in replies] == ["succeeded", "failed", "timeout"]

    events = [await results.next(timeout_s=5) for _ in range(4)]
    assert {subject for subject, _ in events} == {stack.subjects.command_results(server_id)}
    got = {e["command_id"]: e for _, e in events}
    for reply in replies:
        event = got[reply.json()["command_id"]]
        assert event["kind"] == "shell" and event["server_id"] == server_id
        assert event["status"] == reply.json()["status"]
        assert event["command"] == reply.json()["command"]
        assert datetime.fromisoformat(event["timestamp"]).tzinfo is not None
    docker = got[restart.json()["command_id"]]
    assert docker["kind"] == "docker" and docker["action"] == "restart"
    assert docker["success"] is True and docker["container_id"] == "web"

    # A command refused (agent offline) finished nothing: no event.
    await agent.close()
    assert (await api.post(f"/commands/{other_id}", json={"command": "true"})).status_code == 409
    assert elsewhere.sub.pending_msgs == 0
    for events_sub in (results, elsewhere):
        await events_sub.stop()


async def test_the_audit_log_lists_what_the_user_did_and_only_that(
    stack: Stack, http: httpx.AsyncClient, nc: NatsClient
) -> None:
    api = await Api.new_user(http)
    other = await Api.new_user(http)
    me = (await api.get("/auth/me")).json()
    server_id, key = await api.new_server_with_key()
    other_server, other_key = await other.new_server_with_key()
    spare = (await api.post("/api-keys", json={"server_id": server_id, "name": "spare"})).json()
    assert (await api.delete(f"/api-keys/{spare['id']}")).status_code == 204

    agent = await Socket.agent(stack.ws_url, key)
    async with answering(agent, fake_agent):
        command = (await api.post(f"/commands/{server_id}", json={"command": "true"})).json()
        docker = (await api.post(f"/docker/{server_id}/containers/web/stop")).json()

    threshold = (
        await api.post(
            "/alerts/thresholds",
            json={"server_id": server_id, "metric_type": "cpu", "comparison": "gt", "threshold_value": 50},
        )
    ).json()
    assert (await api.put(f"/alerts/thresholds/{threshold['id']}", json={"duration_s": 0})).status_code == 200
    alerts = await Events.watch(nc, stack.subjects.alerts(server_id))
    await agent.send(metrics_frame(cpu_percent=99.0))
    alert = await alerts.next_data()
    assert (await api.post(f"/alerts/{alert['id']}/resolve")).status_code == 200
    assert (await api.delete(f"/alerts/thresholds/{threshold['id']}")).status_code == 204
    await alerts.stop()

    wanted = {
        ("user.login", f"user:{me['id']}"),
        ("server.create", f"server:{server_id}"),
        ("api_key.create", f"api_key:{spare['id']}"),
        ("api_key.revoke", f"api_key:{spare['id']}"),
        ("command.requested", f"server:{server_id}"),
        ("command.finished", f"server:{server_id}"),
        ("docker.requested", f"server:{server_id}"),
        ("docker.finished", f"server:{server_id}"),
        ("threshold.create", f"threshold:{threshold['id']}"),
        ("threshold.update", f"threshold:{threshold['id']}"),
        ("threshold.delete", f"threshold:{threshold['id']}"),
        ("alert.resolve", f"alert:{alert['id']}"),
    }

    async def audit_has_all() -> list[dict[str, Any]] | None:
        reply = await api.get("/audit")
        assert reply.status_code == 200, reply.text
        entries: list[dict[str, Any]] = reply.json()
        return entries if wanted <= {(e["action"], e["target"]) for e in entries} else None

    entries = await eventually(audit_has_all)
    assert all(e["user_id"] == me["id"] for e in entries)
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in entries]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    assert stamps[0] <= datetime.now(UTC)
    # Once each: the gateway no longer writes its own entry beside the commands service's.
    assert not {"command.run", "docker.stop"} & {e["action"] for e in entries}
    # The commands service's own entries: who asked for what before it was sent, and the end.
    for kind, result, text in (("command", command, "true"), ("docker", docker, "docker stop web")):
        requested = next(e for e in entries if e["action"] == f"{kind}.requested")
        finished = next(e for e in entries if e["action"] == f"{kind}.finished")
        assert requested["detail"]["command_id"] == finished["detail"]["command_id"] == result["command_id"]
        assert requested["detail"]["command"] == text
        assert finished["detail"]["status"] == "succeeded"
        assert datetime.fromisoformat(requested["timestamp"]) <= datetime.fromisoformat(finished["timestamp"])
    text = (await api.get("/audit")).text
    assert key not in text and spare["key"] not in text, "keys never reach the audit log"
    assert other_server not in text and other_key not in text

    # The other user sees only their own.
    theirs = await eventually(lambda: _actions(other, {"server.create", "api_key.create"}))
    assert all(e["user_id"] != me["id"] for e in theirs)
    assert server_id not in (await other.get("/audit")).text
    assert len((await api.get("/audit", params={"limit": 2})).json()) == 2
    assert (await api.get("/audit", params={"limit": 0})).status_code == 422
    assert (await http.get("/api/v1/audit")).status_code == 401
    await agent.close()


async def _actions(api: Api, wanted: set[str]) -> list[dict[str, Any]] | None:
    entries: list[dict[str, Any]] = (await api.get("/audit")).json()
    return entries if wanted <= {e["action"] for e in entries} else None
