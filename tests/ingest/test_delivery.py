"""Stopping and restarting ingest while samples keep arriving loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from ingest.settings import IngestSettings
from tests.ingest.support import Telemetry, base_time, eventually, running_ingest, sample


async def test_restart_mid_stream_stores_every_sample_once(
    telemetry: Telemetry, ingest_settings: IngestSettings
) -> None:
    server = uuid.uuid4()
    t0 = base_time()
    total = 400
    first_stored = asyncio.Event()

    async def publish_all() -> None:
        for i in range(total):
            await telemetry.publish_sample(sample(server, t0 + timedelta(seconds=i)))
            if i == total // 4:
                await first_stored.wait()  # make sure the stop really lands mid-stream

    publisher = asyncio.create_task(publish_all())
    async with running_ingest(ingest_settings):
        await telemetry.wait_count("metrics", server, total // 4 + 1)
        first_stored.set()
        # Stop while the publisher is still going.
    stored_at_stop = await telemetry.count("metrics", server)
    async with running_ingest(ingest_settings):
        await publisher
        await telemetry.wait_count("metrics", server, total)

    assert stored_at_stop < total
    rows = await telemetry.fetch(
        "SELECT count(DISTINCT timestamp) AS n, count(*) AS c FROM ingest.metrics WHERE server_id = $1",
        server,
    )
    assert (rows[0]["n"], rows[0]["c"]) == (total, total)


async def test_batch_is_redelivered_after_a_database_error(
    telemetry: Telemetry, ingest_settings: IngestSettings
) -> None:
    server = uuid.uuid4()
    t0 = base_time()
    async with running_ingest(ingest_settings):
        await telemetry.publish_sample(sample(server, t0))
        await telemetry.wait_count("metrics", server, 1)
        # Make every write fail the way a broken database does, then heal it.
        await telemetry.fetch("ALTER TABLE ingest.metrics RENAME TO metrics_away")
        for i in range(1, 4):
            await telemetry.publish_sample(sample(server, t0 + timedelta(seconds=i)))
        await eventually(
            lambda: telemetry.consumer_info("ingest-metrics"),
            lambda info: (info.num_redelivered or 0) > 0,
        )
        await telemetry.fetch("ALTER TABLE ingest.metrics_away RENAME TO metrics")
        await telemetry.wait_count("metrics", server, 4)
