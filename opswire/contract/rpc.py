"""The RPC catalogue: every request/reply call on `opswire.rpc.<service>.<method>`.

Each call is one `RpcMethod` with its request model and its reply type (what `data`
holds; the caller validates it). Replies are an envelope:
`{"ok": true, "data": ...}` or `{"ok": false, "error": {"code": ..., "detail": ...}}`
(see `opswire.runtime.rpc`). `user_id` in a request is the caller the gateway
authenticated; services scope everything they return to it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from typing_extensions import TypeVar

from opswire.contract.frames import ContainerId, DockerAction
from opswire.contract.resources import (
    AgentIdentity,
    AlertPublic,
    AlertStatus,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    AuditEntry,
    ChannelCreate,
    ChannelPublic,
    ChannelTestResult,
    ChannelUpdate,
    CommandResult,
    CommandRun,
    DockerResult,
    PasswordChange,
    ServerCreate,
    ServerPublic,
    ServerUpdate,
    ThresholdCreate,
    ThresholdPublic,
    ThresholdUpdate,
    TokenPair,
    TokenRefresh,
    UserLogin,
    UserPublic,
    UserRegister,
)
from opswire.contract.telemetry import LevelName, LogLevel
from opswire.contract.types import UtcDatetime

Req = TypeVar("Req", bound=BaseModel)
# Defaults to Any so `RpcMethod[SomeRequest]` still names a method whatever its reply.
Rep = TypeVar("Rep", default=Any)

MAX_HISTORY_LIMIT = 10_000
DEFAULT_HISTORY_LIMIT = 1_000


class _Req(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Opaque page tokens are short; anything longer is not one of ours.
PageToken = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class PagedRequest(_Req):
    """A list request answered in pages (DESIGN §5 lists; `opswire.runtime.rpc.Page`).

    `cursor` is the client's: continue after a page it was given (the `more` cursor of
    that page's reply, relayed as a `Link` header). `resume` is the RPC layer's own: the
    caller's next request for the rest of the same answer. Both are left off the wire when
    unset, so the request looks as it always did.
    """

    limit: int
    cursor: PageToken | None = Field(default=None, exclude_if=lambda v: v is None)
    resume: PageToken | None = Field(default=None, exclude_if=lambda v: v is None)


class ByUser(_Req):
    user_id: uuid.UUID


class ByServer(_Req):
    server_id: uuid.UUID


class ByUserServer(_Req):
    user_id: uuid.UUID
    server_id: uuid.UUID


@dataclass(frozen=True)
class RpcMethod(Generic[Req, Rep]):
    service: str
    method: str
    request: type[Req]
    reply: type[Rep]
    doc: str = ""


# Replies that are not a resource: {"ok": true}, {"deleted": true}, {"status": "ok"}, counts.
Flags = dict[str, bool]
Status = dict[str, str]
Counts = dict[str, int]
# Telemetry is relayed as stored (a MetricsSample / LogLine as published): the gateway does not
# re-validate up to 10000 samples per request.
StoredSample = dict[str, Any]


# --- auth -------------------------------------------------------------------------------------------


# The caller's network address as the gateway saw it, for logs and throttling (never trusted
# for anything else).
ClientAddress = Annotated[str, StringConstraints(max_length=64)]


class VerifyKey(_Req):
    api_key: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    client: ClientAddress | None = None


class LoginFrom(UserLogin):
    client: ClientAddress | None = None


class SessionRef(_Req):
    user_id: uuid.UUID
    session_id: uuid.UUID


class NoArgs(_Req):
    pass


class PasswordChangeFor(PasswordChange):
    user_id: uuid.UUID
    session_id: uuid.UUID | None = None


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


class AuditList(PagedRequest):
    user_id: uuid.UUID
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


AUTH_REGISTER = RpcMethod(
    "auth",
    "register",
    UserRegister,
    UserPublic,
    "Create a user; conflict if the email exists.",
)
AUTH_LOGIN = RpcMethod(
    "auth",
    "login",
    LoginFrom,
    TokenPair,
    "Exchange email+password for a token pair; throttled per account (error code rate_limited).",
)
AUTH_REFRESH = RpcMethod(
    "auth",
    "refresh",
    TokenRefresh,
    TokenPair,
    "Exchange a refresh token for a new pair.",
)
AUTH_ME = RpcMethod("auth", "me", ByUser, UserPublic, "The user.")
AUTH_LOGOUT = RpcMethod("auth", "logout", SessionRef, Flags, "End one session of the user.")
AUTH_LOGOUT_ALL = RpcMethod("auth", "logout_all", ByUser, Flags, "End every session of the user.")
AUTH_PASSWORD = RpcMethod(
    "auth",
    "password",
    PasswordChangeFor,
    Flags,
    "Change the password; ends every session but `session_id`.",
)
AUTH_REVOKED_SESSIONS = RpcMethod(
    "auth",
    "sessions.revoked",
    NoArgs,
    list[uuid.UUID],
    "Sessions ended so recently that access tokens of theirs may still be unexpired.",
)
AUTH_VERIFY_KEY = RpcMethod("auth", "verify_key", VerifyKey, AgentIdentity, "API key -> AgentIdentity.")
AUTH_AUTHORIZE = RpcMethod("auth", "authorize", ByUserServer, Flags, "ok if the user owns the server.")
SERVERS_LIST = RpcMethod("auth", "servers.list", ByUser, list[ServerPublic])
SERVERS_CREATE = RpcMethod("auth", "servers.create", ServerCreateFor, ServerPublic)
SERVERS_GET = RpcMethod("auth", "servers.get", ByUserServer, ServerPublic)
SERVERS_UPDATE = RpcMethod("auth", "servers.update", ServerUpdateFor, ServerPublic)
SERVERS_DELETE = RpcMethod("auth", "servers.delete", ByUserServer, Flags, "Also closes the agent.")
KEYS_CREATE = RpcMethod(
    "auth",
    "keys.create",
    ApiKeyCreateFor,
    ApiKeyCreated,
    "Reply holds the plain key, once.",
)
KEYS_LIST = RpcMethod("auth", "keys.list", ApiKeyList, list[ApiKeyPublic])
KEYS_REVOKE = RpcMethod("auth", "keys.revoke", ApiKeyRevoke, ApiKeyPublic, "Also closes the agent.")
AUDIT_LIST = RpcMethod(
    "auth",
    "audit.list",
    AuditList,
    list[AuditEntry],
    "The user's audit log, newest first.",
)


# --- ingest -----------------------------------------------------------------------------------------


Resolution = Literal["raw", "1m", "10m", "1h"]


class MetricsHistory(PagedRequest):
    server_id: uuid.UUID
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_HISTORY_LIMIT)] = DEFAULT_HISTORY_LIMIT
    # Raw samples or a rolled-up tier; unset: chosen so the window holds <= ~1000 points.
    resolution: Resolution | None = Field(default=None, exclude_if=lambda v: v is None)


class LogsQuery(PagedRequest):
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


METRICS_LATEST = RpcMethod(
    "ingest",
    "metrics.latest",
    ByServer,
    StoredSample,
    "Latest sample; not_found if none.",
)
METRICS_HISTORY = RpcMethod(
    "ingest",
    "metrics.history",
    MetricsHistory,
    list[StoredSample],
    "start <= ts < end, ascending.",
)
LOGS_QUERY = RpcMethod(
    "ingest",
    "logs.query",
    LogsQuery,
    list[StoredSample],
    "Newest first; level is a minimum.",
)
THRESHOLDS_LIST = RpcMethod("ingest", "thresholds.list", ThresholdList, list[ThresholdPublic])
THRESHOLDS_CREATE = RpcMethod("ingest", "thresholds.create", ThresholdCreateFor, ThresholdPublic)
THRESHOLDS_UPDATE = RpcMethod("ingest", "thresholds.update", ThresholdUpdateFor, ThresholdPublic)
THRESHOLDS_DELETE = RpcMethod("ingest", "thresholds.delete", ThresholdRef, type(None))
ALERTS_LIST = RpcMethod("ingest", "alerts.list", AlertList, list[AlertPublic])
ALERTS_RESOLVE = RpcMethod("ingest", "alerts.resolve", AlertRef, AlertPublic)
SERVERS_FORGET = RpcMethod(
    "ingest",
    "servers.forget",
    ByUserServer,
    Counts,
    "A server was deleted: drop its thresholds and resolve its open alerts (history is kept).",
)


class ChannelCreateFor(ChannelCreate):
    user_id: uuid.UUID


class ChannelUpdateFor(ChannelUpdate):
    user_id: uuid.UUID
    channel_id: uuid.UUID


class ChannelRef(_Req):
    user_id: uuid.UUID
    channel_id: uuid.UUID


CHANNELS_LIST = RpcMethod("ingest", "channels.list", ByUser, list[ChannelPublic], "URLs masked.")
CHANNELS_CREATE = RpcMethod("ingest", "channels.create", ChannelCreateFor, ChannelPublic)
CHANNELS_UPDATE = RpcMethod("ingest", "channels.update", ChannelUpdateFor, ChannelPublic)
CHANNELS_DELETE = RpcMethod("ingest", "channels.delete", ChannelRef, type(None))
CHANNELS_TEST = RpcMethod(
    "ingest",
    "channels.test",
    ChannelRef,
    ChannelTestResult,
    "Send a test notification now; the reply says whether it went out.",
)


# --- commands ---------------------------------------------------------------------------------------


# `Idempotency-Key` header (IETF httpapi draft): visible ASCII, no spaces.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
IdempotencyKey = Annotated[str, StringConstraints(pattern=IDEMPOTENCY_KEY_PATTERN)]


class CommandRunFor(CommandRun):
    user_id: uuid.UUID
    server_id: uuid.UUID
    # A retry with the same key (same user and server) returns the first result.
    idempotency_key: IdempotencyKey | None = None
    # When the caller stops waiting: nothing is delivered after it, the answer comes before.
    reply_by: UtcDatetime | None = None


class CommandHistory(PagedRequest):
    server_id: uuid.UUID
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class DockerRun(_Req):
    user_id: uuid.UUID
    server_id: uuid.UUID
    action: DockerAction
    container_id: ContainerId | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: Annotated[int, Field(ge=1, le=600)] = 30
    idempotency_key: IdempotencyKey | None = None
    reply_by: UtcDatetime | None = None


COMMANDS_RUN = RpcMethod(
    "commands",
    "run",
    CommandRunFor,
    CommandResult,
    "Run and wait; conflict if agent offline.",
)
COMMANDS_HISTORY = RpcMethod("commands", "history", CommandHistory, list[CommandResult], "Newest first.")
DOCKER_RUN = RpcMethod("commands", "docker", DockerRun, DockerResult, "A Docker action through the agent.")

# --- readiness -----------------------------------------------------------------------------------------


class Ping(_Req):
    pass


AUTH_PING = RpcMethod("auth", "ping", Ping, Status, "Readiness probe.")
INGEST_PING = RpcMethod("ingest", "ping", Ping, Status, "Readiness probe.")
COMMANDS_PING = RpcMethod("commands", "ping", Ping, Status, "Readiness probe.")
PINGS = (AUTH_PING, INGEST_PING, COMMANDS_PING)
