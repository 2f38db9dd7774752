"""The shipped configs enforce the permission table on a real nats-server (single and cluster)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import nats
import pytest

from opswire.launcher.embedded import free_port
from opswire.runtime.permissions import inbox_prefix
from tests.deploy.natsproc import (
    NATS_DIR,
    Client,
    Node,
    password_environ,
    role_passwords,
    route_environ,
    running,
)
from tests.helpers.natsproto import assert_connect_refused


async def _connect(url: str, role: str, password: str) -> Client:
    client = Client()
    await client.connect(url, role, password, inbox_prefix=inbox_prefix(role))  # type: ignore[arg-type]
    return client


async def _receive_after_publishing(
    receiver: nats.aio.subscription.Subscription, publish: Client, subject: str, timeout_s: float = 5.0
) -> bytes:
    """Publish until the receiver gets one (interest can take a moment to reach another node)."""
    assert publish.nc is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await publish.nc.publish(subject, b'{"probe": true}')
        await publish.nc.flush()
        try:
            msg = await receiver.next_msg(timeout=0.1)
        except nats.errors.TimeoutError:
            continue
        return msg.data
    raise AssertionError(f"nothing arrived on {subject} within {timeout_s} s")


async def _subscriber_is_denied(url: str, password: str) -> None:
    """The role for other systems: no agent inbox, no shared _INBOX, read-only."""
    client = await _connect(url, "subscriber", password)
    try:
        assert client.nc is not None
        await client.nc.publish("opswire.agent.x.inbox", b"{}")
        await client.nc.flush()
        # nats-py lowercases the server's -ERR text.
        error = (await client.next_error()).lower()
        assert "permissions violation for publish" in error and "opswire.agent.x.inbox" in error
        await client.nc.subscribe("_INBOX.>")
        await client.nc.flush()
        error = (await client.next_error()).lower()
        assert "permissions violation for subscription" in error and "_inbox.>" in error
        await client.nc.publish("opswire.metrics.x", b"{}")
        await client.nc.flush()
        assert "permissions violation for publish" in (await client.next_error()).lower()
    finally:
        await client.close()


async def test_single_conf_enforces_the_roles(tmp_path: Path) -> None:
    passwords = role_passwords()
    node = Node(NATS_DIR / "single.conf", password_environ(passwords))
    with running([node], tmp_path):
        for credentials in (
            {},
            {"user": "gateway", "pass": "p" + "1" * 32},
            {"user": "subscriber", "pass": passwords["gateway"]},
        ):
            await assert_connect_refused("127.0.0.1", node.port, credentials)

        subscriber = await _connect(node.url, "subscriber", passwords["subscriber"])
        gateway = await _connect(node.url, "gateway", passwords["gateway"])
        try:
            assert subscriber.nc is not None
            live = await subscriber.nc.subscribe("opswire.metrics.>")
            await subscriber.nc.flush()
            assert await _receive_after_publishing(live, gateway, "opswire.metrics.x") == b'{"probe": true}'
            assert subscriber.errors.empty() and gateway.errors.empty()
        finally:
            await subscriber.close()
            await gateway.close()
        await _subscriber_is_denied(node.url, passwords["subscriber"])


def _route_names(node: Node) -> set[str]:
    with urllib.request.urlopen(f"{node.monitor_url}/routez", timeout=2) as response:
        routez = json.load(response)
    return {route.get("remote_name", "") for route in routez.get("routes") or []}


async def _wait_for_routes(node: Node, wanted: set[str], timeout_s: float = 8.0) -> set[str]:
    deadline = time.monotonic() + timeout_s
    names: set[str] = set()
    while time.monotonic() < deadline:
        names = await asyncio.to_thread(_route_names, node)
        if wanted <= names:
            return names
        await asyncio.sleep(0.05)
    raise AssertionError(f"routes of {node.config.name}: {names}, expected {wanted}")


async def test_cluster_forms_only_with_the_route_password(tmp_path: Path) -> None:
    passwords = role_passwords()
    route_ports = {n: free_port() for n in (1, 2, 3)}
    good = route_environ("p" + "a1" * 16, route_ports)
    # Node 3 has the same configs and role passwords, but the wrong route password.
    bad = route_environ("p" + "b2" * 16, route_ports)
    nodes = [
        Node(
            NATS_DIR / f"cluster-node{n}.conf",
            {**password_environ(passwords), **env},
            route_port=route_ports[n],
        )
        for n, env in ((1, good), (2, good), (3, bad))
    ]
    with running(nodes, tmp_path):
        one, two, three = nodes
        assert await _wait_for_routes(one, {"nats-2"}) == {"nats-2"}
        assert await _wait_for_routes(two, {"nats-1"}) == {"nats-1"}

        gateway = await _connect(one.url, "gateway", passwords["gateway"])
        on_two = await _connect(two.url, "subscriber", passwords["subscriber"])
        on_three = await _connect(three.url, "subscriber", passwords["subscriber"])
        try:
            assert on_two.nc is not None and on_three.nc is not None
            far = await on_two.nc.subscribe("opswire.metrics.>")
            outside = await on_three.nc.subscribe("opswire.metrics.>")
            await on_two.nc.flush()
            await on_three.nc.flush()
            # Published on node 1, it reaches node 2 across the route …
            assert await _receive_after_publishing(far, gateway, "opswire.metrics.x") == b'{"probe": true}'
            # … but never node 3, which did not join.
            await asyncio.sleep(0.3)
            with pytest.raises(nats.errors.TimeoutError):
                await outside.next_msg(timeout=0.2)
        finally:
            for client in (gateway, on_two, on_three):
                await client.close()
        # Node 3 has tried its routes all along and was turned away each time.
        assert await asyncio.to_thread(_route_names, three) == set()
        assert {"nats-3"}.isdisjoint(await asyncio.to_thread(_route_names, one))
        log = (tmp_path / "node1" / "nats.log").read_text()
        assert "authentication error" in log.lower() or "authorization violation" in log.lower()

        await asyncio.gather(*(_subscriber_is_denied(node.url, passwords["subscriber"]) for node in nodes))
