"""Registering RPC handlers on a FastStream NATS broker."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream.nats import NatsBroker, NatsMessage
from pydantic import BaseModel

from opswire.contract.rpc import RpcMethod
from opswire.contract.subjects import Subjects
from opswire.runtime import metrics
from opswire.runtime.nats import from_stream
from opswire.runtime.rpc import handle_request, rpc_subject

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=BaseModel)

# Below the default database pool (10), so concurrent handlers do not queue on it.
DEFAULT_WORKERS = 8


def rpc_handler(
    broker: NatsBroker, subjects: Subjects, method: RpcMethod[Req], max_workers: int = DEFAULT_WORKERS
) -> Callable[[Callable[[Req], Awaitable[Any]]], Callable[[Req], Awaitable[Any]]]:
    """Decorator: serve `method` in the service's queue group.

    The handler receives the validated request model and returns the reply data
    (or raises RpcError). Bad requests and crashes still get a typed reply.
    `max_workers` is how many requests one replica serves at once: FastStream
    runs a subscriber's messages one by one otherwise, so one slow query (or a
    command waiting on its agent) would hold up every other caller.
    """

    def register(handler: Callable[[Req], Awaitable[Any]]) -> Callable[[Req], Awaitable[Any]]:
        async def endpoint(msg: NatsMessage) -> bytes:
            if from_stream(msg.reply_to):
                log.warning(
                    "ignored a stream message pushed onto an RPC subject",
                    extra={"rpc": f"{method.service}.{method.method}"},
                )
                return b""
            with metrics.rpc_timer(f"{method.service}.{method.method}"):
                return await handle_request(method, handler, msg.body)

        subscribe_rpc(broker, subjects, method, handler, endpoint, max_workers=max_workers)
        return handler

    return register


def subscribe_rpc(
    broker: NatsBroker,
    subjects: Subjects,
    method: RpcMethod[Any],
    handler: Callable[..., Any],
    endpoint: Callable[[NatsMessage], Awaitable[Any]],
    **options: Any,
) -> None:
    """Subscribe `endpoint` to `method` in the service's queue group, named and documented
    after `handler` (the AsyncAPI document shows both)."""
    endpoint.__name__ = handler.__name__
    subject = rpc_subject(subjects, method)
    broker.subscriber(
        subject,
        queue=method.service,
        title=subject,
        description=method.doc or handler.__doc__ or "",
        **options,
    )(endpoint)
