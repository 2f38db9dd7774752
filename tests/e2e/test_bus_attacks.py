"""The bus is a trust boundary: every attack of issue 7, tried against `opswire up`.

The stack runs as a user starts it (embedded NATS with the generated config, every
service on its own identity). The attacker holds what another system is given, the
`subscriber` URL `opswire up` prints, and uses plain nats-py (not opswire code). Each
attack is refused by nats-server itself with a permissions violation, awaited on the
connection's error callback. Where it helps to show the attack is real, the identity
that is meant to do the same thing does it.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig, DeliverPolicy

from opswire.launcher.embedded import free_port
from opswire.runtime.permissions import ROLES, Role, inbox_prefix
from tests.helpers.client import Api, Socket, eventually, log_frame, metrics_frame
from tests.helpers.natsproto import assert_connect_refused
from tests.helpers.up import opswire_up

pytestmark = pytest.mark.timeout(240)

VIOLATION = "permissions violation"


@dataclass
class Up:
    data_dir: Path
    base_url: str
    nats_url: str  # without credentials
    subscriber_url: str  # as printed

    def url_of(self, role: Role) -> str:
        password = (self.data_dir / "credentials" / f"nats-{role}.password").read_text().strip()
        return self.nats_url.replace("nats://", f"nats://{role}:{password}@", 1)


@pytest.fixture(scope="module")
async def up() -> AsyncIterator[Up]:
    with tempfile.TemporaryDirectory(prefix="opswire-bus-") as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        async with opswire_up(data_dir, port) as (_process, banner):
            nats_url = re.search(r"NATS\s+(nats://127\.0\.0\.1:\d+)", banner)
            subscriber = re.search(r"read-only as: (nats://subscriber:\S+)", banner)
            assert nats_url and subscriber, banner
            yield Up(data_dir, f"http://127.0.0.1:{port}", nats_url.group(1), subscriber.group(1))


@dataclass
class Fleet:
    """One user with one server whose (scripted) agent is connected."""

    api: Api
    user_id: str
    server_id: str
    agent: Socket


@pytest.fixture(scope="module")
async def fleet(up: Up) -> AsyncIterator[Fleet]:
    async with httpx.AsyncClient(base_url=up.base_url, timeout=30) as http:
        api = await Api.new_user(http)
        me = await api.get("/auth/me")
        server_id, key = await api.new_server_with_key()
        agent = await Socket.agent(up.base_url.replace("http://", "ws://"), key)
        yield Fleet(api, me.json()["id"], server_id, agent)
        await agent.close()


class Probe:
    """A plain nats-py connection that records the errors the server sends it."""

    def __init__(self, nc: NatsClient, errors: asyncio.Queue[str]) -> None:
        self.nc = nc
        self.errors = errors

    @classmethod
    async def connect(cls, url: str, role: Role = "subscriber") -> Probe:
        errors: asyncio.Queue[str] = asyncio.Queue()

        async def on_error(exc: Exception) -> None:
            errors.put_nowait(str(exc))

        nc = await nats.connect(
            url, inbox_prefix=inbox_prefix(role), error_cb=on_error, allow_reconnect=False
        )
        return cls(nc, errors)

    async def refused(self, action: Callable[[], Awaitable[Any]], subject: str) -> None:
        """`action` is answered with a permissions violation naming `subject`."""
        await action()
        await self.nc.flush()
        while True:
            error = await asyncio.wait_for(self.errors.get(), 5)
            if VIOLATION in error.lower() and subject.lower() in error.lower():
                return

    async def publish_refused(self, subject: str, payload: bytes = b"{}") -> None:
        await self.refused(lambda: self.nc.publish(subject, payload), subject)

    async def subscribe_refused(self, subject: str) -> None:
        await self.refused(lambda: self.nc.subscribe(subject), subject)

    async def close(self) -> None:
        await self.nc.close()


@pytest.fixture
async def attacker(up: Up) -> AsyncIterator[Probe]:
    probe = await Probe.connect(up.subscriber_url)
    yield probe
    await probe.close()


async def _as(up: Up, role: Role) -> Probe:
    return await Probe.connect(up.url_of(role), role)


async def test_credential_files_are_the_owners_alone(up: Up) -> None:
    folder = up.data_dir / "credentials"
    assert folder.stat().st_mode & 0o777 == 0o700
    for role in ROLES:
        assert (folder / f"nats-{role}.password").stat().st_mode & 0o777 == 0o600
    assert (up.data_dir / "nats" / "opswire-nats.conf").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "credentials", [{}, {"user": "subscriber", "pass": "wrong"}, {"user": "gateway", "pass": ""}]
)
async def test_a_connection_without_valid_credentials_is_refused(up: Up, credentials: dict[str, str]) -> None:
    """Spoken in the NATS protocol itself, as any client would."""
    host, port = up.nats_url.removeprefix("nats://").split(":")
    await assert_connect_refused(host, int(port), credentials)


async def test_rpc_as_a_fake_user_is_refused(up: Up, fleet: Fleet, attacker: Probe) -> None:
    request = orjson.dumps({"user_id": fleet.user_id})
    await attacker.publish_refused("opswire.rpc.auth.servers.list", request)
    key_request = orjson.dumps({"user_id": fleet.user_id, "server_id": fleet.server_id, "name": "x"})
    await attacker.publish_refused("opswire.rpc.auth.keys.create", key_request)
    with pytest.raises(nats.errors.TimeoutError):
        # The server dropped the request: nobody ever answers it.
        await attacker.nc.request("opswire.rpc.auth.servers.list", request, timeout=1)
    # The gateway's identity may: the request above was a real one.
    gateway = await _as(up, "gateway")
    try:
        reply = orjson.loads((await gateway.nc.request("opswire.rpc.auth.servers.list", request, 5)).data)
        assert [s["id"] for s in reply["data"]] == [fleet.server_id]
    finally:
        await gateway.close()


async def test_only_the_commands_service_reaches_an_agent_inbox(
    up: Up, fleet: Fleet, attacker: Probe
) -> None:
    delivery = orjson.dumps(
        {
            "frame": {"type": "command", "command_id": uuid.uuid4().hex, "command": "id"},
            "reply_subject": f"opswire.rpc.commands.replies.{uuid.uuid4().hex}",
        }
    )
    inbox = f"opswire.agent.{fleet.server_id}.inbox"
    await attacker.publish_refused(inbox, delivery)
    others: tuple[Role, ...] = ("gateway", "auth", "ingest")
    for role in others:
        service = await _as(up, role)
        try:
            await service.publish_refused(inbox, delivery)
        finally:
            await service.close()
    # Nothing reached the agent and nothing ran: a command the user does send is the first.
    history = await fleet.api.get(f"/commands/{fleet.server_id}/history")
    assert history.status_code == 200 and history.json() == []


@pytest.mark.parametrize(
    "subject",
    [
        "_INBOX.>",
        "_INBOX_gateway.>",
        "_INBOX_auth.>",
        "_INBOX_commands.>",
        ">",
        "opswire.rpc.auth.login",
        "opswire.rpc.auth.register",
        "opswire.rpc.>",
        "opswire.agent.*.inbox",
        "opswire.agent.*.control",
        "opswire.audit.>",
        "$JS.API.>",
    ],
)
async def test_nobody_reads_secrets_in_flight(attacker: Probe, subject: str) -> None:
    await attacker.subscribe_refused(subject)


async def test_a_service_reads_only_its_own_replies(up: Up) -> None:
    foreign: dict[Role, str] = {
        "gateway": "_INBOX_commands.>",
        "commands": "_INBOX_gateway.>",
        "auth": "_INBOX.>",
        "ingest": "opswire.rpc.auth.>",
    }
    for role, other in foreign.items():
        service = await _as(up, role)
        try:
            await service.subscribe_refused(other)
        finally:
            await service.close()


def _forgeries(fleet: Fleet) -> list[tuple[str, dict[str, Any]]]:
    sid, uid = fleet.server_id, fleet.user_id
    now = "2026-12-01T00:00:00Z"
    return [
        (f"opswire.audit.{uid}", {"id": str(uuid.uuid4()), "user_id": uid, "action": "x", "timestamp": now}),
        (f"opswire.alerts.{sid}", {"server_id": sid, "state": "active", "value": 99.0}),
        (f"opswire.agents.{sid}.disconnected", {"server_id": sid, "timestamp": now}),
        (f"opswire.agent.{sid}.control", {"action": "close", "reason": "deleted"}),
        ("opswire.presence.heartbeat", {"gateway_id": "g", "server_ids": []}),
        (f"opswire.commands.{sid}.results", {"server_id": sid, "command_id": "c", "status": "succeeded"}),
        (f"opswire.rpc.commands.replies.{uuid.uuid4().hex}", {"command_id": "c", "exit_code": 0}),
        (f"opswire.metrics.{sid}", metrics_frame(server_id=sid)),
        (f"opswire.logs.{sid}", log_frame("forged")),
    ]


async def test_forged_events_are_refused(fleet: Fleet, attacker: Probe) -> None:
    for subject, payload in _forgeries(fleet):
        await attacker.publish_refused(subject, orjson.dumps(payload))


async def test_services_may_not_speak_for_each_other(up: Up, fleet: Fleet) -> None:
    sid = fleet.server_id
    denied: dict[Role, list[str]] = {
        "gateway": [f"opswire.alerts.{sid}", f"opswire.commands.{sid}.results"],
        "ingest": [f"opswire.agent.{sid}.control", f"opswire.agents.{sid}.connected", "opswire.rpc.auth.me"],
        "commands": [f"opswire.agent.{sid}.control", f"opswire.alerts.{sid}", "opswire.rpc.auth.me"],
        "auth": [f"opswire.audit.{fleet.user_id}", f"opswire.metrics.{sid}", "opswire.rpc.ingest.ping"],
    }
    for role, subjects in denied.items():
        service = await _as(up, role)
        try:
            for subject in subjects:
                await service.publish_refused(subject)
        finally:
            await service.close()


@pytest.mark.parametrize(
    "subject",
    [
        "$JS.API.CONSUMER.MSG.NEXT.OPSWIRE_AUDIT.auth-audit",
        "$JS.API.CONSUMER.MSG.NEXT.OPSWIRE_EVENTS.auth-presence",
        "$JS.API.CONSUMER.MSG.NEXT.OPSWIRE_METRICS.ingest-metrics",
        "$JS.API.CONSUMER.DELETE.OPSWIRE_LOGS.ingest-logs",
        "$JS.API.CONSUMER.DURABLE.CREATE.OPSWIRE_EVENTS.auth-presence",
        "$JS.ACK.OPSWIRE_EVENTS.auth-presence.1.1.1.1.1",
        "$JS.API.CONSUMER.CREATE.OPSWIRE_AUDIT",
        # Nameless: the name would be in the payload, where ingest's own durable could be named.
        "$JS.API.CONSUMER.CREATE.OPSWIRE_METRICS",
        "$JS.API.STREAM.INFO.OPSWIRE_AUDIT",
    ],
)
async def test_a_services_durable_consumer_and_private_stream_are_its_own(
    attacker: Probe, subject: str
) -> None:
    await attacker.publish_refused(subject)


@pytest.mark.parametrize("role", ["subscriber", "gateway", "commands", "ingest", "auth"])
async def test_nobody_deletes_or_reconfigures_a_stream(up: Up, role: Role) -> None:
    probe = await Probe.connect(up.subscriber_url if role == "subscriber" else up.url_of(role), role)
    try:
        await probe.publish_refused("$JS.API.STREAM.DELETE.OPSWIRE_LOGS")
        await probe.publish_refused("$JS.API.STREAM.PURGE.OPSWIRE_METRICS")
        if role not in ("ingest",):
            await probe.publish_refused("$JS.API.STREAM.UPDATE.OPSWIRE_LOGS")
    finally:
        await probe.close()


async def test_the_subscriber_receives_every_public_event_live_and_from_the_streams(
    up: Up, fleet: Fleet, attacker: Probe
) -> None:
    sid = fleet.server_id
    nc = attacker.nc
    live = {
        name: await nc.subscribe(subject)
        for name, subject in {
            "metrics": f"opswire.metrics.{sid}",
            "logs": f"opswire.logs.{sid}",
            "alerts": f"opswire.alerts.{sid}",
            "presence": "opswire.agents.>",
            "results": f"opswire.commands.{sid}.results",
        }.items()
    }
    await nc.flush()
    threshold = await fleet.api.post(
        "/alerts/thresholds",
        json={"server_id": sid, "metric_type": "cpu", "comparison": "gt", "threshold_value": 50},
    )
    assert threshold.status_code == 201, threshold.text
    await fleet.agent.send(metrics_frame(cpu_percent=97.0))
    await fleet.agent.send(log_frame("hello other systems"))
    reply = asyncio.create_task(fleet.api.post(f"/commands/{sid}", json={"command": "uptime"}))
    command = await fleet.agent.recv_type("command")
    await fleet.agent.send(
        {
            "type": "command_response",
            "command_id": command["command_id"],
            "output": "up 3 days",
            "exit_code": 0,
            "duration_ms": 4,
        }
    )
    assert (await reply).status_code == 200

    assert orjson.loads((await live["metrics"].next_msg(10)).data)["cpu_percent"] == 97.0
    assert orjson.loads((await live["logs"].next_msg(10)).data)["message"] == "hello other systems"
    assert orjson.loads((await live["alerts"].next_msg(10)).data)["server_id"] == sid
    assert orjson.loads((await live["results"].next_msg(10)).data)["output"] == "up 3 days"
    # A second agent connection is presence news (and replaces the first: reconnect it).
    key = await fleet.api.post("/api-keys", json={"server_id": sid, "name": "second"})
    second = await Socket.agent(up.base_url.replace("http://", "ws://"), key.json()["key"])
    presence = orjson.loads((await live["presence"].next_msg(10)).data)
    assert presence["server_id"] == sid
    fleet.agent = second

    # Its own consumers on the public streams: durable ones and an ordered one.
    js = nc.jetstream()
    durable = await js.pull_subscribe(f"opswire.metrics.{sid}", durable="my-tool", stream="OPSWIRE_METRICS")
    [stored] = await durable.fetch(1, timeout=10)
    assert orjson.loads(stored.data)["cpu_percent"] == 97.0
    await stored.ack()
    results = await js.pull_subscribe(
        f"opswire.commands.{sid}.results", durable="my-results", stream="OPSWIRE_EVENTS"
    )
    [result] = await results.fetch(1, timeout=10)
    assert orjson.loads(result.data)["command_id"] == command["command_id"]
    ordered = await js.subscribe(
        f"opswire.alerts.{sid}", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    assert orjson.loads((await ordered.next_msg(10)).data)["server_id"] == sid


async def test_push_consumers_aimed_at_internal_subjects_are_removed_and_change_nothing(
    up: Up, fleet: Fleet, attacker: Probe
) -> None:
    """A consumer's deliver subject is its creator's choice (nats-server does not check it
    against publish permissions): aim stored samples that look like a control notice at
    the agent's control subject, an RPC queue group, the agent's inbox and another
    stream's subject. The stream's owner deletes such consumers; meanwhile nothing
    internal acts on what they deliver."""
    sid = fleet.server_id
    await fleet.agent.send(metrics_frame(action="close", reason="deleted", user_id=fleet.user_id))
    js = attacker.nc.jetstream()
    # (subject, the queue group its service listens in: a push consumer must name it)
    deliver_to = [
        (f"opswire.agent.{sid}.control", None),
        ("opswire.rpc.auth.servers.delete", "auth"),
        (f"opswire.agent.{sid}.inbox", None),
        (f"opswire.alerts.{sid}", None),
    ]
    names = []
    for n, (subject, group) in enumerate(deliver_to):
        info = await js.add_consumer(
            "OPSWIRE_METRICS",
            ConsumerConfig(
                durable_name=f"aimed-{n}",
                deliver_subject=subject,
                deliver_group=group,
                filter_subject=f"opswire.metrics.{sid}",
            ),
        )
        names.append(info.name)
    # One aimed at the subscriber's own inbox is what push consumers are for: it stays.
    own = await js.add_consumer(
        "OPSWIRE_METRICS",
        ConsumerConfig(
            durable_name="own-inbox",
            deliver_subject=f"{inbox_prefix('subscriber')}.mine",
            filter_subject=f"opswire.metrics.{sid}",
        ),
    )

    async def all_removed() -> bool:
        existing = {c.name for c in await js.consumers_info("OPSWIRE_METRICS")}
        return not existing & set(names)

    await eventually(all_removed, timeout_s=10)
    assert (await js.consumer_info("OPSWIRE_METRICS", str(own.name))).name == own.name
    # The agent is still connected and still the user's.
    await fleet.agent.send({"type": "ping"})
    assert (await fleet.agent.recv_type("pong"))["type"] == "pong"
    server = await fleet.api.get(f"/servers/{sid}")
    assert server.status_code == 200 and server.json()["status"] == "online"
