"""Settings, read from the environment once per process.

Every process builds one settings object at start-up; a bad value stops it with
a clear message. Components are handed only the fields they need.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import ssl
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

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
    stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Copies of every JetStream stream and durable consumer: 1 on one NATS "
        "node, 3 in a 3-node cluster (DESIGN §4 Streams).",
    )
    stream_max_bytes: int = Field(
        default=1024**3,
        ge=1024**2,
        le=1024**5,
        description="Largest size of every JetStream stream, in bytes; a full stream refuses "
        "new publishes (DESIGN §4 Streams).",
    )

    # This process's NATS identity (DESIGN §4: one per role). `opswire up` hands each
    # child its own; a password file keeps the secret out of the environment.
    nats_user: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OPSWIRE_NATS_USER", "NATS_USER"),
        description="NATS user name of this process's role.",
    )
    nats_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPSWIRE_NATS_PASSWORD", "NATS_PASSWORD"),
        description="NATS password (or use OPSWIRE_NATS_PASSWORD_FILE).",
    )
    nats_password_file: Path | None = Field(default=None, description="File holding the NATS password.")
    nats_inbox_prefix: str | None = Field(
        default=None, description="Reply subject prefix; default _INBOX_<role>, as the permissions expect."
    )
    nats_tls_ca_file: Path | None = Field(default=None, description="CA of the NATS server's certificate.")
    nats_tls_cert_file: Path | None = Field(default=None, description="Client certificate for NATS.")
    nats_tls_key_file: Path | None = Field(default=None, description="Key of the client certificate.")
    # The ops port (DESIGN §10): /health, /ready (own dependencies), Prometheus /metrics.
    metrics_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address of the ops port (/health, /ready, /metrics); 0.0.0.0 in a container.",
    )
    metrics_port: int = Field(
        default=9180,
        ge=0,
        le=65_535,
        description="Port of /health, /ready and Prometheus /metrics (0: any free port, logged).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text (key=value fields) or one JSON object each."
    )

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

    @field_validator("nats_inbox_prefix")
    @classmethod
    def _valid_inbox_prefix(cls, value: str | None) -> str | None:
        if value is not None and not _PREFIX.match(value):
            raise ValueError("must be dot-separated tokens of letters, digits, '-' or '_'")
        return value

    @field_validator("nats_password_file", "nats_tls_ca_file", "nats_tls_cert_file", "nats_tls_key_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not os.access(value, os.R_OK):
            raise ValueError(f"cannot read {value}")
        return value

    @model_validator(mode="after")
    def _credentials_complete(self) -> CommonSettings:
        if self.nats_password is not None and self.nats_password_file is not None:
            raise ValueError("set OPSWIRE_NATS_PASSWORD or OPSWIRE_NATS_PASSWORD_FILE, not both")
        if (self.nats_password is not None or self.nats_password_file is not None) and not self.nats_user:
            raise ValueError("a NATS password needs OPSWIRE_NATS_USER too")
        if self.nats_password_file is not None and not self.nats_password_file.read_text().strip():
            raise ValueError(f"OPSWIRE_NATS_PASSWORD_FILE {self.nats_password_file} is empty")
        if (self.nats_tls_cert_file is None) != (self.nats_tls_key_file is None):
            raise ValueError("OPSWIRE_NATS_TLS_CERT_FILE and OPSWIRE_NATS_TLS_KEY_FILE go together")
        return self

    @property
    def nats_servers(self) -> list[str]:
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    def nats_secret(self) -> str | None:
        if self.nats_password_file is not None:
            return self.nats_password_file.read_text().strip()
        return self.nats_password.get_secret_value() if self.nats_password is not None else None

    def nats_tls(self) -> ssl.SSLContext | None:
        """A verifying TLS context when a CA or client certificate is set, or the URL says tls://."""
        wants_tls = any(url.startswith("tls://") for url in self.nats_servers)
        if not (wants_tls or self.nats_tls_ca_file or self.nats_tls_cert_file):
            return None
        context = ssl.create_default_context(
            cafile=str(self.nats_tls_ca_file) if self.nats_tls_ca_file else None
        )
        if self.nats_tls_cert_file is not None and self.nats_tls_key_file is not None:
            context.load_cert_chain(str(self.nats_tls_cert_file), str(self.nats_tls_key_file))
        return context


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

    jwt_secret: str = Field(description="HS256 secret, at least 32 characters. There is no default.")
    access_token_ttl_s: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_s: int = Field(default=7 * 86_400, ge=60, le=365 * 86_400)

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if (weakness := secret_weakness(value)) is not None:
            raise ValueError(
                f"OPSWIRE_JWT_SECRET {weakness}; it must be a random string of at least "
                f"{MIN_SECRET_CHARS} characters, made for example with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value


MIN_SECRET_CHARS = 32
# Placeholders are found in the value lowercased, so "CHANGE-ME", "change_me" and
# "ChangeMe" all match. A long word is looked for with separators removed; a short one
# only as a word of its own. Either way a random token contains one by chance with
# negligible probability (the tests check that).
_PLACEHOLDER_WORDS = (
    "changeme",
    "changethis",
    "replace",
    "placeholder",
    "example",
    "secrethere",
    "yoursecret",
    "insertsecret",
    "xxxxxx",
    "password",
    "notasecret",
    "insecure",
)
_PLACEHOLDER_TOKENS = re.compile(r"(?:^|[^a-z0-9])(?:x{4,}|todo|fixme|dummy|sample)(?:[^a-z0-9]|$)")
# Limits that even 32 random hex digits (the shortest random secret accepted) miss with
# a probability below 1e-7, while `aaaabbbb…`, `abab…` or `0123456789abcdef…` are caught.
# The character distribution of random hex measures 3.5 bits/char (rarely under 2.8),
# of url-safe base64 4.5 or more; English words about 4.
_MIN_DISTINCT_CHARS = 8
_MIN_BITS_PER_CHAR = 2.5
_MAX_WALK_FRACTION = 0.75


def secret_weakness(value: str) -> str | None:
    """Why `value` cannot sign tokens (a placeholder, too short, too predictable), or None."""
    lowered = value.lower()
    joined = re.sub(r"[^a-z0-9]", "", lowered)
    if any(word in joined for word in _PLACEHOLDER_WORDS) or _PLACEHOLDER_TOKENS.search(lowered):
        return "is a placeholder"
    if len(value) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    if len(set(value)) < _MIN_DISTINCT_CHARS:
        return f"has fewer than {_MIN_DISTINCT_CHARS} distinct characters"
    bits = -sum(n / len(value) * math.log2(n / len(value)) for n in Counter(value).values())
    if bits < _MIN_BITS_PER_CHAR:
        return "is too predictable (low entropy)"
    if _is_periodic(value) or _is_walk(value):
        return "is too predictable (a repeated or sequential pattern)"
    return None


def _is_periodic(value: str) -> bool:
    """A short unit repeated, like `abcdefghij` three times over."""
    return any(value[k:] == value[:-k] for k in range(1, len(value) // 2 + 1))


def _is_walk(value: str) -> bool:
    """Mostly steps of 0 or 1 between neighbours, like `0123456789abcdefghij…` or `aaaabbbb…`."""
    steps = sum(abs(ord(a) - ord(b)) <= 1 for a, b in itertools.pairwise(value))
    return steps > _MAX_WALK_FRACTION * (len(value) - 1)


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], program: str = "opswire", **overrides: Any) -> S:
    """Build the process's settings (environment, then `overrides` such as command-line
    flags), or stop with a message naming each bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False, include_input=False):
            if err["loc"]:
                lines.append(f"  {_env_name(cls, str(err['loc'][0]))}: {err['msg']}")
            else:  # a rule across variables: its message names them
                lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
        sys.stderr.write(f"{program}: invalid configuration\n" + "\n".join(lines) + "\n")
        raise SystemExit(2) from None


def _env_name(cls: type[BaseSettings], loc: str) -> str:
    """The variable a user sets for the field an error is about.

    An error's location is the field's name, or for a field read under aliases the alias
    it was read as (`DATABASE_URL`, `OPSWIRE_DATABASE_URL`): that one is named as it is,
    never prefixed again.
    """
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            choices = [str(choice) for choice in alias.choices]
            if loc == name:
                return choices[0]
            for choice in choices:
                if loc.upper() == choice.upper():
                    return choice
    prefix = str(cls.model_config.get("env_prefix", ""))
    return f"{prefix}{loc}".upper()
