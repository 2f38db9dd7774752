"""REST objects (DESIGN §5, §9): what the API accepts and returns.

The same models travel inside RPC replies, so gateway and services agree by
construction. Suffixes follow the usual convention: Create, Update, Public.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator

from opswire.contract.frames import (
    DEFAULT_COMMAND_TIMEOUT_S,
    MAX_COMMAND_TIMEOUT_S,
    DockerAction,
)
from opswire.contract.types import FiniteFloat, Name, NoNul, UtcDatetime

Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]
# Stored as text, so no NUL (see NoNul); strings that are only hashed or compared may hold one.
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255), NoNul]
Description = Annotated[str, StringConstraints(max_length=2000), NoNul]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- users and tokens ------------------------------------------------------------------------


class UserRegister(_In):
    email: EmailStr
    password: Password
    full_name: OptionalText | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class UserLogin(_In):
    email: Annotated[str, StringConstraints(max_length=320), NoNul]
    password: Annotated[str, StringConstraints(max_length=1024)]


class TokenRefresh(_In):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class PasswordChange(_In):
    current_password: Annotated[str, StringConstraints(max_length=1024)]
    new_password: Password


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str | None
    created_at: UtcDatetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


# --- servers and API keys ----------------------------------------------------------------------


class ServerCreate(_In):
    name: Name
    hostname: OptionalText | None = None
    description: Description | None = None


class ServerUpdate(_In):
    name: Name | None = None
    hostname: OptionalText | None = None
    description: Description | None = None


ServerStatus = Literal["online", "offline"]


class ServerPublic(BaseModel):
    id: uuid.UUID
    name: str
    hostname: str | None
    description: str | None
    status: ServerStatus
    last_seen: UtcDatetime | None
    created_at: UtcDatetime


class ApiKeyCreate(_In):
    server_id: uuid.UUID
    name: Name


class ApiKeyPublic(BaseModel):
    id: uuid.UUID
    server_id: uuid.UUID
    name: str
    prefix: str
    is_active: bool
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None = None


class ApiKeyCreated(ApiKeyPublic):
    key: str


class AgentIdentity(BaseModel):
    """Who an API key belongs to (reply of auth.verify_key)."""

    server_id: uuid.UUID
    key_id: uuid.UUID
    user_id: uuid.UUID
    # The key's name, for `GET /api-keys/me`; optional so older auth replicas still answer.
    key_name: str | None = None


class ApiKeyIdentity(BaseModel):
    """`GET /api-keys/me`: the presented key and its server (ChatOps agents bootstrap with it)."""

    server_id: uuid.UUID
    key_id: uuid.UUID
    name: str
    is_active: bool


# --- commands and Docker ------------------------------------------------------------------------


class CommandRun(_In):
    command: Annotated[str, StringConstraints(min_length=1, max_length=64 * 1024), NoNul]
    timeout_s: Annotated[int, Field(ge=1, le=MAX_COMMAND_TIMEOUT_S)] = DEFAULT_COMMAND_TIMEOUT_S

    @field_validator("command")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("command must not be blank")
        return value


CommandStatus = Literal["pending", "succeeded", "failed", "timeout"]


class CommandResult(BaseModel):
    """A shell command, or a Docker action shown as `docker <action> [<container>]`."""

    command_id: str
    server_id: uuid.UUID
    kind: Literal["shell", "docker"] = "shell"
    command: str
    status: CommandStatus
    output: str | None
    exit_code: int | None
    duration_ms: int | None
    truncated: bool = False
    # Why there is no output (agent disconnected, no answer in time), or a Docker action's message.
    message: str | None = None
    requested_by: uuid.UUID | None = None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None = None


class DockerResult(BaseModel):
    command_id: str
    server_id: uuid.UUID
    action: DockerAction
    container_id: str | None
    success: bool
    message: str
    data: Any = None
    status: CommandStatus = "succeeded"
    requested_by: uuid.UUID | None = None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None = None


class ContainerSummary(BaseModel):
    """One container of `GET /docker/{server_id}/containers`, as the agent lists it (all of
    them, stopped ones too). Fields an agent reports beyond these (a ChatOps agent's
    `created` and `ports`) are kept as they came."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    image: str
    state: str = Field(description="Docker's state: running, exited, paused, ...")
    status: str = Field(description="Docker's human-readable status, e.g. 'Up 2 hours'.")


class DockerActionResult(BaseModel):
    """REST reply of a container start/stop/restart (DESIGN §5): the agent's verdict."""

    command_id: str
    success: bool
    message: str


# --- alerts -----------------------------------------------------------------------------------------

# `offline` fires when the server goes offline and resolves when it is back (presence events).
MetricType = Literal["cpu", "memory", "disk", "offline"]
Comparison = Literal["gt", "lt"]
AlertStatus = Literal["active", "resolved"]


class ThresholdCreate(_In):
    server_id: uuid.UUID
    metric_type: MetricType
    comparison: Comparison
    threshold_value: Annotated[FiniteFloat, Field(ge=0, le=100)]
    duration_s: Annotated[int, Field(ge=0, le=86_400)] = 0
    enabled: bool = True


class ThresholdUpdate(_In):
    metric_type: MetricType | None = None
    comparison: Comparison | None = None
    threshold_value: Annotated[FiniteFloat, Field(ge=0, le=100)] | None = None
    duration_s: Annotated[int, Field(ge=0, le=86_400)] | None = None
    enabled: bool | None = None
    # The read-only fields of ThresholdPublic, so the object GET returned can be PUT back
    # (DESIGN §9): accepted when unchanged, 422 when they name another threshold or server.
    id: uuid.UUID | None = None
    server_id: uuid.UUID | None = None
    created_at: UtcDatetime | None = None


class ThresholdPublic(BaseModel):
    id: uuid.UUID
    server_id: uuid.UUID
    metric_type: MetricType
    comparison: Comparison
    threshold_value: float
    duration_s: int
    enabled: bool
    created_at: UtcDatetime


class AlertPublic(BaseModel):
    id: uuid.UUID
    server_id: uuid.UUID
    threshold_id: uuid.UUID | None
    metric_type: MetricType
    comparison: Comparison
    threshold_value: float
    value: float
    status: AlertStatus
    message: str
    created_at: UtcDatetime
    resolved_at: UtcDatetime | None = None
    resolved_by: uuid.UUID | None = None


# --- audit ------------------------------------------------------------------------------------------


class AuditEntry(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    action: str
    target: str | None
    detail: dict[str, Any] | None = None
    timestamp: UtcDatetime


# --- notification channels --------------------------------------------------------------------------

# An Apprise URL (json://, slack://, discord://, tgram://, ntfy://, mailto://...): a secret.
ChannelUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=2048), NoNul]


class ChannelCreate(_In):
    name: Name
    url: ChannelUrl
    enabled: bool = True


class ChannelUpdate(_In):
    name: Name | None = None
    url: ChannelUrl | None = None
    enabled: bool | None = None


class ChannelPublic(BaseModel):
    """A channel as listed: `url` is masked (the scheme and a hint), never the secret itself."""

    id: uuid.UUID
    name: str
    url: str
    enabled: bool
    created_at: UtcDatetime
    last_sent_at: UtcDatetime | None = None
    last_error: str | None = None
    last_error_at: UtcDatetime | None = None


class ChannelTestResult(BaseModel):
    sent: bool
    error: str | None = None
