"""OPSWIRE_STREAM_REPLICAS on real nats-servers: one node takes 1 and refuses 3 with one
clear line; a 3-node cluster creates R3 streams and consumers and raises R1 ones to R3."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from opswire.contract.subjects import Subjects
from opswire.launcher.embedded import free_port
from opswire.runtime.jetstream import PullConsumer, PullConsumerSpec
from opswire.runtime.nats import StreamSetupError, ensure_streams, owned_streams
from opswire.runtime.permissions import INGEST_METRICS, inbox_prefix
from opswire.runtime.settings import CommonSettings
from tests.deploy.natsproc import (
    NATS_DIR,
    Node,
    password_environ,
    role_passwords,
    route_environ,
    running,
)
from tests.helpers.backends import Namespace, role_env

T = TypeVar("T")


async def _nothing(_batch: Sequence[Msg]) -> None:
    return None


def test_the_setting_is_1_to_5_and_1_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSWIRE_STREAM_REPLICAS", raising=False)
    assert CommonSettings().stream_replicas == 1
    monkeypatch.setenv("OPSWIRE_STREAM_REPLICAS", "3")
    assert CommonSettings().stream_replicas == 3
    for bad in ("0", "6"):
        monkeypatch.setenv("OPSWIRE_STREAM_REPLICAS", bad)
        with pytest.raises(ValueError):
            CommonSettings()


async def test_one_node_takes_one_replica(nats_url: str, namespace: Namespace) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        created = await ensure_streams(js, namespace.subjects, "ingest", replicas=1)
        assert sorted(created) == sorted(owned_streams(namespace.subjects, "ingest"))
        for name in created:
            assert (await js.stream_info(name)).config.num_replicas == 1
        consumer = PullConsumer(
            PullConsumerSpec(
                namespace.subjects.metrics_stream,
                namespace.subjects.all_metrics,
                "r1",
                replicas=1,
            ),
            _nothing,
        )
        await consumer.start(js)
        await consumer.stop()
        info = await js.consumer_info(namespace.subjects.metrics_stream, "r1")
        assert info.config.num_replicas in (0, 1) and info.config.ack_wait == 5.0
    finally:
        await nc.close()


async def test_three_replicas_on_one_node_is_one_clear_line(nats_url: str, namespace: Namespace) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        stream = namespace.subjects.metrics_stream
        # Missing stream: refused on create.
        with pytest.raises(StreamSetupError) as refused:
            await ensure_streams(js, namespace.subjects, "ingest", replicas=3)
        message = str(refused.value)
        print(message)
        assert "\n" not in message
        assert f"cannot create stream {stream} with OPSWIRE_STREAM_REPLICAS=3" in message
        assert "not supported in non-clustered mode" in message  # the server's own reason
        # Existing R1 stream: refused on update, and left as it was.
        await ensure_streams(js, namespace.subjects, "ingest", replicas=1)
        with pytest.raises(StreamSetupError) as refused:
            await ensure_streams(js, namespace.subjects, "ingest", replicas=3)
        assert f"cannot update stream {stream} with OPSWIRE_STREAM_REPLICAS=3" in str(refused.value)
        assert (await js.stream_info(stream)).config.num_replicas == 1
        # Without a setting (tools, tests) an existing stream's count is left alone.
        assert await ensure_streams(js, namespace.subjects, "ingest") == []
    finally:
        await nc.close()


@pytest.mark.parametrize("role", ["ingest", "auth"])
def test_a_service_refused_its_replicas_stops_with_one_line(
    nats_url: str, namespace: Namespace, database_url: str, jwt_secret: str, role: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWIRE_", "NATS_", "DATABASE_"))}
    env |= (
        role_env(nats_url, role)
        | namespace.env()
        | {
            "DATABASE_URL": database_url,
            "OPSWIRE_JWT_SECRET": jwt_secret,
            "OPSWIRE_STREAM_REPLICAS": "3",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "opswire", role], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    print(last)
    # "update": the skeleton (opswire/runtime/service.py) makes missing streams with 1 first.
    assert re.match(rf"opswire {role}: cannot (create|update) stream {namespace.stream_prefix}_", last), (
        done.stderr
    )
    assert "with OPSWIRE_STREAM_REPLICAS=3: the NATS server refused: replicas > 1 not supported" in last
    assert "Traceback" not in done.stderr


async def _pause() -> None:
    await asyncio.sleep(0.1)


async def _until_cluster_ready(attempt: Callable[[], Awaitable[T]], timeout_s: float = 15.0) -> T:
    """Retry until the new cluster has a JetStream meta leader that knows its peers: a
    poll, as nats-server offers nothing to await for that."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await attempt()
        except (StreamSetupError, nats.js.errors.APIError, nats.errors.TimeoutError):
            if time.monotonic() > deadline:
                raise
        await _pause()


