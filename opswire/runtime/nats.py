"""NATS connections and JetStream streams, configured the same way in every process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import nats
from faststream.nats import NatsBroker
from faststream.nats.security import NatsSecurity, NatsUserPassword
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError

from opswire.contract.subjects import Subjects
from opswire.runtime.permissions import OWNED_STREAMS, Role, inbox_prefix
from opswire.runtime.settings import CommonSettings
from opswire.runtime.tasks import LoopTask

log = logging.getLogger(__name__)

# Services must outlive a NATS restart: reconnect forever, buffer meanwhile.
CONNECT_OPTIONS: dict[str, object] = {
    "max_reconnect_attempts": -1,
    "reconnect_time_wait": 1,
    "connect_timeout": 5,
    "allow_reconnect": True,
    "pending_size": 16 * 1024 * 1024,
}


async def _on_error(exc: Exception) -> None:
    log.warning("nats error: %s", exc)


async def _on_disconnected() -> None:
    log.info("nats disconnected")


async def _on_reconnected() -> None:
    log.info("nats reconnected")


def from_stream(reply: str | None) -> bool:
    """Whether a message on a core subject was pushed there by a JetStream consumer.

    Any identity that may create consumers chooses their deliver subject, so stored
    messages could be aimed at an internal subject (an agent's control subject, an
    RPC method). Those arrive with a `$JS.ACK.` reply subject; a real peer's never do.
    """
    return reply is not None and reply.startswith("$JS.")


def identity_options(settings: CommonSettings, role: Role) -> dict[str, Any]:
    """How `role` identifies itself to NATS: its credentials, its own inbox prefix, TLS."""
    options: dict[str, Any] = {
        "inbox_prefix": settings.nats_inbox_prefix or inbox_prefix(role),
    }
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_secret() or ""
    if (tls := settings.nats_tls()) is not None:
        options["tls"] = tls
    return options


class NatsUnreachable(ConnectionError):
    """Start-up could not connect to NATS: refused credentials, or no server in time."""


async def connect(
    settings: CommonSettings, role: Role, name: str, startup_timeout_s: float = 30.0
) -> NatsClient:
    """Connect as `role`. Once connected, reconnect forever; but at start-up, refused
    credentials fail at once and an unreachable server after `startup_timeout_s`."""
    refused = asyncio.Event()
    reason: list[str] = []

    async def on_error(exc: Exception) -> None:
        if not refused.is_set() and "authorization violation" in str(exc).lower():
            reason.append(f"NATS refused the credentials of {settings.nats_user or 'an anonymous client'}")
            refused.set()
        await _on_error(exc)

    connecting = asyncio.ensure_future(
        nats.connect(
            servers=settings.nats_servers,
            name=name,
            error_cb=on_error,
            disconnected_cb=_on_disconnected,
            reconnected_cb=_on_reconnected,
            **CONNECT_OPTIONS,
            **identity_options(settings, role),
        )
    )
    waiting = asyncio.ensure_future(refused.wait())
    try:
        done, _ = await asyncio.wait(
            {connecting, waiting}, timeout=startup_timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    except asyncio.CancelledError:
        await stop_connecting(connecting)  # SIGTERM/SIGINT while waiting
        raise
    finally:
        waiting.cancel()
    if connecting in done:
        return connecting.result()
    await stop_connecting(connecting)
    where = ", ".join(settings.nats_servers)
    raise NatsUnreachable(
        f"cannot connect to NATS at {where}: "
        + (reason[0] if reason else f"no answer within {startup_timeout_s:.0f} s")
    )


async def stop_connecting(connecting: asyncio.Future[Any]) -> None:
    """Stop a connect still in progress. nats-py's connect loop retries and can swallow a
    single cancellation (seen with a server that accepts but never answers: a stop signal
    then hung the process), so cancel until it has really ended."""
    while not connecting.done():
        connecting.cancel()
        await asyncio.wait({connecting}, timeout=0.1)
    if not connecting.cancelled():
        connecting.exception()  # retrieved: a failed connect is reported by the caller


# Default of OPSWIRE_STREAM_MAX_BYTES: every stream is bounded (issue 8.4).
DEFAULT_STREAM_MAX_BYTES = 1024**3


@dataclass(frozen=True)
class StreamLimits:
    """How big and how old a stream may grow (DESIGN §4 Streams).

    A full stream refuses new publishes (discard "new"): what is stored stays until
    ingest has stored it and it ages out, and the publisher is told. `telemetry_max_age_s`
    is the ingest retention: a sample older than that would be purged from the database
    anyway, so the metrics and logs streams need not hold it either.
    """

    max_bytes: int = DEFAULT_STREAM_MAX_BYTES
    telemetry_max_age_s: float | None = None


def stream_configs(
    subjects: Subjects,
    only: Iterable[str] | None = None,
    replicas: int = 1,
    limits: StreamLimits | None = None,
) -> list[StreamConfig]:
    """The configs of opswire's streams (those named in `only`, by stream name, if given),
    each with `replicas` copies (OPSWIRE_STREAM_REPLICAS) and bounded by `limits` (None:
    no byte limit, for tools and tests: nats-server reserves `max_bytes` of its storage
    for every stream up front)."""
    wanted = None if only is None else set(only)
    limits = limits or StreamLimits(max_bytes=-1)
    telemetry = {subjects.metrics_stream, subjects.logs_stream}
    return [
        StreamConfig(
            name=spec.name,
            subjects=spec.subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_age=(
                limits.telemetry_max_age_s
                if spec.name in telemetry and limits.telemetry_max_age_s
                else spec.max_age_s
            ),
            max_bytes=limits.max_bytes,
            duplicate_window=spec.duplicate_window_s,
            num_replicas=replicas,
        )
        for spec in subjects.streams()
        if wanted is None or spec.name in wanted
    ]


def _limit_changes(current: StreamConfig, wanted: StreamConfig) -> dict[str, Any]:
    """The bounds of `wanted` that an existing stream does not have yet."""
    changes: dict[str, Any] = {}
    if current.discard != wanted.discard:
        changes["discard"] = wanted.discard
    if (current.max_bytes or -1) != wanted.max_bytes:
        changes["max_bytes"] = wanted.max_bytes
    if abs((current.max_age or 0) - (wanted.max_age or 0)) > 0.001:
        changes["max_age"] = wanted.max_age
    return changes


def owned_streams(subjects: Subjects, role: Role) -> list[str]:
    return [str(getattr(subjects, attr)) for attr in OWNED_STREAMS.get(role, ())]


class StreamSetupError(Exception):
    """The server refused to create or update a stream as configured; the message is one
    line naming the stream, the setting and the server's reason."""


