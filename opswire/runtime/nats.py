"""NATS connections and JetStream streams, configured the same way in every process."""

from __future__ import annotations

import logging

import nats
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from opswire.contract.subjects import Subjects
from opswire.runtime.settings import CommonSettings

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


async def connect(servers: list[str], name: str) -> NatsClient:
    return await nats.connect(
        servers=servers,
        name=name,
        error_cb=_on_error,
        disconnected_cb=_on_disconnected,
        reconnected_cb=_on_reconnected,
        **CONNECT_OPTIONS,
    )


def stream_configs(subjects: Subjects) -> list[StreamConfig]:
    return [
        StreamConfig(
            name=spec.name,
            subjects=spec.subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=spec.max_age_s,
            duplicate_window=spec.duplicate_window_s,
        )
        for spec in subjects.streams()
    ]


async def ensure_streams(js: JetStreamContext, subjects: Subjects) -> None:
    """Create the opswire streams if missing; leave existing ones as the operator set them."""
    for config in stream_configs(subjects):
        try:
            await js.stream_info(config.name)  # type: ignore[arg-type]
            continue
        except nats.js.errors.NotFoundError:
            pass
        try:
            await js.add_stream(config)
            log.info("created stream %s", config.name)
        except BadRequestError as exc:
            # Another process created it between our check and our add.
            if exc.err_code != 10058:  # stream name already in use
                raise


def service_broker(settings: CommonSettings, name: str, graceful_timeout_s: float = 10.0) -> NatsBroker:
    """The FastStream broker of a service: reconnect forever, per-message logs at DEBUG only."""
    return NatsBroker(
        settings.nats_servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        # Shutdown waits this long for handlers in flight (e.g. a command waiting on its agent).
        graceful_timeout=graceful_timeout_s,
        # FastStream logs every message; at DEBUG only, so INFO stays about the service.
        log_level=logging.DEBUG,
        # Through our handler and format; quieted with the rest of "faststream".
        logger=logging.getLogger(f"faststream.{name}"),
    )
