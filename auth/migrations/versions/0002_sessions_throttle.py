"""Login sessions (rotating refresh tokens) and failed-login buckets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "auth"
TIMESTAMPTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("refreshed_at", TIMESTAMPTZ, nullable=False),
        sa.Column("expires_at", TIMESTAMPTZ, nullable=False),
        sa.Column("revoked_at", TIMESTAMPTZ, nullable=True),
        schema=SCHEMA,
    )
    op.create_index("ix_auth_sessions_user_id", "sessions", ["user_id"], schema=SCHEMA)
    op.create_index("ix_auth_sessions_revoked_at", "sessions", ["revoked_at"], schema=SCHEMA)
    op.create_table(
        "login_failures",
        sa.Column("bucket", sa.String(400), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", TIMESTAMPTZ, nullable=False),
        sa.Column("locked_until", TIMESTAMPTZ, nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("login_failures", schema=SCHEMA)
    op.drop_table("sessions", schema=SCHEMA)
