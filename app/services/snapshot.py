"""Snapshots of the synced tables: what a new device downloads (bootstrap), and what a
device re-reads for one stand, partner, product or candidate after the server rejected or
amended one of its changes (a *refresh*). docs/sync-design.md §4.

The server side reads pages of rows (``read_page``) in one read transaction and in foreign
key order, each table by primary key, filtered to what the caller may see: the same rule as
the feed's pull scope (``sync_server.visible_clause``), so a device never holds a row whose
changes it would not receive. The device side writes each page in one local transaction
(``apply_rows``): an upsert by id. A row whose parent is not on the device yet (the stream
was resumed under a newer snapshot, and the parent was made in between) is skipped; the
feed, replayed from the oldest snapshot used, brings both.

A refresh also **withdraws** the device's rows that the server does not hold: the
provisional rows of a change the server rejected (ARCHITECTURE "Offline-first sync", rule 2).
The change itself, its payload and the reason stay in the change log, the Sync view and the
export; nothing the person did is lost, and accepted facts are never deleted.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Numeric,
    Select,
    Table,
    delete,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.models import Base, InventoryMovement, Role, StandInventory, StandLocation, StandPartner
from app.services.scope import AccessScope
from app.types import ScaledDecimal, UTCDateTime

#: Rows per page of a snapshot.
PAGE_ROWS = 5000

# How each synced table is scoped: by the stand it belongs to (directly, or through its
# parent), by its partner, or not at all (the catalog and the program's reference data).
GLOBAL, STAND, PARTNER, CANDIDATE = "global", "stand", "partner", "candidate"


@dataclass(frozen=True)
class Part:
    table: str
    kind: str
    column: str = "stand_id"
    #: For a child table: (its parent table, the column naming the parent).
    parent: tuple[str, str] | None = None
    #: Not sent to reps (payouts are a manager's business).
    managers_only: bool = False


#: The synced tables in foreign-key order (parents first). Device-local tables (the change
#: log, sync bookkeeping, sign-in, the program-level coach output) never travel.
PARTS: tuple[Part, ...] = (
    Part("package", GLOBAL),
    Part("loyalty_tier", GLOBAL),
    Part("product", GLOBAL),
    Part("stand_partner", PARTNER, "id"),
    Part("stand_location", STAND, "id"),
    Part("stand_inventory", STAND),
    Part("stand_order", STAND),
    Part("stand_order_item", STAND, parent=("stand_order", "order_id")),
    Part("inventory_movement", STAND),
    Part("stand_inventory_snapshot", STAND),
    Part(
        "stand_inventory_snapshot_line", STAND, parent=("stand_inventory_snapshot", "snapshot_id")
    ),
    Part("stand_refill_order", STAND),
    Part("stand_refill_order_item", STAND, parent=("stand_refill_order", "refill_id")),
    Part("stand_refill_event", STAND, parent=("stand_refill_order", "refill_id")),
    Part("refill_discrepancy", STAND),
    Part("stand_loyalty_ledger", PARTNER, "partner_id"),
    Part("payout", PARTNER, "partner_id", managers_only=True),
    Part("expansion_candidate", CANDIDATE),
    Part("stand_ai_insight", STAND),
)
PART_BY_TABLE = {p.table: p for p in PARTS}
TABLE_NAMES = tuple(p.table for p in PARTS)


def table(name: str) -> Table:
    return Base.metadata.tables[name]


# --------------------------------------------------------------------------- what is read


#: What one snapshot may cover besides everything. ``group`` is a partner with all its
#: stands: the unit of a bootstrap and of a refresh, because every change touches the rows
#: of one partner only, so a group read in one transaction holds each change whole.
KINDS = ("stand", "partner", "group", "product", "candidate")


@dataclass(frozen=True)
class Target:
    """What a snapshot covers: everything the caller may see (``kind="all"``), or one
    stand, partner, product or candidate (a refresh)."""

    kind: str  # all | stand | partner | product | candidate
    id: str | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        if text == "all":
            return cls("all")
        kind, sep, ident = text.partition(":")
        if not sep or not ident or kind not in KINDS:
            raise ValidationError(
                "The scope is 'all' or one of stand:<id>, partner:<id>, group:<partner id>, "
                "product:<id>, candidate:<id>.",
                field="scope",
            )
        return cls(kind, ident)

    def __str__(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{self.id}"


def _in_scope_ids(access: AccessScope) -> tuple[Select[Any] | None, Select[Any] | None]:
    """Subqueries of the stand and partner ids ``access`` sees (None: all of them)."""
    if access.unrestricted:
        return None, None
    stands = access.stand_clause()
    partners = access.partner_clause()
    return (
        select(StandLocation.id).where(true() if stands is None else stands),
        select(StandPartner.id).where(true() if partners is None else partners),
    )


def _where(
    part: Part,
    access: AccessScope,
    target: Target,
) -> ColumnElement[bool] | None:
    """The rows of ``part`` in the snapshot (None: all of them; ``false()``: none)."""
    t = table(part.table)
    if part.managers_only and access.role == Role.REP:
        return false()
    stands, partners = _in_scope_ids(access)
    if target.kind == "stand":
        stands = select(StandLocation.id).where(
            StandLocation.id == target.id,
            true() if stands is None else StandLocation.id.in_(stands),
        )
        if part.kind != STAND:
            return false()
    elif target.kind == "partner":
        allowed = StandPartner.id == target.id
        if partners is not None:
            allowed = allowed & StandPartner.id.in_(partners)
        partners = select(StandPartner.id).where(allowed)
        if part.table == "stand_location":
            return t.c.partner_id.in_(partners)
        if part.kind != PARTNER:
            return false()
    elif target.kind == "group":
        # One partner with its stands: the unit of a bootstrap (see ``stream``).
        allowed = StandPartner.id == target.id
        if partners is not None:
            allowed = allowed & StandPartner.id.in_(partners)
        partners = select(StandPartner.id).where(allowed)
        stands = select(StandLocation.id).where(
            StandLocation.partner_id == target.id,
            true() if stands is None else StandLocation.id.in_(stands),
        )
        if part.kind not in (STAND, PARTNER):
            return false()
    elif target.kind in ("product", "candidate"):
        wanted = "product" if target.kind == "product" else "expansion_candidate"
        if part.table != wanted:
            return false()
        clause: ColumnElement[bool] = t.c.id == target.id
        if part.kind == CANDIDATE:
            scoped = _candidate_clause(t, stands, partners)
            if scoped is not None:
                clause = clause & scoped
        return clause
    if part.kind == GLOBAL:
        return None
    if part.kind == CANDIDATE:
        return _candidate_clause(t, stands, partners)
    ids = stands if part.kind == STAND else partners
    if ids is None:
        return None
    if part.parent is not None:
        parent_name, fk = part.parent
        parent = table(parent_name)
        return t.c[fk].in_(select(parent.c.id).where(parent.c[part.column].in_(ids)))
    return t.c[part.column].in_(ids)


def _candidate_clause(
    t: Table, stands: Select[Any] | None, partners: Select[Any] | None
) -> ColumnElement[bool] | None:
    # As the feed scopes candidate ops: by the stand they name, else the partner, else all.
    if stands is None or partners is None:
        return None
    return or_(
        t.c.stand_id.in_(stands),
        t.c.stand_id.is_(None) & (t.c.partner_id.is_(None) | t.c.partner_id.in_(partners)),
    )


def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def read_page(
    session: Session,
    access: AccessScope,
    target: Target,
    name: str,
    after: str | None,
    limit: int = PAGE_ROWS,
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows of table ``name`` after primary key ``after``, in key order,
    JSON-ready (times in ISO 8601, money as strings)."""
    part = PART_BY_TABLE[name]
    t = table(name)
    stmt = select(t).order_by(t.c.id).limit(limit)
    where = _where(part, access, target)
    if where is not None:
        stmt = stmt.where(where)
    if after is not None:
        stmt = stmt.where(t.c.id > after)
    return [{k: _encode(v) for k, v in row.items()} for row in session.execute(stmt).mappings()]


