"""The server's feed: its own change log, numbered without gaps in commit order.

On a server database every change (a REST call, a device's pushed op, a server job) is one
``change_log`` row whose ``device_seq`` is the feed sequence that devices pull by. A reader
with ``WHERE device_seq > :cursor`` must never see seq *n*+1 and later find *n* committed,
so numbers are allocated **at commit, under a lock** (docs/sync-design.md §2.2 option C):
``record_op`` on a feed session only buffers the op; just before COMMIT the buffer is
numbered with one ``UPDATE local_device SET last_seq = last_seq + n`` (the row lock is held
until the commit, so numbering order is commit order) and inserted. The serialised part is
that UPDATE, one INSERT and the commit, not the whole transaction.

Ops buffered inside a savepoint that rolls back (a rejected op in a push batch) are dropped
with it.

A push's bulk-applied ops are buffered as plain rows (:func:`buffer_rows`): their feed rows
and received-op rows are inserted with one statement per table once numbered, without an
ORM object each (docs/sync-design.md §6, "Bulk apply").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Table, event, select, update
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from app.db import SessionFactory, insert_many
from app.models import Base, ChangeLog, LocalDevice
from app.services.base import FEED_FLAG

_BUFFER = "feed_buffer"


@dataclass
class _Buffered:
    op: ChangeLog
    transaction: SessionTransaction
    # Rows to stamp with the feed number once it is known (a received op's server_seq).
    stamp: list[Any]


@dataclass
class _Plain:
    """Plain feed rows (column values, scope given) and, for each, a row of ``table`` to
    stamp with its feed number in ``server_seq`` and insert with it."""

    ops: list[dict[str, Any]]
    table: Table
    stamped: list[dict[str, Any]]
    transaction: SessionTransaction


def feed_sessionmaker(engine: Engine) -> SessionFactory:
    """Sessions of a server database: ops are buffered and numbered at commit."""
    factory: SessionFactory = sessionmaker(
        bind=engine, autobegin=False, expire_on_commit=False, info={FEED_FLAG: True}
    )
    event.listen(factory, "before_commit", _number_and_insert)
    event.listen(factory, "after_soft_rollback", _drop_rolled_back)
    return factory


def is_feed(session: Session) -> bool:
    return bool(session.info.get(FEED_FLAG))


def buffer(session: Session, op: ChangeLog, *, stamp: list[Any] | None = None) -> None:
    """Hold ``op`` until commit (called by ``record_op`` on a feed session). ``stamp``
    objects get ``server_seq`` set to the op's feed number."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        raise RuntimeError("a feed op needs a transaction")
    session.info.setdefault(_BUFFER, []).append(_Buffered(op, transaction, stamp or []))


def buffer_rows(
    session: Session,
    ops: Sequence[dict[str, Any]],
    model: type[Base],
    stamped: Sequence[dict[str, Any]],
) -> None:
    """Hold plain feed rows (``ChangeLog`` column values with their scope) until commit,
    after the ops buffered so far; ``stamped[n]`` (a row of ``model``) gets ``server_seq``
    set to ``ops[n]``'s feed number and is inserted with it. The dicts are filled in at
    commit, so the caller may read the numbers from them afterwards."""
    if len(ops) != len(stamped):
        raise ValueError("one stamped row per feed row")
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        raise RuntimeError("a feed op needs a transaction")
    if ops:
        plain = _Plain(list(ops), cast(Table, model.__table__), list(stamped), transaction)
        session.info.setdefault(_BUFFER, []).append(plain)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    held: list[_Buffered | _Plain] = session.info.get(_BUFFER, [])
    if held:
        session.info[_BUFFER] = [
            b for b in held if not _within(b.transaction, previous_transaction)
        ]


def _number_and_insert(session: Session) -> None:
    if session.in_nested_transaction():
        # SQLAlchemy fires ``before_commit`` when a savepoint is released too; numbering
        # then would take the counter's lock at the first op of a push and hold it for the
        # whole batch. Only the real commit numbers.
        return
    held: list[_Buffered | _Plain] = session.info.pop(_BUFFER, [])
    size = sum(len(b.ops) if isinstance(b, _Plain) else 1 for b in held)
    if not size:
        return
    # Everything else first, so the counter's lock is held only for the feed's own insert.
    session.flush()
    for b in held:
        if isinstance(b, _Plain) or b.op.scope_stand_id or b.op.scope_partner_id:
            continue
        b.op.scope_stand_id, b.op.scope_partner_id = _scope_of(session, b.op)
    device_id, last = session.execute(
        update(LocalDevice)
        .values(last_seq=LocalDevice.last_seq + size)
        .returning(LocalDevice.id, LocalDevice.last_seq)
    ).one()
    seq = last - size
    plain: list[dict[str, Any]] = []
    stamped: dict[Table, list[dict[str, Any]]] = {}
    for b in held:
        if isinstance(b, _Plain):
            for op, row in zip(b.ops, b.stamped, strict=True):
                seq += 1
                op["device_id"], op["device_seq"] = device_id, seq
                row["server_seq"] = seq
            plain += b.ops
            stamped.setdefault(b.table, []).extend(b.stamped)
            continue
        seq += 1
        b.op.device_id = device_id
        b.op.device_seq = seq
        for row in b.stamp:
            row.server_seq = seq
    session.add_all([b.op for b in held if isinstance(b, _Buffered)])
    insert_many(session.connection(), cast(Table, ChangeLog.__table__), plain)
    for table, rows in stamped.items():
        insert_many(session.connection(), table, rows)


def _scope_of(session: Session, op: ChangeLog) -> tuple[str | None, str | None]:
    from app.services import apply

    try:
        spec = apply.get_spec(op.op_type)
    except apply.UnknownOpType:
        return None, None
    return spec.scope(session, apply.Op.from_row(op))


def head(session: Session) -> int:
    """The feed's last committed sequence number."""
    return session.scalar(select(LocalDevice.last_seq)) or 0
