"""Devices for the sync tests: each its own SQLite file, started from the server's data.

A device starts as a copy of the server's database file (its own device id, an empty change
log, the cursor at the server's feed head): the state a bootstrap leaves (the bootstrap
itself is tested in test_sync_bootstrap.py). Each device then works through the real
services and syncs through the real client over a real socket.

Tests that make hundreds of devices of one server state (the seeded fault runs) make that
state once with :func:`device_template`, and :class:`DeviceSlots` copies the file per
device: a file copy and a new device id instead of a backup and a reset, into the same
files each time, so the engines (and their compiled statements) are made once.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db import SessionFactory, open_db
from app.ids import new_id
from app.models import Base, ChangeLog, InsightStatus, LocalDevice, OpStatus
from app.services import feed, inventory, sync_device
from app.services.base import Actor
from sync.client import RoundResult, SyncClient
from tests.app.apply.replay import CLOCK_COLUMNS, synced_tables


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
    factory = _copy_of_server(server_factory, path)
    _reset(factory, name)
    return Device(name, factory, actor, token, server_url)


def _copy_of_server(server_factory: SessionFactory, path: Path) -> SessionFactory:
    engine = server_factory.kw["bind"]
    if engine.dialect.name == "sqlite":
        # A consistent copy: SQLite's backup API through a fresh connection.
        source = server_db_path(server_factory)
        with closing(sqlite3.connect(source)) as a, closing(sqlite3.connect(path)) as b:
            a.backup(b)
        return open_db(f"sqlite:///{path}", migrate=False)
    factory = open_db(f"sqlite:///{path}")
    _copy_tables(server_factory, factory)
    return factory


def _reset(factory: SessionFactory, name: str) -> None:
    """The copy becomes a new device: its own id, an empty change log, the cursor at the
    server's feed head."""
    with factory() as s, s.begin():
        head = feed.head(s)
        s.execute(delete(ChangeLog))
        s.execute(update(LocalDevice).values(id=new_id(), last_seq=0, name=name))
        sync_device.state(s).cursor = head


def device_template(server_factory: SessionFactory, path: Path) -> Path:
    """A device database of the server as it is now (what :func:`make_device` makes), closed,
    for :class:`DeviceSlots` to copy (a device copied after the server moved on pulls what
    happened meanwhile: correct, only slower)."""
    factory = _copy_of_server(server_factory, path)
    try:
        _reset(factory, "template")
    finally:
        factory.kw["bind"].dispose()
    if Path(f"{path}-wal").exists():  # closing the last connection checkpoints it
        raise RuntimeError(f"{path}: the write-ahead log was left behind; the copy is not whole")
    return path


class DeviceSlots:
    """Devices made again and again from one :func:`device_template`, each into its slot's
    file, so that a slot keeps its engine (and with it SQLAlchemy's compiled statements,
    which are per engine) from one device to the next: for tests that make hundreds of
    devices. A slot's previous device must be closed before it is made again."""

    def __init__(self, template: Path, folder: Path) -> None:
        self.template = template
        self.folder = folder
        self.factories: dict[str, SessionFactory] = {}

    def path(self, slot: str) -> Path:
        return self.folder / f"{slot}.db"

    def device(self, slot: str, server_url: str, name: str, actor: Actor, token: str) -> Device:
        path = self.path(slot)
        _copy_template(self.template, path)
        factory = self.factories.get(slot)
        if factory is None:
            factory = self.factories[slot] = open_db(f"sqlite:///{path}", migrate=False)
        _new_identity(factory, name)
        return Device(name, factory, actor, token, server_url)

    def close(self) -> None:
        for factory in self.factories.values():
            factory.kw["bind"].dispose()


def _copy_template(template: Path, path: Path) -> None:
    # With no connection open, SQLite has checkpointed and removed the write-ahead log; one
    # left behind would be applied to the new copy.
    for suffix in ("-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            raise RuntimeError(f"{path}{suffix} exists: is a connection to {path} still open?")
    shutil.copyfile(template, path)


def _new_identity(factory: SessionFactory, name: str) -> None:
    with factory() as s, s.begin():
        s.execute(update(LocalDevice).values(id=new_id(), name=name))


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
    """Differences between the server and each device (synced tables, ids included; at most
    40 per device, worded as :func:`tests.app.apply.replay.diff` words them), stock caches
    that disagree with the movements, and ops still pending. Each database is read in one
    transaction, a table at a time (the server's rows once for all the devices)."""
    found: dict[str, list[str]] = {d.name: [] for d in devices}
    with ExitStack() as stack:
        server = stack.enter_context(_reading(server_factory))
        mine = {d.name: stack.enter_context(_reading(d.factory)) for d in devices}
        for name in synced_tables():
            theirs = table_rows(server, name)
            for d in devices:
                if len(found[d.name]) < 40:
                    found[d.name] += _table_diff(name, theirs, table_rows(mine[d.name], name))
    problems: list[str] = []
    for d in devices:
        problems += [f"{d.name}: {p}" for p in found[d.name][:40]]
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


@contextmanager
def _reading(factory: SessionFactory) -> Iterator[Session]:
    with factory() as s, s.begin():
        yield s


Rows = dict[Any, tuple[Any, ...]]


def table_rows(session: Session, name: str) -> tuple[list[str], Rows]:
    """A synced table's column names and rows (by primary key), as
    :func:`tests.app.apply.replay.diff` compares them: clock columns left out; coach insight
    rows only once decided, keyed by what they are about (each device's coach makes its
    own)."""
    table = Base.metadata.tables[name]
    cols = [c for c in table.columns if c.name not in CLOCK_COLUMNS]
    if name == "stand_ai_insight":
        cols = [c for c in cols if c.name != "id"]
        names = [c.name for c in cols]
        stand, key = names.index("stand_id"), names.index("dedup_key")
        rows = session.execute(select(*cols).where(table.c.status != InsightStatus.NEW.value))
        return names, {(r[stand], r[key]): tuple(r) for r in rows}
    names = [c.name for c in cols]
    pk = [names.index(c.name) for c in table.primary_key.columns]
    return names, {tuple(r[i] for i in pk): tuple(r) for r in session.execute(select(*cols))}


def _table_diff(
    name: str, source: tuple[list[str], Rows], replica: tuple[list[str], Rows]
) -> list[str]:
    """One table's differences, worded as :func:`tests.app.apply.replay.diff` words them."""
    names, a = source
    b = replica[1]
    if a == b:
        return []
    out: list[str] = []
    for key in sorted(a.keys() - b.keys(), key=str):
        out.append(f"{name} {key}: only in the source: {dict(zip(names, a[key], strict=True))}")
    for key in sorted(b.keys() - a.keys(), key=str):
        out.append(f"{name} {key}: only in the replica: {dict(zip(names, b[key], strict=True))}")
    for key in sorted(a.keys() & b.keys(), key=str):
        if a[key] != b[key]:
            changed = {c: (x, y) for c, x, y in zip(names, a[key], b[key], strict=True) if x != y}
            out.append(f"{name} {key}: source vs replica {changed}")
    return out
