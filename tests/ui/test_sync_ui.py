"""Sync in the desktop app, against the real server on 127.0.0.1: the status bar, "Sync
now", automatic rounds, the Sync view's lists and export, and linking in Settings.

Each device is its own SQLite file (tests/sync/devices.py) opened the way the app opens a
database; the sign-in goes to the file store in the device's folder (a keyring that refuses
everything stands for a machine without one, so no test touches the user's keyring).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from keyring.backends import fail
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox
from sqlalchemy import update

from app.backend import Backend
from app.clock import utcnow
from app.models import ChangeLog, Role, StandOrder
from app.services import refills, sales, sync_settings, users
from app.services.base import Actor
from sync.client import link_device
from sync.credentials import CredentialStore, DeviceCredentials
from tests.sync.conftest import Live
from tests.sync.devices import Device, make_device
from tests.sync.test_client_state import always_503, dead_url, kiosk_sku
from tests.sync.world import PASSWORD
from tests.ui.conftest import wait_idle
from ui.context import UiContext
from ui.main_window import MainWindow
from ui.sync_controller import BUSY, OFFLINE, OK, REFUSED, SyncController, sync_controller
from ui.tasks import TaskRunner
from ui.views.settings import SettingsView
from ui.views.sync_view import SyncView

ANNA = Actor("rep.anna", Role.REP)
ADMIN = Actor("admin", Role.ADMIN)
KIOSK = "North Kiosk A"
ROUND_MS = 30_000


@dataclass
class Rig:
    """One device as the app sees it: its database, context, sign-in store, controller."""

    folder: Path
    backend: Backend
    ctx: UiContext
    store: CredentialStore
    sync: SyncController


@pytest.fixture
def rigs(qtbot) -> Iterator[Callable[..., Rig]]:
    made: list[tuple[Rig, Device | None]] = []

    def make(
        folder: Path,
        backend: Backend,
        device: Device | None = None,
        **options: object,
    ) -> Rig:
        ctx = UiContext(backend, TaskRunner(), ANNA)
        store = CredentialStore(folder, fail.Keyring())
        sync = sync_controller(ctx, store=store, debounce_ms=200, **options)
        rig = Rig(folder, backend, ctx, store, sync)
        made.append((rig, device))
        wait_idle(qtbot, ctx)
        return rig

    yield make
    for rig, device in made:
        rig.sync.stop()
        rig.ctx.runner.wait()
        if device is not None:
            device.close()


@pytest.fixture
def device_rig(live: Live, tmp_path: Path, rigs) -> Callable[..., Rig]:
    """A rep's device copied from the server's data (call it after changing the server)."""

    def make(**options: object) -> Rig:
        folder = tmp_path / "anna"
        folder.mkdir()
        device = make_device(
            live.factory, live.url, folder, "stand", ANNA, live.world.token[ANNA.user]
        )
        return rigs(folder, Backend(device.factory, location=str(folder)), device, **options)

    return make


def _link(qtbot, rig: Rig, url: str, creds: DeviceCredentials | None = None) -> None:
    """Link the device without the Settings screen (that has its own test)."""
    rig.store.save(creds or link_device(url, ANNA.user, PASSWORD, "test desktop"))
    rig.backend.call(sync_settings.set_server_url, url)
    rig.sync.refresh(recheck_link=True)
    qtbot.waitUntil(lambda: rig.sync.linked, timeout=10_000)
    wait_idle(qtbot, rig.ctx)


def _sell(rig: Rig, stand_id: str, sku: str) -> str:
    """A sale recorded on the device (offline: nothing goes anywhere by itself), announced
    the way the Sale screen announces it."""
    order = rig.backend.call(
        sales.record_sale, ANNA, stand_id, [sales.SaleLine(sku, 2)], "cash"
    ).order_id
    rig.ctx.changed("sales", "inventory", "loyalty", "stands", ids=(stand_id,))
    return str(order)


def _on_server(live: Live, order_id: str) -> bool:
    with live.factory() as s, s.begin():
        return s.get(StandOrder, order_id) is not None


def _window(qtbot, rig: Rig) -> MainWindow:
    window = MainWindow(rig.ctx)
    qtbot.addWidget(window)
    window.resize(1024, 600)
    window.show()
    wait_idle(qtbot, rig.ctx)
    return window


# ---------------------------------------------------------------------- tests


def test_not_linked(qtbot, ui_backend: Backend, two_stands, rigs, tmp_path: Path) -> None:
    rig = rigs(tmp_path, ui_backend)
    window = _window(qtbot, rig)
    unsent = rig.backend.call(sync_settings.overview).status.unsent
    assert unsent > 1  # the stands' onboarding, kept to be sent once linked
    assert window.sync_status.text.text() == (
        f"Not linked to a server · {unsent} unsent · oldest under 1 min"
    )
    assert "link it in Settings" in window.sync_status.toolTip()
    assert not rig.sync.sync_now()
    window.go("sync")
    wait_idle(qtbot, rig.ctx)
    view = window.views["sync"]
    assert isinstance(view, SyncView)
    assert view.headline.text() == "Not linked to a server"
    assert view.detail.text() == (
        f"{unsent} changes are kept on this device until it is linked (the oldest for under 1 min)."
    )
    assert view.not_linked.isVisible()
    assert not view.sync_button.isVisible()
    assert not view.sync_action.isEnabled()
    assert view.export_button.isEnabled()  # a backup needs no server
    assert view.tables["unsent"].rowCount() == unsent
    assert view.empties["unsent"].text() == "No changes made on this device are waiting."
    qtbot.mouseClick(view.settings_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, rig.ctx)
    assert window.current == "settings"
    settings = window.views["settings"]
    assert settings.sync_status.text() == "Not linked to a server."
    assert settings.link_button.isVisible()
    window.close()


def test_status_bar_and_sync_now_send_an_offline_sale(
    qtbot,
    live: Live,
    device_rig,
) -> None:
    rig = device_rig()
    _link(qtbot, rig, live.url)
    window = _window(qtbot, rig)
    bar = window.sync_status
    assert bar.text.text() == "All changes sent · never synced"
    assert not bar.rejected.isVisible()

    order = _sell(rig, live.world.stand[KIOSK], kiosk_sku(live))
    wait_idle(qtbot, rig.ctx)
    assert bar.text.text() == "1 unsent · oldest under 1 min · never synced"
    assert not _on_server(live, order)  # not started: nothing syncs by itself

    # The status bar opens the Sync view, which lists the sale as unsent.
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, rig.ctx)
    assert window.current == "sync"
    view = window.views["sync"]
    assert isinstance(view, SyncView)
    assert not view.not_linked.isVisible()
    assert f"Linked to {live.url} as rep.anna" in view.detail.text()
    unsent = view.tables["unsent"]
    assert unsent.rowCount() == 1
    assert [unsent.item(0, c).text() for c in (0, 1)] == ["Sale", KIOSK]
    assert view.tabs.tabText(0) == "Unsent (1)"

    with qtbot.waitSignal(rig.sync.round_finished, timeout=ROUND_MS) as done:
        qtbot.mouseClick(view.sync_button, Qt.MouseButton.LeftButton)
    outcome = done.args[0]
    assert outcome.connection == OK
    assert (outcome.result.pushed, outcome.result.rejected) == (1, 0)
    wait_idle(qtbot, rig.ctx)
    assert _on_server(live, order)
    assert bar.text.text().startswith("All changes sent · synced ")
    assert view.headline.text() == "All changes sent"
    assert "last synced" in view.detail.text()
    assert unsent.isHidden()
    assert view.empties["unsent"].text().startswith("Nothing waiting")
    assert view.tabs.tabText(0) == "Unsent (0)"
    window.close()


def test_automatic_rounds_one_at_a_time_and_stopped_on_close(
    qtbot,
    live: Live,
    device_rig,
) -> None:
    rig = device_rig()
    _link(qtbot, rig, live.url)
    window = _window(qtbot, rig)
    sync = rig.sync
    events: list[str] = []
    sync.round_started.connect(lambda: events.append("start"))
    sync.round_finished.connect(lambda _o: events.append("end"))

    # At start, linked: a first round.
    with qtbot.waitSignal(sync.round_finished, timeout=ROUND_MS):
        window.start()
    assert sync.scheduled  # the next one on the timer (a minute by default)

    # A write: a round shortly after, by itself.
    kiosk, sku = live.world.stand[KIOSK], kiosk_sku(live)
    first = _sell(rig, kiosk, sku)
    qtbot.waitUntil(lambda: _on_server(live, first) and not sync.pending, timeout=ROUND_MS)

    # While a round runs, asking again starts nothing; a write during it is sent after.
    assert sync.sync_now()
    assert sync.running
    assert not sync.sync_now()
    second = _sell(rig, kiosk, sku)
    qtbot.waitUntil(lambda: _on_server(live, second) and not sync.pending, timeout=ROUND_MS)
    wait_idle(qtbot, rig.ctx)
    assert events == ["start", "end"] * (len(events) // 2)  # never two at once
    assert len(events) >= 6
    assert window.sync_status.text.text().startswith("All changes sent · synced ")

    window.close()
    assert not sync.active
    assert not sync.scheduled
    assert not sync.pending
    assert not sync.sync_now()  # closing: nothing new starts


def test_offline_is_calm_and_closing_ends_a_round(
    qtbot, ui_backend: Backend, two_stands, rigs, tmp_path: Path
) -> None:
    rig = rigs(tmp_path, ui_backend, client_options={"max_attempts": 1})
    url = dead_url()
    _link(qtbot, rig, url, DeviceCredentials(url, ANNA.user, "device-1", "secret"))
    _sell(rig, two_stands[0].stand_id, two_stands[0].product_ids[0])
    window = _window(qtbot, rig)
    window.go("sync")
    with qtbot.waitSignal(rig.sync.round_finished, timeout=ROUND_MS) as done:
        assert rig.sync.sync_now()
    assert done.args[0].connection == OFFLINE
    wait_idle(qtbot, rig.ctx)
    unsent = rig.backend.call(sync_settings.overview).status.unsent
    assert unsent > 1  # the stands' onboarding and the sale
    # Automatic sync is not started here, so the words do not promise a retry.
    assert window.sync_status.text.text() == f"Offline · {unsent} unsent · oldest under 1 min"
    assert "Sync now" in window.sync_status.toolTip()
    view = window.views["sync"]
    assert view.headline.text() == f"Offline · {unsent} unsent · oldest under 1 min"
    assert view.problem.text().startswith("The server cannot be reached just now.")
    assert view.tables["unsent"].rowCount() == unsent
    assert view.sync_button.isEnabled()  # tried again on the next tick, or now

    # A round that would keep retrying for a long time ends when the window closes.
    rig.sync.client_options["max_attempts"] = 1_000_000
    assert rig.sync.sync_now()
    assert rig.sync.running
    window.close()
    qtbot.waitUntil(lambda: not rig.sync.running, timeout=ROUND_MS)
    assert not rig.ctx.runner.busy


def test_rejected_changes_show_the_reason_and_what_to_do(
    qtbot,
    live: Live,
    device_rig,
) -> None:
    kiosk, sku = live.world.stand[KIOSK], kiosk_sku(live)
    with live.factory() as s:
        refill = refills.request_refill(s, ADMIN, kiosk, {sku: 6}).refill_id
        refills.approve_refill(s, ADMIN, refill)
        refills.schedule_refill(s, ADMIN, refill, date.today() + timedelta(days=1), "Dealer")
    rig = device_rig()
    # Meanwhile the office cancels it; the rep, offline, delivers it.
    with live.factory() as s:
        refills.cancel_refill(s, ADMIN, refill, "Supplier out of stock")
    rig.backend.call(refills.deliver_refill, ANNA, refill)
    _link(qtbot, rig, live.url)
    window = _window(qtbot, rig)
    window.go("sync")
    wait_idle(qtbot, rig.ctx)
    view = window.views["sync"]
    with qtbot.waitSignal(rig.sync.round_finished, timeout=ROUND_MS) as done:
        qtbot.mouseClick(view.sync_button, Qt.MouseButton.LeftButton)
    assert done.args[0].result.rejected == 1
    wait_idle(qtbot, rig.ctx)

    assert window.sync_status.rejected.isVisible()
    assert window.sync_status.rejected.text() == "1 rejected"
    assert view.rejected_badge.text() == "1 rejected"
    assert view.tabs.tabText(1) == "Rejected (1)"
    table = view.tables["rejected"]
    assert table.rowCount() == 1
    assert [table.item(0, c).text() for c in (0, 1)] == ["Refill delivery", KIOSK]
    reason = table.item(0, 3).text()
    assert "cancelled" in reason
    # The selected one: the reason, large, and what to do about it.
    view.show_tab("rejected")
    assert view.pane.reason.text() == reason
    assert view.pane.hint.text().startswith("The units on the stand are not in stock")
    assert view.pane.open_stand.isEnabled()
    qtbot.mouseClick(view.pane.open_stand, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, rig.ctx)
    assert window.current == "stand"
    window.close()


def test_export_unsent_changes(
    qtbot, ui_backend: Backend, two_stands, rigs, tmp_path: Path, monkeypatch
) -> None:
    rig = rigs(tmp_path, ui_backend)
    order = _sell(rig, two_stands[0].stand_id, two_stands[0].product_ids[0])
    view = SyncView(rig.ctx)
    qtbot.addWidget(view)
    view.resize(1024, 560)
    view.show()
    view.refresh()
    wait_idle(qtbot, rig.ctx)
    unsent = rig.backend.call(sync_settings.overview).status.unsent
    assert view.tables["unsent"].rowCount() == unsent

    target = tmp_path / "backup.jsonl"
    asked: list[str] = []

    def choose(parent, caption, default, filters):
        asked.append(default)
        return str(target), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", choose)
    qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, rig.ctx)
    assert asked[0].endswith(".jsonl")
    assert date.today().isoformat() in Path(asked[0]).name
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(lines) == unsent
    sale = next(line for line in lines if line["op_type"] == "sale.record")
    assert (sale["entity_id"], sale["status"]) == (order, "pending")
    expected = "changes" if unsent > 1 else "change"
    assert view.message.text() == f"Wrote {unsent} unsent or rejected {expected} to {target}."

    # A folder that does not exist: said so, nothing written.
    target = tmp_path / "missing" / "backup.jsonl"
    qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, rig.ctx)
    assert view.message.text().startswith("The changes could not be exported")
    assert not target.parent.exists()
    assert view.export_button.isEnabled()

    # Cancelled: nothing happens.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: ("", ""))
    view.export()
    assert not rig.ctx.runner.busy


def test_settings_link_and_unlink(
    qtbot,
    live: Live,
    device_rig,
    monkeypatch,
) -> None:
    rig = device_rig()
    view = SettingsView(rig.ctx)
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.show()
    view.refresh()
    wait_idle(qtbot, rig.ctx)
    assert view.sync_status.text() == "Not linked to a server."
    assert not view.unlink_button.isVisible()

    # The form is checked before anything goes to the server.
    view.url_edit.setText("ftp://stands.example.com")
    assert not view.link()
    assert "http:// or https://" in view.link_errors["server_url"].text()
    assert view.link_errors["username"].isVisible()
    assert view.link_errors["password"].isVisible()

    # A wrong password: the server's answer next to the form; nothing stored or lost.
    view.url_edit.setText(live.url + "/")
    qtbot.keyClicks(view.sync_user_edit, ANNA.user)
    qtbot.keyClicks(view.password_edit, "not-the-password")
    with qtbot.waitSignal(rig.sync.link_finished, timeout=ROUND_MS) as done:
        qtbot.mouseClick(view.link_button, Qt.MouseButton.LeftButton)
    assert done.args[0]
    wait_idle(qtbot, rig.ctx)
    assert view.link_error.isVisible()
    assert view.link_error.text().startswith("This device was not linked: ")
    assert not rig.sync.linked
    assert rig.store.load(live.url) is None
    assert rig.backend.call(sync_settings.server_url) is None
    assert view.url_edit.text() == live.url + "/"
    assert view.sync_user_edit.text() == ANNA.user

    # The right one: linked, the device's own sign-in kept (not the password), a first round.
    view.password_edit.setText(PASSWORD)
    with qtbot.waitSignal(rig.sync.round_finished, timeout=ROUND_MS) as first:
        view.password_edit.returnPressed.emit()
    assert first.args[0].connection == OK
    wait_idle(qtbot, rig.ctx)
    assert rig.sync.linked
    assert view.sync_status.text() == f"Linked to {live.url} as rep.anna."
    assert rig.store.describe() in view.sync_where.text()
    assert view.password_edit.text() == ""
    assert not view.link_error.isVisible()
    assert rig.backend.call(sync_settings.server_url) == live.url
    stored = rig.store.file.read_text()
    assert PASSWORD not in stored
    assert live.url in stored
    assert not view.link_button.isVisible()
    assert view.unlink_button.isVisible()

    # Sync interval: off, then every 5 minutes.
    view.interval_combo.setCurrentIndex(view.interval_combo.findData(0))
    assert int(QSettings().value("sync/interval_s")) == 0
    assert rig.sync.interval_s == 0
    view.interval_combo.setCurrentIndex(view.interval_combo.findData(300))
    assert int(QSettings().value("sync/interval_s")) == 300
    assert rig.sync.interval_s == 300

    # Unlink, after a question that says the unsent changes stay.
    _sell(rig, live.world.stand[KIOSK], kiosk_sku(live))
    wait_idle(qtbot, rig.ctx)
    questions: list[str] = []

    def answer(parent, title, text, *args):
        questions.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    with qtbot.waitSignal(rig.sync.unlink_finished, timeout=ROUND_MS):
        qtbot.mouseClick(view.unlink_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, rig.ctx)
    assert "The 1 unsent change stays on this device" in questions[0]
    assert not rig.sync.linked
    assert rig.store.load(live.url) is None
    assert view.sync_status.text() == "Not linked to a server."
    assert view.url_edit.text()  # the address is offered again
    assert rig.backend.call(sync_settings.overview).status.unsent == 1
    assert rig.sync.line().text == "Not linked to a server · 1 unsent · oldest under 1 min"


def test_a_refused_sign_in_asks_to_link_again_and_linking_again_sends(
    qtbot,
    live: Live,
    device_rig,
) -> None:
    rig = device_rig()
    creds = link_device(live.url, ANNA.user, PASSWORD, "test desktop")
    _link(qtbot, rig, live.url, creds)
    with live.factory() as s, s.begin():
        users.revoke_device(s, creds.device_id)  # the office revokes this device
    order = _sell(rig, live.world.stand[KIOSK], kiosk_sku(live))
    window = _window(qtbot, rig)
    window.go("sync")
    with qtbot.waitSignal(rig.sync.round_finished, timeout=ROUND_MS) as done:
        assert rig.sync.sync_now()
    assert done.args[0].connection == REFUSED
    wait_idle(qtbot, rig.ctx)
    bar = window.sync_status.text.text()
    assert bar == "Sign-in refused: link this device again · 1 unsent · oldest under 1 min"
    assert "link this device again with your user name and password" in (
        window.sync_status.toolTip()
    )
    view = window.views["sync"]
    assert view.headline.text() == bar
    assert view.not_linked.isVisible()
    assert view.not_linked_text.text().startswith("The server no longer accepts")
    assert view.settings_button.text() == "Link again in Settings"
    assert view.problem.text() == f"The server said: {users.INVALID_DEVICE}"
    assert view.tables["unsent"].rowCount() == 1  # nothing lost

    # Settings offers the sign-in form again, filled in but for the password.
    qtbot.mouseClick(view.settings_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, rig.ctx)
    settings = window.views["settings"]
    assert isinstance(settings, SettingsView)
    assert settings.sync_trouble.text().startswith("Sign-in refused: link this device again.")
    assert settings.link_button.isVisible()
    assert settings.link_button.text() == "Link this device again"
    assert settings.url_edit.text() == live.url
    assert settings.sync_user_edit.text() == ANNA.user
    qtbot.keyClicks(settings.password_edit, PASSWORD)
    with qtbot.waitSignal(rig.sync.round_finished, timeout=ROUND_MS) as done:
        qtbot.mouseClick(settings.link_button, Qt.MouseButton.LeftButton)
    assert done.args[0].connection == OK
    wait_idle(qtbot, rig.ctx)
    assert _on_server(live, order)
    assert not rig.sync.sign_in_refused
    assert not settings.link_button.isVisible()
    assert not settings.sync_trouble.isVisible()
    assert window.sync_status.text.text().startswith("All changes sent · synced ")
    window.close()


def test_a_busy_server_says_so(
    qtbot, ui_backend: Backend, two_stands, rigs, tmp_path: Path
) -> None:
    rig = rigs(tmp_path, ui_backend, client_options={"max_attempts": 2})
    with always_503() as url:
        _link(qtbot, rig, url, DeviceCredentials(url, ANNA.user, "device-1", "secret"))
        window = _window(qtbot, rig)
        with qtbot.waitSignal(rig.sync.round_finished, timeout=ROUND_MS) as done:
            assert rig.sync.sync_now()
        assert done.args[0].connection == BUSY
        wait_idle(qtbot, rig.ctx)
    unsent = rig.backend.call(sync_settings.overview).status.unsent
    assert window.sync_status.text.text() == f"Server busy · {unsent} unsent · oldest under 1 min"
    assert "busy and asked to try later" in window.sync_status.toolTip()
    window.close()


def test_the_age_of_the_oldest_unsent_change_stays_current_with_sync_off(
    qtbot, ui_backend: Backend, two_stands, rigs, tmp_path: Path
) -> None:
    rig = rigs(tmp_path, ui_backend)
    rig.sync.set_interval(0)
    window = _window(qtbot, rig)
    window.start()
    wait_idle(qtbot, rig.ctx)
    unsent = rig.backend.call(sync_settings.overview).status.unsent
    assert window.sync_status.text.text().endswith(f"{unsent} unsent · oldest under 1 min")
    assert rig.sync.age_timer.isActive()  # with no rounds at all
    # Three hours go by with the app open and nothing written (the change log's times
    # moved back instead).
    with rig.backend.factory() as s, s.begin():
        s.execute(update(ChangeLog).values(created_at=utcnow() - timedelta(hours=3, minutes=1)))
    assert window.sync_status.text.text().endswith("oldest under 1 min")  # not yet read
    rig.sync.age_timer.timeout.emit()
    wait_idle(qtbot, rig.ctx)
    assert window.sync_status.text.text().endswith(f"{unsent} unsent · oldest 3 h")
    window.close()
    assert not rig.sync.age_timer.isActive()
