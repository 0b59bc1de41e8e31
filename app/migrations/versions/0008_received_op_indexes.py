"""a count finds the pushing device's rejected or amended ops through an index, instead of
walking every op the device sent since it last synced

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 14:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_sync_received_op_device_status_seq",
        "sync_received_op",
        ["device_id", "status", "device_seq"],
        unique=False,
    )
    op.create_index(
        "ix_sync_received_op_device_amended_seq",
        "sync_received_op",
        ["device_id", "amended", "device_seq"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_sync_received_op_device_amended_seq", table_name="sync_received_op")
    op.drop_index("ix_sync_received_op_device_status_seq", table_name="sync_received_op")
