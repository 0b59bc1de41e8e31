"""The settings screen: data folder, who is signed in (kept for the next start), device id,
version, and an honest word about sync. (QSettings are private to each test: see conftest.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

from app import __version__
from app.backend import Backend
from app.models import Role
from app.services.base import device_id
from tests.conftest import make_stand
from tests.ui.conftest import wait_idle
from ui.views.settings import SettingsView, data_folder, shown_location


def _view(qtbot, ctx) -> SettingsView:
    view = SettingsView(ctx)
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.show()
    view.refresh()
    wait_idle(qtbot, ctx)
    return view


def _device_id(session) -> str:
    with session.begin():
        return device_id(session)


def test_shows_folder_version_device_and_sync(qtbot, ctx, ui_backend: Backend) -> None:
    view = _view(qtbot, ctx)
    assert not view.loading
    folder = data_folder(ui_backend.location)
    assert folder is not None
    assert view.folder_label.text() == str(folder)
    assert __version__ in view.version_label.text()
    assert view.device_label.text() == ui_backend.read(_device_id)
    assert view.copy_device_button.isEnabled()
    assert view.sync_status.text() == "Not linked to a server."
    assert view.link_button.isVisible()
    assert "No changes are waiting to be sent." in view.backlog.text()
    assert "Signed in as mgr.max, Manager." in view.current_user.text()
    assert "not checked" in " ".join(
        label.text() for label in view.findChildren(type(view.backlog))
    )


def test_the_backlog_counts_changes_waiting_for_sync(qtbot, ctx, ui_backend: Backend) -> None:
    view = _view(qtbot, ctx)
    ui_backend.call(make_stand)
    ctx.changed("stands")  # any write: the screen, being visible, refreshes
    wait_idle(qtbot, ctx)
    assert "changes made on this computer are kept in order" in view.backlog.text()


def test_open_folder(qtbot, ctx, ui_backend: Backend, monkeypatch) -> None:
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    view = _view(qtbot, ctx)
    qtbot.mouseClick(view.open_folder_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(data_folder(ui_backend.location))]
    assert view.folder_message.text() == ""

    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)
    assert not view.open_folder()
    assert "Could not open a file manager" in view.folder_message.text()


def test_copy_device_id(qtbot, ctx, ui_backend: Backend) -> None:
    view = _view(qtbot, ctx)
    qtbot.mouseClick(view.copy_device_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == ui_backend.read(_device_id)


def test_change_user_and_role_for_the_next_start(qtbot, ctx_as) -> None:
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    assert view.user_edit.text() == "rep.anna"
    assert view.role_combo.currentData() == "rep"

    view.user_edit.clear()
    qtbot.mouseClick(view.save_user_button, Qt.MouseButton.LeftButton)
    assert view.user_error.text() == "A user name is required."
    assert view.user_error.isVisible()
    assert QSettings().value("user/name") is None  # nothing stored

    qtbot.keyClicks(view.user_edit, "mgr.max")
    assert not view.user_error.isVisible()
    view.role_combo.setCurrentIndex(view.role_combo.findData("manager"))
    qtbot.mouseClick(view.save_user_button, Qt.MouseButton.LeftButton)
    assert QSettings().value("user/name") == "mgr.max"
    assert QSettings().value("user/role") == "manager"
    assert "Restart the app" in view.user_message.text()
    assert "still rep.anna" in view.user_message.text()
    # The running app keeps its actor: roles are not switched behind anyone's back.
    assert ctx.actor.user == "rep.anna"

    # The next time the screen opens, it shows what was stored.
    again = _view(qtbot, ctx)
    assert again.user_edit.text() == "mgr.max"
    assert again.role_combo.currentData() == "manager"


def test_touch_targets(qtbot, ctx) -> None:
    view = _view(qtbot, ctx)
    for button in (view.open_folder_button, view.save_user_button, view.copy_device_button):
        assert button.height() >= 40
    assert view.user_edit.height() >= 40
    assert view.role_combo.height() >= 40


@pytest.mark.parametrize(
    ("location", "folder"),
    [
        ("/home/anna/stand-os", Path("/home/anna/stand-os")),
        ("sqlite:////tmp/ob/demo/stand.db", Path("/tmp/ob/demo")),
        ("sqlite:///relative/stand.db", Path("relative")),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://db.example/stand", None),
        ("", None),
    ],
)
def test_data_folder(location: str, folder: Path | None) -> None:
    assert data_folder(location) == folder


def test_a_server_database_has_no_folder_to_open(qtbot, ctx, monkeypatch) -> None:
    monkeypatch.setattr(ctx.backend, "location", "postgresql+psycopg://db.example/stand")
    view = _view(qtbot, ctx)
    assert not view.open_folder_button.isEnabled()
    assert view.folder_label.text() == "postgresql+psycopg://db.example/stand"


def test_a_server_password_is_never_shown(qtbot, ctx, monkeypatch) -> None:
    url = "postgresql+psycopg://stand:s3cret@db.example:5432/stand"
    assert shown_location(url) == "postgresql+psycopg://stand:***@db.example:5432/stand"
    monkeypatch.setattr(ctx.backend, "location", url)
    view = _view(qtbot, ctx)
    assert "s3cret" not in view.folder_label.text()