def _refused(action: str, stream: str, replicas: int, exc: APIError) -> StreamSetupError:
    reason = (exc.description or str(exc)).strip().splitlines()
    because = reason[0] if reason else type(exc).__name__
    return StreamSetupError(
        f"cannot {action} stream {stream} with OPSWIRE_STREAM_REPLICAS={replicas}: "
        f"the NATS server refused: {because}"
    )


async def ensure_streams(
    js: JetStreamContext,
    subjects: Subjects,
    role: Role | None = None,
    replicas: int | None = None,
    limits: StreamLimits | None = None,
) -> list[str]:
    """Create the streams `role` owns (every stream: None, for tools and tests) if
    missing, with `replicas` copies (OPSWIRE_STREAM_REPLICAS; None: 1, and an existing
    stream's count is left alone); give an existing one opswire's subjects and replica
    count if they differ (e.g. audit moved out of the events stream, or a cluster grown
    from one node), and opswire's bounds if given (`limits`: discard new, max_bytes,
    max_age); every other setting stays as the operator set it.
    Returns the names of the streams created. Raises StreamSetupError (one line) when
    the server refuses, e.g. 3 replicas on a single node."""
    created = []
    only = None if role is None else owned_streams(subjects, role)
    for config in stream_configs(subjects, only, replicas or 1, limits):
        name = str(config.name)
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            info = None
        if info is not None:
            changes = {} if limits is None else _limit_changes(info.config, config)
            if sorted(info.config.subjects or []) != sorted(config.subjects or []):
                changes["subjects"] = config.subjects
            if replicas is not None and (info.config.num_replicas or 1) != replicas:
                changes["num_replicas"] = replicas
            if changes:
                try:
                    await js.update_stream(replace(info.config, **changes))
                except APIError as exc:
                    raise _refused("update", name, config.num_replicas or 1, exc) from None
                log.info("stream updated", extra={"stream": name, "changed": ",".join(changes)})
            continue
        try:
            await js.add_stream(config)
            created.append(name)
            log.info("created stream", extra={"stream": name, "replicas": config.num_replicas})
        except BadRequestError as exc:
            # Another replica created it between our check and our add.
            if exc.err_code != 10058:  # stream name already in use
                raise _refused("create", name, config.num_replicas or 1, exc) from None
        except APIError as exc:
            raise _refused("create", name, config.num_replicas or 1, exc) from None
    return created


class StreamKeeper(LoopTask):
    """Recreates the streams a service owns if they vanish (deleted by an operator or a
    tool), and tells `on_recreated` so consumers can be set up again."""

    def __init__(
        self,
        js: JetStreamContext,
        subjects: Subjects,
        role: Role,
        interval_s: float = 5.0,
        on_recreated: Callable[[list[str]], Awaitable[None]] | None = None,
        replicas: int | None = None,
        limits: StreamLimits | None = None,
    ) -> None:
        super().__init__(self._keep, name=f"streams-{role}")
        self._js = js
        self._subjects = subjects
        self._role = role
        self._interval_s = interval_s
        self._on_recreated = on_recreated
        self._replicas = replicas
        self._limits = limits

    async def _keep(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                created = await ensure_streams(
                    self._js, self._subjects, self._role, self._replicas, self._limits
                )
                if created:
                    log.warning(
                        "streams were missing and have been recreated", extra={"streams": ",".join(created)}
                    )
                    if self._on_recreated is not None:
                        await self._on_recreated(created)
                failing = False
            except Exception as exc:
                # NATS away: the connection reconnects by itself; say so once per outage.
                if not failing:
                    log.warning("cannot check streams", extra={"error": repr(exc)})
                failing = True


def service_broker(
    settings: CommonSettings, role: Role, name: str, graceful_timeout_s: float = 10.0
) -> NatsBroker:
    """The FastStream broker of a service: its role's identity, reconnect forever,
    per-message logs at DEBUG only."""
    options = identity_options(settings, role)
    security: NatsSecurity | None = None
    if "user" in options:
        security = NatsUserPassword(options["user"], options["password"], ssl_context=options.get("tls"))
    elif "tls" in options:
        security = NatsSecurity(ssl_context=options["tls"])
    return NatsBroker(
        settings.nats_servers,
        name=name,
        inbox_prefix=options["inbox_prefix"],
        security=security,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        # Shutdown waits this long for handlers in flight (e.g. a command waiting on its agent).
        graceful_timeout=graceful_timeout_s,
        # FastStream logs every message; at DEBUG only, so INFO stays about the service.
        log_level=logging.DEBUG,
        # Through our handler and format; quieted with the rest of "faststream".
        logger=logging.getLogger(f"faststream.{name}"),
    )
