"""ingest.metrics.* and ingest.logs.*: the telemetry consumers (JetStream -> PostgreSQL,
alert evaluation on every sample), retention, and the history queries."""

from __future__ import annotations

from typing import Any

from ingest import history, store
from ingest.decode import DecodedSample
from ingest.evaluator import AlertEvaluator
from ingest.retention import RetentionTask
from ingest.runtime import IngestRuntime
from ingest.settings import IngestSettings
from ingest.tiers import TierRollup
from ingest.writer import logs_writer, metrics_writer
from opswire.contract import rpc as calls
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.jetstream import PullConsumer, PullConsumerSpec
from opswire.runtime.permissions import INGEST_LOGS, INGEST_METRICS
from opswire.runtime.rpc import NotFound, Page, page_budget


def consumer_spec(settings: IngestSettings, stream: str, subject: str, durable: str) -> PullConsumerSpec:
    return PullConsumerSpec(
        stream=stream,
        subject=subject,
        durable=durable,
        batch=settings.batch_size,
        ack_wait_s=settings.ack_wait_s,
        max_ack_pending=settings.batch_size * 4,
        fetch_timeout_s=settings.batch_timeout_s,
        replicas=settings.stream_replicas,
        max_bytes=settings.batch_max_bytes,
        pipeline=2,
    )


def register(rt: IngestRuntime) -> None:
    broker, subjects, settings = rt.broker, rt.subjects, rt.settings

    @rt.on_ready
    async def start_consumers() -> None:
        evaluator = AlertEvaluator(rt.sessions, rt.publisher, settings.alert_hysteresis)
        tiers = await rt.start(TierRollup(rt.engine, settings.tier_interval_s))

        async def stored(samples: list[DecodedSample]) -> None:
            await tiers.stored(samples)
            await evaluator.evaluate(samples)

        await rt.consume(
            PullConsumer(
                consumer_spec(settings, subjects.metrics_stream, subjects.all_metrics, INGEST_METRICS),
                metrics_writer(rt.engine, settings.retry_delay_s, stored),
            )
        )
        await rt.consume(
            PullConsumer(
                consumer_spec(settings, subjects.logs_stream, subjects.all_logs, INGEST_LOGS),
                logs_writer(rt.engine, settings.retry_delay_s),
            )
        )
        await rt.start(RetentionTask(rt.engine, settings))

    @rpc_handler(broker, subjects, calls.METRICS_LATEST)
    async def metrics_latest(req: calls.ByServer) -> dict[str, Any]:
        """The newest sample of a server, as published."""
        async with rt.sessions() as session:
            sample = await store.latest_sample(session, req.server_id)
        if sample is None:
            raise NotFound("No metrics yet")
        return sample

    @rpc_handler(broker, subjects, calls.METRICS_HISTORY)
    async def metrics_history(req: calls.MetricsHistory) -> Page:
        """Samples with start <= timestamp < end, ascending; the newest `limit` of the window."""
        async with rt.sessions() as session:
            return await history.metrics_page(
                session, req, page_budget(rt.nc.max_payload), settings.metrics_interval_s
            )

    @rpc_handler(broker, subjects, calls.LOGS_QUERY)
    async def logs_query(req: calls.LogsQuery) -> Page:
        """Log lines, newest first; `level` is a minimum severity."""
        async with rt.sessions() as session:
            return await history.logs_page(session, req, page_budget(rt.nc.max_payload))
