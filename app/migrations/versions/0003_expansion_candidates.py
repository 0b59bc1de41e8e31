"""candidate locations for new stands (location expansion)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "expansion_candidate",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=80), nullable=True),
        sa.Column("postal_code", sa.String(length=16), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column(
            "location_type",
            sa.Enum(
                "convenience",
                "supermarket",
                "pharmacy",
                "cafe",
                "gas_station",
                "kiosk",
                "office",
                "gym",
                name="candidate_location_type",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "manual",
                "csv",
                "partner_lead",
                name="candidate_source",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("partner_id", sa.String(length=36), nullable=True),
        sa.Column("stand_id", sa.String(length=36), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "accepted",
                "rejected",
                name="candidate_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=60), nullable=True),
        sa.Column("created_at", app.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180",
            name=op.f("ck_expansion_candidate_coordinates_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["stand_partner.id"],
            name=op.f("fk_expansion_candidate_partner_id_stand_partner"),
        ),
        sa.ForeignKeyConstraint(
            ["stand_id"],
            ["stand_location.id"],
            name=op.f("fk_expansion_candidate_stand_id_stand_location"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expansion_candidate")),
        sa.UniqueConstraint("stand_id", name=op.f("uq_expansion_candidate_stand_id")),
    )
    with op.batch_alter_table("expansion_candidate", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_expansion_candidate_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_expansion_candidate_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("expansion_candidate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_expansion_candidate_status"))
        batch_op.drop_index(batch_op.f("ix_expansion_candidate_partner_id"))
    op.drop_table("expansion_candidate")
