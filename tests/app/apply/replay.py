"""Replay equivalence: a device's change log, written onto a copy of its database as it was
before the ops, must recreate every synced row, ids included.

``base = snapshot(factory)`` copies the database file before a scenario; after it,
``replay(factory, target)`` writes every op of the log with :func:`app.services.apply.write`
and ``diff(factory, target)`` lists every difference in the synced tables.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import SessionFactory, open_db
from app.models import Base, ChangeLog, InsightStatus
from app.services import apply

# Tables that belong to one database and never travel: the log and sync bookkeeping, sign-in,
# and the program-level coach output (each device's own run).
DEVICE_LOCAL = frozenset(
    {
        "change_log",
        "local_device",
        "sync_state",
        "sync_device",
        "sync_received_op",
        "sync_dead_letter",
        "sync_review",
        "sync_field_history",
        "sync_refresh",
        "api_user",
        "api_device",
        "api_token",
        "idempotency_record",
        "ai_insight",
        "alembic_version",
    }
)
# Columns stamped with the wall clock of the database that wrote the row.
CLOCK_COLUMNS = frozenset({"created_at", "updated_at", "recorded_at"})


def db_path(factory: SessionFactory) -> Path:
    url = str(factory.kw["bind"].url)
    return Path(url.split("///", 1)[1])


def snapshot(factory: SessionFactory, dest: Path) -> Path:
    """Copy the database file as it is now (call before the scenario writes ops)."""
    shutil.copyfile(db_path(factory), dest)
    return dest


def open_copy(path: Path) -> SessionFactory:
    return open_db(f"sqlite:///{path}", migrate=False)


def ops_of(factory: SessionFactory, after_seq: int = 0) -> list[apply.Op]:
    with factory() as s, s.begin():
        rows = s.scalars(
            select(ChangeLog).where(ChangeLog.device_seq > after_seq).order_by(ChangeLog.device_seq)
        )
        return [apply.Op.from_row(r) for r in rows]


def replay(ops: Iterable[apply.Op], target: SessionFactory) -> None:
    """Write each op in its own transaction, as a pulled page of one op would."""
    for op in ops:
        with target() as s, s.begin():
            apply.write(s, op)


def replay_in_one(ops: Iterable[apply.Op], session: Session) -> None:
    with session.begin():
        for op in ops:
            apply.write(session, op)


def _rows(factory: SessionFactory, table_name: str) -> dict[Any, dict[str, Any]]:
    table = Base.metadata.tables[table_name]
    cols = [c for c in table.columns if c.name not in CLOCK_COLUMNS]
    with factory() as s, s.begin():
        if table_name == "stand_ai_insight":
            # Insight rows are made by each device's coach; only decided ones travel, and
            # their ids differ between devices: compare by what they are about.
            rows = s.execute(
                select(table).where(table.c.status != InsightStatus.NEW.value)
            ).mappings()
            keep = [c.name for c in cols if c.name != "id"]
            return {(r["stand_id"], r["dedup_key"]): {k: r[k] for k in keep} for r in rows}
        pk = [c.name for c in table.primary_key.columns]
        out = {}
        for r in s.execute(select(*cols)).mappings():
            out[tuple(r[k] for k in pk)] = dict(r)
        return out


def synced_tables() -> list[str]:
    return [t.name for t in Base.metadata.sorted_tables if t.name not in DEVICE_LOCAL]


def diff(a: SessionFactory, b: SessionFactory, *, limit: int = 40) -> list[str]:
    """Every difference between the synced tables of ``a`` and ``b`` (at most ``limit``)."""
    out: list[str] = []
    for name in synced_tables():
        ra, rb = _rows(a, name), _rows(b, name)
        for key in sorted(ra.keys() - rb.keys(), key=str):
            out.append(f"{name} {key}: only in the source: {ra[key]}")
        for key in sorted(rb.keys() - ra.keys(), key=str):
            out.append(f"{name} {key}: only in the replica: {rb[key]}")
        for key in sorted(ra.keys() & rb.keys(), key=str):
            if ra[key] != rb[key]:
                changed = {
                    c: (ra[key][c], rb[key].get(c)) for c in ra[key] if ra[key][c] != rb[key].get(c)
                }
                out.append(f"{name} {key}: source vs replica {changed}")
    return out[:limit]
