"""The RPC catalogue: every request/reply call on `opswire.rpc.<service>.<method>`.

Each call is one `RpcMethod` with its request model. Replies are an envelope:
`{"ok": true, "data": ...}` or `{"ok": false, "error": {"code": ..., "detail": ...}}`
(see `opswire.runtime.rpc`). `user_id` in a request is the caller the gateway
authenticated; services scope everything they return to it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from opswire.contract.frames import DockerAction
from opswire.contract.resources import (
    AlertStatus,
    ApiKeyCreate,
    CommandRun,
    ServerCreate,
    ServerUpdate,
    ThresholdCreate,
    ThresholdUpdate,
    TokenRefresh,
    UserLogin,
    UserRegister,
)
from opswire.contract.telemetry import LevelName, LogLevel
from opswire.contract.types import UtcDatetime

Req = TypeVar("Req", bound=BaseModel)

MAX_HISTORY_LIMIT = 10_000
DEFAULT_HISTORY_LIMIT = 1_000


class _Req(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ByUser(_Req):
    user_id: uuid.UUID


class ByServer(_Req):
    server_id: uuid.UUID


class ByUserServer(_Req):
    user_id: uuid.UUID
    server_id: uuid.UUID


@dataclass(frozen=True)
class RpcMethod(Generic[Req]):
    service: str
    method: str
    request: type[Req]
    doc: str = ""


# --- auth -------------------------------------------------------------------------------------------


class VerifyKey(_Req):
    api_key: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class ServerCreateFor(ServerCreate):
    user_id: uuid.UUID


class ServerUpdateFor(ServerUpdate):
    user_id: uuid.UUID
    server_id: uuid.UUID


class ApiKeyCreateFor(ApiKeyCreate):
    user_id: uuid.UUID


class ApiKeyList(_Req):
    user_id: uuid.UUID
    server_id: uuid.UUID | None = None


class ApiKeyRevoke(_Req):
    user_id: uuid.UUID
    key_id: uuid.UUID


class AuditList(_Req):
    user_id: uuid.UUID
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


AUTH_REGISTER = RpcMethod("auth", "register", UserRegister, "Create a user; conflict if the email exists.")
AUTH_LOGIN = RpcMethod("auth", "login", UserLogin, "Exchange email+password for a token pair.")
AUTH_REFRESH = RpcMethod("auth", "refresh", TokenRefresh, "Exchange a refresh token for a new pair.")
AUTH_ME = RpcMethod("auth", "me", ByUser, "The user.")
AUTH_VERIFY_KEY = RpcMethod("auth", "verify_key", VerifyKey, "API key -> AgentIdentity.")
AUTH_AUTHORIZE = RpcMethod("auth", "authorize", ByUserServer, "ok if the user owns the server.")
SERVERS_LIST = RpcMethod("auth", "servers.list", ByUser)
SERVERS_CREATE = RpcMethod("auth", "servers.create", ServerCreateFor)
SERVERS_GET = RpcMethod("auth", "servers.get", ByUserServer)
SERVERS_UPDATE = RpcMethod("auth", "servers.update", ServerUpdateFor)
SERVERS_DELETE = RpcMethod("auth", "servers.delete", ByUserServer, "Also closes the agent.")
KEYS_CREATE = RpcMethod("auth", "keys.create", ApiKeyCreateFor, "Reply holds the plain key, once.")
KEYS_LIST = RpcMethod("auth", "keys.list", ApiKeyList)
KEYS_REVOKE = RpcMethod("auth", "keys.revoke", ApiKeyRevoke, "Also closes the agent.")
AUDIT_LIST = RpcMethod("auth", "audit.list", AuditList, "The user's audit log, newest first.")


# --- ingest -----------------------------------------------------------------------------------------


class MetricsHistory(_Req):
    server_id: uuid.UUID
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_HISTORY_LIMIT)] = DEFAULT_HISTORY_LIMIT


class LogsQuery(_Req):
    server_id: uuid.UUID
    level: LevelName | None = None
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_HISTORY_LIMIT)] = DEFAULT_HISTORY_LIMIT

    @field_validator("level", mode="before")
    @classmethod
    def _normalise_level(cls, value: Any) -> Any:
        # Case-insensitive, aliases accepted (DESIGN §9 'History'), as in LogFields.
        return LogLevel.parse(value).name.lower() if isinstance(value, str) else value


class ThresholdCreateFor(ThresholdCreate):
    user_id: uuid.UUID


class ThresholdUpdateFor(ThresholdUpdate):
    user_id: uuid.UUID
    threshold_id: uuid.UUID


class ThresholdRef(_Req):
    user_id: uuid.UUID
    threshold_id: uuid.UUID


class ThresholdList(_Req):
    user_id: uuid.UUID
    server_id: uuid.UUID | None = None


class AlertList(_Req):
    user_id: uuid.UUID
    status: AlertStatus | None = None
    server_id: uuid.UUID | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_HISTORY_LIMIT)] = DEFAULT_HISTORY_LIMIT


class AlertRef(_Req):
    user_id: uuid.UUID
    alert_id: uuid.UUID


METRICS_LATEST = RpcMethod("ingest", "metrics.latest", ByServer, "Latest sample; not_found if none.")
METRICS_HISTORY = RpcMethod("ingest", "metrics.history", MetricsHistory, "start <= ts < end, ascending.")
LOGS_QUERY = RpcMethod("ingest", "logs.query", LogsQuery, "Newest first; level is a minimum.")
THRESHOLDS_LIST = RpcMethod("ingest", "thresholds.list", ThresholdList)
THRESHOLDS_CREATE = RpcMethod("ingest", "thresholds.create", ThresholdCreateFor)
THRESHOLDS_UPDATE = RpcMethod("ingest", "thresholds.update", ThresholdUpdateFor)
THRESHOLDS_DELETE = RpcMethod("ingest", "thresholds.delete", ThresholdRef)
ALERTS_LIST = RpcMethod("ingest", "alerts.list", AlertList)
ALERTS_RESOLVE = RpcMethod("ingest", "alerts.resolve", AlertRef)
SERVERS_FORGET = RpcMethod(
    "ingest", "servers.forget", ByUserServer,
    "A server was deleted: drop its thresholds and resolve its open alerts (history is kept).",
)


# --- commands ---------------------------------------------------------------------------------------


class CommandRunFor(CommandRun):
    user_id: uuid.UUID
    server_id: uuid.UUID


class CommandHistory(_Req):
    server_id: uuid.UUID
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class DockerRun(_Req):
    user_id: uuid.UUID
    server_id: uuid.UUID
    action: DockerAction
    container_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: Annotated[int, Field(ge=1, le=600)] = 30


COMMANDS_RUN = RpcMethod("commands", "run", CommandRunFor, "Run and wait; conflict if agent offline.")
COMMANDS_HISTORY = RpcMethod("commands", "history", CommandHistory, "Newest first.")
DOCKER_RUN = RpcMethod("commands", "docker", DockerRun, "A Docker action through the agent.")

# --- readiness -----------------------------------------------------------------------------------------


class Ping(_Req):
    pass


AUTH_PING = RpcMethod("auth", "ping", Ping, "Readiness probe.")
INGEST_PING = RpcMethod("ingest", "ping", Ping, "Readiness probe.")
COMMANDS_PING = RpcMethod("commands", "ping", Ping, "Readiness probe.")
PINGS = (AUTH_PING, INGEST_PING, COMMANDS_PING)

