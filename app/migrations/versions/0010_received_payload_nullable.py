"""a received op applied as sent keeps no second copy of its payload: its feed row holds the
same text (rejected and amended ops keep the payload as received)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_received_op") as batch_op:
        batch_op.alter_column("payload", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    # An op applied as sent has its payload in its feed row (the same op id).
    op.execute(
        "UPDATE sync_received_op SET payload = (SELECT c.payload FROM change_log c "
        "WHERE c.op_id = sync_received_op.op_id) WHERE payload IS NULL"
    )
    with op.batch_alter_table("sync_received_op") as batch_op:
        batch_op.alter_column("payload", existing_type=sa.Text(), nullable=False)
