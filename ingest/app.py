"""The ingest service: telemetry consumers, alert evaluation, history queries.

Wiring only. Start-up connects the broker, creates the engine, migrates the
`ingest` schema, ensures the streams, then starts the consumers and the
retention task; shutdown stops them before the broker drains.
"""

from __future__ import annotations

import logging
from pathlib import Path

from faststream import FastStream

from ingest.evaluator import AlertEvaluator
from ingest.events import AlertPublisher
from ingest.models import LogEntry, Metric
from ingest.retention import RetentionTask
from ingest.rpc import register_rpc
from ingest.settings import IngestSettings
from ingest.state import IngestState
from ingest.writer import logs_writer, metrics_writer
from opswire.contract.subjects import Subjects
from opswire.runtime.db import create_engine, migrate, session_factory
from opswire.runtime.jetstream import PullConsumer, PullConsumerSpec
from opswire.runtime.nats import StreamKeeper, ensure_streams, service_broker
from opswire.runtime.permissions import INGEST_LOGS, INGEST_METRICS
from opswire.runtime.publisher import Publisher

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Alert events waiting for a JetStream ack (NATS briefly away) before new ones are refused.
EVENT_BUFFER = 10_000


def consumer_spec(settings: IngestSettings, stream: str, subject: str, durable: str) -> PullConsumerSpec:
    return PullConsumerSpec(
        stream=stream,
        subject=subject,
        durable=durable,
        batch=settings.batch_size,
        ack_wait_s=settings.ack_wait_s,
        max_ack_pending=settings.batch_size * 4,
        fetch_timeout_s=settings.batch_timeout_s,
    )


def create_app(settings: IngestSettings) -> FastStream:
    subjects = Subjects(settings.subject_prefix, settings.stream_prefix)
    broker = service_broker(settings, "ingest", "opswire-ingest")
    state = IngestState(settings, subjects)
    register_rpc(broker, state)
    background: list[PullConsumer | RetentionTask | Publisher | StreamKeeper] = []

    async def on_startup() -> None:
        nc = await broker.connect()
        js = nc.jetstream()
        engine = create_engine(settings.database_url, settings.db_pool_size)
        await migrate(engine, "ingest", MIGRATIONS)
        await ensure_streams(js, subjects, "ingest")
        events = Publisher(nc, capacity=EVENT_BUFFER)
        events.start()
        background.append(events)
        state.bind(engine, session_factory(engine), AlertPublisher(events, subjects))

    async def after_startup() -> None:
        js = broker.connection.jetstream()
        evaluator = AlertEvaluator(state.sessions, state.publisher, settings.alert_hysteresis)
        metrics = PullConsumer(
            consumer_spec(settings, subjects.metrics_stream, subjects.all_metrics, INGEST_METRICS),
            metrics_writer(state.engine, Metric, settings.retry_delay_s, evaluator.evaluate),
        )
        logs = PullConsumer(
            consumer_spec(settings, subjects.logs_stream, subjects.all_logs, INGEST_LOGS),
            logs_writer(state.engine, LogEntry, settings.retry_delay_s),
        )
        retention = RetentionTask(
            state.engine, settings.retention_days, settings.retention_interval_s
        )
        for consumer in (metrics, logs):
            await consumer.start(js)
            background.append(consumer)
        retention.start()
        background.append(retention)
        keeper = StreamKeeper(js, subjects, "ingest")
        keeper.start()
        background.append(keeper)
        log.info("ingest ready")

    async def on_shutdown() -> None:
        # Newest first: consumers finish their batches, then their alert events are flushed.
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
