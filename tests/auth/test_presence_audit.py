from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from nats.aio.client import Client as NatsClient

from opswire.contract import rpc as calls
from opswire.contract.events import AuditEvent, PresenceEvent, PresenceHeartbeat
from opswire.contract.resources import ServerStatus
from opswire.runtime.rpc import RpcClient
from tests.auth.conftest import RunAuth
from tests.auth.helpers import eventually, get_server, new_server, new_user
from tests.helpers.backends import Namespace


async def publish_presence(
    nc: NatsClient, namespace: Namespace, server_id: str, status: ServerStatus, conn: str
) -> None:
    event = PresenceEvent(
        server_id=uuid.UUID(server_id), status=status, connection_id=conn, gateway_id="gw-1"
    )
    subjects = namespace.subjects
    subject = (
        subjects.agent_connected(server_id) if status == "online" else subjects.agent_disconnected(server_id)
    )
    await nc.jetstream().publish(subject, event.model_dump_json().encode())


def status_is(status: str) -> Any:
    return lambda server: server["status"] == status


async def test_connect_disconnect_and_stale_disconnect(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    alice = await new_user(rpc)
    sid = (await new_server(rpc, alice))["id"]
    marker = (await new_server(rpc, alice, "marker"))["id"]

    async def server() -> dict[str, Any]:
        return await get_server(rpc, alice, sid)

    await publish_presence(nc, namespace, sid, "online", "conn-a")
    online = await eventually(server, status_is("online"))
    assert online["last_seen"] is not None

    # The agent reconnects (conn-b) before the old connection's disconnect arrives.
    await publish_presence(nc, namespace, sid, "online", "conn-b")
    await publish_presence(nc, namespace, sid, "offline", "conn-a")
    # Events are applied in stream order: once the marker is online, the stale disconnect was seen.
    await publish_presence(nc, namespace, marker, "online", "conn-m")
    await eventually(lambda: get_server(rpc, alice, marker), status_is("online"))
    assert (await server())["status"] == "online"

    await publish_presence(nc, namespace, sid, "offline", "conn-b")
    await eventually(server, status_is("offline"))
    # Unknown servers and junk on the stream are ignored and do not block later events.
    await publish_presence(nc, namespace, str(uuid.uuid4()), "online", "conn-x")
    await nc.jetstream().publish(namespace.subjects.agent_connected(sid), b"{garbage")
    await publish_presence(nc, namespace, sid, "online", "conn-c")
    await eventually(server, status_is("online"))


async def test_heartbeat_keeps_online_and_silence_turns_offline(
    run_auth: RunAuth, nc: NatsClient, namespace: Namespace
) -> None:
    async with run_auth(presence_timeout_s=0.4, presence_sweep_interval_s=0.05) as rpc:
        alice = await new_user(rpc)
        sid = (await new_server(rpc, alice))["id"]

        async def server() -> dict[str, Any]:
            return await get_server(rpc, alice, sid)

        # What auth tells others (ingest's offline rule) about changes it makes itself.
        told = await nc.subscribe(f"{namespace.prefix}.agents.{sid}.*")
        await publish_presence(nc, namespace, sid, "online", "conn-a")
        first = await eventually(server, status_is("online"))
        assert PresenceEvent.model_validate_json((await told.next_msg(2)).data).gateway_id == "gw-1"
        heartbeat = PresenceHeartbeat(gateway_id="gw-1", server_ids=[uuid.UUID(sid), uuid.uuid4()])
        subject = namespace.subjects.presence_heartbeat()
        # Heartbeats over two and a half timeouts (as auth's own last_seen measures them), each
        # awaited until auth took it: the sweeper (every 50 ms) must leave the server alone.
        since = datetime.fromisoformat(first["last_seen"])
        seen = since
        while seen - since < timedelta(seconds=2.5 * 0.4):
            await nc.publish(subject, heartbeat.model_dump_json().encode())
            still = await eventually(
                server, lambda s, before=seen: datetime.fromisoformat(s["last_seen"]) > before
            )
            assert still["status"] == "online"
            seen = datetime.fromisoformat(still["last_seen"])

        # The gateway dies: no disconnect event, no heartbeats.
        await eventually(server, status_is("offline"), timeout_s=3.0)
        swept = PresenceEvent.model_validate_json((await told.next_msg(3)).data)
        assert (swept.status, swept.reason, swept.connection_id) == ("offline", "not_seen", "conn-a")
        assert swept.gateway_id == "auth-sweeper"
        # ...but if it was only slow, its next heartbeat shows the agent is still there.
        await nc.publish(subject, heartbeat.model_dump_json().encode())
        await eventually(server, status_is("online"))
        back = PresenceEvent.model_validate_json((await told.next_msg(3)).data)
        assert (back.status, back.reason, back.connection_id) == ("online", "seen_again", "conn-a")
        await told.unsubscribe()


async def test_heartbeat_does_not_revive_a_disconnected_server(
    run_auth: RunAuth, nc: NatsClient, namespace: Namespace
) -> None:
    async with run_auth(presence_timeout_s=30) as rpc:
        alice = await new_user(rpc)
        sid = (await new_server(rpc, alice))["id"]
        marker = (await new_server(rpc, alice, "marker"))["id"]
        for server_id, conn in ((sid, "conn-a"), (marker, "conn-m")):
            await publish_presence(nc, namespace, server_id, "online", conn)
        await publish_presence(nc, namespace, sid, "offline", "conn-a")
        await eventually(lambda: get_server(rpc, alice, sid), status_is("offline"))
        seen = (await eventually(lambda: get_server(rpc, alice, marker), status_is("online")))["last_seen"]

        subject = namespace.subjects.presence_heartbeat()
        # A heartbeat sent before the disconnect, arriving after it; then junk; then one
        # for the marker. Heartbeats are handled in order: once the marker's last_seen
        # moved, the first one has been applied.
        stale = PresenceHeartbeat(gateway_id="gw-1", server_ids=[uuid.UUID(sid)])
        await nc.publish(subject, stale.model_dump_json().encode())
        await nc.publish(subject, b"not a heartbeat")
        fresh = PresenceHeartbeat(gateway_id="gw-1", server_ids=[uuid.UUID(marker)])
        await nc.publish(subject, fresh.model_dump_json().encode())
        await eventually(lambda: get_server(rpc, alice, marker), lambda server: server["last_seen"] != seen)
        assert (await get_server(rpc, alice, sid))["status"] == "offline"


async def test_audit_events_are_listed_newest_first(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    alice, bob = await new_user(rpc), await new_user(rpc)
    js = nc.jetstream()
    for action in ("server.create", "apikey.create"):
        event = AuditEvent(user_id=alice, action=action, target="server:1", detail={"name": "web-1"})
        await js.publish(namespace.subjects.audit(str(alice)), event.model_dump_json().encode())
    # The same event twice, as after a lost ack: one entry.
    twice = AuditEvent(user_id=bob, action="x").model_dump_json().encode()
    for _ in range(2):
        await js.publish(namespace.subjects.audit(str(bob)), twice)

    entries = await eventually(
        lambda: rpc.call(calls.AUDIT_LIST, {"user_id": str(alice)}), lambda rows: len(rows) == 2
    )
    assert [e["action"] for e in entries] == ["apikey.create", "server.create"]
    assert entries[0]["detail"] == {"name": "web-1"} and entries[0]["target"] == "server:1"
    limited = await rpc.call(calls.AUDIT_LIST, {"user_id": str(alice), "limit": 1})
    assert [e["action"] for e in limited] == ["apikey.create"]
    await eventually(lambda: rpc.call(calls.AUDIT_LIST, {"user_id": str(bob)}), lambda rows: len(rows) >= 1)
    await eventually(  # both copies handled (delivered and acked)
        lambda: js.consumer_info(namespace.subjects.audit_stream, "auth-audit"),
        lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
    )
    assert len(await rpc.call(calls.AUDIT_LIST, {"user_id": str(bob)})) == 1


async def test_an_audit_event_the_database_refuses_does_not_block_the_rest(
    rpc: RpcClient, nc: NatsClient, namespace: Namespace
) -> None:
    alice = await new_user(rpc)
    js = nc.jetstream()
    # PostgreSQL text cannot hold NUL: that one event is dropped, its neighbours are kept.
    for target in ("server:1", "bad\x00target", "server:2"):
        event = AuditEvent(user_id=alice, action="a" * 300, target=target)
        await js.publish(namespace.subjects.audit(str(alice)), event.model_dump_json().encode())

    entries = await eventually(
        lambda: rpc.call(calls.AUDIT_LIST, {"user_id": str(alice)}), lambda rows: len(rows) >= 2
    )
    assert sorted(e["target"] for e in entries) == ["server:1", "server:2"]
