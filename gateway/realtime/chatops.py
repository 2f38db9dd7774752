"""The ChatOps agent dialect (DESIGN §2; docs/chatops-agents.md), translated at the socket edge.

Agents of the ChatOps project (martian56/chatops) speak their own frames on the
same socket. Each agent connection carries an `AgentDialect`: its first frame
after `auth_success` decides which protocol the connection speaks (a ChatOps
`metrics` frame has a `data` envelope; its other frame types are its own).
From then on, ChatOps frames are rewritten into seed-protocol frames *before*
the session parses them, so they meet exactly the same validation, subjects
and storage as every other agent's; our command frames are rewritten into its
`execute_command`/`*_container` frames on the way out.

Seed agents pay for one extra parse of their first frame and nothing after.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from opswire.contract.frames import (
    MAX_OUTPUT_CHARS,
    CommandFrame,
    CommandId,
    DockerCommandFrame,
    DockerResponse,
    ExitCode,
    FrameError,
    MetricsFrame,
)
from opswire.contract.jsonlimits import UnfitJson, load_object
from opswire.contract.types import Counter, NonNegativeFloat, Percent

# The Go agent reports sizes as float64(bytes) / (1024*1024*1024) (metrics/collector.go),
# so its "GB" are GiB: multiplying back by 2**30 recovers the bytes it measured.
BYTES_PER_GB = 1024**3
# Larger than any real disk, small enough that the bytes still fit a signed 64-bit column.
MAX_GB = (2**63 - 1) / BYTES_PER_GB
# What the Go agent does when `tail` is absent; our REST API always sends one.
DEFAULT_LOGS_TAIL = 500
# Bounded like PendingCommands: start times of commands not answered (yet) are forgotten.
MAX_TRACKED_COMMANDS = 1024
ROOT_PATH = "/"
ALL_INTERFACES = "all"
NO_SAMPLE_YET = "No metrics sample received from this agent yet (ChatOps agents list containers there)"
UNSUPPORTED = "ChatOps agents do not support the Docker action '{action}'"

Gigabytes = Annotated[float, Field(ge=0, le=MAX_GB, allow_inf_nan=False)]
Counter64 = Annotated[Counter, Field(le=2**64 - 1)]


class _Part(BaseModel):
    # Newer agents may report more than we know; it is kept with the sample.
    model_config = ConfigDict(extra="allow")


class CpuInfo(_Part):
    usage_percent: Percent
    cores: Annotated[int, Field(ge=0)] | None = None
    frequency_mhz: NonNegativeFloat | None = None


class SizeInfo(_Part):
    """`memory` and `disk`: sizes in GiB as the agent reports them."""

    total_gb: Gigabytes
    used_gb: Gigabytes
    available_gb: Gigabytes
    usage_percent: Percent


class NetworkInfo(_Part):
    bytes_sent: Counter64
    bytes_recv: Counter64
    packets_sent: Counter64 | None = None
    packets_recv: Counter64 | None = None


class MetricsData(_Part):
    # The timestamp is checked by the contract model, where every sample's is.
    server_id: str | None = None
    timestamp: str
    cpu: CpuInfo
    memory: SizeInfo
    disk: SizeInfo
    network: NetworkInfo
    containers: list[dict[str, Any]] | None = None
    processes: list[dict[str, Any]] | None = None


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatOpsMetrics(_Reply):
    type: Literal["metrics"]
    data: MetricsData


class CommandOutput(_Reply):
    output: Annotated[str, StringConstraints(max_length=MAX_OUTPUT_CHARS)]
    exit_code: ExitCode


class CommandResult(_Reply):
    type: Literal["command_result"]
    request_id: CommandId
    data: CommandOutput


class ContainerState(_Reply):
    container_id: Annotated[str, StringConstraints(max_length=255)]
    status: Annotated[str, StringConstraints(max_length=255)]


class ContainerDone(_Reply):
    type: Literal["container_started", "container_stopped", "container_restarted"]
    request_id: CommandId
    data: ContainerState


class LogLines(_Reply):
    container_id: Annotated[str, StringConstraints(max_length=255)]
    logs: list[str] | None = None


class ContainerLogs(_Reply):
    type: Literal["container_logs"]
    request_id: CommandId
    data: LogLines


class AgentError(_Reply):
    type: Literal["error"]
    message: Annotated[str, StringConstraints(max_length=MAX_OUTPUT_CHARS)]
    request_id: CommandId


ChatOpsFrame = Annotated[
    ChatOpsMetrics | CommandResult | ContainerDone | ContainerLogs | AgentError,
    Field(discriminator="type"),
]
_frames: TypeAdapter[ChatOpsFrame] = TypeAdapter(ChatOpsFrame)
# Frame types only this dialect sends; `metrics` is told apart by its `data` envelope.
OWN_TYPES = frozenset(
    {
        "command_result",
        "container_started",
        "container_stopped",
        "container_restarted",
        "container_logs",
        "error",
    }
)


# --- gateway -> ChatOps agent -----------------------------------------------------------------


class MetricsReceived(_Reply):
    type: Literal["metrics_received"] = "metrics_received"
    status: Literal["ok"] = "ok"


class ExecuteCommand(_Reply):
    type: Literal["execute_command"] = "execute_command"
    command: str
    request_id: CommandId


class ContainerCommand(_Reply):
    type: Literal["start_container", "stop_container", "restart_container"]
    container_id: str
    request_id: CommandId


class GetContainerLogs(_Reply):
    type: Literal["get_container_logs"] = "get_container_logs"
    container_id: str
    request_id: CommandId
    tail: int = DEFAULT_LOGS_TAIL


CONTAINER_FRAMES: dict[str, Literal["start_container", "stop_container", "restart_container"]] = {
    "start": "start_container",
    "stop": "stop_container",
    "restart": "restart_container",
}
Outbound = ExecuteCommand | ContainerCommand | GetContainerLogs


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    if first["type"] == "union_tag_invalid":
        return "unknown type"
    where = ".".join(str(part) for part in first["loc"][1:])  # [0] is the union's tag
    return f"{where}: {first['msg']}" if where else first["msg"]


def _bytes(gigabytes: float) -> int:
    return round(gigabytes * BYTES_PER_GB)


def sample_fields(data: MetricsData) -> dict[str, Any]:
    """The seed `metrics` frame for one ChatOps sample; its own objects stay as extras.

    `disk` is the root filesystem (C: on Windows) and `network` the sum over all
    interfaces, so each becomes one entry of the contract's lists.
    """
    disk = data.disk
    fields: dict[str, Any] = dict(data.model_extra or {})
    fields.update(
        type="metrics",
        timestamp=data.timestamp,
        cpu_percent=data.cpu.usage_percent,
        memory_percent=data.memory.usage_percent,
        disk_usage=[
            {
                "path": ROOT_PATH,
                "total": _bytes(disk.total_gb),
                "used": _bytes(disk.used_gb),
                "free": _bytes(disk.available_gb),
                "percent": disk.usage_percent,
            }
        ],
        # Its network object is kept whole as this entry (all its fields are counters).
        network=[{"interface": ALL_INTERFACES, **data.network.model_dump(exclude_none=True)}],
        # Its own objects as they came (the GiB figures, cores, frequency).
        cpu=data.cpu.model_dump(exclude_none=True),
        memory=data.memory.model_dump(exclude_none=True),
        disk=disk.model_dump(exclude_none=True),
    )
    optional = {"server_id": data.server_id, "containers": data.containers, "processes": data.processes}
    fields.update((name, value) for name, value in optional.items() if value is not None)
    return fields


class ChatOpsDialect:
    """One ChatOps connection: frame translation both ways and what it needs to remember."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # request_id -> (kind of frame sent, when): for the reply's type and duration_ms.
        self._sent: dict[str, tuple[str, float]] = {}
        self.containers: list[dict[str, Any]] | None = None
        self.seen_sample = False

    def inbound(self, data: dict[str, Any]) -> dict[str, Any]:
        """The seed frame for one of its frames; raises FrameError with a short reason."""
        try:
            frame = _frames.validate_python(data)
        except ValidationError as exc:
            raise FrameError(_reason(exc)) from None
        if isinstance(frame, ChatOpsMetrics):
            return sample_fields(frame.data)
        kind, duration_ms = self._finished(frame.request_id)
        reply: dict[str, Any] = {"command_id": frame.request_id}
        if isinstance(frame, CommandResult):
            return reply | {
                "type": "command_response",
                "output": frame.data.output,
                "exit_code": frame.data.exit_code,
                "duration_ms": duration_ms,
            }
        if isinstance(frame, AgentError) and kind == "command":
            # Its shell refused the frame itself: there is no exit code to report.
            return reply | {"type": "command_response", "output": frame.message, "duration_ms": duration_ms}
        reply["type"] = "docker_response"
        if isinstance(frame, AgentError):
            return reply | {"success": False, "message": frame.message}
        if isinstance(frame, ContainerLogs):
            lines = frame.data.logs or []
            # The same shape as a seed agent's logs: one text, a line each.
            return reply | {"success": True, "message": f"{len(lines)} lines", "data": "\n".join(lines)}
        state = frame.data
        return reply | {
            "success": True,
            "message": f"Container {state.container_id} {state.status}",
            "data": state.model_dump(),
        }

    def outbound(self, frame: CommandFrame | DockerCommandFrame) -> Outbound | DockerResponse:
        """Its frame for one of our commands, or the answer when it has no such frame."""
        command_id = frame.command_id
        if isinstance(frame, CommandFrame):
            self._track(command_id, "command")
            return ExecuteCommand(command=frame.command, request_id=command_id)
        container_id = frame.container_id or ""
        if frame.action == "list":
            return self._listing(command_id)
        self._track(command_id, "docker")
        if frame.action == "logs":
            tail = frame.params.get("tail", DEFAULT_LOGS_TAIL)
            return GetContainerLogs(container_id=container_id, request_id=command_id, tail=tail)
        if frame.action in CONTAINER_FRAMES:
            return ContainerCommand(
                type=CONTAINER_FRAMES[frame.action], container_id=container_id, request_id=command_id
            )
        self._sent.pop(command_id, None)
        return DockerResponse(
            type="docker_response",
            command_id=command_id,
            success=False,
            message=UNSUPPORTED.format(action=frame.action),
        )

    def accepted(self, frame: MetricsFrame) -> MetricsReceived:
        """After a sample was accepted: remember its containers, and the ack it waits for."""
        self.seen_sample = True
        self.containers = frame.containers
        return MetricsReceived()

    def forget(self, command_id: str) -> None:
        """A command that never reached the agent."""
        self._sent.pop(command_id, None)

    def _listing(self, command_id: str) -> DockerResponse:
        if not self.seen_sample:
            return DockerResponse(
                type="docker_response", command_id=command_id, success=False, message=NO_SAMPLE_YET
            )
        containers = self.containers or []
        return DockerResponse(
            type="docker_response",
            command_id=command_id,
            success=True,
            message=f"{len(containers)} containers (latest sample)",
            data=containers,
        )

    def _track(self, command_id: str, kind: str) -> None:
        if len(self._sent) >= MAX_TRACKED_COMMANDS:
            del self._sent[next(iter(self._sent))]  # the oldest: long expired by now
        self._sent[command_id] = (kind, self._clock())

    def _finished(self, command_id: str) -> tuple[str | None, int]:
        """What was sent under this id and how long ago (ms); (None, 0) if unknown."""
        sent = self._sent.pop(command_id, None)
        if sent is None:
            return None, 0
        kind, started = sent
        return kind, max(0, round((self._clock() - started) * 1000))


