"""Automatic sync while the app is open, and what the status bar and Sync view show of it.

One :class:`SyncController` per :class:`~ui.context.UiContext` (get it with
:func:`sync_controller`). It runs :meth:`sync.client.SyncClient.round` on the runner's
parallel lane: off the GUI thread and off the serial database lane, so a sale recorded
while a slow server answers never waits for it (the client opens its own short
transactions). Never two rounds at once: a reason to sync that comes during a round (a
write) runs one more round when it ends; "Sync now" during a round waits for that one.

When it syncs, once :meth:`SyncController.start` was called (the main window does):

- at start, when the device is linked to a server;
- every ``sync/interval_s`` seconds (QSettings; 60 by default, 0 = off), counted from the
  end of the last round;
- :data:`DEBOUNCE_MS` after a write that left changes unsent (a burst of sales is one
  round);
- "Sync now", also before :meth:`start` (Settings links a device, then syncs once).

The server's address is the device's (``app.services.sync_settings``); its sign-in comes
from :class:`sync.credentials.CredentialStore` in the data folder and is read on the
worker. Being offline is normal: the round ends calmly (after a few quick retries) and the
next tick tries again. How the last round ended is the client's ``RoundResult.state``
(offline, busy, refused, ...), shown in plain words by :func:`trouble`; a refused sign-in
asks for the device to be linked again. A round that received or corrected anything
announces every kind of change, so each screen shows the new data. While started, the
status is read again every minute (:data:`AGE_REFRESH_MS`), so the age of the oldest unsent
change stays current even with automatic sync off. :meth:`SyncController.stop` (window
close) stops the timers and cancels a round under way (the client's cancel event: it ends
after its last stored step, at once if it was waiting to retry).
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLocale, QObject, QSettings, Qt, QTime, QTimer, Signal

from app.backend import Backend
from app.clock import utcnow
from app.paths import data_dir
from app.services import sync_settings
from app.services.sync_device import SyncStatus
from app.services.sync_settings import SyncOverview
from sync.client import GROW_TO, RoundResult, SyncClient, age, link_device
from sync.credentials import CredentialStore, DeviceCredentials
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.widgets import local_time, plural

#: Wait after a write before syncing it (a burst of writes is one round).
DEBOUNCE_MS = 2000
#: How often the status is read again to keep the age of the oldest unsent change current.
AGE_REFRESH_MS = 60_000
INTERVAL_KEY = "sync/interval_s"
DEFAULT_INTERVAL_S = 60
#: The choices Settings offers, in seconds (0: only after writes and "Sync now").
INTERVALS = (0, 60, 300, 900, 3600)
#: Tries per request in an automatic round. Few: the next tick tries again anyway, and a
#: round that keeps backing off would keep "Syncing…" on screen for half a minute.
CLIENT_OPTIONS: dict[str, Any] = {"max_attempts": 3, "push_batch_max": GROW_TO}
#: Every kind of change a screen refreshes on (see ui/context.py); a round that received
#: anything announces all of them, plus "sync" (so the controller knows it was itself).
ALL_KINDS = frozenset(
    {
        "stands",
        "inventory",
        "sales",
        "counts",
        "refills",
        "partners",
        "loyalty",
        "insights",
        "expansion",
        "products",
        "catalog",
        "packages",
        "sync",
    }
)

# How the last round ended (RoundOutcome.connection).
OK, OFFLINE, BUSY, REFUSED, ERROR, STOPPED, NOT_LINKED = (
    "ok",
    "offline",
    "busy",
    "refused",
    "error",
    "stopped",
    "not_linked",
)
#: The client's round state -> the connection shown (a cancel here is the app closing).
CONNECTION: dict[str, str] = {
    "ok": OK,
    "offline": OFFLINE,
    "busy": BUSY,
    "refused": REFUSED,
    "not_linked": NOT_LINKED,
    "cancelled": STOPPED,
    "error": ERROR,
}


def credential_folder(backend: Backend) -> Path:
    """Where the device's sign-in file goes when there is no keyring: the data folder
    (the folder of a SQLite file; the platform's data folder for a server database)."""
    location = backend.location
    if location.startswith("sqlite:///"):
        path = location.removeprefix("sqlite:///").split("?", 1)[0]
        if path and path != ":memory:":
            return Path(path).parent
    elif location and "://" not in location:
        return Path(location)
    return data_dir()


def interval_setting() -> int:
    """The automatic sync interval in seconds (0: off), from QSettings."""
    try:
        value = int(str(QSettings().value(INTERVAL_KEY, DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return max(0, value)


# ---------------------------------------------------------------------- the worker side


@dataclass(frozen=True)
class RoundOutcome:
    """How a round ended: ``connection`` is one of ok, offline, busy (the server kept
    answering "later"), refused (it said no: the message says why), error (this device
    failed), stopped (the app closed) or not_linked."""

    connection: str
    result: RoundResult | None = None
    message: str | None = None

    @property
    def received(self) -> bool:
        """Whether the round changed data on this device beyond the answers to its ops."""
        r = self.result
        return r is not None and bool(r.pulled or r.refreshed or r.bootstrapped or r.rejected)


def run_round(
    backend: Backend,
    url: str,
    store: CredentialStore,
    stop: threading.Event,
    report: Callable[[str, int, int], None],
    options: dict[str, Any],
) -> RoundOutcome:
    """One sync round (runs on a worker thread; plain values in and out)."""
    creds = store.load(url)
    if creds is None:
        return RoundOutcome(
            NOT_LINKED, message=tr("This device is not linked to {url}.").format(url=url)
        )
    before = backend.read(sync_settings.overview).status

    def progress(stage: str, done: int, total: int) -> None:
        # pull: (cursor, head) -> received of this round's share; push: ops answered.
        if stage == "pull":
            report(stage, max(0, done - before.cursor), max(0, total - before.cursor))
        elif stage == "push":
            report(stage, done, max(done, before.unsent))
        else:
            report(stage, done, 0)

    with SyncClient(
        backend.factory,
        url,
        credentials=creds,
        cancel=stop,
        on_progress=progress,
        **options,
    ) as client:
        result = client.round()
    connection = CONNECTION.get(result.state, ERROR)
    if connection == OK:
        return RoundOutcome(OK, result)
    return RoundOutcome(connection, result, result.error)


def register_device(
    url: str, username: str, password: str, store: CredentialStore
) -> DeviceCredentials:
    """Sign in with the password once, register this device and keep its own sign-in
    (worker thread). The password goes no further than this call."""
    name = f"Stand OS · {platform.node() or 'desktop'}"
    creds = link_device(url, username, password, name)
    store.save(creds)
    return creds


def load_credentials(store: CredentialStore, url: str) -> DeviceCredentials | None:
    return store.load(url)


# ---------------------------------------------------------------------- what the bar says


@dataclass(frozen=True)
class StatusLine:
    """The status bar's words: the main text, the rejected count (shown in a warning
    colour; empty when none) and a tooltip that says more."""

    text: str
    rejected: str
    tooltip: str


def short_time(value: datetime) -> str:
    """10:42 today, else the date and time."""
    local = value.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return str(
            QLocale().toString(
                QTime(local.hour, local.minute, local.second), QLocale.FormatType.ShortFormat
            )
        )
    return local_time(value)


def unsent_text(status: SyncStatus, now: datetime, *, lower: bool = False) -> str:
    """ "3 unsent · oldest 2 h", or "All changes sent" ("all changes sent" with ``lower``)."""
    if not status.unsent:
        return tr("all changes sent") if lower else tr("All changes sent")
    text = plural(status.unsent, "{n} unsent", "{n} unsent")
    oldest = oldest_age(status, now)
    if oldest:
        text += " · " + tr("oldest {age}").format(age=oldest)
    return text


def oldest_age(status: SyncStatus, now: datetime) -> str:
    """How old the oldest unsent change is ("2 h", "under 1 min"); "" when none is."""
    if not status.unsent:
        return ""
    oldest = age(status.oldest_unsent_at, now)
    return tr("under 1 min") if oldest.endswith(" s") else oldest


def sign_in_refused(outcome: RoundOutcome | None) -> bool:
    """Whether the server refused this device's sign-in (revoked, or its user disabled):
    only linking the device again helps."""
    return (
        outcome is not None
        and outcome.connection == REFUSED
        and outcome.result is not None
        and outcome.result.status == 401
    )


def trouble(outcome: RoundOutcome | None, *, retrying: bool) -> tuple[str, str]:
    """What went wrong in the last round, in plain words: (a short headline, an
    explanation); ("", "") when nothing did. ``retrying``: automatic rounds are on."""
    if outcome is None or outcome.connection in (OK, STOPPED, NOT_LINKED):
        return "", ""
    message = outcome.message or ""
    later = (
        tr("Sync tries again by itself.")
        if retrying
        else tr("Automatic sync is off: it tries again after your next change, or use Sync now.")
    )
    if outcome.connection == OFFLINE:
        return (
            tr("Offline — will retry") if retrying else tr("Offline"),
            tr(
                "The server cannot be reached just now. Your changes are kept on this "
                "device, in order, and sent when it can be reached. {later}"
            ).format(later=later),
        )
    if outcome.connection == BUSY:
        return (
            tr("Server busy — will retry") if retrying else tr("Server busy"),
            tr(
                "The server answered that it is busy and asked to try later ({message}). "
                "Nothing is lost. {later}"
            ).format(message=message, later=later),
        )
    if sign_in_refused(outcome):
        return (
            tr("Sign-in refused: link this device again"),
            tr(
                "The server no longer accepts this device's sign-in (it was revoked, or the "
                "user was disabled). In Settings, link this device again with your user "
                "name and password. Nothing recorded here is lost. ({message})"
            ).format(message=message),
        )
    if outcome.connection == REFUSED:
        return (
            tr("Refused by the server"),
            tr("The server refused to sync with this device: {message}").format(message=message),
        )
    return (
        tr("Sync failed"),
        tr("Sync failed on this device: {message}").format(message=message),
    )


def status_line(
    *,
    linked: bool,
    status: SyncStatus | None,
    running: bool,
    outcome: RoundOutcome | None,
    retrying: bool,
    now: datetime,
) -> StatusLine:
    """The status bar's sync text from the controller's state (see :class:`StatusLine`).
    The count and age of the unsent changes are always in it."""
    if status is None:
        return StatusLine(tr("Sync: …"), "", "")
    rejected = plural(status.rejected, "{n} rejected", "{n} rejected") if status.rejected else ""
    if not linked:
        waiting = plural(status.unsent, "{n} unsent", "{n} unsent")
        tip = tr(
            "This device is not linked to the program's server. Everything you record is "
            "kept here, in order ({unsent}); link it in Settings to send it."
        ).format(unsent=waiting)
        text = tr("Not linked to a server")
        if status.unsent:
            text += " · " + unsent_text(status, now)
        return StatusLine(text, rejected, tip)
    synced = (
        tr("synced {time}").format(time=short_time(status.last_ok_at))
        if status.last_ok_at
        else tr("never synced")
    )
    tip = tr("Click to see what is unsent, rejected or in review.")
    headline, explanation = trouble(outcome, retrying=retrying)
    if running:
        text = tr("Syncing…")
        if status.unsent:
            text += " · " + unsent_text(status, now)
    elif headline:
        text = headline + " · " + unsent_text(status, now, lower=True)
        tip = explanation + " " + tip
    else:
        text = unsent_text(status, now) + " · " + synced
    return StatusLine(text, rejected, tip)


def progress_text(stage: str, value: int, maximum: int) -> str:
    if stage == "push":
        return tr("Sending changes: {done} of {total}").format(done=value, total=maximum)
    if stage == "pull":
        if maximum:
            return tr("Receiving changes: {done} of {total}").format(done=value, total=maximum)
        return tr("Receiving changes…")
    if stage == "bootstrap":
        return tr("Downloading the program: {n} records").format(n=value)
    return tr("Syncing…")


# ---------------------------------------------------------------------- the controller


class _Relay(QObject):
    """Carries progress from the worker to the GUI thread (a queued signal)."""

    progress = Signal(str, int, int)


class SyncController(QObject):
    """Sync while the app runs (see the module docstring)."""

    #: Anything the status bar or the Sync view shows changed (status, link, a round).
    changed = Signal()
    round_started = Signal()
    #: A round ended: its :class:`RoundOutcome`.
    round_finished = Signal(object)
    #: During a round: (stage, value, maximum); maximum 0 means "unknown".
    progress = Signal(str, int, int)
    #: Linking ended: None, or the message saying why it did not work.
    link_finished = Signal(object)
    #: Unlinking ended: None, or the message saying why it did not work.
    unlink_finished = Signal(object)

    def __init__(
        self,
        ctx: UiContext,
        *,
        store: CredentialStore | None = None,
        client_options: dict[str, Any] | None = None,
        debounce_ms: int = DEBOUNCE_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent if parent is not None else ctx)
        self.setObjectName("sync_controller")
        self.ctx = ctx
        self.store = store if store is not None else CredentialStore(credential_folder(ctx.backend))
        self.client_options = {**CLIENT_OPTIONS, **(client_options or {})}
        self.active = False
        self.running = False
        #: The server this device syncs with (from its database), and whether its sign-in
        #: is here (``linked``): only then can it sync.
        self.server_url: str | None = None
        self.username: str | None = None
        self.linked = False
        self.link_error: str | None = None
        self.status: SyncStatus | None = None
        #: How this session's last round ended (None: none yet).
        self.last: RoundOutcome | None = None
        self.progress_text = ""
        self._link_known = False
        self._again = False
        self._sync_when_known = False
        self._stop = threading.Event()
        self._relay = _Relay(self)
        self._relay.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.VeryCoarseTimer)
        self._timer.timeout.connect(self._tick)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(debounce_ms)
        self._debounce.timeout.connect(self._tick)
        #: Reads the status again every minute while automatic sync is on (start to stop),
        #: so the age of the oldest unsent change stays current with no round to refresh it
        #: (interval Off, offline, or not linked).
        self.age_timer = QTimer(self)
        self.age_timer.setInterval(AGE_REFRESH_MS)
        self.age_timer.setTimerType(Qt.TimerType.VeryCoarseTimer)
        self.age_timer.timeout.connect(self._age_tick)
        self.interval_s = interval_setting()
        ctx.data_changed.connect(self._on_data_changed)
        self.refresh()

    # ------------------------------------------------------------------ state

    @property
    def connection(self) -> str | None:
        return self.last.connection if self.last is not None else None

    @property
    def retrying(self) -> bool:
        """Whether a failed round is tried again by itself on the timer."""
        return self.active and self.interval_s > 0

    @property
    def sign_in_refused(self) -> bool:
        """The last round's sign-in was refused: the device must be linked again."""
        return self.linked and sign_in_refused(self.last)

    def trouble(self) -> tuple[str, str]:
        """What went wrong in the last round (see :func:`trouble`)."""
        return trouble(self.last, retrying=self.retrying)

    def line(self) -> StatusLine:
        return status_line(
            linked=self.linked,
            status=self.status,
            running=self.running,
            outcome=self.last,
            retrying=self.retrying,
            now=utcnow(),
        )

    def refresh(self, *, recheck_link: bool = False) -> None:
        """Read the status again (and the sign-in, when the server changed or asked)."""
        if recheck_link:
            self._link_known = False
        self.ctx.read(
            sync_settings.overview, on_done=self._got_overview, on_error=self._failed_read
        )

    def _got_overview(self, overview: SyncOverview) -> None:
        self.status = overview.status
        url = overview.server_url
        if url != self.server_url or not self._link_known:
            self.server_url = url
            self._check_link(url)
        self.changed.emit()

    def _check_link(self, url: str | None) -> None:
        self._link_known = True  # asked; the answer follows
        if url is None:
            self._set_link(None, None)
            return
        # The keyring may be slow (or ask to be unlocked): never on the GUI thread.
        self.ctx.runner.run_parallel(
            load_credentials,
            self.store,
            url,
            on_done=lambda creds: self._set_link(creds, None) if url == self.server_url else None,
            on_error=lambda exc: self._set_link(None, str(exc)),
        )

    def _set_link(self, creds: DeviceCredentials | None, error: str | None) -> None:
        self.linked = creds is not None
        self.username = creds.username if creds else None
        self.link_error = error
        self.changed.emit()
        if self._sync_when_known:
            self._sync_when_known = False
            if self.linked:
                self.sync_now()

    def _failed_read(self, exc: Exception) -> None:
        self.ctx.status.emit(tr("Could not read the sync status: {error}").format(error=exc))

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Sync automatically from now on (first round as soon as the link is known)."""
        if self.active:
            return
        self.active = True
        self._stop = threading.Event()
        self.age_timer.start()
        self._sync_when_known = True
        self.refresh(recheck_link=True)

    def stop(self) -> None:
        """No more rounds; a round under way ends at its next request or wait, and this
        returns once it has (window close, tests)."""
        self.active = False
        self._sync_when_known = False
        self._again = False
        self._timer.stop()
        self._debounce.stop()
        self.age_timer.stop()
        self._stop.set()
        if self.running:
            self.ctx.runner.wait()

    def set_interval(self, seconds: int) -> None:
        """Sync every ``seconds`` (0: off); counted from now if a round is not under way."""
        self.interval_s = max(0, int(seconds))
        self._timer.stop()
        self._arm()
        self.changed.emit()  # "will retry" depends on it

    def _age_tick(self) -> None:
        if self.active and not self.running:
            self.refresh()

    @property
    def pending(self) -> bool:
        """True while a round is under way or due soon (after a write)."""
        return self.running or self._again or self._debounce.isActive()

    @property
    def scheduled(self) -> bool:
        """True while a timed round is scheduled."""
        return self._timer.isActive()

    def sync_now(self) -> bool:
        """Start a round now. False when the device is not linked, the app is closing, or
        a round is under way (that one's :attr:`round_finished` is the answer)."""
        if self.running or not self.linked or not self.server_url or self._stop.is_set():
            return False
        self._timer.stop()
        self._debounce.stop()
        self.running = True
        self.progress_text = tr("Syncing…")
        self.round_started.emit()
        self.changed.emit()
        self.ctx.runner.run_parallel(
            run_round,
            self.ctx.backend,
            self.server_url,
            self.store,
            self._stop,
            self._relay.progress.emit,
            dict(self.client_options),
            on_done=self._round_done,
            on_error=self._round_failed,
        )
        return True

    def _tick(self) -> None:
        if not self.active:
            return
        if self.running:
            self._again = True
        else:
            self.sync_now()

    def _arm(self) -> None:
        if self.active and self.linked and self.interval_s and not self.running:
            self._timer.start(self.interval_s * 1000)

    def _on_progress(self, stage: str, value: int, maximum: int) -> None:
        if not self.running:
            return
        self.progress_text = progress_text(stage, value, maximum)
        self.progress.emit(stage, value, maximum)
        self.changed.emit()

    def _round_done(self, outcome: RoundOutcome) -> None:
        self.running = False
        self.progress_text = ""
        if outcome.connection == STOPPED:
            return
        self.last = outcome
        if outcome.received:
            # Everything may have changed: every screen reads again.
            self.ctx.data_changed.emit(Changed(ALL_KINDS))
        self.refresh()
        self.round_finished.emit(outcome)
        self._after_round()

    def _round_failed(self, exc: Exception) -> None:
        self.running = False
        self.progress_text = ""
        self.last = RoundOutcome(ERROR, message=str(exc))
        self.refresh()
        self.round_finished.emit(self.last)
        self._after_round()

    def _after_round(self) -> None:
        if self._again and self.active:
            self._again = False
            self.sync_now()
        else:
            self._arm()

    def _on_data_changed(self, change: Changed) -> None:
        if change.touches("sync"):
            return  # our own announcement after a round; the round refreshed the status
        self.ctx.read(sync_settings.overview, on_done=self._after_write, on_error=self._failed_read)

    def _after_write(self, overview: SyncOverview) -> None:
        self._got_overview(overview)
        if self.active and self.linked and overview.status.unsent:
            if self.running:
                self._again = True
            else:
                self._debounce.start()

    # ------------------------------------------------------------------ linking

    def link(self, url: str, username: str, password: str) -> None:
        """Link this device to ``url``: check it may, sign in once and register the
        device (its own sign-in is kept in the store, never the password), remember the
        server, then sync once. Ends with :attr:`link_finished`."""
        runner = self.ctx.runner

        def failed(exc: Exception) -> None:
            self.link_finished.emit(str(getattr(exc, "message", None) or exc))

        def checked(wanted: str) -> None:
            runner.run_parallel(
                register_device,
                wanted,
                username,
                password,
                self.store,
                on_done=lambda creds: registered(wanted, creds),
                on_error=failed,
            )

        def registered(wanted: str, creds: DeviceCredentials) -> None:
            runner.run_db(
                self.ctx.backend.call,
                sync_settings.set_server_url,
                wanted,
                on_done=lambda _url: stored(wanted, creds),
                on_error=failed,
            )

        def stored(wanted: str, creds: DeviceCredentials) -> None:
            self.server_url = wanted
            self._link_known = True
            self.last = None  # a refused sign-in is the old one's
            self._set_link(creds, None)
            self.link_finished.emit(None)
            self.sync_now()

        self.ctx.read(sync_settings.check_link_target, url, on_done=checked, on_error=failed)

    def unlink(self) -> None:
        """Forget this device's sign-in to its server (the unsent changes stay, and are
        sent once it is linked again). Ends with :attr:`unlink_finished`."""
        url = self.server_url
        if url is None:
            self.unlink_finished.emit(None)
            return
        self._timer.stop()
        self._debounce.stop()

        def done(_: object) -> None:
            self.last = None
            self._set_link(None, None)
            self.unlink_finished.emit(None)

        self.ctx.runner.run_parallel(
            self.store.delete,
            url,
            on_done=done,
            on_error=lambda exc: self.unlink_finished.emit(str(exc)),
        )


def sync_controller(ctx: UiContext, **kwargs: Any) -> SyncController:
    """The context's :class:`SyncController`, made on first use (``kwargs`` then go to
    its constructor)."""
    found = ctx.findChild(SyncController, "sync_controller")
    return found if isinstance(found, SyncController) else SyncController(ctx, **kwargs)
