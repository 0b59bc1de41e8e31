"""Devices for the sync tests: each its own SQLite file, started from the server's data.

Until the bootstrap stream exists, a device starts as a copy of the server's database file
(its own device id, an empty change log, the cursor at the server's feed head): the state a
bootstrap would leave. Each device then works through the real services and syncs through
the real client over a real socket.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from app.db import SessionFactory, open_db
from app.ids import new_id
from app.models import Base, ChangeLog, LocalDevice, OpStatus
from app.services import feed, inventory, sync_device
from app.services.base import Actor
from sync.client import RoundResult, SyncClient
from tests.app.apply.replay import diff


@dataclass
class Device:
    name: str
    factory: SessionFactory
    actor: Actor
    token: str
    server_url: str
    clients: list[SyncClient] = field(default_factory=list)

    def client(self, **kwargs: Any) -> SyncClient:
        c = SyncClient(self.factory, self.server_url, token=self.token, **kwargs)
        self.clients.append(c)
        return c

    def sync(self, **kwargs: Any) -> RoundResult:
        with self.client(**kwargs) as c:
            return c.round()

    def ops(self) -> list[ChangeLog]:
        with self.factory() as s, s.begin():
            return list(s.scalars(select(ChangeLog).order_by(ChangeLog.device_seq)))

    def pending(self) -> int:
        with self.factory() as s, s.begin():
            return sync_device.status(s).unsent

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.factory.kw["bind"].dispose()


def server_db_path(server_factory: SessionFactory) -> Path:
    return Path(str(server_factory.kw["bind"].url).split("///", 1)[1])


def make_device(
    server_factory: SessionFactory,
    server_url: str,
    folder: Path,
    name: str,
    actor: Actor,
    token: str,
) -> Device:
    path = folder / f"{name}.db"
    engine = server_factory.kw["bind"]
    if engine.dialect.name == "sqlite":
        # A consistent copy: SQLite's backup API through a fresh connection.
        with sqlite3.connect(server_db_path(server_factory)) as a, sqlite3.connect(path) as b:
            a.backup(b)
        factory = open_db(f"sqlite:///{path}", migrate=False)
    else:
        factory = open_db(f"sqlite:///{path}")
        _copy_tables(server_factory, factory)
    with factory() as s, s.begin():
        head = feed.head(s)
        s.execute(delete(ChangeLog))
        s.execute(update(LocalDevice).values(id=new_id(), last_seq=0, name=name))
        sync_device.state(s).cursor = head
    return Device(name, factory, actor, token, server_url)


def _copy_tables(source: SessionFactory, target: SessionFactory) -> None:
    """Every row of the server's database into the device's, in one read transaction."""
    with source() as src, src.begin(), target() as dst, dst.begin():
        for table in Base.metadata.sorted_tables:
            if table.name in ("local_device", "sync_state", "change_log"):
                continue
            rows = [dict(r) for r in src.execute(select(table)).mappings()]
            if rows:
                dst.execute(table.insert(), rows)
        dst.execute(update(LocalDevice).values(last_seq=feed.head(src)))


def converged(server_factory: SessionFactory, devices: list[Device]) -> list[str]:
    """Differences between the server and each device (synced tables, ids included)."""
    problems: list[str] = []
    for d in devices:
        problems += [f"{d.name}: {p}" for p in diff(server_factory, d.factory)]
        with d.factory() as s, s.begin():
            for m in inventory.verify_on_hand(s):
                problems.append(f"{d.name}: on_hand cache off: {m}")
            left = s.scalar(select(ChangeLog.op_id).where(ChangeLog.status == OpStatus.PENDING))
            if left is not None:
                problems.append(f"{d.name}: op {left} still pending")
    with server_factory() as s, s.begin():
        for m in inventory.verify_on_hand(s):
            problems.append(f"server: on_hand cache off: {m}")
    return problems
