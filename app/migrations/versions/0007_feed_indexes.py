"""the feed read by sequence: pull pages and a count's look for overlapping counts use
indexes instead of scanning the whole change log

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_change_log_seq", "change_log", ["device_seq"], unique=False)
    op.create_index(
        "ix_change_log_stand_type_seq",
        "change_log",
        ["scope_stand_id", "op_type", "device_seq"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_change_log_stand_type_seq", table_name="change_log")
    op.drop_index("ix_change_log_seq", table_name="change_log")
