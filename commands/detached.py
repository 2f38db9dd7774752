"""RPC requests answered by a task of their own, so waiting costs no worker.

FastStream serves a subscriber's messages with at most `max_workers` handlers at
once; a command that waits an hour for its agent would hold one all that time (256
silent commands once blocked everyone). Here the subscriber only starts a task and
returns: the task runs the handler (waiting on a future, see
commands/dispatch.py) and publishes the reply envelope to the request's reply
subject itself. `limit` bounds the tasks of one replica; beyond it a request is
refused at once ("rate_limited").

At shutdown, tasks still running get `SHUTDOWN_WAIT_S` to finish; the rest are
cancelled and their callers told "unavailable" at once (the command stays in the
history; its answer or the sweep closes it on a live replica).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream.nats import NatsBroker, NatsMessage
from nats.aio.client import Client as NatsClient
from pydantic import BaseModel

from opswire.contract.rpc import RpcMethod
from opswire.contract.subjects import Subjects
from opswire.runtime.faststream_rpc import subscribe_rpc
from opswire.runtime.nats import from_stream
from opswire.runtime.rpc import error_reply, handle_request

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=BaseModel)

SHUTDOWN_WAIT_S = 5.0
STOPPED = "The commands service stopped while waiting; the outcome will be in the history"
STOPPING = "The commands service is stopping; nothing was run"
BUSY_RETRY_AFTER_S = 1


class DetachedCalls:
    def __init__(self, nc: Callable[[], NatsClient], limit: int) -> None:
        self._nc = nc
        self._limit = limit
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    def serve(
        self,
        broker: NatsBroker,
        subjects: Subjects,
        method: RpcMethod[Req],
        handler: Callable[[Req], Awaitable[Any]],
    ) -> None:
        """Serve `method` in the service's queue group, each request in its own task."""
        name = f"{method.service}.{method.method}"

        async def endpoint(msg: NatsMessage) -> None:
            if from_stream(msg.reply_to):
                log.warning("ignored a stream message pushed onto an RPC subject", extra={"rpc": name})
                return
            if not msg.reply_to:
                log.warning("ignored a request without a reply subject", extra={"rpc": name})
                return
            if self._stopping:
                # Another replica may take it: the caller's retry (or the gateway's) will.
                await self._send(msg.reply_to, error_reply("unavailable", STOPPING))
                return
            if len(self._tasks) >= self._limit:
                await self._send(
                    msg.reply_to,
                    error_reply(
                        "rate_limited", "Too many commands waiting; try again later", BUSY_RETRY_AFTER_S
                    ),
                )
                return
            task = asyncio.create_task(self._answer(method, handler, msg.body, msg.reply_to))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        subscribe_rpc(broker, subjects, method, handler, endpoint, no_reply=True)

    async def _answer(
        self,
        method: RpcMethod[Req],
        handler: Callable[[Req], Awaitable[Any]],
        body: bytes,
        reply_to: str,
    ) -> None:
        try:
            payload = await handle_request(method, handler, body)
        except asyncio.CancelledError:
            payload = error_reply("unavailable", STOPPED)
            await self._send(reply_to, payload)
            raise
        await self._send(reply_to, payload)

    async def _send(self, reply_to: str, payload: bytes) -> None:
        try:
            await self._nc().publish(reply_to, payload)
        except Exception as exc:
            log.warning("rpc reply not sent", extra={"error": repr(exc)})

    def start(self) -> None:
        """Nothing to start: tasks begin with their requests."""

    async def stop(self) -> None:
        self._stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_WAIT_S)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
