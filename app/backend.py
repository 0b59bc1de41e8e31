"""The outer layers' handle on the domain: one open database, one session per call.

The GUI and the command line never open a SQLAlchemy session themselves; they hand a
service function and plain values to :meth:`Backend.call`, which runs it in a fresh session
on the calling thread (so a GUI worker thread gets its own session, never a shared one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from app.db import SessionFactory, open_db, read_sessionmaker
from app.paths import data_dir, database_url
from app.reference import seed_reference_data
from app.services.base import transactional

P = ParamSpec("P")
R = TypeVar("R")


class Backend:
    def __init__(self, factory: SessionFactory, *, location: str = "") -> None:
        self._factory = factory
        self._read_factory = read_sessionmaker(factory)
        self.location = location

    @classmethod
    def open(cls, url: str) -> Backend:
        factory = open_db(url)
        backend = cls(factory, location=url)
        backend.call(transactional(seed_reference_data))
        return backend

    @classmethod
    def open_folder(cls, folder: str | None = None, *, demo: bool = False) -> Backend:
        path = data_dir(folder, demo=demo)
        path.mkdir(parents=True, exist_ok=True)
        backend = cls.open(database_url(path))
        backend.location = str(path)
        return backend

    @property
    def factory(self) -> SessionFactory:
        """The write session factory (for work that runs its own transactions, like sync)."""
        return self._factory

    def call(
        self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run a service function in its own session on this thread."""
        with self._factory() as session:
            return fn(session, *args, **kwargs)

    def read(
        self, fn: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run a read-only query: it does not take the write lock, so it never waits for
        sync or another writer. A write attempted here fails instead of committing."""
        with self._read_factory() as session:
            return fn(session, *args, **kwargs)

    def with_factory(
        self, fn: Callable[Concatenate[SessionFactory, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run a function that manages its own sessions (bulk work such as the demo)."""
        return fn(self._factory, *args, **kwargs)

    def close(self) -> None:
        self._factory.kw["bind"].dispose()
