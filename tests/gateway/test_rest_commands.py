"""REST /commands and /docker: timeouts, conflict mapping, shapes and audit.

The commands service audits every command and Docker action (`*.requested` before
dispatch, `*.finished` after); the gateway adds no entry of its own for them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from opswire.contract import rpc as calls
from opswire.contract.events import AuditEvent
from opswire.runtime.rpc import RpcError, handle_request
from tests.gateway.stubs import (
    TEST_RPC_TIMEOUT_S,
    Api,
    command_result,
    docker_result,
    server_public,
)

GATEWAY_GRACE_S = GatewaySettings.model_fields["command_grace_s"].default


async def assert_no_entry_so_far(api: Api, next_event: Callable[[], Awaitable[AuditEvent]]) -> None:
    """The gateway wrote nothing since `next_event` started: the next entry is a later action's."""
    await api.stubs.ok(calls.SERVERS_CREATE, server_public(uuid.uuid4(), "marker"))
    response = await api.client.post("/api/v1/servers", json={"name": "marker"}, headers=api.headers)
    assert response.status_code == 201
    assert (await next_event()).action == "server.create"


async def test_run_command_returns_the_result_and_leaves_the_audit_to_the_service(api: Api) -> None:
    result = command_result(api.server_id, "echo s3cret-token", output="s3cret-token\n")
    await api.stubs.ok(calls.COMMANDS_RUN, result)
    sent_at = datetime.now(UTC)
    async with api.audit_events() as next_event:
        response = await api.client.post(
            f"/api/v1/commands/{api.server_id}",
            json={"command": "echo s3cret-token"},
            headers=api.headers,
        )
        await assert_no_entry_so_far(api, next_event)
    assert response.status_code == 200
    body = response.json()
    for name in ("command_id", "command", "status", "output", "exit_code", "duration_ms"):
        assert body[name] == result[name]
    [sent] = api.stubs.calls(calls.COMMANDS_RUN)
    # When the gateway stops waiting: the service answers by then, delivers nothing after.
    reply_by = datetime.fromisoformat(sent.pop("reply_by"))
    assert sent_at < reply_by <= datetime.now(UTC) + timedelta(seconds=30 + GATEWAY_GRACE_S)
    assert reply_by >= sent_at + timedelta(seconds=30)
    assert sent == {
        "command": "echo s3cret-token",
        "timeout_s": 30,
        "user_id": str(api.user_id),
        "server_id": str(api.server_id),
        "idempotency_key": None,
    }


async def test_run_waits_longer_than_the_default_rpc_timeout(api: Api) -> None:
    called, finish = asyncio.Event(), asyncio.Event()

    async def slow(request: dict[str, Any]) -> dict[str, Any]:
        # The command takes longer than a plain RPC may; the gateway must still wait for it.
        called.set()
        await finish.wait()
        return command_result(api.server_id, status="timeout", exit_code=None)

    await api.stubs.answer(calls.COMMANDS_RUN, slow)
    posting = asyncio.ensure_future(
        api.client.post(
            f"/api/v1/commands/{api.server_id}",
            json={"command": "sleep 5", "timeout_s": 1},
            headers=api.headers,
        )
    )
    await called.wait()
    # Past twice the plain RPC timeout the gateway is still waiting (load only lengthens it).
    done, _ = await asyncio.wait({posting}, timeout=TEST_RPC_TIMEOUT_S * 2)
    assert not done, f"answered before the command finished: {posting.result().text}"
    finish.set()
    response = await posting
    assert response.status_code == 200
    assert response.json()["status"] == "timeout"


async def test_agent_offline_is_409(api: Api) -> None:
    await api.stubs.error(calls.COMMANDS_RUN, "conflict", "Agent is not connected")
    async with api.audit_events() as next_event:
        response = await api.client.post(
            f"/api/v1/commands/{api.server_id}", json={"command": "uptime"}, headers=api.headers
        )
        await assert_no_entry_so_far(api, next_event)
    assert response.status_code == 409
    assert response.json() == {"detail": "Agent is not connected"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"command": ""},
        {"command": "   "},
        {"command": "ls", "timeout_s": 0},
        {"command": "ls", "timeout_s": 3601},
        {"command": "ls", "shell": "zsh"},
    ],
)
async def test_bad_command_body_is_422(api: Api, body: dict[str, Any]) -> None:
    await api.stubs.ok(calls.COMMANDS_RUN, command_result(api.server_id))
    response = await api.client.post(f"/api/v1/commands/{api.server_id}", json=body, headers=api.headers)
    assert response.status_code == 422
    assert api.stubs.calls(calls.COMMANDS_RUN) == []


