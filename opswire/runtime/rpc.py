"""Request/reply between the gateway and the services, over NATS.

Errors cross NATS as typed replies, never as silence::

    RpcError                      raised by handlers, raised again by RpcClient.call
    ├── code "invalid"       422  the request failed validation
    ├── code "unauthorized"  401  bad credentials or token
    ├── code "forbidden"     403
    ├── code "not_found"     404  does not exist, or is not yours (never told apart)
    ├── code "conflict"      409  exists already / agent not connected / a ceiling reached
    ├── code "rate_limited"  429  throttled or over a quota; `retry_after_s` says when to try again
    ├── code "timeout"       504  the work itself timed out
    ├── code "unavailable"   503  the service did not answer in time, or its database is down
    └── code "internal"      500  a bug; details are in the service's log

A reply is `{"ok": true, "data": ...}` or `{"ok": false, "error": {"code", "detail"}}`;
`RpcClient.call_typed` validates `data` as the method's reply type, so a malformed reply is
"internal" at the caller rather than a surprise further on.

Answers of any size (DESIGN §5 lists): a handler of a list method may return a `Page`
instead of a list. Its items are filled up to a byte budget under the connection's
`max_payload`; when the answer goes on, the reply carries `"next"` (a resume token) beside
`data`, and `RpcClient.call_paged` asks again with `resume=<next>` and the rest of the
limit, page after page, so neither side ever holds the whole answer. A first page may
also carry `"more"`: the client-facing cursor of the page after `limit` (gateways put it
in a `Link` header). A plain list reply is a single page, so callers and stubs that know
nothing of pages keep working.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import orjson
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from opswire.contract.rpc import PagedRequest, RpcMethod
from opswire.contract.subjects import Subjects
from opswire.runtime.outage import OutageLog, database_unavailable

log = logging.getLogger(__name__)
# A handler whose database is down answers "unavailable" (503), reported once per interval.
_database_outage = OutageLog(log, "rpc: database unavailable")

ErrorCode = Literal[
    "invalid",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "timeout",
    "unavailable",
    "internal",
    "rate_limited",
]
HTTP_STATUS: dict[str, int] = {
    "invalid": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "timeout": 504,
    "unavailable": 503,
    "internal": 500,
    "rate_limited": 429,
}

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep")


class RpcError(Exception):
    def __init__(self, code: ErrorCode, detail: Any = None, retry_after_s: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: ErrorCode = code
        self.detail = detail
        # Whole seconds until a retry may succeed (HTTP Retry-After), for "rate_limited".
        self.retry_after_s = retry_after_s

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def NotFound(what: str = "Not found") -> RpcError:
    return RpcError("not_found", what)


def dumps(value: Any) -> bytes:
    return orjson.dumps(to_jsonable_python(value, by_alias=True))


def ok_reply(data: Any) -> bytes:
    return dumps({"ok": True, "data": data})


def error_reply(code: ErrorCode, detail: Any, retry_after_s: int | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "detail": detail}
    if retry_after_s is not None:
        error["retry_after_s"] = retry_after_s
    return dumps({"ok": False, "error": error})


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """FastAPI-shaped error list, safe to send back (no inputs echoed)."""
    return [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


# Room left in a reply for the envelope and the tokens around a page's items.
ENVELOPE_MARGIN = 16 * 1024
MIN_PAGE_BUDGET = 64 * 1024


@dataclass
class Page:
    """One reply's share of a long list: items already encoded as JSON values."""

    items: list[bytes]
    # More of this answer follows: ask again with `resume=next`.
    next: str | None = None
    # The client-facing cursor of the page after `limit` (first page only).
    more: str | None = None


def page_budget(max_payload: int) -> int:
    """Bytes of items one reply may carry on a connection with this `max_payload`."""
    return max(max_payload - ENVELOPE_MARGIN, MIN_PAGE_BUDGET)


async def fill_page(rows: AsyncIterable[tuple[bytes, str]], limit: int, budget: int) -> Page:
    """Take encoded items (each with the resume token that continues after it) until
    `limit` items or `budget` bytes; always at least one item, so a page makes progress.
    The caller closes `rows` (its database cursor) afterwards."""
    items: list[bytes] = []
    size = 0
    last_token: str | None = None
    async for item, token in rows:
        if len(items) >= limit:
            break
        if items and size + len(item) + 1 > budget:
            return Page(items, next=last_token)
        items.append(item)
        size += len(item) + 1
        last_token = token
    return Page(items)


def page_reply(page: Page) -> bytes:
    parts = [b'{"ok":true,"data":[', b",".join(page.items), b"]"]
    for key, value in (("next", page.next), ("more", page.more)):
        if value is not None:
            parts.append(b',"' + key.encode() + b'":' + orjson.dumps(value))
    parts.append(b"}")
    return b"".join(parts)


