"""Docker through the agent, end to end: REST -> commands -> the gateway holding the agent ->
`docker_command` frame -> the (scripted) agent's `docker_response` -> REST, history and NATS."""

from __future__ import annotations

from typing import Any

import httpx
from nats.aio.client import Client as NatsClient

from tests.helpers.client import Api, Events, Socket, answering, eventually
from tests.helpers.stack import Stack

# Keeps "the agent never answers" short: the service waits timeout_s + this grace.
STACK_ENV = {"OPSWIRE_COMMAND_GRACE_S": "1"}

CONTAINERS = [
    {"id": "abc123", "name": "web", "image": "nginx:1.27", "state": "running", "status": "Up 2 hours"},
    {"id": "def456", "name": "db", "image": "postgres:16", "state": "exited", "status": "Exited (0)"},
]


def docker_agent(frame: dict[str, Any]) -> dict[str, Any]:
    """A fake Docker host with containers web and db; anything else does not exist."""
    reply = {"type": "docker_response", "command_id": frame["command_id"]}
    action, container = frame["action"], frame.get("container_id")
    if action == "list":
        return reply | {"success": True, "message": "2 containers", "data": CONTAINERS}
    if container not in ("web", "db", "abc123"):
        return reply | {"success": False, "message": f"No such container: {container}"}
    if action == "logs":
        lines = [f"{container} line {i}" for i in range(frame["params"]["tail"])]
        return reply | {"success": True, "message": "ok", "data": "\n".join(lines)}
    return reply | {"success": True, "message": f"{container} {action} done"}


async def test_containers_are_listed_and_driven_through_the_agent(
    stack: Stack, http: httpx.AsyncClient, nc: NatsClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    agent = await Socket.agent(stack.ws_url, key)
    results = await Events.watch(nc, stack.subjects.command_results(server_id))

    async with answering(agent, docker_agent) as seen:
        listed = await api.get(f"/docker/{server_id}/containers")
        assert listed.status_code == 200, listed.text
        assert listed.json() == CONTAINERS
        assert seen[-1]["action"] == "list" and not seen[-1].get("container_id")

        command_ids = []
        for action in ("start", "stop", "restart"):
            reply = await api.post(f"/docker/{server_id}/containers/web/{action}")
            assert reply.status_code == 200, reply.text
            body = reply.json()
            assert body == {
                "command_id": body["command_id"],
                "success": True,
                "message": f"web {action} done",
            }
            assert (seen[-1]["action"], seen[-1]["container_id"]) == (action, "web")
            assert seen[-1]["command_id"] == body["command_id"]
            command_ids.append(body["command_id"])

        # The agent's failure is the answer, not an HTTP error.
        ghost = await api.post(f"/docker/{server_id}/containers/ghost/start")
        assert ghost.status_code == 200, ghost.text
        assert ghost.json()["success"] is False and "No such container" in ghost.json()["message"]

        logs = await api.get(f"/docker/{server_id}/containers/web/logs", params={"tail": 3})
        assert logs.status_code == 200, logs.text
        assert logs.json()["data"] == "web line 0\nweb line 1\nweb line 2"
        assert logs.json()["success"] is True
        assert seen[-1]["params"] == {"tail": 3} and seen[-1]["action"] == "logs"

        # Refused before reaching the agent.
        sent = len(seen)
        for path, params in (
            (f"/docker/{server_id}/containers/web/logs", {"tail": 0}),
            (f"/docker/{server_id}/containers/web/logs", {"tail": "all"}),
            (f"/docker/{server_id}/containers/web/logs", {"tail": 10_001}),
        ):
            assert (await api.get(path, params=params)).status_code == 422, params
        assert (await api.post(f"/docker/{server_id}/containers/web/explode")).status_code in (404, 422)
        assert (await api.post(f"/docker/{server_id}/containers/-bad/start")).status_code == 422
        stranger = await Api.new_user(http)
        assert (await stranger.get(f"/docker/{server_id}/containers")).status_code == 404
        assert (await stranger.post(f"/docker/{server_id}/containers/web/stop")).status_code == 404
        assert len(seen) == sent, "nothing refused reached the agent"

    # Every action is a result event on NATS (list, 3 actions, ghost, logs).
    events = [await results.next_data() for _ in range(6)]
    assert all(e["kind"] == "docker" and e["server_id"] == server_id for e in events)
    by_id = {e["command_id"]: e for e in events}
    assert all(by_id[cid]["success"] is True for cid in command_ids)
    assert by_id[ghost.json()["command_id"]]["success"] is False
    assert by_id[ghost.json()["command_id"]]["status"] == "failed"
    await results.stop()
    await agent.close()


async def test_a_failed_list_is_an_error_and_an_offline_agent_is_409(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    paths = [
        ("GET", f"/docker/{server_id}/containers"),
        ("POST", f"/docker/{server_id}/containers/web/restart"),
        ("GET", f"/docker/{server_id}/containers/web/logs?tail=5"),
    ]
    for method, path in paths:  # never connected
        reply = await api.request(method, path)
        assert reply.status_code == 409, (path, reply.text)

    agent = await Socket.agent(stack.ws_url, key)
    broken = {"success": False, "message": "Cannot connect to the Docker daemon"}
    async with answering(
        agent, lambda f: {"type": "docker_response", "command_id": f["command_id"], **broken}
    ):
        reply = await api.get(f"/docker/{server_id}/containers")
        assert reply.status_code == 502, reply.text
        assert "Docker daemon" in reply.json()["detail"]
    await agent.close()
    await eventually(lambda: _status(api, server_id, "offline"))
    for method, path in paths:  # gone again
        assert (await api.request(method, path)).status_code == 409, path


async def test_an_agent_that_never_answers_times_out_and_a_late_answer_is_kept(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    api = await Api.new_user(http)
    server_id, key = await api.new_server_with_key()
    agent = await Socket.agent(stack.ws_url, key)
    async with answering(agent, lambda frame: None) as seen:
        reply = await api.post(f"/docker/{server_id}/containers/web/restart", params={"timeout_s": 1})
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["success"] is False and "did not answer" in result["message"]
    assert seen[0]["command_id"] == result["command_id"]
    listing = await api.get(f"/docker/{server_id}/containers", params={"timeout_s": 1})
    assert listing.status_code == 504

    # The answer arrives after all: the history keeps it.
    await agent.send(
        {
            "type": "docker_response",
            "command_id": result["command_id"],
            "success": True,
            "message": "restarted late",
        }
    )

    async def late() -> dict[str, Any] | None:
        history = (await api.get(f"/commands/{server_id}/history")).json()
        entry = next(e for e in history if e["command_id"] == result["command_id"])
        return entry if entry["status"] == "succeeded" else None

    entry = await eventually(late)
    assert entry["kind"] == "docker"
    await agent.close()


async def _status(api: Api, server_id: str, status: str) -> bool:
    return bool((await api.get(f"/servers/{server_id}")).json()["status"] == status)