async def test_command_on_someone_elses_server_is_404(api: Api) -> None:
    await api.stubs.ok(calls.COMMANDS_RUN, command_result(api.server_id))
    response = await api.client.post(
        f"/api/v1/commands/{uuid.uuid4()}", json={"command": "uptime"}, headers=api.headers
    )
    assert response.status_code == 404
    assert api.stubs.calls(calls.COMMANDS_RUN) == []


async def test_command_history_is_a_bare_array(api: Api) -> None:
    history = [command_result(api.server_id), command_result(api.server_id, status="failed")]
    await api.stubs.ok(calls.COMMANDS_HISTORY, history)
    response = await api.client.get(
        f"/api/v1/commands/{api.server_id}/history", params={"limit": 2}, headers=api.headers
    )
    assert response.status_code == 200
    assert [item["command_id"] for item in response.json()] == [h["command_id"] for h in history]
    assert api.stubs.calls(calls.COMMANDS_HISTORY) == [{"server_id": str(api.server_id), "limit": 2}]


async def test_commands_service_down_is_503(api: Api) -> None:
    response = await api.client.post(
        f"/api/v1/commands/{api.server_id}", json={"command": "uptime"}, headers=api.headers
    )
    assert response.status_code == 503


# --- docker ------------------------------------------------------------------------------------

CONTAINERS = [{"id": "abc123", "name": "web", "image": "nginx", "state": "running", "status": "Up"}]


async def test_list_containers_is_the_agents_bare_array(api: Api) -> None:
    await api.stubs.ok(calls.DOCKER_RUN, docker_result(api.server_id, "list", data=CONTAINERS))
    response = await api.client.get(f"/api/v1/docker/{api.server_id}/containers", headers=api.headers)
    assert response.status_code == 200
    assert response.json() == CONTAINERS
    [sent] = api.stubs.calls(calls.DOCKER_RUN)
    assert (sent["action"], sent["container_id"]) == ("list", None)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"success": False, "message": "Docker is not available"}, 502),
        ({"success": False, "status": "timeout", "message": "Agent did not answer in time"}, 504),
    ],
)
async def test_list_containers_failure_on_the_agent(api: Api, fields: dict[str, Any], code: int) -> None:
    await api.stubs.ok(calls.DOCKER_RUN, docker_result(api.server_id, "list", **fields))
    response = await api.client.get(f"/api/v1/docker/{api.server_id}/containers", headers=api.headers)
    assert response.status_code == code
    assert response.json() == {"detail": fields["message"]}


@pytest.mark.parametrize("success", [True, False])
async def test_container_action_reports_the_agents_verdict(api: Api, success: bool) -> None:
    result = docker_result(
        api.server_id,
        "restart",
        container_id="web",
        success=success,
        message="restarted" if success else "No such container",
    )
    await api.stubs.ok(calls.DOCKER_RUN, result)
    async with api.audit_events() as next_event:
        response = await api.client.post(
            f"/api/v1/docker/{api.server_id}/containers/web/restart", headers=api.headers
        )
        await assert_no_entry_so_far(api, next_event)
    assert response.status_code == 200
    assert response.json() == {
        "command_id": result["command_id"],
        "success": success,
        "message": result["message"],
    }
    [sent] = api.stubs.calls(calls.DOCKER_RUN)
    assert (sent["action"], sent["container_id"], sent["user_id"]) == (
        "restart",
        "web",
        str(api.user_id),
    )


@pytest.mark.parametrize("path", ["containers/web/explode", "containers/web/list", "containers/-x/stop"])
async def test_unknown_action_or_bad_container_is_422(api: Api, path: str) -> None:
    await api.stubs.ok(calls.DOCKER_RUN, docker_result(api.server_id, "stop"))
    response = await api.client.post(f"/api/v1/docker/{api.server_id}/{path}", headers=api.headers)
    assert response.status_code == 422
    assert api.stubs.calls(calls.DOCKER_RUN) == []


