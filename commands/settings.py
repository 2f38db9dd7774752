"""Settings of the commands service (env prefix OPSWIRE_)."""

from __future__ import annotations

import uuid

from pydantic import Field

from opswire.runtime.settings import DatabaseSettings, PositiveSeconds


def _new_instance_id() -> str:
    return uuid.uuid4().hex[:12]


class CommandsSettings(DatabaseSettings):
    command_grace_s: PositiveSeconds = Field(
        default=5.0,
        description="How long past a command's timeout_s to wait for the agent's answer.",
    )
    delivery_timeout_s: PositiveSeconds = Field(
        default=2.0, description="How long the gateway holding the agent has to confirm delivery."
    )
    audit_timeout_s: PositiveSeconds = Field(
        default=2.0,
        description="How long JetStream has to store a command's audit entry before the "
        "command is refused (it is never sent unaudited).",
    )
    max_concurrent_commands: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Commands one replica waits on at once; waiting costs a future, not a "
        "worker. Beyond it a request is refused (429).",
    )
    commands_per_server: int = Field(
        default=8,
        ge=1,
        le=10_000,
        description="In-flight commands and Docker actions per server, across replicas (429).",
    )
    commands_per_user: int = Field(
        default=32,
        ge=1,
        le=100_000,
        description="In-flight commands and Docker actions per user, across replicas (429).",
    )
    command_sweep_interval_s: PositiveSeconds = Field(
        default=5.0,
        description="How often each replica closes commands still pending past their "
        "deadline (their replica died) as `timeout`, and forgets old Idempotency-Keys.",
    )
    idempotency_retention_s: float = Field(
        default=86_400.0,
        gt=0,
        le=7 * 86_400,
        description="How long an Idempotency-Key keeps returning its first result.",
    )
    instance_id: str = Field(
        default_factory=_new_instance_id,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="This replica's name in its reply subject; unique per running replica.",
    )
