"""a count's look for other devices' counts of its stand reads the device column from the
index (the rows of a long-offline device's own counts were each read from the table)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_change_log_stand_type_seq", table_name="change_log")
    op.create_index(
        "ix_change_log_stand_type_seq_origin",
        "change_log",
        ["scope_stand_id", "op_type", "device_seq", "origin_device_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_change_log_stand_type_seq_origin", table_name="change_log")
    op.create_index(
        "ix_change_log_stand_type_seq",
        "change_log",
        ["scope_stand_id", "op_type", "device_seq"],
        unique=False,
    )
