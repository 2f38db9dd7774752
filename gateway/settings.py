"""Gateway settings (env: OPSWIRE_*, NATS_URL)."""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from opswire.runtime.settings import CommonSettings, JwtSettings

# scheme://host[:port]: what a browser sends as Origin (no path, no trailing slash).
_ORIGIN = re.compile(
    r"^https?://([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?$"
)


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
    logs_resume_limit: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="Stored log lines replayed at most to a logs socket that resumes with `since`.",
    )
    # Fairness (DESIGN §8): budgets per agent connection, shares and ceilings.
    agent_samples_per_s: float = Field(
        default=10.0, gt=0, le=100_000, description="Metrics frames one agent connection may send per second."
    )
    agent_log_lines_per_s: float = Field(
        default=200.0, gt=0, le=1_000_000, description="Log frames one agent connection may send per second."
    )
    agent_bytes_per_s: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="Bytes of samples and log lines per agent connection per second.",
    )
    agent_budget_burst_s: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="Sample and line budgets may be spent this many seconds ahead (buffer replay).",
    )
    agent_abuse_refusals: int = Field(
        default=100, ge=1, description="Refused frames within the abuse window that close the socket (1008)."
    )
    agent_abuse_window_s: float = Field(default=10.0, gt=0, le=3600)
    publish_min_share: int = Field(
        default=64,
        ge=1,
        description="Every agent connection may hold at least this many frames of the publish buffer.",
    )
    unauthenticated_per_address: int = Field(
        default=128,
        ge=1,
        description="Sockets per client address not yet authenticated (agent and dashboard).",
    )
    dashboards_per_server: int = Field(
        default=100, ge=1, description="Dashboard sockets per watched server and stream on one gateway."
    )
    dashboard_stall_s: float = Field(
        default=30.0, gt=0, le=3600, description="A dashboard that takes no frame for this long is dropped."
    )
    tls_cert: Path | None = Field(
        default=None, description="PEM certificate chain; with OPSWIRE_TLS_KEY the gateway serves HTTPS/WSS."
    )
    tls_key: Path | None = Field(
        default=None, validate_default=True, description="PEM private key of OPSWIRE_TLS_CERT."
    )
    key_check_failures_per_minute: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Rejected X-API-Key checks (GET /api-keys/me) per client address per minute; then 429.",
    )

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated origins (https://host[:port], or *) whose web pages may call the REST API; "
            "empty: no cross-origin access."
        ),
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _valid_origins(cls, value: list[str]) -> list[str]:
        origins = []
        for origin in value:
            normal = origin.strip().lower()
            port = normal.rsplit(":", 1)[-1] if re.search(r":[0-9]+$", normal) else None
            if normal != "*" and (not _ORIGIN.match(normal) or (port is not None and int(port) > 65_535)):
                raise ValueError(
                    f"{origin!r} is not an origin; each must be "
                    "scheme://host[:port] without a path (e.g. https://dash.example.com:8443), or *"
                )
            if normal not in origins:
                origins.append(normal)
        return origins

    @field_validator("tls_cert", "tls_key")
    @classmethod
    def _readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and not (value.is_file() and os.access(value, os.R_OK)):
            raise ValueError(f"{value} is not a readable file")
        if info.field_name == "tls_key":
            _pair(info.data.get("tls_cert"), value, "tls_cert" in info.data)
        return value


def _pair(cert: Path | None, key: Path | None, cert_valid: bool) -> None:
    """Both or neither, and a key that belongs to the certificate (checked now, not by uvicorn)."""
    if not cert_valid:
        return  # OPSWIRE_TLS_CERT is reported on its own
    if (cert is None) != (key is None):
        raise ValueError("OPSWIRE_TLS_CERT and OPSWIRE_TLS_KEY go together: set both or neither")
    if cert is None or key is None:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise ValueError(
            f"OPSWIRE_TLS_CERT {cert} and OPSWIRE_TLS_KEY {key} are not a PEM certificate and its key "
            f"({exc.__class__.__name__}: {exc})"
        ) from None
