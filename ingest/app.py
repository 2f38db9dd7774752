"""The ingest service: telemetry consumers, alert evaluation, history queries.

Wiring only. Start-up connects the broker, creates the engine, migrates the
`ingest` schema, ensures the streams, then starts the consumers and the
retention task; shutdown stops them before the broker drains.
"""

from __future__ import annotations

import logging
from pathlib import Path

from faststream import FastStream

from ingest.consumers import BatchConsumer, Batching
from ingest.evaluator import AlertEvaluator
from ingest.events import AlertPublisher
from ingest.models import LogEntry, Metric
from ingest.retention import RetentionTask
from ingest.rpc import register_rpc
from ingest.settings import IngestSettings
from ingest.state import IngestState
from ingest.writer import logs_writer, metrics_writer
from opswire.db import create_engine, migrate, session_factory
from opswire.natsconn import ensure_streams, service_broker
from opswire.subjects import Subjects

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: IngestSettings) -> FastStream:
    subjects = Subjects(settings.subject_prefix, settings.stream_prefix)
    broker = service_broker(settings, "opswire-ingest")
    state = IngestState(settings, subjects)
    register_rpc(broker, state)
    background: list[BatchConsumer | RetentionTask] = []

    async def on_startup() -> None:
        nc = await broker.connect()
        js = nc.jetstream()
        engine = create_engine(settings.database_url, settings.db_pool_size)
        await migrate(engine, "ingest", MIGRATIONS)
        await ensure_streams(js, subjects)
        state.bind(engine, session_factory(engine), AlertPublisher(js, subjects))

    async def after_startup() -> None:
        js = broker.connection.jetstream()
        evaluator = AlertEvaluator(state.sessions, state.publisher, settings.alert_hysteresis)
        batching = Batching(settings.batch_size, settings.batch_timeout_s, settings.ack_wait_s)
        metrics = BatchConsumer(
            js,
            stream=subjects.metrics_stream,
            subject=subjects.all_metrics,
            durable="ingest-metrics",
            handler=metrics_writer(
                state.engine, Metric, settings.retry_delay_s, evaluator.evaluate
            ),
            batching=batching,
        )
        logs = BatchConsumer(
            js,
            stream=subjects.logs_stream,
            subject=subjects.all_logs,
            durable="ingest-logs",
            handler=logs_writer(state.engine, LogEntry, settings.retry_delay_s),
            batching=batching,
        )
        retention = RetentionTask(
            state.engine, settings.retention_days, settings.retention_interval_s
        )
        for consumer in (metrics, logs):
            await consumer.start()
            background.append(consumer)
        retention.start()
        background.append(retention)
        log.info("ingest ready")

    async def on_shutdown() -> None:
        while background:
            await background.pop().stop()

    async def after_shutdown() -> None:
        await state.engine.dispose()

    return FastStream(
        broker,
        on_startup=[on_startup],
        after_startup=[after_startup],
        on_shutdown=[on_shutdown],
        after_shutdown=[after_shutdown],
    )
