"""Registering RPC handlers on a FastStream NATS broker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream.nats import NatsBroker, NatsMessage
from pydantic import BaseModel

from opswire.contract.rpc import RpcMethod
from opswire.rpc import handle_request, rpc_subject
from opswire.subjects import Subjects

Req = TypeVar("Req", bound=BaseModel)


def rpc_handler(
    broker: NatsBroker, subjects: Subjects, method: RpcMethod[Req], max_workers: int = 1
) -> Callable[[Callable[[Req], Awaitable[Any]]], Callable[[Req], Awaitable[Any]]]:
    """Decorator: serve `method` in the service's queue group.

    The handler receives the validated request model and returns the reply data
    (or raises RpcError). Bad requests and crashes still get a typed reply.
    `max_workers` > 1 lets one replica serve that many requests at once (for
    handlers that wait, e.g. on an agent); by default requests run one by one.
    """

    def register(handler: Callable[[Req], Awaitable[Any]]) -> Callable[[Req], Awaitable[Any]]:
        async def endpoint(msg: NatsMessage) -> bytes:
            return await handle_request(method, handler, msg.body)

        endpoint.__name__ = handler.__name__
        broker.subscriber(
            rpc_subject(subjects, method),
            queue=method.service,
            title=rpc_subject(subjects, method),
            description=method.doc or handler.__doc__ or "",
            max_workers=max_workers,
        )(endpoint)
        return handler

    return register
