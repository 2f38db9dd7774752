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
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import orjson
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from opswire.contract.rpc import RpcMethod
from opswire.contract.subjects import Subjects
from opswire.runtime.outage import OutageLog, database_unavailable

log = logging.getLogger(__name__)
# A handler whose database is down answers "unavailable" (503), reported once per interval.
_database_outage = OutageLog(log, "rpc: database unavailable")

ErrorCode = Literal[
    "invalid", "unauthorized", "forbidden", "not_found", "conflict", "timeout", "unavailable",
    "internal", "rate_limited",
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


Handler = Callable[[Req], Awaitable[Any]]


async def handle_request(method: RpcMethod[Req], handler: Handler[Req], body: bytes) -> bytes:
    """Validate `body` as the method's request, run the handler, build the reply envelope."""
    try:
        request = method.request.model_validate_json(body)
    except ValidationError as exc:
        return error_reply("invalid", validation_detail(exc))
    try:
        return ok_reply(await handler(request))
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
            log.error("malformed rpc reply", extra={
                "rpc": f"{method.service}.{method.method}", "errors": exc.error_count()})
            raise RpcError("internal", "Malformed reply") from None

    async def call(
        self,
        method: RpcMethod[Any, Any],
        request: BaseModel | dict[str, Any],
        timeout_s: float | None = None,
    ) -> Any:
        """The reply's data as JSON, not validated; raises RpcError."""
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
            return reply.get("data")
        error = reply.get("error") or {}
        retry_after = error.get("retry_after_s")
        raise RpcError(
            error.get("code", "internal"), error.get("detail"),
            retry_after if isinstance(retry_after, int) and retry_after >= 0 else None,
        )
