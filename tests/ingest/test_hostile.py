"""Junk published on the telemetry subjects by an outside system never wedges a consumer (DESIGN §4, §8)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from nats.js.api import ConsumerInfo

from tests.ingest.support import Telemetry, base_time, eventually, log_line, sample

pytestmark = pytest.mark.usefixtures("ingest")

# Valid ISO 8601, but outside what a datetime can hold once converted to UTC.
OUT_OF_RANGE = "0001-01-01T00:00:00+05:00"


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


async def _all_settled(telemetry: Telemetry, durable: str) -> None:
    """Every message was acked or terminated: none waits for a redelivery."""

    def settled(info: ConsumerInfo) -> bool:
        assert info.ack_floor is not None and info.delivered is not None
        return info.num_pending == 0 and info.ack_floor.stream_seq == info.delivered.stream_seq

    await eventually(lambda: telemetry.consumer_info(durable), settled, timeout_s=3.0)


async def test_unstorable_samples_are_refused_and_later_ones_stored(telemetry: Telemetry) -> None:
    server = uuid.uuid4()
    subject = telemetry.subjects.metrics(str(server))
    t0 = base_time()
    deep = orjson.dumps({**sample(server, t0), "vendor_extra": "DEEP"})
    for payload in (
        orjson.dumps({**sample(server, t0), "timestamp": OUT_OF_RANGE}),
        deep.replace(b'"DEEP"', _nested(1000)),  # orjson parses it; storing it cannot work
    ):
        await telemetry.publish_raw(subject, payload)
    for i in range(1, 3):
        await telemetry.publish_sample(sample(server, t0 + timedelta(seconds=i)))

    await telemetry.wait_count("metrics", server, 2)
    await _all_settled(telemetry, "ingest-metrics")


async def test_log_with_out_of_range_timestamp_does_not_block_the_stream(
    telemetry: Telemetry,
) -> None:
    server = uuid.uuid4()
    t0 = base_time()
    await telemetry.publish_log({**log_line(server, t0, "info", "bad"), "timestamp": OUT_OF_RANGE})
    await telemetry.publish_log(log_line(server, t0, "error", "after the junk"))

    await telemetry.wait_count("logs", server, 1)
    await _all_settled(telemetry, "ingest-logs")
