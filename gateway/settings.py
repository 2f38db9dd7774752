"""Gateway settings (env: OPSWIRE_*, NATS_URL)."""

from __future__ import annotations

from pydantic import Field

from opswire.runtime.settings import CommonSettings, JwtSettings


class GatewaySettings(CommonSettings, JwtSettings):
    host: str = Field(default="127.0.0.1")
    port: int = Field(default=8000, ge=0, le=65_535)
    max_frame_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="REST request bodies over this size are refused with 413 before being read.",
    )
    auth_timeout_s: float = Field(default=10.0, gt=0, le=300)
    agent_idle_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="Close an agent that sends nothing for this long."
    )
    dashboard_queue_size: int = Field(
        default=256, ge=1, le=100_000, description="Frames buffered per dashboard before it is dropped."
    )
    publish_buffer_size: int = Field(
        default=10_000,
        ge=1,
        description="Accepted frames awaiting a JetStream ack before agents are told to back off.",
    )
    heartbeat_interval_s: float = Field(default=5.0, gt=0, le=300)
    command_grace_s: float = Field(default=10.0, gt=0, le=300)
