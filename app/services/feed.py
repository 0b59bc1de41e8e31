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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from app.db import SessionFactory
from app.models import ChangeLog, LocalDevice
from app.services.base import FEED_FLAG

_BUFFER = "feed_buffer"


@dataclass
class _Buffered:
    op: ChangeLog
    transaction: SessionTransaction
    # Rows to stamp with the feed number once it is known (a received op's server_seq).
    stamp: list[Any]


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


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    held: list[_Buffered] = session.info.get(_BUFFER, [])
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
    held: list[_Buffered] = session.info.pop(_BUFFER, [])
    if not held:
        return
    # Everything else first, so the counter's lock is held only for the feed's own insert.
    session.flush()
    device_id, last = session.execute(
        update(LocalDevice)
        .values(last_seq=LocalDevice.last_seq + len(held))
        .returning(LocalDevice.id, LocalDevice.last_seq)
    ).one()
    first = last - len(held) + 1
    for b in held:
        if b.op.scope_stand_id is None and b.op.scope_partner_id is None:
            b.op.scope_stand_id, b.op.scope_partner_id = _scope_of(session, b.op)
    for n, b in enumerate(held):
        b.op.device_id = device_id
        b.op.device_seq = first + n
        for row in b.stamp:
            row.server_seq = first + n
    session.add_all([b.op for b in held])


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
