"""sync: envelope v2 columns on the change log (and the server feed's), the device's sync
state, and the server's devices, received ops, dead letters and review list

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_review",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("stand_id", sa.String(length=36), nullable=True),
        sa.Column("product_id", sa.String(length=36), nullable=True),
        sa.Column("partner_id", sa.String(length=36), nullable=True),
        sa.Column("refs", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("decision", sa.String(length=24), nullable=True),
        sa.Column("resolution_movement_id", sa.String(length=36), nullable=True),
        sa.Column("opened_seq", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", sa.String(length=60), nullable=True),
        sa.Column("resolved_at", app.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_review")),
    )
    with op.batch_alter_table("sync_review", schema=None) as batch_op:
        batch_op.create_index("ix_sync_review_status_stand", ["status", "stand_id"], unique=False)

    op.create_table(
        "sync_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_url", sa.String(length=300), nullable=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("bootstrap", sa.Text(), nullable=True),
        sa.Column("last_ok_at", app.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", app.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "sync_device",
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("api_device_id", sa.String(length=36), nullable=True),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("high_water", sa.BigInteger(), nullable=False),
        sa.Column("last_push_at", app.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_pull_at", app.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_cursor", sa.BigInteger(), nullable=True),
        sa.Column("created_at", app.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_device_id"],
            ["api_device.id"],
            name=op.f("fk_sync_device_api_device_id_api_device"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["api_user.id"], name=op.f("fk_sync_device_user_id_api_user")
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_sync_device")),
        sa.UniqueConstraint("api_device_id", name=op.f("uq_sync_device_api_device_id")),
    )
    with op.batch_alter_table("sync_device", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_device_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sync_received_op",
        sa.Column("op_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("device_seq", sa.BigInteger(), nullable=False),
        sa.Column("server_seq", sa.BigInteger(), nullable=True),
        sa.Column("op_type", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=36), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("field", sa.String(length=120), nullable=True),
        sa.Column("amended", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("actor", sa.String(length=60), nullable=True),
        sa.Column("actor_role", sa.String(length=24), nullable=True),
        sa.Column("base_seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("pending_from_seq", sa.BigInteger(), nullable=True),
        sa.Column("received_at", app.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["sync_device.device_id"],
            name=op.f("fk_sync_received_op_device_id_sync_device"),
        ),
        sa.PrimaryKeyConstraint("op_id", name=op.f("pk_sync_received_op")),
        sa.UniqueConstraint(
            "device_id", "device_seq", name=op.f("uq_sync_received_op_device_id_device_seq")
        ),
    )
    op.create_table(
        "sync_dead_letter",
        sa.Column("op_id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("device_seq", sa.BigInteger(), nullable=False),
        sa.Column("op_type", sa.String(length=40), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("handled_by", sa.String(length=60), nullable=True),
        sa.Column("handled_at", app.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", app.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["op_id"],
            ["sync_received_op.op_id"],
            name=op.f("fk_sync_dead_letter_op_id_sync_received_op"),
        ),
        sa.PrimaryKeyConstraint("op_id", name=op.f("pk_sync_dead_letter")),
    )
    with op.batch_alter_table("sync_dead_letter", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_dead_letter_state_device", ["state", "device_id"], unique=False
        )

    op.create_table(
        "sync_field_history",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("entity_type", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.String(length=36), nullable=False),
        sa.Column("field_group", sa.String(length=60), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=False),
        sa.Column("new_value", sa.Text(), nullable=False),
        sa.Column("op_id", sa.String(length=36), nullable=False),
        sa.Column("concurrent", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=True),
        sa.Column("at", app.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_field_history")),
    )
    with op.batch_alter_table("sync_field_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_field_history_entity", ["entity_type", "entity_id"], unique=False
        )

    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_role", sa.String(length=24), nullable=True))
        batch_op.add_column(
            sa.Column("base_seq", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("pending_from_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("amended", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("last_attempt_at", app.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("origin_device_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("scope_stand_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("scope_partner_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("change_log", schema=None) as batch_op:
        batch_op.drop_column("scope_partner_id")
        batch_op.drop_column("scope_stand_id")
        batch_op.drop_column("origin_device_id")
        batch_op.drop_column("last_attempt_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("amended")
        batch_op.drop_column("pending_from_seq")
        batch_op.drop_column("base_seq")
        batch_op.drop_column("actor_role")

    with op.batch_alter_table("sync_dead_letter", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_dead_letter_state_device")

    with op.batch_alter_table("sync_field_history", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_field_history_entity")

    op.drop_table("sync_field_history")
    op.drop_table("sync_dead_letter")
    op.drop_table("sync_received_op")
    with op.batch_alter_table("sync_device", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_device_user_id"))

    op.drop_table("sync_device")
    op.drop_table("sync_state")
    with op.batch_alter_table("sync_review", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_review_status_stand")

    op.drop_table("sync_review")
