"""Alert thresholds evaluated on real samples: one alert per breach, hysteresis, events on NATS."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from nats.aio.msg import Msg

from opswire.contract import rpc as calls
from opswire.contract.events import AlertEvent
from opswire.runtime.rpc import RpcClient, RpcError
from tests.ingest.support import Telemetry, base_time, next_event, sample

pytestmark = pytest.mark.usefixtures("ingest")


async def create_threshold(rpc: RpcClient, user: str, server: uuid.UUID, **rule: Any) -> str:
    body = {"user_id": user, "server_id": str(server), "comparison": "gt", **rule}
    created = await rpc.call(calls.THRESHOLDS_CREATE, body)
    return str(created["id"])


async def feed(
    telemetry: Telemetry,
    threshold_id: str,
    server: uuid.UUID,
    points: list[tuple[datetime, dict[str, Any]]],
) -> None:
    for ts, values in points:
        await telemetry.publish_sample(sample(server, ts, **values))
    await telemetry.wait_evaluated(threshold_id, points[-1][0])


async def alerts(rpc: RpcClient, user: str, **filters: Any) -> list[dict[str, Any]]:
    return list(await rpc.call(calls.ALERTS_LIST, {"user_id": user, **filters}))


async def expect_event(queue: asyncio.Queue[Msg], event: str, alert_id: str | None = None) -> AlertEvent:
    subject, data = await next_event(queue)
    parsed = AlertEvent.model_validate(data)
    assert parsed.event == event
    assert subject.endswith(f".alerts.{parsed.server_id}")
    if alert_id is not None:
        assert str(parsed.id) == alert_id
    return parsed


async def test_fires_once_per_breach_does_not_flap_and_resolves(telemetry: Telemetry, rpc: RpcClient) -> None:
    user, server = str(uuid.uuid4()), uuid.uuid4()
    threshold = await create_threshold(rpc, user, server, metric_type="cpu", threshold_value=80)
    t0 = base_time()
    cpu = [50, 90, 95, 85, 79, 81, 78.5, 83]  # hovers around 80 but never below 78 (hysteresis 2)
    async with telemetry.alert_events() as events:
        await feed(
            telemetry,
            threshold,
            server,
            [(t0 + timedelta(seconds=5 * i), {"cpu": c}) for i, c in enumerate(cpu)],
        )
        [alert] = await alerts(rpc, user)
        assert (alert["status"], alert["value"], alert["threshold_value"]) == ("active", 90, 80)
        fired = await expect_event(events, "fired", alert["id"])
        assert fired.status == "active" and fired.threshold_id == uuid.UUID(threshold)

        t1 = t0 + timedelta(minutes=1)
        await feed(telemetry, threshold, server, [(t1, {"cpu": 77.5})])  # past the margin: clears
        resolved = await expect_event(events, "resolved", alert["id"])
        assert resolved.status == "resolved" and resolved.resolved_by is None
        assert events.empty()  # nothing fired or resolved in between

        await feed(telemetry, threshold, server, [(t1 + timedelta(seconds=5), {"cpu": 99})])  # a new breach
        second = await expect_event(events, "fired")
    listed = await alerts(rpc, user)
    assert [a["id"] for a in listed] == [str(second.id), alert["id"]]  # newest first
    assert [a["id"] for a in await alerts(rpc, user, status="resolved")] == [alert["id"]]
    assert await alerts(rpc, user, server_id=str(uuid.uuid4())) == []


async def test_duration_is_measured_on_sample_timestamps(telemetry: Telemetry, rpc: RpcClient) -> None:
    user, server = str(uuid.uuid4()), uuid.uuid4()
    threshold = await create_threshold(
        rpc, user, server, metric_type="memory", threshold_value=50, duration_s=60
    )
    t0 = base_time()
    points = [
        (t0 - timedelta(seconds=40), {"memory": 60}),  # a breach starts...
        (t0 - timedelta(seconds=20), {"memory": 40}),  # ...and clears, so it does not count
        (t0, {"memory": 60}),
        (t0 + timedelta(seconds=30), {"memory": 70}),
        (t0 + timedelta(seconds=59), {"memory": 49}),  # below the line but within the margin
    ]
    await feed(telemetry, threshold, server, points)
    assert await alerts(rpc, user) == []
    await feed(telemetry, threshold, server, [(t0 + timedelta(seconds=60), {"memory": 65})])
    [alert] = await alerts(rpc, user)
    assert alert["value"] == 65 and "for 60 s" in alert["message"]


async def test_disk_uses_the_fullest_disk_and_lt_fires_below(telemetry: Telemetry, rpc: RpcClient) -> None:
    user, server = str(uuid.uuid4()), uuid.uuid4()
    disk = await create_threshold(rpc, user, server, metric_type="disk", threshold_value=90)
    low_mem = await create_threshold(
        rpc, user, server, metric_type="memory", comparison="lt", threshold_value=10
    )
    t0 = base_time()
    await feed(telemetry, disk, server, [(t0, {"disks": (20.0, 95.0), "memory": 5.0})])
    await telemetry.wait_evaluated(low_mem, t0)
    fired = {(a["metric_type"], a["value"]) for a in await alerts(rpc, user)}
    assert fired == {("disk", 95.0), ("memory", 5.0)}


async def test_manual_resolve_is_idempotent_scoped_and_keeps_the_latch(
    telemetry: Telemetry, rpc: RpcClient
) -> None:
    user, server = str(uuid.uuid4()), uuid.uuid4()
    threshold = await create_threshold(rpc, user, server, metric_type="cpu", threshold_value=80)
    t0 = base_time()
    async with telemetry.alert_events() as events:
        await feed(telemetry, threshold, server, [(t0, {"cpu": 90})])
        [alert] = await alerts(rpc, user)
        await expect_event(events, "fired", alert["id"])

        with pytest.raises(RpcError) as err:
            await rpc.call(calls.ALERTS_RESOLVE, {"user_id": str(uuid.uuid4()), "alert_id": alert["id"]})
        assert (err.value.code, err.value.detail) == ("not_found", "Alert not found")

        done = await rpc.call(calls.ALERTS_RESOLVE, {"user_id": user, "alert_id": alert["id"]})
        assert (done["status"], done["resolved_by"]) == ("resolved", user)
        await expect_event(events, "resolved", alert["id"])
        again = await rpc.call(calls.ALERTS_RESOLVE, {"user_id": user, "alert_id": alert["id"]})
        assert again == done

        # Still the same breach: no new alert until it clears.
        await feed(telemetry, threshold, server, [(t0 + timedelta(seconds=5), {"cpu": 95})])
        assert [a["status"] for a in await alerts(rpc, user)] == ["resolved"]
        await feed(
            telemetry,
            threshold,
            server,
            [(t0 + timedelta(seconds=10), {"cpu": 10}), (t0 + timedelta(seconds=15), {"cpu": 91})],
        )
        await expect_event(events, "fired")
        assert events.empty()
    assert [a["status"] for a in await alerts(rpc, user)] == ["active", "resolved"]


async def test_changing_the_rule_resolves_its_open_alert(telemetry: Telemetry, rpc: RpcClient) -> None:
    user, server = str(uuid.uuid4()), uuid.uuid4()
    threshold = await create_threshold(rpc, user, server, metric_type="cpu", threshold_value=80)
    t0 = base_time()
    async with telemetry.alert_events() as events:
        await feed(telemetry, threshold, server, [(t0, {"cpu": 85})])
        await expect_event(events, "fired")
        await rpc.call(
            calls.THRESHOLDS_UPDATE,
            {"user_id": user, "threshold_id": threshold, "threshold_value": 90},
        )
        await expect_event(events, "resolved")
        await feed(telemetry, threshold, server, [(t0 + timedelta(seconds=5), {"cpu": 88})])
        assert [a["status"] for a in await alerts(rpc, user)] == ["resolved"]
        await feed(telemetry, threshold, server, [(t0 + timedelta(seconds=10), {"cpu": 92})])
        fired = await expect_event(events, "fired")
    assert fired.threshold_value == 90
