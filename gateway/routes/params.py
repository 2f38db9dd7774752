"""Query parameters shared by several routes, validated before any service is called."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator
from pydantic_core import to_jsonable_python

from opswire.contract.rpc import IDEMPOTENCY_KEY_PATTERN, MAX_HISTORY_LIMIT, PageToken
from opswire.contract.telemetry import LevelName
from opswire.contract.types import UtcDatetime, utc_now
from opswire.runtime.rpc import PagedReply

# Margin on top of the service's own wait, so the service answers before the gateway gives up.
RPC_MARGIN_S = 5.0

HistoryLimit = Annotated[
    int, Query(ge=1, le=MAX_HISTORY_LIMIT, description="At most this many items (1-10000).")
]


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


# Case-insensitive; anything but the five names is a 422 (DESIGN §9 'History').
LevelQuery = Annotated[
    LevelName | None,
    BeforeValidator(_lower),
    Query(description="Minimum severity: debug, info, warning, error or critical."),
]


@dataclass(frozen=True)
class TimeWindow:
    start: datetime | None
    end: datetime | None


def time_window(
    start: Annotated[
        UtcDatetime | None, Query(description="ISO 8601; without a zone it is UTC. Inclusive.")
    ] = None,
    end: Annotated[
        UtcDatetime | None, Query(description="ISO 8601; without a zone it is UTC. Exclusive.")
    ] = None,
) -> TimeWindow:
    """`start`/`end` query parameters; an empty window is refused here, before any call."""
    if start is not None and end is not None and start >= end:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "start"), "msg": "start must be before end"}]
        )
    return TimeWindow(start, end)


def json_passthrough(data: Any) -> Response:
    """Relay a service's reply as is: telemetry is already contract-shaped, and re-validating
    up to 10000 samples per request would cost more than the query itself."""
    return Response(orjson.dumps(to_jsonable_python(data)), media_type="application/json")


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="A retry with the same key (same user and server, within 24 h) returns "
        "the first result and runs nothing again; 409 while the first is still running, "
        "422 if the key was used for a different request.",
    ),
]


@dataclass(frozen=True)
class CommandWait:
    """How long the gateway waits for a command, as an absolute instant for the service
    (`reply_by`: it answers by then and delivers nothing after) and as the RPC timeout."""

    reply_by: datetime
    rpc_timeout_s: float


def command_wait(timeout_s: int, grace_s: float) -> CommandWait:
    wait_s = timeout_s + grace_s
    # The margin lets the service's answer at reply_by still arrive.
    return CommandWait(utc_now() + timedelta(seconds=wait_s), wait_s + RPC_MARGIN_S)


CursorQuery = Annotated[
    PageToken | None,
    Query(description='Continue after an earlier page: the cursor of its `Link: rel="next"`.'),
]


def paged_response(request: Request, reply: PagedReply) -> Response:
    """Relay a paged answer as one bare JSON array, page by page as the service sends them
    (the gateway never holds more than one page), with a `Link: <...>; rel="next"` header
    when the list goes on after `limit`.

    The first page has arrived already, so an error before any data is still a proper
    status; a failure on a later page can only cut the response short.
    """
    headers = {}
    if reply.more is not None:
        url = request.url.include_query_params(cursor=reply.more)
        headers["Link"] = f'<{url}>; rel="next"'

    async def body() -> Any:
        yield b"["
        first = True
        async for items in reply.pages():
            for item in items:
                yield orjson.dumps(item) if first else b"," + orjson.dumps(item)
                first = False
        yield b"]"

    return StreamingResponse(body(), media_type="application/json", headers=headers)
