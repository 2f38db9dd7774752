"""Settings, read from the environment once per process.

Every process builds one settings object at start-up; a bad value stops it with
a clear message. Components are handed only the fields they need.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "changethis", "your-secret-here"}

PositiveSeconds = Annotated[float, Field(gt=0, le=86_400)]


def _log_level(value: str) -> str:
    value = value.upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return value


LogLevelName = Annotated[str, AfterValidator(_log_level)]


class CommonSettings(BaseSettings):
    """What every opswire process needs: where NATS is and how subjects are named."""

    model_config = SettingsConfigDict(env_prefix="OPSWIRE_", extra="ignore", populate_by_name=True)

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "OPSWIRE_NATS_URL"),
        description="Comma-separated NATS server URLs.",
    )
    subject_prefix: str = Field(default="opswire", description="Prefix of every NATS subject.")
    stream_prefix: str = Field(default="OPSWIRE", description="Prefix of every JetStream stream.")
    rpc_timeout_s: PositiveSeconds = Field(default=5.0, description="Default RPC timeout.")
    metrics_interval_s: PositiveSeconds = Field(
        default=5.0, description="How often agents are expected to send a sample."
    )
    log_level: LogLevelName = Field(default="INFO")

    @field_validator("subject_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError("must be dot-separated tokens of letters, digits, '-' or '_'")
        return value

    @field_validator("stream_prefix")
    @classmethod
    def _valid_stream_prefix(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_-]+$", value):
            raise ValueError("must be letters, digits, '-' or '_'")
        return value

    @property
    def nats_servers(self) -> list[str]:
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]


class DatabaseSettings(CommonSettings):
    """Settings of a service that owns tables (auth, ingest, commands)."""

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/opswire",
        validation_alias=AliasChoices("DATABASE_URL", "OPSWIRE_DATABASE_URL"),
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+asyncpg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value


class JwtSettings(BaseSettings):
    """The JWT secret, shared by auth (issues tokens) and gateway (verifies them)."""

    model_config = SettingsConfigDict(env_prefix="OPSWIRE_", extra="ignore")

    jwt_secret: str = Field(
        description="HS256 secret, at least 32 characters. There is no default."
    )
    access_token_ttl_s: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_s: int = Field(default=7 * 86_400, ge=60, le=365 * 86_400)

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if value.strip().lower() in _PLACEHOLDER_SECRETS or len(value) < 32:
            raise ValueError(
                "OPSWIRE_JWT_SECRET must be a random string of at least 32 characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], program: str = "opswire", **overrides: Any) -> S:
    """Build the process's settings (environment, then `overrides` such as command-line
    flags), or stop with a message naming each bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False, include_input=False):
            field = str(err["loc"][0]) if err["loc"] else "?"
            lines.append(f"  {_env_name(cls, field)}: {err['msg']}")
        sys.stderr.write(f"{program}: invalid configuration\n" + "\n".join(lines) + "\n")
        raise SystemExit(2) from None


def _env_name(cls: type[BaseSettings], field: str) -> str:
    info = cls.model_fields.get(field)
    alias = getattr(info, "validation_alias", None) if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    prefix = str(cls.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()
