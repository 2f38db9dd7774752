"""The `commands` schema: one row per shell command or Docker action."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

SCHEMA = "commands"


class CommandRecord(SQLModel, table=True):
    __tablename__ = "commands"
    __table_args__ = (
        Index("ix_commands_server_created", "server_id", text("created_at DESC")),
        # Migration 0003: idempotency keys, and the quota counts and the sweep over pending rows.
        Index(
            "ux_commands_idempotency",
            "user_id",
            "server_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index(
            "ix_commands_keyed_created", "created_at", postgresql_where=text("idempotency_key IS NOT NULL")
        ),
        Index("ix_commands_pending_deadline", "deadline", postgresql_where=text("status = 'pending'")),
        Index("ix_commands_pending_user", "user_id", postgresql_where=text("status = 'pending'")),
        {"schema": SCHEMA},
    )

    command_id: str = Field(primary_key=True, max_length=64)
    server_id: uuid.UUID = Field(nullable=False)
    user_id: uuid.UUID | None = Field(default=None)
    kind: str = Field(max_length=16)  # "shell" | "docker"
    # Shell: the command line. Docker: "docker <action> [<container_id>]".
    command: str = Field(sa_column=Column(Text, nullable=False))
    action: str | None = Field(default=None, max_length=16)
    container_id: str | None = Field(default=None, max_length=255)
    params: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    status: str = Field(max_length=16)  # pending | succeeded | failed | timeout
    output: str | None = Field(default=None, sa_column=Column(Text))
    exit_code: int | None = None
    duration_ms: int | None = None
    truncated: bool = False
    success: bool | None = None
    message: str | None = Field(default=None, sa_column=Column(Text))
    data: Any = Field(default=None, sa_column=Column(JSONB(none_as_null=True)))
    # The last token of the reply subject issued for this command; only a reply on that
    # subject counts, and the first one accepted clears it (commands/service.py).
    reply_token: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # Nothing is delivered after it, and a command still pending past it is closed as
    # `timeout` by whichever replica sweeps first (migration 0003).
    deadline: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The caller's Idempotency-Key; unique per (user_id, server_id), forgotten after the
    # retention (COMMAND_IDEMPOTENCY_RETENTION_S).
    idempotency_key: str | None = Field(default=None, max_length=255)
