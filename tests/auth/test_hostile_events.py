"""Junk on the presence and audit subjects from an outside system never blocks the events after it."""

from __future__ import annotations

import orjson
from nats.aio.client import Client as NatsClient

from opswire.contract import rpc as calls
from opswire.contract.events import AuditEvent
from opswire.runtime.rpc import RpcClient
from tests.auth.helpers import eventually, new_server, new_user
from tests.helpers.backends import Namespace

OUT_OF_RANGE = "0001-01-01T00:00:00+05:00"


async def test_unstorable_audit_events_do_not_block_later_ones(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    alice = await new_user(rpc)
    subject = namespace.subjects.audit(str(alice))
    js = nc.jetstream()
    deep = orjson.dumps({"user_id": str(alice), "action": "deep", "detail": {"d": "DEEP"}})
    for payload in (
        deep.replace(b'"DEEP"', b"[" * 1000 + b"]" * 1000),  # parses, but cannot be stored
        orjson.dumps({"user_id": str(alice), "action": "old", "timestamp": OUT_OF_RANGE}),
    ):
        await js.publish(subject, payload)
    await js.publish(subject, AuditEvent(user_id=alice, action="kept").model_dump_json().encode())

    entries = await eventually(
        lambda: rpc.call(calls.AUDIT_LIST, {"user_id": str(alice)}),
        lambda rows: any(e["action"] == "kept" for e in rows),
    )
    assert [e["action"] for e in entries] == ["kept"]


async def test_presence_event_with_out_of_range_timestamp_does_not_block(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    alice = await new_user(rpc)
    sid = (await new_server(rpc, alice))["id"]
    subject = namespace.subjects.agent_connected(sid)
    bad = {
        "server_id": sid,
        "status": "online",
        "timestamp": OUT_OF_RANGE,
        "connection_id": "c0",
        "gateway_id": "gw",
    }
    good = {**bad, "timestamp": None, "connection_id": "c1"}
    del good["timestamp"]
    js = nc.jetstream()
    await js.publish(subject, orjson.dumps(bad))
    await js.publish(subject, orjson.dumps(good))

    server = await eventually(
        lambda: rpc.call(calls.SERVERS_GET, {"user_id": str(alice), "server_id": sid}),
        lambda s: s["status"] == "online",
    )
    assert server["status"] == "online"
