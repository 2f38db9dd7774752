from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from nats.aio.client import Client as NatsClient

from opswire.contract import rpc as calls
from opswire.contract.events import AgentControl
from opswire.runtime.rpc import RpcClient, RpcError
from tests.auth.helpers import PASSWORD, get_server, new_server, new_user
from tests.helpers.backends import Namespace


async def expect_not_found(rpc: RpcClient, method: calls.RpcMethod[Any], body: dict[str, object]) -> None:
    with pytest.raises(RpcError) as exc:
        await rpc.call(method, body)
    assert exc.value.code == "not_found", method.method


async def test_servers_crud_is_owner_only(rpc: RpcClient) -> None:
    alice, mallory = await new_user(rpc), await new_user(rpc)
    server = await rpc.call(
        calls.SERVERS_CREATE,
        {"user_id": str(alice), "name": " web-1 ", "hostname": "web1.lan", "description": "front"},
    )
    assert (server["name"], server["status"], server["last_seen"]) == ("web-1", "offline", None)
    sid = server["id"]
    assert await rpc.call(calls.SERVERS_LIST, {"user_id": str(alice)}) == [server]
    assert await rpc.call(calls.SERVERS_LIST, {"user_id": str(mallory)}) == []

    updated = await rpc.call(
        calls.SERVERS_UPDATE, {"user_id": str(alice), "server_id": sid, "description": "edge"}
    )
    assert (updated["name"], updated["hostname"], updated["description"]) == (
        "web-1",
        "web1.lan",
        "edge",
    )
    assert await get_server(rpc, alice, sid) == updated
    assert await rpc.call(calls.AUTH_AUTHORIZE, {"user_id": str(alice), "server_id": sid}) == {"ok": True}

    theirs = {"user_id": str(mallory), "server_id": sid}
    await expect_not_found(rpc, calls.SERVERS_GET, theirs)
    await expect_not_found(rpc, calls.SERVERS_UPDATE, {**theirs, "name": "pwned"})
    await expect_not_found(rpc, calls.SERVERS_DELETE, theirs)
    await expect_not_found(rpc, calls.AUTH_AUTHORIZE, theirs)
    await expect_not_found(rpc, calls.SERVERS_GET, {"user_id": str(alice), "server_id": str(uuid.uuid4())})
    assert (await get_server(rpc, alice, sid))["name"] == "web-1"  # untouched by the attempts


async def test_api_key_lifecycle(rpc: RpcClient, nc: NatsClient, namespace: Namespace) -> None:
    alice, mallory = await new_user(rpc), await new_user(rpc)
    server = await new_server(rpc, alice)
    other = await new_server(rpc, alice, "db-1")
    created = await rpc.call(
        calls.KEYS_CREATE, {"user_id": str(alice), "server_id": server["id"], "name": "k1"}
    )
    await rpc.call(calls.KEYS_CREATE, {"user_id": str(alice), "server_id": other["id"], "name": "k2"})
    plain = created["key"]
    assert plain.startswith("ow_") and len(plain) > 40 and plain.startswith(created["prefix"])

    listed = await rpc.call(calls.KEYS_LIST, {"user_id": str(alice), "server_id": server["id"]})
    assert [k["id"] for k in listed] == [created["id"]]
    assert all("key" not in k and plain not in orjson.dumps(k).decode() for k in listed)
    assert len(await rpc.call(calls.KEYS_LIST, {"user_id": str(alice)})) == 2
    assert await rpc.call(calls.KEYS_LIST, {"user_id": str(mallory)}) == []
    await expect_not_found(
        rpc, calls.KEYS_CREATE, {"user_id": str(mallory), "server_id": server["id"], "name": "x"}
    )

    identity = await rpc.call(calls.AUTH_VERIFY_KEY, {"api_key": plain})
    assert identity == {
        "server_id": server["id"],
        "key_id": created["id"],
        "user_id": str(alice),
        "key_name": created["name"],
    }
    used = await rpc.call(calls.KEYS_LIST, {"user_id": str(alice), "server_id": server["id"]})
    assert used[0]["last_used_at"] is not None

    await expect_not_found(rpc, calls.KEYS_REVOKE, {"user_id": str(mallory), "key_id": created["id"]})
    control = await nc.subscribe(namespace.subjects.agent_control(server["id"]))
    revoked = await rpc.call(calls.KEYS_REVOKE, {"user_id": str(alice), "key_id": created["id"]})
    assert revoked["is_active"] is False
    notice = AgentControl.model_validate_json((await control.next_msg(timeout=2)).data)
    assert (notice.reason, str(notice.key_id)) == ("revoked", created["id"])
    await control.unsubscribe()

    with pytest.raises(RpcError) as exc:
        await rpc.call(calls.AUTH_VERIFY_KEY, {"api_key": plain})
    assert (exc.value.code, exc.value.detail) == ("unauthorized", "Invalid or inactive API key")
    with pytest.raises(RpcError) as unknown:
        await rpc.call(calls.AUTH_VERIFY_KEY, {"api_key": "ow_" + "x" * 43})
    assert unknown.value.code == "unauthorized"


