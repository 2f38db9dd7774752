"""One skeleton for every service (auth, ingest, commands).

Start-up, in this order: settings (given) -> the NATS connection with the role's
credentials -> the database (engine, migrations of the service's schema) -> the
streams the role owns -> the service's wiring hooks (what its handlers use) -> the
subscribers (FastStream) -> the service's ready hooks and background tasks.
Shutdown runs it backwards: background tasks newest first, then the broker drains
the handlers in flight, then the engine is disposed. Shutdown is safe after a
failed or partial start: it undoes only what was done.

Every service answers `<service>.ping` the same way: ok when its database answers.
A service process (`run_service`) also opens its ops port first thing (opswire.runtime.opsport:
/health, /ready for NATS and its database, /metrics), so probes answer during start-up too.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol, TypeVar

from faststream import FastStream
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from opswire.contract.rpc import PINGS, Ping
from opswire.contract.subjects import Subjects
from opswire.runtime.db import create_engine, migrate, session_factory
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.jetstream import PullConsumer
from opswire.runtime.logs import configure_logging
from opswire.runtime.nats import (
    StreamKeeper,
    StreamLimits,
    StreamSetupError,
    ensure_streams,
    service_broker,
    stop_connecting,
)
from opswire.runtime.opsport import OpsPortError, OpsServer
from opswire.runtime.outage import OutageLog
from opswire.runtime.permissions import OWNED_STREAMS, Role
from opswire.runtime.rpc import RpcError
from opswire.runtime.settings import DatabaseSettings, load_settings
from opswire.runtime.warden import ConsumerWarden

log = logging.getLogger(__name__)

# How long start-up waits for NATS and for PostgreSQL before giving up (DESIGN §10).
STARTUP_TIMEOUT_S = 30.0

Hook = Callable[[], Awaitable[None]]

# Set by `run_service`, the process entry point: a service process opens its ops port, a
# service that tests run inside their own process does not (it would fight for the port).
_ops_port_wanted: ContextVar[bool] = ContextVar("opswire_ops_port_wanted", default=False)
S = TypeVar("S", bound=DatabaseSettings)


class StartupError(Exception):
    """The service could not start; the message is one line naming what it could not reach."""


class Stoppable(Protocol):
    async def stop(self) -> None: ...


class Background(Stoppable, Protocol):
    """Anything the service runs beside its handlers: `start()` (sync or async), `stop()`."""

    def start(self) -> object: ...


B = TypeVar("B", bound=Background)


class ServiceRuntime:
    """What every service holds at run time: settings, subjects, broker, database, tasks.

    Each service subclasses it (`AuthRuntime`, `IngestRuntime`, `CommandsRuntime`) for
    what only it needs, registers its handlers on `broker`, and runs `app()`.
    """

    def __init__(
        self,
        settings: DatabaseSettings,
        role: Role,
        schema: str,
        migrations: Path,
        *,
        name: str | None = None,
        graceful_timeout_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.role = role
        self.subjects = Subjects(settings.subject_prefix, settings.stream_prefix)
        self.broker: NatsBroker = service_broker(
            settings, role, name or f"opswire-{role}", graceful_timeout_s
        )
        self._schema = schema
        self._migrations = migrations
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._nc: NatsClient | None = None
        self._wiring: list[Hook] = []
        self._ready: list[Hook] = []
        self._running: list[Stoppable] = []
        self._serving = False
        self._readiness_outage = OutageLog(log, "readiness check: database unavailable")
        self._ops = (
            OpsServer(settings.metrics_host, settings.metrics_port, self._ready_checks)
            if _ops_port_wanted.get()
            else None
        )
        self._register_ping()

    # --- what handlers use -------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RpcError("unavailable", f"The {self.role} service is not running")
        return self._engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RpcError("unavailable", f"The {self.role} service is not running")
        return self._sessions

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise RpcError("unavailable", f"The {self.role} service is not running")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()

    # --- how a service plugs in ----------------------------------------------------------

    async def wire(self) -> None:
        """Build what the service's handlers use (a subclass's hook; runs before `on_wire`)."""

    def stream_limits(self) -> StreamLimits:
        """The bounds of the streams this service owns (a subclass ties ages to retention)."""
        return StreamLimits(max_bytes=self.settings.stream_max_bytes)

    def on_wire(self, hook: Hook) -> Hook:
        """Run `hook` at start-up once NATS, the database and the streams are there, before
        any handler can run: build what the handlers use."""
        self._wiring.append(hook)
        return hook

    def on_ready(self, hook: Hook) -> Hook:
        """Run `hook` once the subscribers are live: start consumers and background tasks."""
        self._ready.append(hook)
        return hook

    async def start(self, task: B) -> B:
        """Start `task` now; it is stopped at shutdown, newest first."""
        started = task.start()
        if inspect.isawaitable(started):
            await started
        self._running.append(task)
        return task

    async def consume(self, consumer: PullConsumer) -> PullConsumer:
        """Start a JetStream pull consumer on this connection; stopped at shutdown."""
        await consumer.start(self.js)
        self._running.append(consumer)
        return consumer

    def app(self) -> FastStream:
        return FastStream(
            self.broker,
            on_startup=[self._start_up],
            after_startup=[self._subscribed],
            on_shutdown=[self._stop_tasks],
            after_shutdown=[self._close],
            logger=log,
        )

    # --- the lifecycle -----------------------------------------------------------------

    async def _start_up(self) -> None:
        try:
            if self._ops is not None:
                try:
                    await self._ops.start()
                except OpsPortError as exc:
                    raise StartupError(str(exc)) from None
            await self._connect_nats()
            await self._connect_database()
            if self.role in OWNED_STREAMS:
                # Streams must exist (with OPSWIRE_STREAM_REPLICAS copies) before anyone
                # binds a consumer to them.
                try:
                    await ensure_streams(
                        self.js,
                        self.subjects,
                        self.role,
                        self.settings.stream_replicas,
                        self.stream_limits(),
                    )
                except StreamSetupError as exc:
                    raise StartupError(str(exc)) from None
            await self.wire()
            for hook in self._wiring:
                await hook()
        except BaseException:
            await self._stop_tasks()
            await self._close()
            raise

    async def _connect_nats(self) -> None:
        servers = ",".join(self.settings.nats_servers)
        connecting = asyncio.ensure_future(self.broker.connect())
        try:
            await asyncio.wait({connecting}, timeout=STARTUP_TIMEOUT_S)
        finally:
            # On time-out, and on SIGTERM/SIGINT during the wait (this task cancelled).
            await stop_connecting(connecting)
        if connecting.cancelled():
            raise StartupError(
                f"cannot reach NATS at {servers} within {STARTUP_TIMEOUT_S:g} s "
                "(unreachable, or refusing this service's credentials)"
            )
        try:
            self._nc = connecting.result()
        except Exception as exc:
            raise StartupError(f"cannot connect to NATS at {servers}: {_one_line(exc)}") from None

    async def _connect_database(self) -> None:
        where = make_url(self.settings.database_url).render_as_string(hide_password=True)
        self._engine = create_engine(self.settings.database_url, self.settings.db_pool_size)
        try:
            await asyncio.wait_for(migrate(self._engine, self._schema, self._migrations), STARTUP_TIMEOUT_S)
        except TimeoutError:
            raise StartupError(
                f"cannot reach the database at {where} within {STARTUP_TIMEOUT_S:g} s"
            ) from None
        except (OSError, DBAPIError) as exc:
            reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
            raise StartupError(f"cannot reach the database at {where}: {_one_line(reason)}") from None
        self._sessions = session_factory(self._engine)

    async def _subscribed(self) -> None:
        if self.role in OWNED_STREAMS:
            await self.start(
                StreamKeeper(
                    self.js,
                    self.subjects,
                    self.role,
                    replicas=self.settings.stream_replicas,
                    limits=self.stream_limits(),
                )
            )
            await self.start(ConsumerWarden(self.js, self.subjects, self.role))
        for hook in self._ready:
            await hook()
        # The server has seen every SUB once this returns: the service is really ready.
        await self.nc.flush()
        self._serving = True
        log.info("%s service ready", self.role, extra={"subject_prefix": self.subjects.prefix})

    async def _stop_tasks(self) -> None:
        while self._running:
            task = self._running.pop()
            try:
                await task.stop()
            except Exception:
                log.exception("background task did not stop cleanly", extra={"task": repr(task)})

    async def _close(self) -> None:
        # After the broker stopped, so no handler is still using a connection.
        self._serving = False
        engine, self._engine, self._sessions = self._engine, None, None
        if engine is not None:
            await engine.dispose()
        if self._ops is not None:
            await self._ops.stop()

    async def _ready_checks(self) -> dict[str, str]:
        """/ready on the ops port: this service's own dependencies, never another service."""
        nats = "ok" if self._nc is not None and self._nc.is_connected else "disconnected"
        return {
            "service": "ok" if self._serving else "starting",
            "nats": nats,
            "database": await self._database_check(),
        }

    async def _database_check(self) -> str:
        if self._engine is None:
            return "not_connected"
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            self._readiness_outage.failed(exc)
            return "unavailable"
        self._readiness_outage.recovered()
        return "ok"

    def _register_ping(self) -> None:
        ping_method = next(method for method in PINGS if method.service == self.role)

        @rpc_handler(self.broker, self.subjects, ping_method)
        async def ping(_request: Ping) -> dict[str, str]:
            """Readiness: the service answers and its database does too."""
            if self._engine is None:
                raise RpcError("unavailable", f"The {self.role} service is not running")
            if await self._database_check() != "ok":
                raise RpcError("unavailable", "Database unavailable")
            return {"status": "ok"}


def _one_line(exc: BaseException) -> str:
    text_ = str(exc).strip().splitlines()
    return text_[0] if text_ else type(exc).__name__


async def serve(app: FastStream) -> None:
    """Run `app` until SIGTERM/SIGINT; shut down whatever started, even after a failed start."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)
    starting = asyncio.ensure_future(app.start())
    stop_requested = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            # A signal during start-up is honoured: stop waiting for NATS or the database.
            starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await stop_requested
    finally:
        stop_requested.cancel()
        await app.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)


def run_service(role: Role, settings_class: type[S], create_app: Callable[[S], FastStream]) -> None:
    """The entry point of `opswire <role>`: a start-up failure is one line and exit 1."""
    program = f"opswire {role}"
    settings = load_settings(settings_class, program)
    configure_logging(settings.log_level, settings.log_format)
    _ops_port_wanted.set(True)
    try:
        asyncio.run(serve(create_app(settings)))
    except StartupError as exc:
        sys.stderr.write(f"{program}: {exc}\n")
        raise SystemExit(1) from None
