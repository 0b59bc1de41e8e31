"""Stock at stands: per-SKU settings, the movement ledger and physical counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID, Base, created_at_col, enum_column, id_pk, updated_at_col
from app.models.enums import MovementKind, SnapshotSource


class StandInventory(Base):
    """One SKU on one stand: its levels, and the on-hand cache.

    ``on_hand`` is a cache of the sum of this pair's movements, kept in the same transaction
    as every movement; :func:`app.services.inventory.verify_on_hand` proves it.
    """

    __tablename__ = "stand_inventory"
    __table_args__ = (
        UniqueConstraint("stand_id", "product_id"),
        CheckConstraint("par_level >= 0 AND reorder_point >= 0", name="levels_not_negative"),
        CheckConstraint("reorder_point <= par_level", name="reorder_below_par"),
        CheckConstraint("par_level <= capacity", name="par_within_capacity"),
    )

    id: Mapped[str] = id_pk()
    stand_id: Mapped[str] = mapped_column(ForeignKey("stand_location.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("product.id"), index=True)
    par_level: Mapped[int]
    reorder_point: Mapped[int]
    capacity: Mapped[int]
    on_hand: Mapped[int] = mapped_column(default=0)
    last_counted_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()


class InventoryMovement(Base):
    """The stock ledger. Append-only: on-hand is the sum of ``quantity``."""

    __tablename__ = "inventory_movement"
    __table_args__ = (
        CheckConstraint("quantity <> 0", name="quantity_not_zero"),
        Index("ix_inventory_movement_stand_product_time", "stand_id", "product_id", "occurred_at"),
        Index("ix_inventory_movement_ref", "ref_id"),
    )

    id: Mapped[str] = id_pk()
    stand_id: Mapped[str] = mapped_column(ForeignKey("stand_location.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("product.id"))
    quantity: Mapped[int]
    kind: Mapped[MovementKind] = mapped_column(enum_column(MovementKind, "movement_kind"))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = created_at_col()
    # The fact that caused this movement (order, refill, snapshot...), by table and id.
    ref_type: Mapped[str | None] = mapped_column(String(40))
    ref_id: Mapped[str | None] = mapped_column(ID)
    actor: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(Text)


class StandInventorySnapshot(Base):
    """A physical count (or an Inventory OS snapshot) of a stand at one moment."""

    __tablename__ = "stand_inventory_snapshot"
    __table_args__ = (Index("ix_stand_inventory_snapshot_stand_time", "stand_id", "counted_at"),)

    id: Mapped[str] = id_pk()
    stand_id: Mapped[str] = mapped_column(ForeignKey("stand_location.id"))
    source: Mapped[SnapshotSource] = mapped_column(
        enum_column(SnapshotSource, "snapshot_source"), default=SnapshotSource.COUNT
    )
    counted_at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_col()

    lines: Mapped[list[StandInventorySnapshotLine]] = relationship(
        back_populates="snapshot", order_by="StandInventorySnapshotLine.product_id"
    )


class StandInventorySnapshotLine(Base):
    """One SKU of a count: what the device expected, what was counted, the difference."""

    __tablename__ = "stand_inventory_snapshot_line"
    __table_args__ = (
        UniqueConstraint("snapshot_id", "product_id"),
        CheckConstraint("counted_qty >= 0", name="counted_not_negative"),
    )

    id: Mapped[str] = id_pk()
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("stand_inventory_snapshot.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("product.id"))
    expected_qty: Mapped[int]
    counted_qty: Mapped[int]
    variance: Mapped[int]
    adjustment_movement_id: Mapped[str | None] = mapped_column(ID)

    snapshot: Mapped[StandInventorySnapshot] = relationship(back_populates="lines")
