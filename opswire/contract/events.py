"""Events on NATS (DESIGN §4, §9 'Events on NATS') and the gateway's internal notices.

Events carry `server_id`, `timestamp` and the fields of the matching REST object.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints

from opswire.contract.frames import CommandFrame, CommandResponse, DockerCommandFrame, DockerResponse
from opswire.contract.resources import AlertPublic, CommandResult, DockerResult
from opswire.contract.types import UtcDatetime, utc_now

# A concrete NATS subject (no wildcards, no empty tokens or whitespace): a delivery
# naming anything else could never be answered, so it is refused up front.
ReplySubject = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\s.*>]+(\.[^\s.*>]+)*$")]


class PresenceEvent(BaseModel):
    """`opswire.agents.<server_id>.connected|disconnected`."""

    server_id: uuid.UUID
    status: Literal["online", "offline"]
    timestamp: UtcDatetime = Field(default_factory=utc_now)
    connection_id: str
    gateway_id: str
    reason: str | None = None


class AlertEvent(AlertPublic):
    """`opswire.alerts.<server_id>`: an alert fired (`active`) or resolved."""

    event: Literal["fired", "resolved"]
    timestamp: UtcDatetime = Field(default_factory=utc_now)


class ShellResultEvent(CommandResult):
    """A finished shell command: the `CommandResult` fields at the top level."""

    kind: Literal["shell"] = "shell"
    timestamp: UtcDatetime = Field(default_factory=utc_now)


class DockerResultEvent(DockerResult):
    """A finished Docker action: the `DockerResult` fields at the top level."""

    kind: Literal["docker"] = "docker"
    timestamp: UtcDatetime = Field(default_factory=utc_now)


class CommandResultEvent(
    RootModel[Annotated[ShellResultEvent | DockerResultEvent, Field(discriminator="kind")]]
):
    """`opswire.commands.<server_id>.results`: a finished shell command or Docker action,
    flat like every event (DESIGN §9): `kind` says which of the two it is."""


class AuditEvent(BaseModel):
    """`opswire.audit.<user_id>`: a state-changing action by a user (extension of DESIGN §4).

    `id` is also the Nats-Msg-Id and the stored row's key, so the entry is kept once.
    """

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    user_id: uuid.UUID
    action: str
    target: str | None = None
    detail: dict[str, Any] | None = None
    timestamp: UtcDatetime = Field(default_factory=utc_now)


class PresenceHeartbeat(BaseModel):
    """`opswire.presence.heartbeat`: the agents a gateway holds right now."""

    gateway_id: str
    server_ids: list[uuid.UUID]
    timestamp: UtcDatetime = Field(default_factory=utc_now)


class AgentControl(BaseModel):
    """`opswire.agent.<server_id>.control`: close the agent's socket wherever it lives.

    `keep_connection_id` (connected at `connected_at`) is the connection that
    caused a replacement: only connections older than it close. `key_id` limits
    a revocation to connections made with that key.
    """

    model_config = ConfigDict(extra="forbid")

    action: Literal["close"] = "close"
    reason: Literal["replaced", "revoked", "deleted"]
    keep_connection_id: str | None = None
    connected_at: UtcDatetime | None = None
    key_id: uuid.UUID | None = None


class AgentDelivery(BaseModel):
    """Request on `opswire.agent.<server_id>.inbox`: a frame for the agent.

    The gateway replies `DeliveryAck` at once; the agent's response frame is
    later published to `reply_subject` as an `AgentReply`.
    """

    frame: CommandFrame | DockerCommandFrame = Field(discriminator="type")
    reply_subject: ReplySubject
    requested_by: uuid.UUID | None = None
    # Past this instant the gateway refuses the frame: the commands service has given the
    # command up (recorded `timeout`), so it must never run afterwards.
    not_after: UtcDatetime | None = None
    # Where the answer goes when nobody listens on `reply_subject` (the waiting commands
    # replica died): a subject every replica takes in a queue group.
    fallback_subject: ReplySubject | None = None


DEADLINE_PASSED = "deadline_passed"


class DeliveryAck(BaseModel):
    delivered: bool
    detail: str | None = None
    # Why not, for machines: `deadline_passed` (refused, never to run); None otherwise.
    code: str | None = None


class AgentReply(BaseModel):
    """What the gateway publishes to `AgentDelivery.reply_subject`.

    `response` is None when the agent went away before answering (`error` says why).
    """

    server_id: uuid.UUID
    command_id: str
    response: CommandResponse | DockerResponse | None = Field(default=None, discriminator="type")
    error: str | None = None
    received_at: UtcDatetime = Field(default_factory=utc_now)


MAX_REVOKED_PER_NOTICE = 1000


class SessionsRevoked(BaseModel):
    """`opswire.sessions.revoked` (core NATS, auth -> gateways): these sessions ended.

    Gateways verify access tokens locally, so they keep the ids until `until` (when the
    last access token of those sessions expires) and refuse them on REST and sockets.
    """

    model_config = ConfigDict(extra="forbid")

    session_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_REVOKED_PER_NOTICE)]
    until: UtcDatetime
