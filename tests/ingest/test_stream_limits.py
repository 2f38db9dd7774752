"""Bounded streams (DESIGN §4 Streams): a full stream refuses, nothing accepted is lost,
and big frames come in shorter batches instead of a slow-consumer disconnect."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, DiscardPolicy, StreamConfig
from nats.js.errors import APIError

from ingest.settings import IngestSettings
from opswire.runtime.fetch import BatchFetcher
from tests.ingest.support import Telemetry, base_time, running_ingest, sample

MIB = 1024 * 1024
STREAM_FULL = 10077  # JetStream: maximum bytes exceeded


async def test_a_full_stream_refuses_and_keeps_everything_accepted(
    telemetry: Telemetry, ingest_settings: IngestSettings
) -> None:
    settings = ingest_settings.model_copy(update={"stream_max_bytes": MIB})
    server = uuid.uuid4()
    t0 = base_time()
    accepted = 0
    async with running_ingest(settings):
        with pytest.raises(APIError) as refused:
            for i in range(10_000):
                await telemetry.publish_sample(
                    {**sample(server, t0 + timedelta(seconds=i)), "pad": "x" * 2000}
                )
                accepted += 1
        assert refused.value.err_code == STREAM_FULL
        await telemetry.wait_count("metrics", server, accepted)
        info = await telemetry.js.stream_info(telemetry.subjects.metrics_stream)
    # Discard "new": the stream kept every message it took, ingest stored every one of them.
    assert 100 < accepted < 10_000
    assert info.state.messages == accepted
    assert info.config.max_bytes == MIB and info.config.discard == DiscardPolicy.NEW


async def test_existing_streams_get_the_limits_at_start_up(
    telemetry: Telemetry, ingest_settings: IngestSettings
) -> None:
    subjects = telemetry.subjects
    await telemetry.js.delete_stream(subjects.metrics_stream)
    await telemetry.js.add_stream(
        StreamConfig(
            name=subjects.metrics_stream,
            subjects=[subjects.all_metrics],
            discard=DiscardPolicy.OLD,
        )
    )
    settings = ingest_settings.model_copy(
        update={
            "stream_max_bytes": 2 * MIB,
            "retention_days": 3,
            "telemetry_stream_max_age_s": 7200,
        }
    )
    async with running_ingest(settings):
        config = (await telemetry.js.stream_info(subjects.metrics_stream)).config
    assert config.discard == DiscardPolicy.NEW
    assert config.max_bytes == 2 * MIB
    assert config.max_age == pytest.approx(7200)  # the outage window, not the database's 3 days


async def test_big_frames_make_shorter_batches(telemetry: Telemetry, nc: NatsClient) -> None:
    subjects = telemetry.subjects
    server = uuid.uuid4()
    t0 = base_time()
    frame = nc.max_payload // 2
    for i in range(12):
        payload = orjson.dumps({**sample(server, t0 + timedelta(seconds=i)), "pad": "x" * frame})
        await telemetry.publish_raw(subjects.metrics(str(server)), payload)
    await telemetry.js.add_consumer(
        subjects.metrics_stream,
        ConsumerConfig(
            durable_name="big-frames",
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=subjects.all_metrics,
        ),
    )
    # Asks for 500 messages, but at most about one max_payload of bytes at a time.
    fetcher = BatchFetcher(nc, subjects.metrics_stream, "big-frames", max_bytes=1)
    await fetcher.start()
    try:
        got = 0
        while got < 12:
            batch = await fetcher.fetch(500, timeout_s=2.0)
            assert batch, "no message within the fetch timeout"
            assert sum(len(m.data) for m in batch) <= nc.max_payload + 64 * 1024
            for msg in batch:
                await msg.ack()
            got += len(batch)
    finally:
        await fetcher.stop()
    assert got == 12
    assert nc.is_connected


async def test_ingest_stores_a_backlog_of_big_frames(
    telemetry: Telemetry, ingest_settings: IngestSettings, nc: NatsClient
) -> None:
    server = uuid.uuid4()
    t0 = base_time()
    pad = "x" * (nc.max_payload // 2)
    for i in range(12):  # published before ingest runs: one fetch could ask for all of them
        await telemetry.publish_sample({**sample(server, t0 + timedelta(seconds=i)), "pad": pad})
    async with running_ingest(ingest_settings.model_copy(update={"batch_max_bytes": 64 * 1024})):
        await telemetry.wait_count("metrics", server, 12)