class Bootstrapped:
    """Keys that asked `GET /api-keys/me` lately: ChatOps agents do so before every connect,
    ours never. A connection with such a key is taken to speak ChatOps until its first
    telling frame decides (commands sent meanwhile go out in ChatOps form)."""

    def __init__(self, size: int = 10_000, ttl_s: float = 300.0) -> None:
        self._until: OrderedDict[uuid.UUID, float] = OrderedDict()
        self._size = size
        self._ttl_s = ttl_s

    def note(self, key_id: uuid.UUID, now: float) -> None:
        self._until.pop(key_id, None)
        self._until[key_id] = now + self._ttl_s
        while len(self._until) > self._size:
            self._until.popitem(last=False)

    def recent(self, key_id: uuid.UUID, now: float) -> bool:
        until = self._until.get(key_id)
        return until is not None and until > now


class AgentDialect:
    """Which protocol one agent connection speaks; undecided until its first telling frame.

    `ping` and frames that are not JSON objects tell nothing (both dialects send
    them); the first other frame decides for the rest of the connection. Until then
    a connection whose key bootstrapped lately (`chatops_likely`) is sent commands in
    ChatOps form: the ChatOps agent's first sample comes only an interval after connect.
    """

    def __init__(self, chatops_likely: bool = False) -> None:
        self._decided = False
        self.chatops: ChatOpsDialect | None = None
        self._likely = ChatOpsDialect() if chatops_likely else None

    def inbound(self, raw: str | bytes) -> str | bytes:
        """The frame to parse as a seed frame: `raw` itself, or its translation."""
        if self._decided and self.chatops is None:
            return raw
        try:
            data = load_object(raw, allow_nul=True)
        except UnfitJson:
            return raw  # the seed parser explains what is wrong with it
        kind = data.get("type")
        if not self._decided:
            if kind == "ping" or not isinstance(kind, str):
                return raw
            self._decided = True
            if kind in OWN_TYPES or (kind == "metrics" and "data" in data and "cpu_percent" not in data):
                self.chatops = self._likely or ChatOpsDialect()
            self._likely = None
        if self.chatops is None or not (kind in OWN_TYPES or kind == "metrics"):
            return raw  # auth, ping and the like mean the same in both
        try:
            return orjson.dumps(self.chatops.inbound(data))
        except orjson.JSONEncodeError:
            raise FrameError("a value cannot be carried (e.g. an integer over 64 bits)") from None

    def outbound(self, frame: CommandFrame | DockerCommandFrame) -> BaseModel:
        """The frame to send for one of our commands; a DockerResponse is an answer given here."""
        dialect = self.chatops or self._likely
        return frame if dialect is None else dialect.outbound(frame)

    def accepted(self, frame: MetricsFrame) -> BaseModel | None:
        """The acknowledgement to send for an accepted sample, if this dialect wants one."""
        return None if self.chatops is None else self.chatops.accepted(frame)

    def forget(self, command_id: str) -> None:
        dialect = self.chatops or self._likely
        if dialect is not None:
            dialect.forget(command_id)
