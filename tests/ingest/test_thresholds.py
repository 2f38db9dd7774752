"""Threshold CRUD over RPC, scoped to the user."""

from __future__ import annotations

import uuid

import pytest

from opswire.contract import rpc as calls
from opswire.runtime.rpc import RpcClient, RpcError

pytestmark = pytest.mark.usefixtures("ingest")


async def test_thresholds_crud_is_scoped_to_the_user(rpc: RpcClient) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    server_a, server_b = str(uuid.uuid4()), str(uuid.uuid4())
    created = await rpc.call(
        calls.THRESHOLDS_CREATE,
        {
            "user_id": alice,
            "server_id": server_a,
            "metric_type": "cpu",
            "comparison": "gt",
            "threshold_value": 90,
        },
    )
    assert created["duration_s"] == 0 and created["enabled"] is True
    assert "user_id" not in created and "latched" not in created
    await rpc.call(
        calls.THRESHOLDS_CREATE,
        {
            "user_id": alice,
            "server_id": server_b,
            "metric_type": "disk",
            "comparison": "gt",
            "threshold_value": 80,
            "duration_s": 60,
        },
    )
    await rpc.call(
        calls.THRESHOLDS_CREATE,
        {
            "user_id": bob,
            "server_id": server_a,
            "metric_type": "memory",
            "comparison": "lt",
            "threshold_value": 5,
        },
    )

    mine = await rpc.call(calls.THRESHOLDS_LIST, {"user_id": alice})
    assert sorted(t["metric_type"] for t in mine) == ["cpu", "disk"]
    on_a = await rpc.call(calls.THRESHOLDS_LIST, {"user_id": alice, "server_id": server_a})
    assert [t["id"] for t in on_a] == [created["id"]]

    updated = await rpc.call(
        calls.THRESHOLDS_UPDATE,
        {"user_id": alice, "threshold_id": created["id"], "threshold_value": 75.5},
    )
    assert (updated["threshold_value"], updated["metric_type"], updated["comparison"]) == (
        75.5,
        "cpu",
        "gt",
    )

    ref = {"user_id": bob, "threshold_id": created["id"]}
    for method, extra in (
        (calls.THRESHOLDS_UPDATE, {"enabled": False}),
        (calls.THRESHOLDS_DELETE, {}),
    ):
        with pytest.raises(RpcError) as err:
            await rpc.call(method, {**ref, **extra})
        assert (err.value.code, err.value.detail) == ("not_found", "Threshold not found")

    await rpc.call(calls.THRESHOLDS_DELETE, {"user_id": alice, "threshold_id": created["id"]})
    assert [t["metric_type"] for t in await rpc.call(calls.THRESHOLDS_LIST, {"user_id": alice})] == ["disk"]
    with pytest.raises(RpcError) as err:
        await rpc.call(calls.THRESHOLDS_DELETE, {"user_id": alice, "threshold_id": created["id"]})
    assert err.value.code == "not_found"


async def test_invalid_threshold_is_refused(rpc: RpcClient) -> None:
    user = str(uuid.uuid4())
    with pytest.raises(RpcError) as err:
        await rpc.call(
            calls.THRESHOLDS_CREATE,
            {
                "user_id": user,
                "server_id": str(uuid.uuid4()),
                "metric_type": "gpu",
                "comparison": "gt",
                "threshold_value": 90,
            },
        )
    assert err.value.code == "invalid"
    assert await rpc.call(calls.THRESHOLDS_LIST, {"user_id": user}) == []


async def test_ping(rpc: RpcClient) -> None:
    assert await rpc.call(calls.INGEST_PING, {}) == {"status": "ok"}


async def test_the_object_get_returned_can_be_put_back_but_not_onto_another_server(rpc: RpcClient) -> None:
    user = str(uuid.uuid4())
    created = await rpc.call(
        calls.THRESHOLDS_CREATE,
        {
            "user_id": user,
            "server_id": str(uuid.uuid4()),
            "metric_type": "cpu",
            "comparison": "gt",
            "threshold_value": 90,
        },
    )
    ref = {"user_id": user, "threshold_id": created["id"]}
    # As GET returned it (DESIGN §9), with one field changed: id, server_id, created_at unchanged.
    updated = await rpc.call(calls.THRESHOLDS_UPDATE, {**ref, **created, "threshold_value": 75})
    assert updated == {**created, "threshold_value": 75.0}
    with pytest.raises(RpcError) as refused:
        await rpc.call(
            calls.THRESHOLDS_UPDATE, {**ref, **updated, "server_id": str(uuid.uuid4()), "enabled": False}
        )
    assert refused.value.code == "invalid" and "server_id" in str(refused.value.detail)
    (stored,) = await rpc.call(calls.THRESHOLDS_LIST, {"user_id": user})
    assert stored == updated, "a refused update changes nothing"
