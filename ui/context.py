"""What every screen gets: the backend, the task runner, who is signed in, and one signal
that says what changed.

A view never opens a session and never runs a service on the GUI thread: it calls
:meth:`UiContext.read` or :meth:`UiContext.write`, which run the service on the serial
database lane and call back on the GUI thread. After a successful write the view calls
:meth:`UiContext.changed` with what changed, and every view that shows it refreshes
(Anki's OpChanges, in small).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal
from shiboken6 import isValid

from app.backend import Backend
from app.services.base import Actor
from ui.tasks import TaskRunner


@dataclass(frozen=True)
class Changed:
    """What a write changed: kinds such as "stands", "inventory", "sales", "refills",
    "partners", "loyalty", and the ids concerned (empty = any)."""

    kinds: frozenset[str]
    ids: frozenset[str] = field(default_factory=frozenset)

    def touches(self, *kinds: str) -> bool:
        return bool(self.kinds.intersection(kinds))


class UiContext(QObject):
    #: A write finished; views showing any of its kinds refresh.
    data_changed = Signal(object)
    #: Ask the main window to show a view: (view name, argument such as a stand id).
    navigate = Signal(str, object)
    #: A short message for the status bar.
    status = Signal(str)

    def __init__(
        self, backend: Backend, runner: TaskRunner, actor: Actor, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.backend, self.runner, self.actor = backend, runner, actor

    def read(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None] | None = None,
        **kwargs: Any,
    ) -> int:
        """Run a read-only service in the background; ``on_done(result)`` on the GUI thread."""
        return self.runner.run_db(
            self.backend.read,
            fn,
            *args,
            on_done=on_done,
            on_error=on_error or self._report,
            **kwargs,
        )

    def write(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None] | None = None,
        **kwargs: Any,
    ) -> int:
        """Run a service that changes data (one transaction) in the background. The acting
        person is passed as the service's ``actor`` argument after the session."""
        return self.runner.run_db(
            self.backend.call,
            fn,
            self.actor,
            *args,
            on_done=on_done,
            on_error=on_error or self._report,
            **kwargs,
        )

    def changed(self, *kinds: str, ids: tuple[str, ...] | frozenset[str] = ()) -> None:
        self.data_changed.emit(Changed(frozenset(kinds), frozenset(ids)))

    def _report(self, exc: Exception) -> None:
        self.status.emit(str(exc))


class LatestRead:
    """Background reads for one screen where only the newest answer counts.

    A screen that reloads (the user opened another stand meanwhile) must not show the answer
    to an older request, nor touch itself after Qt deleted it. Call it like
    :meth:`UiContext.read`; stale answers are dropped.
    """

    def __init__(self, ctx: UiContext, owner: QObject) -> None:
        self.ctx, self.owner = ctx, owner
        self.token = 0

    def __call__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        **kwargs: Any,
    ) -> None:
        self.token += 1
        token = self.token

        def current() -> bool:
            return token == self.token and isValid(self.owner)

        self.ctx.read(
            fn,
            *args,
            on_done=lambda result: on_done(result) if current() else None,
            on_error=lambda exc: on_error(exc) if current() else None,
            **kwargs,
        )
