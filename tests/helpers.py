"""Helpers for service tests: what an action wrote, and what it must not have written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import DomainError
from app.models import Base, ChangeLog, LocalDevice


@dataclass(frozen=True)
class Op:
    seq: int
    op_type: str
    entity_id: str
    payload: dict[str, Any]
    actor: str | None


def _counts(factory: SessionFactory) -> dict[str, int]:
    with factory() as s, s.begin():
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
        }


def _last_seq(factory: SessionFactory) -> int:
    with factory() as s, s.begin():
        return s.scalar(select(LocalDevice.last_seq)) or 0


class Watch:
    """Row counts and the device sequence before an action, to check what it wrote."""

    def __init__(self, factory: SessionFactory) -> None:
        self.factory = factory
        self.counts = _counts(factory)
        self.seq = _last_seq(factory)

    def ops(self) -> list[Op]:
        """Ops written since the watch began; their sequence numbers follow without gaps."""
        with self.factory() as s, s.begin():
            last = s.scalar(select(LocalDevice.last_seq)) or 0
            rows = s.scalars(
                select(ChangeLog)
                .where(ChangeLog.device_seq > self.seq)
                .order_by(ChangeLog.device_seq)
            ).all()
            ops = [
                Op(r.device_seq, r.op_type, r.entity_id, json.loads(r.payload), r.actor)
                for r in rows
            ]
        assert [o.seq for o in ops] == list(range(self.seq + 1, last + 1))
        return ops

    def added(self) -> dict[str, int]:
        now = _counts(self.factory)
        return {k: now[k] - self.counts[k] for k in now if now[k] != self.counts[k]}

    def assert_nothing_saved(self) -> None:
        assert _counts(self.factory) == self.counts
        assert _last_seq(self.factory) == self.seq


@contextmanager
def reading(factory: SessionFactory) -> Iterator[Session]:
    with factory() as s, s.begin():
        yield s


def assert_readable(exc: DomainError) -> None:
    msg = str(exc)
    assert msg == exc.message
    assert 0 < len(msg) < 300, msg
    assert msg.rstrip().endswith((".", "?")), msg
    assert "Traceback" not in msg
    assert "sqlalchemy" not in msg.lower()