def _pages(
    session: Session,
    access: AccessScope,
    target: Target,
    parts: Iterable[Part],
    limit: int,
) -> Iterator[dict[str, Any]]:
    for part in parts:
        where = _where(part, access, target)
        if where is not None and _is_false(where):
            continue
        key: str | None = None
        while True:
            rows = read_page(session, access, target, part.table, key, limit)
            if not rows:
                break
            key = str(rows[-1]["id"])
            yield {"table": part.table, "rows": rows, "last_key": key}
            if len(rows) < limit:
                break


GLOBAL_PARTS = tuple(p for p in PARTS if p.kind == GLOBAL)
GROUP_PARTS = tuple(p for p in PARTS if p.kind in (STAND, PARTNER))
LAST_PARTS = tuple(p for p in PARTS if p.kind == CANDIDATE)


def stream(
    session: Session,
    access: AccessScope,
    target: Target,
    *,
    head: int,
    after_partner: str | None = None,
    limit: int = PAGE_ROWS,
) -> Iterator[dict[str, Any]]:
    """The snapshot as messages: ``{"snapshot_seq"}``, then pages ``{"table", "rows",
    "last_key"}``, then ``{"done": true}``.

    A refresh (one stand, partner, product or candidate) is read table by table. The whole
    program (``all``) is read **partner by partner**: the catalog, then each partner in id
    order with its ledger, payouts and stands and everything of those stands, each partner
    closed by ``{"partner_done": id}``, then the expansion candidates. A resumed download
    (``after_partner``: the last partner done) may come from a newer snapshot than the
    part before it, but every change touches the rows of one partner, so each change is
    on the device either whole or not at all, and the feed, pulled from the older
    snapshot, brings the missing ones whole."""
    yield {"snapshot_seq": head, "scope": str(target)}
    if target.kind != "all":
        yield from _pages(session, access, target, PARTS, limit)
        yield {"done": True}
        return
    if after_partner is None:
        yield from _pages(session, access, target, GLOBAL_PARTS, limit)
    partners = access.partner_clause()
    stmt = select(StandPartner.id).order_by(StandPartner.id)
    if partners is not None:
        stmt = stmt.where(partners)
    if after_partner is not None:
        stmt = stmt.where(StandPartner.id > after_partner)
    for partner_id in session.scalars(stmt).all():
        yield from _pages(session, access, Target("group", partner_id), GROUP_PARTS, limit)
        yield {"partner_done": partner_id}
    yield from _pages(session, access, target, LAST_PARTS, limit)
    yield {"done": True}


