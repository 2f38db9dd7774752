"""Agent settings: flags override `OPSWIRE_*` environment variables (pydantic-settings).

The API key is a `SecretStr` so it never shows in a repr or a log line. Given
through `OPSWIRE_API_KEY` or `--api-key-file` it is not in argv either (ps).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.runner import parse_allow_patterns
from opswire.runtime.settings import LogLevelName

AGENT_WS_PATH = "/api/v1/agents/ws"
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Seconds = Annotated[float, Field(gt=0, le=86_400)]


class AgentSettings(BaseSettings):
    """Everything one agent process needs; see docs/agent.md for the flags."""

    model_config = SettingsConfigDict(env_prefix="OPSWIRE_", extra="ignore")

    url: str = Field(
        description="Gateway base URL(s): http(s)://host:port or ws(s)://...; several, comma-"
        "separated, to fail over between gateways"
    )
    api_key: SecretStr | None = None
    api_key_file: Path | None = None

    metrics_interval_s: Annotated[float, Field(ge=0.05, le=3600)] = 5.0
    commands_enabled: bool = True
    allow: list[str] = Field(
        default_factory=list,
        description="program + argument patterns, run without a shell (JSON list in env)",
    )
    pass_env: list[str] = Field(
        default_factory=list,
        description="variables commands get besides PATH, HOME, LANG, LC_ALL (JSON list in env)",
    )
    command_timeout_s: Seconds = Field(default=60.0, description="When a command frame has none.")
    max_output_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    max_concurrent_commands: Annotated[int, Field(ge=1, le=256)] = 16
    docker_enabled: bool = True

    log_files: list[Path] = Field(default_factory=list)
    log_rate_per_s: Annotated[float, Field(gt=0)] = 50.0
    log_burst: Annotated[int, Field(ge=1)] = 200
    log_poll_s: Seconds = 0.5

    buffer_seconds: Annotated[float, Field(ge=0)] = 3600.0
    log_buffer_lines: Annotated[int, Field(ge=0)] = 10_000
    resend_window_s: Annotated[float, Field(ge=0)] = 30.0

    insecure: bool = False
    ca_file: Path | None = None
    max_frame_bytes: Annotated[int, Field(ge=64 * 1024)] = 1024 * 1024
    ping_interval_s: Seconds = 10.0
    ping_timeout_s: Seconds = 10.0
    open_timeout_s: Seconds = 10.0
    close_timeout_s: Seconds = 5.0
    keepalive_s: Seconds = Field(default=20.0, description="send a `ping` frame after this much silence")
    backoff_initial_s: Seconds = 1.0
    backoff_max_s: Seconds = 60.0
    stable_after_s: Seconds = 30.0
    rejected_retry_s: Seconds = 60.0
    log_level: LogLevelName = "INFO"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        urls = split_urls(value)
        if not urls:
            raise ValueError("at least one gateway URL is required")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in _WS_SCHEMES or not parts.netloc:
                raise ValueError(f"{url!r} must be http(s)://host[:port] or ws(s)://host[:port]")
        if len(set(urls)) != len(urls):
            raise ValueError("a gateway URL is given twice")
        return ",".join(urls)

    @field_validator("allow")
    @classmethod
    def _usable_patterns(cls, value: list[str]) -> list[str]:
        parse_allow_patterns(value)  # PatternError (a ValueError) says what is wrong
        return value

    @field_validator("pass_env")
    @classmethod
    def _variable_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if name.upper().startswith("OPSWIRE_"):
                raise ValueError(f"{name}: the agent's own settings are never passed to commands")
        return value

    @model_validator(mode="after")
    def _key_from_file(self) -> AgentSettings:
        if self.api_key is None and self.api_key_file is not None:
            try:
                key = self.api_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read api_key_file: {exc.strerror}") from None
            self.api_key = SecretStr(key)
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            raise ValueError("an API key is required: OPSWIRE_API_KEY, --api-key-file or --api-key")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file {self.ca_file} does not exist")
        if self.ca_file is not None and self.insecure:
            raise ValueError("insecure and ca_file contradict: with insecure no certificate is checked")
        return self

    @property
    def ws_urls(self) -> list[str]:
        """The agent socket URL of each gateway, in the order given (failover order)."""
        return [socket_url(url) for url in split_urls(self.url)]

    @property
    def ws_url(self) -> str:
        """The first gateway's socket URL."""
        return self.ws_urls[0]

    @property
    def key(self) -> str:
        assert self.api_key is not None  # guaranteed by _key_from_file
        return self.api_key.get_secret_value().strip()

    @property
    def plaintext_remote(self) -> bool:
        """A plain-text socket to a host that is not this machine: key and commands readable."""
        return any(
            url.startswith("ws://") and not is_loopback(urlsplit(url).hostname or "") for url in self.ws_urls
        )


def split_urls(value: str) -> list[str]:
    """`a,b` (the environment's form) into its URLs, blanks dropped."""
    return [url.strip() for url in value.split(",") if url.strip()]


def socket_url(url: str) -> str:
    """The agent socket URL derived from a base URL (a path prefix is kept)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith(AGENT_WS_PATH):
        path += AGENT_WS_PATH
    return urlunsplit((_WS_SCHEMES[parts.scheme], parts.netloc, path, parts.query, ""))


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (also as an IPv4-mapped address)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)