async def test_cluster_creates_r3_and_raises_r1_to_r3(tmp_path: Path) -> None:
    passwords = role_passwords()
    route_ports = {n: free_port() for n in (1, 2, 3)}
    routes = route_environ("p" + "c3" * 16, route_ports)
    nodes = [
        Node(
            NATS_DIR / f"cluster-node{n}.conf",
            {**password_environ(passwords), **routes},
            route_port=route_ports[n],
        )
        for n in (1, 2, 3)
    ]
    subjects = Subjects("opswire", "OPSWIRE")  # the names the shipped permissions grant
    started = time.monotonic()
    with running(nodes, tmp_path):
        urls = [node.url for node in nodes]
        as_auth = await nats.connect(
            urls,
            user="auth",
            password=passwords["auth"],
            inbox_prefix=inbox_prefix("auth"),
            connect_timeout=2,
        )
        as_ingest = await nats.connect(
            urls,
            user="ingest",
            password=passwords["ingest"],
            inbox_prefix=inbox_prefix("ingest"),
            connect_timeout=2,
        )
        try:
            # A fresh deployment with OPSWIRE_STREAM_REPLICAS=3: auth's streams made R3.
            auth_js = as_auth.jetstream(timeout=2)
            created = await _until_cluster_ready(
                lambda: ensure_streams(auth_js, subjects, "auth", replicas=3)
            )
            assert sorted(created) == sorted(owned_streams(subjects, "auth"))
            for name in created:
                assert (await auth_js.stream_info(name)).config.num_replicas == 3, name
                assert await _copies_on_other_nodes(auth_js, name) == 2, name

            # An older deployment: ingest's streams R1, its durable R1 with ack_wait 30 s.
            js = as_ingest.jetstream(timeout=10)
            metrics = subjects.metrics_stream
            await ensure_streams(js, subjects, "ingest", replicas=1)
            old = PullConsumerSpec(metrics, subjects.all_metrics, INGEST_METRICS, ack_wait_s=30.0)
            consumer = PullConsumer(old, _nothing)
            await consumer.start(js)
            await consumer.stop()
            assert (await js.stream_info(metrics)).config.num_replicas == 1

            # Restarted with OPSWIRE_STREAM_REPLICAS=3: every stream raised to R3 ...
            assert await ensure_streams(js, subjects, "ingest", replicas=3) == []
            for name in owned_streams(subjects, "ingest"):
                info = await js.stream_info(name)
                assert info.config.num_replicas == 3, name
                assert info.config.max_age == old_max_age(subjects, name), name  # kept
                assert await _copies_on_other_nodes(js, name) == 2, name
            # ... and the durable too, with the short ack_wait.
            consumer = PullConsumer(
                PullConsumerSpec(metrics, subjects.all_metrics, INGEST_METRICS, replicas=3), _nothing
            )
            await consumer.start(js)
            await consumer.stop()
            durable = await js.consumer_info(metrics, INGEST_METRICS)
            assert durable.config.num_replicas == 3 and durable.config.ack_wait == 5.0
        finally:
            await as_auth.close()
            await as_ingest.close()
    print(f"cluster test took {time.monotonic() - started:.1f} s")


async def _copies_on_other_nodes(js: JetStreamContext, stream: str, timeout_s: float = 10.0) -> int:
    """The stream's replicas on other nodes, once the scale-up has placed them (a poll:
    the server reports progress only through stream info)."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = await js.stream_info(stream)
        copies = len(info.cluster.replicas or []) if info.cluster is not None else 0
        if copies == 2 or time.monotonic() > deadline:
            return copies
        await _pause()


def old_max_age(subjects: Subjects, name: str) -> float:
    return next(spec.max_age_s for spec in subjects.streams() if spec.name == name)