def _is_false(clause: ColumnElement[bool]) -> bool:
    return clause.compare(false())


# --------------------------------------------------------------------------- the device side


def _decoder(column: Any) -> Any:
    kind = column.type
    if isinstance(kind, UTCDateTime | DateTime):
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if isinstance(kind, Date):
        return lambda v: None if v is None else date.fromisoformat(v)
    if isinstance(kind, ScaledDecimal | Numeric):
        return lambda v: None if v is None else Decimal(str(v))
    return None


_DECODERS: dict[str, dict[str, Any]] = {}


def _decoders(name: str) -> dict[str, Any]:
    found = _DECODERS.get(name)
    if found is None:
        found = {}
        for column in table(name).columns:
            fn = _decoder(column)
            if fn is not None:
                found[column.name] = fn
        _DECODERS[name] = found
    return found


def decode_rows(name: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    decoders = _decoders(name)
    columns = set(table(name).columns.keys())
    out = []
    for row in rows:
        values = {k: v for k, v in row.items() if k in columns}
        for key, fn in decoders.items():
            if key in values:
                values[key] = fn(values[key])
        out.append(values)
    return out


def _parents_present(session: Session, name: str, rows: list[dict[str, Any]]) -> list[bool]:
    """Per row: whether every row it refers to is on the device (or in this page)."""
    t = table(name)
    ok = [True] * len(rows)
    own_ids = {r["id"] for r in rows}
    for column in t.columns:
        for fk in column.foreign_keys:
            parent = fk.column.table
            wanted = {r[column.name] for r in rows if r.get(column.name) is not None}
            if parent is t:
                wanted -= own_ids
            if not wanted:
                continue
            present = set(
                session.scalars(select(fk.column).where(fk.column.in_(list(wanted)))).all()
            )
            if parent is t:
                present |= own_ids
            for i, r in enumerate(rows):
                v = r.get(column.name)
                if v is not None and v not in present:
                    ok[i] = False
    return ok


def apply_rows(session: Session, name: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Upsert one page of ``name`` on the device (SQLite). Rows whose parent is missing are
    skipped (the feed brings them). Returns how many rows were written."""
    decoded = decode_rows(name, rows)
    if not decoded:
        return 0
    present = _parents_present(session, name, decoded)
    keep = [r for r, ok in zip(decoded, present, strict=True) if ok]
    if not keep:
        return 0
    session.execute(_upsert(name), keep)
    return len(keep)


@functools.cache
def _upsert(name: str) -> Any:
    """One compiled upsert per table, run as an executemany over a page (a multi-row VALUES
    statement would be compiled anew for every page)."""
    t = table(name)
    stmt = sqlite_insert(t)
    return stmt.on_conflict_do_update(
        index_elements=[t.c.id],
        set_={c.name: stmt.excluded[c.name] for c in t.columns if c.name != "id"},
    )


def device_ids(session: Session, name: str, target: Target) -> set[str]:
    """The ids of ``name``'s rows on the device that ``target`` covers (no role filter: the
    device holds only what its user sees)."""
    part = PART_BY_TABLE[name]
    where = _where(part, AccessScope.everything(), target)
    if where is not None and _is_false(where):
        return set()
    t = table(name)
    stmt = select(t.c.id)
    if where is not None:
        stmt = stmt.where(where)
    return set(session.scalars(stmt).all())


#: Tables a refresh never withdraws rows from: the coach's advice is made on each device.
KEEP_ON_REFRESH = frozenset({"stand_ai_insight"})


def withdraw(session: Session, target: Target, seen: Mapping[str, set[str]]) -> dict[str, int]:
    """Delete the device's rows that ``target`` covers but the server's snapshot did not
    hold (``seen``: table → ids received), children first. Only the provisional rows of
    changes the server rejected or amended can be such rows: every row the device got
    from the feed or had accepted is on the server, which never deletes one."""
    removed: dict[str, int] = {}
    for part in reversed(PARTS):
        if part.table in KEEP_ON_REFRESH or target.kind == "all":
            continue
        if target.kind == "partner" and part.table == "stand_location":
            continue  # a partner refresh only updates its stands; a group refresh removes one
        extra = device_ids(session, part.table, target) - seen.get(part.table, set())
        if not extra:
            continue
        t = table(part.table)
        ids = sorted(extra)
        for i in range(0, len(ids), 500):
            session.execute(delete(t).where(t.c.id.in_(ids[i : i + 500])))
        removed[part.table] = len(ids)
    return removed


def recompute_on_hand(session: Session, stand_ids: Iterable[str] | None = None) -> int:
    """Set each stock line's ``on_hand`` cache to the sum of its movements (after a
    bootstrap from several snapshots, or a refresh). Returns how many lines changed."""
    total = (
        select(func.coalesce(func.sum(InventoryMovement.quantity), 0))
        .where(
            InventoryMovement.stand_id == StandInventory.stand_id,
            InventoryMovement.product_id == StandInventory.product_id,
        )
        .scalar_subquery()
    )
    stmt = update(StandInventory).where(StandInventory.on_hand != total).values(on_hand=total)
    if stand_ids is not None:
        ids = list(stand_ids)
        if not ids:
            return 0
        stmt = stmt.where(StandInventory.stand_id.in_(ids))
    result = session.execute(stmt.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def encode_line(message: Mapping[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()
