"""Tables of the auth service, all in the PostgreSQL schema `auth` (DESIGN §6)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from opswire.contract.types import utc_now

SCHEMA = "auth"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # Stored lower-cased, so the unique index makes emails unique case-insensitively.
    email: str = Field(max_length=320, unique=True)
    password_hash: str = Field(max_length=255)
    full_name: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utc_now)


class Server(SQLModel, table=True):
    __tablename__ = "servers"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    name: str = Field(max_length=255)
    hostname: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    status: str = Field(
        default="offline",
        sa_column=Column(String(16), nullable=False, server_default=text("'offline'")),
    )
    last_seen: datetime | None = None
    # The agent connection presence last saw connect; only its disconnect marks the server offline.
    current_connection_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utc_now)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    server_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey(f"{SCHEMA}.servers.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    name: str = Field(max_length=255)
    prefix: str = Field(max_length=16)
    # SHA-256 hex of the key: keys are long random strings, so one indexed lookup suffices.
    key_hash: str = Field(max_length=64, unique=True)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utc_now)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_user_id_timestamp", "user_id", text("timestamp DESC")),
        {"schema": SCHEMA},
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID
    action: str
    target: str | None = Field(default=None)
    detail: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONB(none_as_null=True), nullable=True)
    )
    timestamp: datetime


class LoginSession(SQLModel, table=True):
    """One login: its refresh tokens rotate (generation) until it ends (DESIGN §9 'Auth')."""

    __tablename__ = "sessions"
    __table_args__ = {"schema": SCHEMA}

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    # The generation of the one refresh token that may still be used.
    generation: int = 0
    created_at: datetime = Field(default_factory=utc_now)
    # When the last token pair was issued: access tokens of older sessions have all expired.
    refreshed_at: datetime = Field(default_factory=utc_now)
    # Absolute end: rotation never extends a session past it.
    expires_at: datetime
    revoked_at: datetime | None = Field(default=None, index=True)


class LoginFailures(SQLModel, table=True):
    """Failed logins of one bucket (`account:<email>` or `address:<ip>`), shared by replicas."""

    __tablename__ = "login_failures"
    __table_args__ = {"schema": SCHEMA}

    bucket: str = Field(primary_key=True, max_length=400)
    failures: int = 0
    last_failure_at: datetime
    locked_until: datetime | None = None


METADATA = SQLModel.metadata
