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
        default=256,
        ge=1,
        le=10_000,
        description="Commands one replica waits on at once (each waits up to timeout_s + grace).",
    )
    instance_id: str = Field(
        default_factory=_new_instance_id,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="This replica's name in its reply subject; unique per running replica.",
    )
