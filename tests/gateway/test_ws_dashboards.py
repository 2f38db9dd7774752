"""Dashboard sockets: handshake, latest-then-live metrics, alerts, logs, fan-out (DESIGN §3, §8)."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import jwt
import pytest
from nats.aio.client import Client as NatsClient
from websockets.asyncio.client import ClientConnection, connect

from opswire.contract.events import AlertEvent
from opswire.contract.types import utc_now
from opswire.runtime.tokens import TokenService
from tests.helpers.backends import Namespace
from tests.helpers.ws import (
    Gateway,
    Services,
    agent,
    eventually,
    gateway,
    log_frame,
    metrics_frame,
    ping,
    recv,
    recv_until_closed,
    seconds_ago,
    send,
    wait_for_interest,
)


@pytest.fixture
async def services(nc: NatsClient, namespace: Namespace) -> AsyncIterator[Services]:
    stub = Services(nc, namespace.subjects)
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture
def tokens(jwt_secret: str) -> TokenService:
    return TokenService(jwt_secret)


def _owned_agent(services: Services, tokens: TokenService) -> tuple[str, str, str]:
    """(api key, server id, access token of its owner)."""
    key, identity = services.add_agent()
    services.owners.add((identity.user_id, identity.server_id))
    return key, str(identity.server_id), tokens.issue_pair(identity.user_id).access_token


@asynccontextmanager
async def dashboard(
    gw: Gateway, stream: str, server_id: str, token: str, **options: Any
) -> AsyncIterator[ClientConnection]:
    async with connect(gw.ws(f"/ws/{stream}/{server_id}"), **options) as ws:
        await send(ws, {"type": "auth", "token": token})
        assert await recv(ws) == {"type": "auth_success", "server_id": server_id}
        yield ws


async def _publish_sample(
    nc: NatsClient, gw: Gateway, sid: str, frame: dict[str, Any], msg_id: str | None = None
) -> None:
    sample = {k: v for k, v in frame.items() if k != "type"}
    sample.update(server_id=sid, received_at=utc_now().isoformat())
    await wait_for_interest(nc, gw.subjects.metrics(sid))
    headers = {"Nats-Msg-Id": msg_id} if msg_id is not None else None
    await nc.publish(gw.subjects.metrics(sid), json.dumps(sample).encode(), headers=headers)


# --- handshake -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["garbage", "refresh", "expired", "not-mine", "unknown", "malformed-id", "no-token"]
)
async def test_dashboard_auth_failures(
    gw: Gateway, services: Services, tokens: TokenService, jwt_secret: str, case: str
) -> None:
    _, sid, token = _owned_agent(services, tokens)
    stranger = tokens.issue_pair(uuid.uuid4())
    expired = jwt.encode(
        {"sub": str(uuid.uuid4()), "type": "access", "exp": utc_now() - timedelta(minutes=1)},
        jwt_secret,
        algorithm="HS256",
    )
    bad_token, not_found = ("invalid_token", "Invalid or expired token"), ("not_found", "Server not found")
    frame, server, (code, message) = {
        "garbage": ({"token": "not.a.jwt"}, sid, bad_token),
        "refresh": ({"token": stranger.refresh_token}, sid, bad_token),
        "expired": ({"token": expired}, sid, bad_token),
        "not-mine": ({"token": stranger.access_token}, sid, not_found),
        "unknown": ({"token": token}, str(uuid.uuid4()), not_found),
        "malformed-id": ({"token": token}, "not-a-uuid", not_found),
        "no-token": ({}, sid, bad_token),
    }[case]
    async with connect(gw.ws(f"/ws/metrics/{server}")) as ws:
        await send(ws, {"type": "auth", **frame})
        frames = await recv_until_closed(ws)
    assert [(f["type"], f["code"], f["message"]) for f in frames] == [("error", code, message)]
    assert ws.close_code == 1008


async def test_dashboard_auth_timeout_and_non_auth_first_frame(
    nats_url: str, namespace: Namespace, jwt_secret: str
) -> None:
    async with gateway(nats_url, namespace, jwt_secret, auth_timeout_s=0.2) as gw:
        async with connect(gw.ws(f"/ws/logs/{uuid.uuid4()}")) as silent:
            timeout = (await recv_until_closed(silent))[0]
            assert timeout["code"] == "auth_timeout" and "timeout" in timeout["message"].lower()
        async with connect(gw.ws(f"/ws/logs/{uuid.uuid4()}")) as eager:
            await send(eager, {"type": "ping"})
            refused = (await recv_until_closed(eager))[0]
            assert (refused["code"], refused["message"]) == ("unauthenticated", "Authentication required")
    assert silent.close_code == eager.close_code == 1008


async def test_ping_and_bad_frames_after_auth(gw: Gateway, services: Services, tokens: TokenService) -> None:
    _, sid, token = _owned_agent(services, tokens)
    async with dashboard(gw, "logs", sid, token) as ws:
        await ws.send("{oops")
        error = await recv(ws)
        assert (error["code"], error["message"], error["detail"]) == (
            "invalid_format",
            "Invalid message format",
            "not valid JSON",
        )
        await send(ws, {"type": "subscribe", "topic": "everything"})
        assert (await recv(ws))["detail"] == "unknown type"
        # A second auth frame is a renewal (DESIGN §3), answered like the first.
        await send(ws, {"type": "auth", "token": token})
        assert await recv(ws) == {"type": "auth_success", "server_id": sid}
        await ping(ws)


# --- streams ---------------------------------------------------------------------------------


async def test_latest_sample_first_then_only_newer_live_ones(
    gw: Gateway, services: Services, tokens: TokenService, nc: NatsClient
) -> None:
    key, sid, token = _owned_agent(services, tokens)
    latest_at = seconds_ago(30)
    latest = {**metrics_frame(latest_at), "server_id": sid, "received_at": utc_now().isoformat()}
    del latest["type"]
    services.latest[uuid.UUID(sid)] = latest
    async with dashboard(gw, "metrics", sid, token) as ws, agent(gw, key) as probe:
        assert await recv(ws) == {"type": "metrics", "data": latest}
        # A live copy of the sample already shown (it raced the lookup) is skipped...
        await _publish_sample(nc, gw, sid, metrics_frame(latest_at))
        # ...and a newer one, sent by the agent, comes through as stored.
        newer = metrics_frame(seconds_ago(1), cpu_percent=99.0)
        await send(probe, newer)
        live = await recv(ws)
    assert live["type"] == "metrics"
    assert (live["data"]["timestamp"], live["data"]["cpu_percent"]) == (
        newer["timestamp"].replace("+00:00", "Z"),
        99.0,
    )
    assert live["data"]["server_id"] == sid and "received_at" in live["data"]


async def test_alerts_are_pushed_to_metrics_dashboards(
    gw: Gateway, services: Services, tokens: TokenService, nc: NatsClient
) -> None:
    _, sid, token = _owned_agent(services, tokens)
    alert = AlertEvent(
        id=uuid.uuid4(),
        server_id=uuid.UUID(sid),
        threshold_id=uuid.uuid4(),
        metric_type="cpu",
        comparison="gt",
        threshold_value=90,
        value=97.5,
        status="active",
        message="CPU above 90%",
        created_at=utc_now(),
        event="fired",
    )
    async with dashboard(gw, "metrics", sid, token) as ws:
        await wait_for_interest(nc, gw.subjects.alerts(sid))
        await nc.publish(gw.subjects.alerts(sid), alert.model_dump_json().encode())
        pushed = await recv(ws)
    assert pushed["type"] == "alert"
    assert AlertEvent.model_validate(pushed["data"]) == alert


async def test_logs_socket_streams_log_lines(gw: Gateway, services: Services, tokens: TokenService) -> None:
    key, sid, token = _owned_agent(services, tokens)
    async with dashboard(gw, "logs", sid, token) as ws, agent(gw, key) as probe:
        await send(probe, metrics_frame())  # not for this socket
        await send(probe, log_frame("kernel: eth0 link up"))
        pushed = await recv(ws)
    assert pushed["type"] == "log"
    assert {k: pushed["data"][k] for k in ("level", "message", "source", "server_id")} == {
        "level": "warning",
        "message": "kernel: eth0 link up",
        "source": "syslog",
        "server_id": sid,
    }


async def test_dashboards_of_one_server_share_one_subscription(
    gw: Gateway, services: Services, tokens: TokenService, nc: NatsClient
) -> None:
    _, sid, token = _owned_agent(services, tokens)
    hub = gw.realtime.hub
    async with (
        dashboard(gw, "metrics", sid, token) as one,
        dashboard(gw, "metrics", sid, token) as two,
    ):
        assert hub.subscription_count() == 2  # metrics + alerts of that server, once
        assert hub.viewer_count("metrics", sid) == 2
        await _publish_sample(nc, gw, sid, metrics_frame())
        first, second = await recv(one), await recv(two)
        assert first == second and first["type"] == "metrics"
    await eventually(lambda: hub.subscription_count() == 0)


async def test_a_dashboard_that_never_reads_is_dropped_alone(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, nc: NatsClient
) -> None:
    tokens = TokenService(jwt_secret)
    _, sid, token = _owned_agent(services, tokens)
    # Samples conflate, so only a send blocked for `dashboard_stall_s` drops a dashboard.
    # 1 s: far beyond what a reading dashboard's send takes, even on a loaded machine.
    async with gateway(nats_url, namespace, jwt_secret, dashboard_queue_size=8, dashboard_stall_s=1.0) as gw:
        # A tiny receive window and a one-frame client queue: the stuck reader backs up fast.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(
            sock, (gw.realtime.state.settings.host, gw.realtime.state.settings.port)
        )
        async with (
            dashboard(gw, "metrics", sid, token, sock=sock, max_queue=1) as stuck,
            dashboard(gw, "metrics", sid, token, max_size=None) as healthy,
        ):
            padding = "x" * 64 * 1024
            published = 0
            while gw.realtime.hub.viewer_count("metrics", sid) == 2:
                assert published < 20_000, "the stuck dashboard was never dropped"
                for _ in range(4):
                    await _publish_sample(nc, gw, sid, metrics_frame(padding=padding, seq=published))
                    published += 1
                # The healthy one keeps up the whole time: it gets the newest sample (samples
                # that queued behind each other for it may have been conflated on the way).
                while (await recv(healthy))["data"]["seq"] != published - 1:
                    pass
            # Still served after the drop.
            await _publish_sample(nc, gw, sid, metrics_frame())
            assert (await recv(healthy))["type"] == "metrics"
            received = await recv_until_closed(stuck)
            assert stuck.close_code == 1013
            assert len(received) < published


# --- fairness and exactly-once on screen (issues 8.3, 9.4, 10.5) ------------------------------


async def test_a_lagging_dashboard_gets_the_newest_sample_not_a_backlog(
    nats_url: str,
    namespace: Namespace,
    jwt_secret: str,
    services: Services,
    tokens: TokenService,
    nc: NatsClient,
) -> None:
    _, sid, token = _owned_agent(services, tokens)
    async with gateway(nats_url, namespace, jwt_secret, dashboard_queue_size=4) as gw:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(
            sock, (gw.realtime.state.settings.host, gw.realtime.state.settings.port)
        )
        async with dashboard(gw, "metrics", sid, token, sock=sock, max_queue=1, max_size=None) as slow:
            # Far more than the socket buffers and the 4-frame queue hold, while nobody reads.
            padding = "x" * 256 * 1024
            count = 200
            for seq in range(count):
                await _publish_sample(nc, gw, sid, metrics_frame(padding=padding, seq=seq))
            seen: list[int] = []
            while not seen or seen[-1] != count - 1:
                seen.append((await recv(slow))["data"]["seq"])
            assert gw.realtime.hub.viewer_count("metrics", sid) == 1  # lagging, not dropped
            assert len(seen) < count and seen == sorted(seen)
            await ping(slow)


async def test_a_retried_publish_is_shown_once(
    nats_url: str,
    namespace: Namespace,
    jwt_secret: str,
    services: Services,
    tokens: TokenService,
    nc: NatsClient,
) -> None:
    _, sid, token = _owned_agent(services, tokens)
    async with gateway(nats_url, namespace, jwt_secret) as gw:
        async with dashboard(gw, "metrics", sid, token) as ws:
            first, second = metrics_frame(seconds_ago(2), seq=1), metrics_frame(seconds_ago(1), seq=2)
            await _publish_sample(nc, gw, sid, first, msg_id=f"{sid}:1")
            await _publish_sample(nc, gw, sid, first, msg_id=f"{sid}:1")  # the retry after a reconnect
            await _publish_sample(nc, gw, sid, second, msg_id=f"{sid}:2")
            assert [(await recv(ws))["data"]["seq"] for _ in range(2)] == [1, 2]
            await ping(ws)  # nothing else was queued


async def test_dashboards_per_server_have_a_ceiling(
    nats_url: str, namespace: Namespace, jwt_secret: str, services: Services, tokens: TokenService
) -> None:
    _, sid, token = _owned_agent(services, tokens)
    async with gateway(nats_url, namespace, jwt_secret, dashboards_per_server=1) as gw:
        async with dashboard(gw, "metrics", sid, token) as first:
            async with connect(gw.ws(f"/ws/metrics/{sid}")) as second:
                await send(second, {"type": "auth", "token": token})
                frames = await recv_until_closed(second)
            assert [f.get("code") for f in frames] == ["rate_limited"]
            assert second.close_code == 1013
            await ping(first)
