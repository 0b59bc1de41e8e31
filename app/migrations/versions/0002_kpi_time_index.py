"""orders by time, for program-wide KPIs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 04:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_stand_order_time", "stand_order", ["occurred_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_stand_order_time", table_name="stand_order")
