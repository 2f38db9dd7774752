"""Wiring of the auth service: broker, handlers, consumers, database, presence sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from faststream import FastStream

from auth.consumers import audit_consumer, presence_consumer, register_heartbeat
from auth.handlers import register_handlers
from auth.models import SCHEMA
from auth.presence import run_sweeper
from auth.runtime import AuthRuntime
from auth.settings import AuthSettings
from opswire.contract.subjects import Subjects
from opswire.runtime.db import create_engine, migrate, session_factory
from opswire.runtime.jetstream import PullConsumer
from opswire.runtime.nats import StreamKeeper, ensure_streams, service_broker
from opswire.runtime.tokens import TokenService

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: AuthSettings) -> FastStream:
    broker = service_broker(settings, "auth", "opswire-auth")
    runtime = AuthRuntime(
        settings=settings,
        subjects=Subjects(settings.subject_prefix, settings.stream_prefix),
        broker=broker,
        tokens=TokenService(
            settings.jwt_secret, settings.access_token_ttl_s, settings.refresh_token_ttl_s
        ),
    )
    register_handlers(runtime)
    register_heartbeat(runtime)
    consumers: list[PullConsumer] = [presence_consumer(runtime), audit_consumer(runtime)]
    sweeper: list[asyncio.Task[None]] = []
    keepers: list[StreamKeeper] = []

    async def on_startup() -> None:
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        try:
            await migrate(engine, SCHEMA, MIGRATIONS)
            await runtime.passwords.warm_up()
            # Streams must exist before the JetStream consumers bind to them.
            connection = await broker.connect()
            await ensure_streams(connection.jetstream(), runtime.subjects, "auth")
        except BaseException:
            await engine.dispose()
            raise
        runtime.bind(engine, session_factory(engine))

    async def after_startup() -> None:
        js = (await broker.connect()).jetstream()
        for consumer in consumers:
            await consumer.start(js)
        keeper = StreamKeeper(js, runtime.subjects, "auth")
        keeper.start()
        keepers.append(keeper)
        sweeper.append(
            asyncio.create_task(
                run_sweeper(
                    runtime.sessions, settings.presence_timeout, settings.presence_sweep_interval_s
                ),
                name="auth-presence-sweeper",
            )
        )
        log.info("auth service started", extra={"subject_prefix": settings.subject_prefix})

    async def on_shutdown() -> None:
        while keepers:
            await keepers.pop().stop()
        for consumer in consumers:
            await consumer.stop()
        for task in sweeper:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sweeper.clear()

    async def after_shutdown() -> None:
        # After the broker stopped, so no handler is still using a connection.
        if runtime.engine is not None:
            await runtime.engine.dispose()

    return FastStream(
        broker,
        on_startup=[on_startup],
        after_startup=[after_startup],
        on_shutdown=[on_shutdown],
        after_shutdown=[after_shutdown],
    )
