"""WebSocket frames (DESIGN §2 agent socket, §3 dashboard sockets).

Incoming frames are discriminated unions on `type`; parse them with
`parse_agent_frame` / `parse_dashboard_frame`, which raise `FrameError` with a
short reason for anything that is not a valid frame.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from opswire.contract.jsonlimits import UnfitJson, has_nul, load_object, mentions_nul, replace_nul
from opswire.contract.telemetry import LogFields, MetricsFields
from opswire.contract.types import UtcDatetime

CommandId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MAX_OUTPUT_CHARS = 4 * 1024 * 1024
DEFAULT_COMMAND_TIMEOUT_S = 30
MAX_COMMAND_TIMEOUT_S = 3600

# Results are recorded in 32-bit integer columns; larger values cannot be real ones.
ExitCode = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
DurationMs = Annotated[int, Field(ge=0, le=2**31 - 1)]

DockerAction = Literal["start", "stop", "restart", "list", "logs", "inspect"]
DOCKER_CONTAINER_ACTIONS: tuple[str, ...] = ("start", "stop", "restart")

INVALID_FORMAT = "Invalid message format"
INVALID_API_KEY = "Invalid or inactive API key"

# What an error frame means, for clients to act on (DESIGN §2); `message` is for people
# and may change. A closed set: adding a code is a change of the contract.
ErrorCode = Literal[
    "invalid_key",  # agent: API key unknown, inactive or revoked, or its server deleted; close 1008
    "invalid_token",  # dashboard: access token missing, forged or expired; close 1008
    "not_found",  # dashboard: no such server, or not yours (the same answer); close 1008
    "unauthenticated",  # the first frame was not `auth`; close 1008
    "auth_timeout",  # no `auth` frame in time; close 1008
    "invalid_format",  # not JSON, unknown type, bad fields, foreign server_id, auth twice
    "unknown_command",  # a response to a command_id not awaited (unknown or timed out)
    "rate_limited",  # over this connection's frame budget: the frame was not accepted
    "busy",  # the gateway's publish buffer is full: the frame was not accepted, retry later
    "storage_full",  # the stream refused an accepted frame because it is full: it was not stored
    "too_large",  # a frame over the size limit (close 1009), or too large to publish once stamped
    "idle_timeout",  # nothing received for too long; close 1008
    "replaced",  # a newer connection of the same server took over; close 4000
    "unavailable",  # a service behind the gateway is unreachable; close 1013, retry later
    "shutting_down",  # the gateway is stopping; close 1001
    "internal",  # a fault in the gateway; close 1011
]


class FrameError(ValueError):
    """An incoming frame that is not valid; `detail` is a short, safe reason."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- agent -> gateway ------------------------------------------------------------------


class AgentAuth(_Frame):
    type: Literal["auth"]
    api_key: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class MetricsFrame(MetricsFields):
    type: Literal["metrics"]
    server_id: str | None = None


class LogFrame(LogFields):
    type: Literal["log"]
    server_id: str | None = None


class CommandResponse(_Frame):
    type: Literal["command_response"]
    command_id: CommandId
    output: Annotated[str, StringConstraints(max_length=MAX_OUTPUT_CHARS)]
    exit_code: ExitCode | None = None
    duration_ms: DurationMs
    timed_out: bool = False
    truncated: bool = False
    server_id: str | None = None


class DockerResponse(_Frame):
    type: Literal["docker_response"]
    command_id: CommandId
    success: bool
    message: Annotated[str, StringConstraints(max_length=MAX_OUTPUT_CHARS)]
    data: Any = None
    server_id: str | None = None


class Ping(_Frame):
    type: Literal["ping"]


AgentFrame = Annotated[
    AgentAuth | MetricsFrame | LogFrame | CommandResponse | DockerResponse | Ping,
    Field(discriminator="type"),
]


# --- gateway -> agent --------------------------------------------------------------------


class AuthSuccess(_Frame):
    type: Literal["auth_success"] = "auth_success"
    server_id: str
    message: str = "Connected successfully"


class CommandFrame(_Frame):
    type: Literal["command"] = "command"
    command_id: CommandId
    command: Annotated[str, StringConstraints(min_length=1, max_length=64 * 1024)]
    timeout_s: Annotated[int, Field(ge=1, le=MAX_COMMAND_TIMEOUT_S)] = DEFAULT_COMMAND_TIMEOUT_S


# A Docker container name or id (ids are hex, so they match too); nothing that could
# change the Engine API URL the agent builds from it (`/`, `..`, `?`, `#`, `%`, spaces).
CONTAINER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$"
ContainerId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=CONTAINER_ID_PATTERN)]


class DockerCommandFrame(_Frame):
    type: Literal["docker_command"] = "docker_command"
    command_id: CommandId
    action: DockerAction
    container_id: ContainerId | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class ErrorFrame(_Frame):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    detail: str | None = None


class Pong(_Frame):
    type: Literal["pong"] = "pong"


# --- dashboards ----------------------------------------------------------------------------


class DashboardAuth(_Frame):
    type: Literal["auth"]
    token: Annotated[str, StringConstraints(min_length=1, max_length=8192)]
    # Logs socket resume (DESIGN §3): replay stored lines after this instant, then live.
    since: UtcDatetime | None = None


DashboardFrame = Annotated[DashboardAuth | Ping, Field(discriminator="type")]


class DashboardAuthSuccess(_Frame):
    type: Literal["auth_success"] = "auth_success"
    server_id: str


_agent_frames: TypeAdapter[AgentFrame] = TypeAdapter(AgentFrame)
_dashboard_frames: TypeAdapter[DashboardFrame] = TypeAdapter(DashboardFrame)


def _decode(raw: str | bytes) -> dict[str, Any]:
    # NUL is judged per frame type after validation (see parse_agent_frame).
    try:
        data = load_object(raw, allow_nul=True)
    except UnfitJson as exc:
        raise FrameError(f"a frame {exc}" if str(exc).startswith("must") else str(exc)) from None
    if not isinstance(data.get("type"), str):
        raise FrameError("missing 'type'")
    return data


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    loc = first["loc"][1:] if first["loc"] and first["type"] != "union_tag_invalid" else first["loc"]
    where = ".".join(str(part) for part in loc)
    if first["type"] == "union_tag_invalid":
        return "unknown type"
    return f"{where}: {first['msg']}" if where else first["msg"]


def parse_agent_frame(raw: str | bytes) -> AgentFrame:
    data = _decode(raw)
    try:
        frame = _agent_frames.validate_python(data)
    except ValidationError as exc:
        raise FrameError(_reason(exc)) from None
    if not (mentions_nul(raw) and has_nul(data)):
        return frame
    # PostgreSQL cannot store NUL. Samples and log lines are refused now rather than
    # accepted and dropped by ingest; a command's output (binary output is real) must
    # still reach its caller, so there NUL becomes U+FFFD, as undecodable bytes do.
    if isinstance(frame, CommandResponse | DockerResponse):
        return _agent_frames.validate_python(replace_nul(data))
    raise FrameError("text must not contain NUL characters")


def parse_dashboard_frame(raw: str | bytes) -> DashboardFrame:
    data = _decode(raw)
    try:
        return _dashboard_frames.validate_python(data)
    except ValidationError as exc:
        raise FrameError(_reason(exc)) from None


def encode(frame: BaseModel) -> str:
    return frame.model_dump_json(exclude_none=True)
