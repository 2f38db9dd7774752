"""Per-command reply token: only the reply subject issued for a command may answer it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "commands"


def upgrade() -> None:
    # Rows from before have none: no reply is accepted for them any more.
    op.add_column("commands", sa.Column("reply_token", sa.String(length=64), nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("commands", "reply_token", schema=SCHEMA)
