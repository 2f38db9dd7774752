"""History tiers: metrics rolled up per 1 min, 10 min and 1 h (DESIGN §5, issue 10.6).

Revision ID: 0002_history_tiers
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_history_tiers"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "ingest"
TIERS = ("metrics_1m", "metrics_10m", "metrics_1h")


def upgrade() -> None:
    for table in TIERS:
        op.create_table(
            table,
            sa.Column("server_id", sa.Uuid(), nullable=False),
            sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
            sa.Column("samples", sa.Integer(), nullable=False),
            sa.Column("point", postgresql.JSONB(), nullable=False),
            sa.PrimaryKeyConstraint("server_id", "bucket"),
            schema=SCHEMA,
        )
        op.create_index(f"ix_{table}_bucket_brin", table, ["bucket"], schema=SCHEMA, postgresql_using="brin")


def downgrade() -> None:
    for table in TIERS:
        op.drop_table(table, schema=SCHEMA)