def encode_cursor(timestamp: datetime, key: str = "") -> str:
    """An opaque keyset cursor: a row's sort timestamp and its tie-breaking key."""
    return base64.urlsafe_b64encode(f"{timestamp.isoformat()}|{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (timestamp, key) of `encode_cursor`; a malformed cursor is "invalid"."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        stamp, key = text.split("|", 1)
        timestamp = datetime.fromisoformat(stamp)
    except ValueError:
        raise RpcError("invalid", "Malformed cursor") from None
    if timestamp.tzinfo is None:
        raise RpcError("invalid", "Malformed cursor")
    return timestamp, key


Handler = Callable[[Req], Awaitable[Any]]


async def handle_request(method: RpcMethod[Req], handler: Handler[Req], body: bytes) -> bytes:
    """Validate `body` as the method's request, run the handler, build the reply envelope."""
    try:
        request = method.request.model_validate_json(body)
    except ValidationError as exc:
        return error_reply("invalid", validation_detail(exc))
    try:
        result = await handler(request)
        return page_reply(result) if isinstance(result, Page) else ok_reply(result)
    except RpcError as exc:
        return error_reply(exc.code, exc.detail, exc.retry_after_s)
    except Exception as exc:
        if database_unavailable(exc):
            _database_outage.failed(exc, rpc=f"{method.service}.{method.method}")
            return error_reply("unavailable", "Database unavailable")
        log.exception("rpc handler failed", extra={"rpc": f"{method.service}.{method.method}"})
        return error_reply("internal", "Internal error")


def rpc_subject(subjects: Subjects, method: RpcMethod[Any]) -> str:
    return subjects.rpc(method.service, method.method)


_reply_adapters: dict[Any, TypeAdapter[Any]] = {}


def _reply_adapter(reply: Any) -> TypeAdapter[Any]:
    """One adapter per reply type: building one costs far more than using it."""
    adapter = _reply_adapters.get(reply)
    if adapter is None:
        adapter = _reply_adapters[reply] = TypeAdapter(reply)
    return adapter


class RpcClient:
    """Calls services over NATS request/reply and unwraps the envelope.

    `call_typed` is the call to use: its reply is validated as the method's reply type.
    `call` hands back the reply's JSON as it came, for relaying and for the services'
    wire-format tests (which compare JSON).
    """

    def __init__(self, nc: NatsClient, subjects: Subjects, timeout_s: float = 5.0) -> None:
        self._nc = nc
        self._subjects = subjects
        self._timeout_s = timeout_s

    async def call_typed(
        self,
        method: RpcMethod[Req, Rep],
        request: Req | dict[str, Any],
        timeout_s: float | None = None,
    ) -> Rep:
        """The reply's data, validated as `method.reply`; a malformed one is "internal"."""
        data = await self.call(method, request, timeout_s)
        adapter: TypeAdapter[Rep] = _reply_adapter(method.reply)
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            log.error(
                "malformed rpc reply",
                extra={"rpc": f"{method.service}.{method.method}", "errors": exc.error_count()},
            )
            raise RpcError("internal", "Malformed reply") from None

    async def call(
        self,
        method: RpcMethod[Any, Any],
        request: BaseModel | dict[str, Any],
        timeout_s: float | None = None,
    ) -> Any:
        """The reply's data as JSON, not validated; raises RpcError."""
        return (await self._envelope(method, request, timeout_s)).get("data")

    async def call_paged(self, method: RpcMethod[Any, Any], request: PagedRequest) -> PagedReply:
        """The first page of a list answer now (errors raise here, before anything is
        relayed), the rest as `PagedReply.pages()` fetches them."""
        first = await self._envelope(method, request)
        return PagedReply(self, method, request, first)

    async def _envelope(
        self,
        method: RpcMethod[Any, Any],
        request: BaseModel | dict[str, Any],
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        payload = request.model_dump_json().encode() if isinstance(request, BaseModel) else dumps(request)
        subject = rpc_subject(self._subjects, method)
        try:
            msg = await self._nc.request(subject, payload, timeout=timeout_s or self._timeout_s)
        except NoRespondersError:
            raise RpcError("unavailable", f"The {method.service} service is not running") from None
        except NatsTimeoutError:
            raise RpcError("unavailable", f"The {method.service} service did not answer in time") from None
        try:
            reply = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            raise RpcError("internal", "Malformed reply") from None
        if not isinstance(reply, dict):
            raise RpcError("internal", "Malformed reply")
        if reply.get("ok"):
            return reply
        error = reply.get("error") or {}
        retry_after = error.get("retry_after_s")
        raise RpcError(
            error.get("code", "internal"),
            error.get("detail"),
            retry_after if isinstance(retry_after, int) and retry_after >= 0 else None,
        )


def _page_items(envelope: dict[str, Any]) -> list[Any]:
    data = envelope.get("data")
    if not isinstance(data, list):
        raise RpcError("internal", "Malformed reply")
    return data


def _token(envelope: dict[str, Any], key: str) -> str | None:
    value = envelope.get(key)
    return value if isinstance(value, str) and value else None


class PagedReply:
    """A list answer arriving page by page; memory is one page at a time."""

    def __init__(
        self,
        client: RpcClient,
        method: RpcMethod[Any, Any],
        request: PagedRequest,
        first: dict[str, Any],
    ) -> None:
        self._client = client
        self._method = method
        self._request = request
        self._first = first
        self.first_items = _page_items(first)
        # Where the client's next page (after `limit`) starts, if there is one.
        self.more = _token(first, "more")

    async def pages(self) -> AsyncIterator[list[Any]]:
        envelope, items = self._first, self.first_items
        remaining = self._request.limit
        while True:
            yield items
            remaining -= len(items)
            resume = _token(envelope, "next")
            if resume is None or remaining <= 0 or not items:
                return
            request = self._request.model_copy(update={"resume": resume, "limit": remaining})
            envelope = await self._client._envelope(self._method, request)
            items = _page_items(envelope)
