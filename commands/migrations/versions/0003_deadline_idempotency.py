"""Each command's deadline (so any replica can close a forgotten one as `timeout`) and its
Idempotency-Key (so a retry returns the first result).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "commands"
PENDING = sa.text("status = 'pending'")
KEYED = sa.text("idempotency_key IS NOT NULL")


def upgrade() -> None:
    op.add_column("commands", sa.Column("deadline", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)
    # Rows from before waited at most the longest timeout (1 h) plus grace; a row left
    # `pending` by a dead replica is closed by the next sweep.
    op.execute(f"UPDATE {SCHEMA}.commands SET deadline = created_at + interval '3700 seconds'")
    op.alter_column("commands", "deadline", nullable=False, schema=SCHEMA)
    op.add_column(
        "commands",
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "ux_commands_idempotency",
        "commands",
        ["user_id", "server_id", "idempotency_key"],
        unique=True,
        postgresql_where=KEYED,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_commands_keyed_created",
        "commands",
        ["created_at"],
        postgresql_where=KEYED,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_commands_pending_deadline",
        "commands",
        ["deadline"],
        postgresql_where=PENDING,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_commands_pending_user",
        "commands",
        ["user_id"],
        postgresql_where=PENDING,
        schema=SCHEMA,
    )


def downgrade() -> None:
    for index in (
        "ix_commands_pending_user",
        "ix_commands_pending_deadline",
        "ix_commands_keyed_created",
        "ux_commands_idempotency",
    ):
        op.drop_index(index, table_name="commands", schema=SCHEMA)
    op.drop_column("commands", "idempotency_key", schema=SCHEMA)
    op.drop_column("commands", "deadline", schema=SCHEMA)
