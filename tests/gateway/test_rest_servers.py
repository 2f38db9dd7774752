"""REST /servers and /api-keys, against a real gateway and stubbed services."""

from __future__ import annotations

import uuid

import pytest

from opswire.contract import rpc as calls
from opswire.runtime.rpc import NotFound
from tests.gateway.stubs import Api, now_iso, server_public


def key_public(server_id: uuid.UUID, **extra: object) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "server_id": str(server_id),
        "name": "prod",
        "prefix": "ow_abcde",
        "is_active": True,
        "created_at": now_iso(),
        **extra,
    }


async def test_list_servers_is_a_bare_array(api: Api) -> None:
    await api.stubs.ok(calls.SERVERS_LIST, [server_public(api.server_id), server_public(uuid.uuid4())])
    response = await api.client.get("/api/v1/servers", headers=api.headers)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list) and len(body) == 2
    assert body[0]["id"] == str(api.server_id) and body[0]["status"] == "offline"
    assert "last_seen" in body[0]
    assert api.stubs.calls(calls.SERVERS_LIST) == [{"user_id": str(api.user_id)}]


async def test_create_server_is_201_and_audited(api: Api) -> None:
    await api.stubs.ok(calls.SERVERS_CREATE, server_public(api.server_id, "db-1"))
    async with api.audit_events() as next_event:
        response = await api.client.post(
            "/api/v1/servers", json={"name": " db-1 ", "hostname": "db1.lan"}, headers=api.headers
        )
        event = await next_event()
    assert response.status_code == 201
    assert response.json()["name"] == "db-1"
    sent = api.stubs.calls(calls.SERVERS_CREATE)[0]
    assert sent["user_id"] == str(api.user_id) and sent["name"] == "db-1"
    assert (event.user_id, event.action, event.target) == (
        api.user_id,
        "server.create",
        f"server:{api.server_id}",
    )


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 256}, {"name": "a", "owner": "me"}])
async def test_create_server_bad_body_is_422_and_changes_nothing(api: Api, body: dict[str, str]) -> None:
    await api.stubs.ok(calls.SERVERS_CREATE, server_public(api.server_id))
    response = await api.client.post("/api/v1/servers", json=body, headers=api.headers)
    assert response.status_code == 422
    assert api.stubs.calls(calls.SERVERS_CREATE) == []


async def test_another_users_server_is_404(api: Api) -> None:
    await api.stubs.error(calls.SERVERS_GET, "not_found", "Server not found")
    response = await api.client.get(f"/api/v1/servers/{uuid.uuid4()}", headers=api.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "Server not found"}


async def test_malformed_server_id_is_422(api: Api) -> None:
    response = await api.client.get("/api/v1/servers/not-a-uuid", headers=api.headers)
    assert response.status_code == 422


async def test_update_sends_only_the_fields_given(api: Api) -> None:
    await api.stubs.ok(calls.SERVERS_UPDATE, server_public(api.server_id, "renamed"))
    response = await api.client.put(
        f"/api/v1/servers/{api.server_id}",
        json={"name": "renamed", "description": None},
        headers=api.headers,
    )
    assert response.status_code == 200
    assert response.json()["name"] == "renamed"
    assert api.stubs.calls(calls.SERVERS_UPDATE) == [
        {
            "user_id": str(api.user_id),
            "server_id": str(api.server_id),
            "name": "renamed",
            "description": None,
        }
    ]


async def test_a_reply_that_breaks_the_contract_is_500_not_passed_on(api: Api) -> None:
    broken = server_public(api.server_id)
    del broken["status"]
    await api.stubs.ok(calls.SERVERS_LIST, [broken])
    await api.stubs.ok(calls.SERVERS_GET, {**broken, "status": "busy"})
    listed = await api.client.get("/api/v1/servers", headers=api.headers)
    got = await api.client.get(f"/api/v1/servers/{api.server_id}", headers=api.headers)
    for response in (listed, got):
        assert response.status_code == 500
        assert response.json() == {"detail": "Malformed reply"}


async def test_delete_server_is_204_without_body(api: Api) -> None:
    await api.stubs.ok(calls.SERVERS_DELETE, {"deleted": True})
    await api.stubs.ok(calls.SERVERS_FORGET, {"thresholds_deleted": 0, "alerts_resolved": 0})
    async with api.audit_events() as next_event:
        response = await api.client.delete(f"/api/v1/servers/{api.server_id}", headers=api.headers)
        event = await next_event()
    assert response.status_code == 204
    assert response.content == b""
    assert event.action == "server.delete"
    ref = {"user_id": str(api.user_id), "server_id": str(api.server_id)}
    assert api.stubs.calls(calls.SERVERS_FORGET) == [ref], "its alert rules are dropped too"


async def test_delete_server_succeeds_even_if_ingest_is_down(api: Api) -> None:
    await api.stubs.ok(calls.SERVERS_DELETE, {"deleted": True})
    response = await api.client.delete(f"/api/v1/servers/{api.server_id}", headers=api.headers)
    assert response.status_code == 204


async def test_create_key_is_201_with_the_key_once_and_never_audited(api: Api) -> None:
    plain = "ow_" + "s" * 43
    await api.stubs.ok(calls.KEYS_CREATE, key_public(api.server_id, key=plain))
    async with api.audit_events() as next_event:
        response = await api.client.post(
            "/api/v1/api-keys",
            json={"server_id": str(api.server_id), "name": "prod"},
            headers=api.headers,
        )
        event = await next_event()
    assert response.status_code == 201
    assert response.json()["key"] == plain
    assert event.action == "api_key.create"
    assert plain not in event.model_dump_json()


async def test_list_keys_never_shows_a_key(api: Api) -> None:
    # Even if a service reply carried secrets, the public shape drops them.
    await api.stubs.ok(calls.KEYS_LIST, [key_public(api.server_id, key="ow_x", key_hash="ab")])
    response = await api.client.get(
        "/api/v1/api-keys", params={"server_id": str(api.server_id)}, headers=api.headers
    )
    assert response.status_code == 200
    [key] = response.json()
    assert "key" not in key and "key_hash" not in key
    assert api.stubs.calls(calls.KEYS_LIST)[0]["server_id"] == str(api.server_id)


async def test_list_keys_bad_filter_is_422(api: Api) -> None:
    response = await api.client.get("/api/v1/api-keys", params={"server_id": "nope"}, headers=api.headers)
    assert response.status_code == 422


async def test_revoke_key_is_204_and_404_maps(api: Api) -> None:
    key_id = uuid.uuid4()

    def revoke(request: dict[str, str]) -> dict[str, object]:
        if request["key_id"] != str(key_id):
            raise NotFound("API key not found")
        return key_public(api.server_id, id=str(key_id), is_active=False)

    await api.stubs.answer(calls.KEYS_REVOKE, revoke)
    ok = await api.client.delete(f"/api/v1/api-keys/{key_id}", headers=api.headers)
    missing = await api.client.delete(f"/api/v1/api-keys/{uuid.uuid4()}", headers=api.headers)
    assert ok.status_code == 204
    assert missing.status_code == 404


async def test_listing_keys_of_another_users_server_is_404(api: Api) -> None:
    await api.stubs.ok(calls.KEYS_LIST, [])
    response = await api.client.get(
        "/api/v1/api-keys", params={"server_id": str(uuid.uuid4())}, headers=api.headers
    )
    assert response.status_code == 404, "like every other denial (DESIGN §9), not 200 []"
    assert api.stubs.calls(calls.KEYS_LIST) == []
