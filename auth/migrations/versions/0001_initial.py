"""Users, servers, API keys and the audit log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "auth"
TIMESTAMPTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("full_name", sa.String(255), nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.UniqueConstraint("email", name="users_email_key"),
        schema=SCHEMA,
    )
    op.create_table(
        "servers",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "owner_id",
            sa.Uuid(),
            sa.ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=True),
        sa.Column("description", sa.String(2000), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'offline'")),
        sa.Column("last_seen", TIMESTAMPTZ, nullable=True),
        sa.Column("current_connection_id", sa.String(255), nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.CheckConstraint("status IN ('online', 'offline')", name="servers_status_check"),
        schema=SCHEMA,
    )
    op.create_index("ix_auth_servers_owner_id", "servers", ["owner_id"], schema=SCHEMA)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "server_id",
            sa.Uuid(),
            sa.ForeignKey(f"{SCHEMA}.servers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("last_used_at", TIMESTAMPTZ, nullable=True),
        sa.Column("revoked_at", TIMESTAMPTZ, nullable=True),
        sa.UniqueConstraint("key_hash", name="api_keys_key_hash_key"),
        schema=SCHEMA,
    )
    op.create_index("ix_auth_api_keys_server_id", "api_keys", ["server_id"], schema=SCHEMA)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("detail", postgresql.JSONB(), nullable=True),
        sa.Column("timestamp", TIMESTAMPTZ, nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_audit_log_user_id_timestamp",
        "audit_log",
        ["user_id", sa.text("timestamp DESC")],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("audit_log", schema=SCHEMA)
    op.drop_table("api_keys", schema=SCHEMA)
    op.drop_table("servers", schema=SCHEMA)
    op.drop_table("users", schema=SCHEMA)