async def test_container_action_with_agent_offline_is_409(api: Api) -> None:
    await api.stubs.error(calls.DOCKER_RUN, "conflict", "Agent is not connected")
    response = await api.client.post(
        f"/api/v1/docker/{api.server_id}/containers/web/stop", headers=api.headers
    )
    assert response.status_code == 409


async def test_container_logs_pass_tail_to_the_agent(api: Api) -> None:
    result = docker_result(api.server_id, "logs", container_id="web", data="line 1\nline 2\n")
    await api.stubs.ok(calls.DOCKER_RUN, result)
    response = await api.client.get(
        f"/api/v1/docker/{api.server_id}/containers/web/logs",
        params={"tail": 50},
        headers=api.headers,
    )
    assert response.status_code == 200
    assert response.json()["data"] == "line 1\nline 2\n"
    [sent] = api.stubs.calls(calls.DOCKER_RUN)
    assert (sent["action"], sent["container_id"], sent["params"]) == ("logs", "web", {"tail": 50})


async def test_a_bad_container_id_is_invalid_over_rpc_too() -> None:
    """The RPC request takes the frame's ContainerId: the service answers `invalid` (422)."""
    request = {"user_id": str(uuid.uuid4()), "server_id": str(uuid.uuid4()), "action": "stop"}
    with pytest.raises(ValidationError):
        calls.DockerRun.model_validate({**request, "container_id": "../x"})

    async def never(_request: calls.DockerRun) -> None:
        raise AssertionError("a bad container id reached the handler")

    body = orjson.dumps({**request, "container_id": "web?all=1"})
    reply = orjson.loads(await handle_request(calls.DOCKER_RUN, never, body))
    assert (reply["ok"], reply["error"]["code"]) == (False, "invalid")
    assert calls.DockerRun.model_validate({**request, "container_id": "web-1.a_b"}).container_id


@pytest.mark.parametrize("tail", [0, 10_001, "all"])
async def test_container_logs_bad_tail_is_422(api: Api, tail: Any) -> None:
    response = await api.client.get(
        f"/api/v1/docker/{api.server_id}/containers/web/logs",
        params={"tail": tail},
        headers=api.headers,
    )
    assert response.status_code == 422


async def test_over_quota_is_429_with_retry_after(api: Api) -> None:
    def over(_request: dict[str, Any]) -> Any:
        raise RpcError("rate_limited", "Too many commands in flight for this server", retry_after_s=7)

    await api.stubs.answer(calls.COMMANDS_RUN, over)
    await api.stubs.answer(calls.DOCKER_RUN, over)
    for path in ("commands", "docker"):
        url = (
            f"/api/v1/commands/{api.server_id}"
            if path == "commands"
            else (f"/api/v1/docker/{api.server_id}/containers/web/stop")
        )
        response = await api.client.post(url, json={"command": "uptime"}, headers=api.headers)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.json() == {"detail": "Too many commands in flight for this server"}


async def test_idempotency_key_is_passed_on_for_commands_and_container_actions(api: Api) -> None:
    await api.stubs.ok(calls.COMMANDS_RUN, command_result(api.server_id))
    await api.stubs.ok(calls.DOCKER_RUN, docker_result(api.server_id, "stop"))
    headers = {**api.headers, "Idempotency-Key": "retry-8f14e45f"}
    response = await api.client.post(
        f"/api/v1/commands/{api.server_id}", json={"command": "uptime"}, headers=headers
    )
    assert response.status_code == 200
    response = await api.client.post(f"/api/v1/docker/{api.server_id}/containers/web/stop", headers=headers)
    assert response.status_code == 200
    [run] = api.stubs.calls(calls.COMMANDS_RUN)
    [stop] = api.stubs.calls(calls.DOCKER_RUN)
    assert run["idempotency_key"] == stop["idempotency_key"] == "retry-8f14e45f"


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
async def test_malformed_idempotency_key_is_422_and_runs_nothing(api: Api, key: str) -> None:
    await api.stubs.ok(calls.COMMANDS_RUN, command_result(api.server_id))
    headers: dict[str, str | bytes] = {**api.headers, "Idempotency-Key": key.encode()}
    response = await api.client.post(
        f"/api/v1/commands/{api.server_id}", json={"command": "uptime"}, headers=headers
    )
    assert response.status_code == 422
    assert api.stubs.calls(calls.COMMANDS_RUN) == []