async def test_keys_verified_together_each_get_their_own_answer(rpc: RpcClient) -> None:
    """Concurrent verifications share lookups (auth/key_check.py): none may get another's."""
    alice = await new_user(rpc)
    keys = []
    for i in range(12):
        server = await new_server(rpc, alice, f"fleet-{i}")
        created = await rpc.call(
            calls.KEYS_CREATE, {"user_id": str(alice), "server_id": server["id"], "name": f"k{i}"}
        )
        keys.append((created, server))
    revoked = keys.pop()[0]
    await rpc.call(calls.KEYS_REVOKE, {"user_id": str(alice), "key_id": revoked["id"]})

    async def verify(api_key: str) -> dict[str, Any] | str:
        try:
            return dict(await rpc.call(calls.AUTH_VERIFY_KEY, {"api_key": api_key}))
        except RpcError as exc:
            return exc.code

    asked = [key["key"] for key, _ in keys] * 3 + [revoked["key"], "ow_" + "y" * 43]
    answers = await asyncio.gather(*(verify(k) for k in asked))
    expected = [
        {"server_id": server["id"], "key_id": key["id"], "user_id": str(alice), "key_name": key["name"]}
        for key, server in keys
    ] * 3 + ["unauthorized", "unauthorized"]
    assert answers == expected


async def test_deleting_a_server_closes_its_agent_and_kills_its_keys(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    alice = await new_user(rpc)
    server = await new_server(rpc, alice)
    key = await rpc.call(calls.KEYS_CREATE, {"user_id": str(alice), "server_id": server["id"], "name": "k"})
    control = await nc.subscribe(namespace.subjects.agent_control(server["id"]))

    await rpc.call(calls.SERVERS_DELETE, {"user_id": str(alice), "server_id": server["id"]})

    notice = AgentControl.model_validate_json((await control.next_msg(timeout=2)).data)
    assert notice.reason == "deleted"
    await control.unsubscribe()
    with pytest.raises(RpcError) as exc:
        await rpc.call(calls.AUTH_VERIFY_KEY, {"api_key": key["key"]})
    assert exc.value.code == "unauthorized"
    assert await rpc.call(calls.KEYS_LIST, {"user_id": str(alice)}) == []
    await expect_not_found(rpc, calls.SERVERS_GET, {"user_id": str(alice), "server_id": server["id"]})


async def test_non_json_request_gets_an_invalid_reply(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    reply = await nc.request(namespace.subjects.rpc("auth", "servers.list"), b"{not json", timeout=2)
    assert orjson.loads(reply.data)["error"]["code"] == "invalid"


async def test_nul_characters_are_invalid_and_store_nothing(rpc: RpcClient) -> None:
    # PostgreSQL text cannot hold NUL: the service refuses it as input instead of failing inside.
    user_id = await new_user(rpc)
    with pytest.raises(RpcError) as created:
        await rpc.call(calls.SERVERS_CREATE, {"user_id": str(user_id), "name": "web\x00"})
    assert created.value.code == "invalid"
    with pytest.raises(RpcError) as registered:
        await rpc.call(
            calls.AUTH_REGISTER,
            {"email": "nul@example.com", "password": PASSWORD, "full_name": "A\x00"},
        )
    assert registered.value.code == "invalid"
    with pytest.raises(RpcError) as login:
        await rpc.call(calls.AUTH_LOGIN, {"email": "nul@example.com\x00", "password": PASSWORD})
    assert login.value.code == "invalid"
    assert await rpc.call(calls.SERVERS_LIST, {"user_id": str(user_id)}) == []
