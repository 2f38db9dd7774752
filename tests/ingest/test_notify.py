"""Notifications: channels over RPC (URL masked), alerts delivered to a real local HTTP
receiver through Apprise's `json://`, the offline rule from presence events, and a
receiver that is down being retried without holding up ingest."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Literal

import orjson
import pytest
from prometheus_client import REGISTRY

from ingest.settings import IngestSettings
from opswire.contract import rpc as calls
from opswire.contract.events import PresenceEvent
from opswire.launcher.embedded import free_port
from opswire.runtime.rpc import RpcClient, RpcError
from tests.helpers.receiver import receiver
from tests.ingest.support import Telemetry, base_time, eventually, running_ingest, sample

BODY_FIELDS = {
    "event",
    "alert_id",
    "server_id",
    "metric",
    "value",
    "threshold",
    "comparison",
    "state",
    "since",
    "resolved_at",
    "message",
    "link",
}


@pytest.fixture
def notify_settings(ingest_settings: IngestSettings) -> IngestSettings:
    return ingest_settings.model_copy(
        update={
            "notify_retry_base_s": 0.2,
            "notify_retry_max_s": 0.5,
            "notify_timeout_s": 2.0,
            "public_url": "https://ops.example.com",
        }
    )


@pytest.fixture
async def notifying_ingest(notify_settings: IngestSettings, telemetry: Telemetry) -> AsyncIterator[None]:
    async with running_ingest(notify_settings):
        yield


pytestmark = pytest.mark.usefixtures("notifying_ingest")


async def add_channel(rpc: RpcClient, user: str, url: str, **extra: Any) -> dict[str, Any]:
    created: dict[str, Any] = await rpc.call(
        calls.CHANNELS_CREATE, {"user_id": user, "name": "hook", "url": url, **extra}
    )
    return created


async def test_channels_crud_keep_the_url_secret(rpc: RpcClient) -> None:
    user, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    secret_url = "json://127.0.0.1:9/hook?token=s3cr3t-t0ken-value"
    created = await add_channel(rpc, user, secret_url)
    assert created["url"].startswith("json://") and "s3cr3t" not in created["url"]
    assert created["enabled"] is True and created["last_error"] is None
    listed = await rpc.call(calls.CHANNELS_LIST, {"user_id": user})
    assert listed == [created]
    assert "s3cr3t" not in orjson.dumps(listed).decode()

    with pytest.raises(RpcError) as refused:
        await add_channel(rpc, user, "not a url at all")
    assert refused.value.code == "invalid"
    assert await rpc.call(calls.CHANNELS_LIST, {"user_id": user}) == [created]

    updated = await rpc.call(
        calls.CHANNELS_UPDATE,
        {"user_id": user, "channel_id": created["id"], "enabled": False, "name": "renamed"},
    )
    assert updated == created | {"enabled": False, "name": "renamed"}
    for call, body in (
        (calls.CHANNELS_UPDATE, {"enabled": True}),
        (calls.CHANNELS_DELETE, {}),
        (calls.CHANNELS_TEST, {}),
    ):
        with pytest.raises(RpcError) as hidden:
            await rpc.call(call, {"user_id": stranger, "channel_id": created["id"], **body})
        assert hidden.value.code == "not_found"
    assert await rpc.call(calls.CHANNELS_LIST, {"user_id": stranger}) == []

    await rpc.call(calls.CHANNELS_DELETE, {"user_id": user, "channel_id": created["id"]})
    assert await rpc.call(calls.CHANNELS_LIST, {"user_id": user}) == []


async def test_send_test_reports_success_and_failure(rpc: RpcClient) -> None:
    user = str(uuid.uuid4())
    async with receiver() as hook:
        channel = await add_channel(rpc, user, hook.url)
        result = await rpc.call(calls.CHANNELS_TEST, {"user_id": user, "channel_id": channel["id"]})
        assert result == {"sent": True, "error": None}
        title, body = await hook.next()
        assert "Test" in title and body["event"] == "test"
    down = await add_channel(rpc, user, f"json://127.0.0.1:{free_port()}/hook")
    failed = await rpc.call(calls.CHANNELS_TEST, {"user_id": user, "channel_id": down["id"]})
    assert failed["sent"] is False and failed["error"]
    listed = {c["id"]: c for c in await rpc.call(calls.CHANNELS_LIST, {"user_id": user})}
    assert listed[channel["id"]]["last_sent_at"] is not None
    assert listed[down["id"]]["last_error"] == failed["error"]


async def test_fired_resolved_and_offline_alerts_reach_the_receiver(
    telemetry: Telemetry, rpc: RpcClient
) -> None:
    user, server = str(uuid.uuid4()), uuid.uuid4()
    async with receiver() as hook:
        await add_channel(rpc, user, hook.url)
        await add_channel(rpc, user, f"json://127.0.0.1:{free_port()}/off", enabled=False)
        await rpc.call(
            calls.THRESHOLDS_CREATE,
            {
                "user_id": user,
                "server_id": str(server),
                "metric_type": "cpu",
                "comparison": "gt",
                "threshold_value": 80,
            },
        )
        t0 = base_time()
        for i, cpu in enumerate((95.0, 40.0)):
            await telemetry.publish_sample(sample(server, t0 + timedelta(seconds=5 * i), cpu=cpu))

        title, fired = await hook.next()
        assert "FIRING" in title and "CPU" in title
        assert set(fired) == BODY_FIELDS
        assert fired | {"alert_id": "", "since": ""} == {
            "event": "fired",
            "alert_id": "",
            "server_id": str(server),
            "metric": "cpu",
            "value": 95.0,
            "threshold": 80.0,
            "comparison": "gt",
            "state": "active",
            "since": "",
            "resolved_at": None,
            "message": fired["message"],
            "link": f"https://ops.example.com/#/servers/{server}",
        }
        title, resolved = await hook.next()
        assert "RESOLVED" in title
        assert resolved["event"] == "resolved" and resolved["state"] == "resolved"
        assert resolved["alert_id"] == fired["alert_id"] and resolved["resolved_at"]

        await rpc.call(
            calls.THRESHOLDS_CREATE,
            {
                "user_id": user,
                "server_id": str(server),
                "metric_type": "offline",
                "comparison": "gt",
                "threshold_value": 0,
            },
        )
        js, subjects = telemetry.js, telemetry.subjects
        steps: list[tuple[Literal["online", "offline"], str]] = [
            ("offline", subjects.agent_disconnected(str(server))),
            ("online", subjects.agent_connected(str(server))),
        ]
        for status, subject in steps:
            event = PresenceEvent(
                server_id=server,
                status=status,
                connection_id="c1",
                gateway_id="g1",
                reason="idle" if status == "offline" else None,
            )
            await js.publish(subject, event.model_dump_json().encode())
        title, offline = await hook.next()
        assert "FIRING" in title and "offline" in title.lower()
        assert offline["metric"] == "offline" and offline["state"] == "active"
        title, back = await hook.next()
        assert "RESOLVED" in title and back["metric"] == "offline" and back["alert_id"] == offline["alert_id"]
        listed = await rpc.call(calls.ALERTS_LIST, {"user_id": user, "server_id": str(server)})
        assert sorted(a["metric_type"] for a in listed) == ["cpu", "offline"]
        assert all(a["status"] == "resolved" for a in listed)
        assert hook.received.empty()  # nothing twice, nothing for the disabled channel


async def test_a_receiver_that_is_down_is_retried_and_ingest_goes_on(
    telemetry: Telemetry, rpc: RpcClient
) -> None:
    user, server = str(uuid.uuid4()), uuid.uuid4()
    port = free_port()
    channel = await add_channel(rpc, user, f"json://127.0.0.1:{port}/hook")
    await rpc.call(
        calls.THRESHOLDS_CREATE,
        {
            "user_id": user,
            "server_id": str(server),
            "metric_type": "memory",
            "comparison": "gt",
            "threshold_value": 50,
        },
    )
    retried, delivered = _notifications("retrying"), _notifications("delivered")
    t0 = base_time()
    await telemetry.publish_sample(sample(server, t0, memory=90.0))

    async def attempts() -> int:
        rows = await telemetry.fetch(
            "SELECT attempts FROM ingest.notification_deliveries WHERE channel_id = $1",
            uuid.UUID(channel["id"]),
        )
        return int(rows[0]["attempts"]) if rows else 0

    await eventually(attempts, lambda n: n >= 2)  # tried, failed, tried again
    assert _notifications("retrying") >= retried + 1, "failures are counted"
    listed = await rpc.call(calls.CHANNELS_LIST, {"user_id": user})
    assert listed[0]["last_error"] and listed[0]["last_error_at"]
    # Meanwhile ingest stores everything that arrives.
    for i in range(1, 21):
        await telemetry.publish_sample(sample(server, t0 + timedelta(seconds=i), memory=90.0))
    await telemetry.wait_count("metrics", server, 21)
    assert await attempts() >= 2, "still queued, not dropped"

    async with receiver(port) as hook:  # the receiver comes back: the alert arrives, once
        title, body = await hook.next()
        assert "FIRING" in title and body["metric"] == "memory" and body["value"] == 90.0
        await eventually(attempts, lambda n: n == 0)
    assert hook.received.empty()
    assert _notifications("delivered") == delivered + 1


def _notifications(outcome: str) -> float:
    """This process's `opswire_notifications_total` (ingest runs in the test's process)."""
    return REGISTRY.get_sample_value("opswire_notifications_total", {"outcome": outcome}) or 0.0


async def test_disabling_a_channel_drops_what_it_had_queued(telemetry: Telemetry, rpc: RpcClient) -> None:
    user, server = str(uuid.uuid4()), uuid.uuid4()
    channel = await add_channel(rpc, user, f"json://127.0.0.1:{free_port()}/hook")
    await rpc.call(
        calls.THRESHOLDS_CREATE,
        {
            "user_id": user,
            "server_id": str(server),
            "metric_type": "cpu",
            "comparison": "gt",
            "threshold_value": 50,
        },
    )
    await telemetry.publish_sample(sample(server, base_time(), cpu=90.0))

    async def queued() -> int:
        rows = await telemetry.fetch(
            "SELECT count(*) AS n FROM ingest.notification_deliveries WHERE channel_id = $1",
            uuid.UUID(channel["id"]),
        )
        return int(rows[0]["n"])

    await eventually(queued, lambda n: n == 1)
    await rpc.call(calls.CHANNELS_UPDATE, {"user_id": user, "channel_id": channel["id"], "enabled": False})
    assert await queued() == 0
