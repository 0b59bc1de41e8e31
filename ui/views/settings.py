"""Settings: where the data lives, who is signed in on this computer, this device's identity,
the version, and where sync stands (not set up yet, and the screen says so).

The user name and role are kept in QSettings ("user/name", "user/role"), which ``stand-os``
reads at start-up unless ``--user``/``--role`` or ``STAND_OS_USER``/``STAND_OS_ROLE`` say
otherwise. They are not a sign-in: nothing checks them until sign-in arrives with sync, and
the screen says that too.
"""

from __future__ import annotations

import platform
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import PySide6
from PySide6.QtCore import QSettings, Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.models import Role
from app.services.onboarding_views import DeviceSummary, device_summary
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.widgets import TOUCH, FieldError, kinetic, local_time

ROLE_NAMES = {
    Role.REP: "Field rep",
    Role.MANAGER: "Manager",
    Role.ADMIN: "Admin",
    Role.PARTNER: "Partner (shop)",
}
USER_KEY, ROLE_KEY = "user/name", "user/role"


def data_folder(location: str) -> Path | None:
    """The local folder that holds the data: the folder itself, or the folder of a SQLite
    file URL; ``None`` for a database on a server (or in memory)."""
    if not location:
        return None
    if "://" not in location:
        return Path(location)
    if location.startswith("sqlite:///"):
        path = location.removeprefix("sqlite:///").split("?", 1)[0]
        if path and path != ":memory:":
            return Path(path).parent
    return None


def shown_location(location: str) -> str:
    """A database location fit to show on screen: a server URL's password is hidden."""
    parts = urlsplit(location)
    if parts.password is None:
        return location
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _small(label: QLabel) -> QLabel:
    label.setWordWrap(True)
    font = label.font()
    font.setPointSizeF(max(7.0, font.pointSizeF() - 1))
    label.setFont(font)
    return label


def _selectable(label: QLabel) -> QLabel:
    label.setTextInteractionFlags(
        Qt.TextInteractionFlag.TextSelectableByMouse
        | Qt.TextInteractionFlag.TextSelectableByKeyboard
    )
    label.setWordWrap(True)
    return label


class SettingsView(QWidget):
    title = "Settings"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.loading = False
        self.device: DeviceSummary | None = None

        # ---- data folder
        self.folder = data_folder(ctx.backend.location)
        self.folder_label = _selectable(QLabel())
        self.folder_label.setObjectName("data_folder")
        self.folder_label.setText(
            str(self.folder) if self.folder is not None else shown_location(ctx.backend.location)
        )
        self.open_folder_button = QPushButton(tr("Open folder"))
        self.open_folder_button.setMinimumHeight(TOUCH)
        self.open_folder_button.setEnabled(self.folder is not None)
        self.open_folder_button.setToolTip(tr("Show the data folder in the file manager"))
        self.open_folder_button.clicked.connect(self.open_folder)
        self.folder_message = QLabel()
        self.folder_message.setWordWrap(True)
        data_box = QGroupBox(tr("Data"))
        data_layout = QVBoxLayout(data_box)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(self.open_folder_button)
        data_layout.addLayout(folder_row)
        backup = QLabel(
            tr(
                "Everything is stored in this folder on this computer. Back it up (copy the "
                "folder while the app is closed) until sync keeps a copy on the server."
            )
        )
        _small(backup)
        data_layout.addWidget(backup)
        data_layout.addWidget(self.folder_message)

        # ---- who is signed in
        actor = ctx.actor
        self.current_user = _selectable(QLabel())
        self.current_user.setObjectName("current_user")
        self.current_user.setText(
            tr("Signed in as {user}, {role}.").format(
                user=actor.user, role=tr(ROLE_NAMES.get(actor.role, actor.role.value))
            )
        )
        settings = QSettings()
        self.user_edit = QLineEdit(str(settings.value(USER_KEY, actor.user) or actor.user))
        self.user_edit.setObjectName("user_name")
        self.user_edit.setMaxLength(60)
        self.user_edit.setMinimumHeight(TOUCH)
        self.role_combo = QComboBox()
        self.role_combo.setObjectName("user_role")
        self.role_combo.setMinimumHeight(TOUCH)
        for role in (Role.REP, Role.MANAGER, Role.ADMIN, Role.PARTNER):
            self.role_combo.addItem(tr(ROLE_NAMES[role]), role.value)
        stored_role = str(settings.value(ROLE_KEY, actor.role.value) or actor.role.value)
        index = self.role_combo.findData(stored_role)
        self.role_combo.setCurrentIndex(index if index >= 0 else 0)
        self.user_error = FieldError()
        self.user_error.setObjectName("error_user_name")
        self.user_edit.textChanged.connect(lambda _t: self.user_error.show_message(""))
        self.save_user_button = QPushButton(tr("Save for next start"))
        self.save_user_button.setMinimumHeight(TOUCH)
        self.save_user_button.clicked.connect(self.save_user)
        self.user_message = QLabel()
        self.user_message.setObjectName("user_message")
        self.user_message.setWordWrap(True)
        user_box = QGroupBox(tr("Who uses this computer"))
        user_form = QFormLayout(user_box)
        user_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        user_form.addRow(self.current_user)
        name_box = QWidget()
        name_layout = QVBoxLayout(name_box)
        name_layout.setContentsMargins(0, 0, 0, 0)
        name_layout.setSpacing(2)
        name_layout.addWidget(self.user_edit)
        name_layout.addWidget(self.user_error)
        user_form.addRow(self._caption(tr("User name"), self.user_edit), name_box)
        user_form.addRow(self._caption(tr("Role"), self.role_combo), self.role_combo)
        user_form.addRow("", self.save_user_button)
        honesty = QLabel(
            tr(
                "Roles are not checked yet: anyone at this computer can choose any role here, "
                "until sign-in arrives with sync. A change applies the next time the app "
                "starts; the --user and --role options and the STAND_OS_USER and "
                "STAND_OS_ROLE variables take precedence."
            )
        )
        _small(honesty)
        user_form.addRow(honesty)
        user_form.addRow(self.user_message)

        # ---- sync
        self.sync_status = QLabel(tr("Sync: not set up yet."))
        self.sync_status.setStyleSheet("font-weight: bold;")
        sync_later = QLabel(
            tr(
                "Sync with the program's server arrives in a later version. Until then, the "
                "data on this computer stays on this computer."
            )
        )
        sync_later.setWordWrap(True)
        self.sync_status.setObjectName("sync_status")
        self.sync_status.setWordWrap(True)
        self.backlog = QLabel(tr("Loading…"))
        self.backlog.setObjectName("backlog")
        self.backlog.setWordWrap(True)
        sync_box = QGroupBox(tr("Sync"))
        sync_layout = QVBoxLayout(sync_box)
        sync_layout.addWidget(self.sync_status)
        sync_layout.addWidget(sync_later)
        sync_layout.addWidget(self.backlog)

        # ---- about
        self.device_label = _selectable(QLabel(tr("Loading…")))
        self.device_label.setObjectName("device_id")
        self.device_label.setWordWrap(False)
        self.device_about = _selectable(QLabel())
        self.copy_device_button = QPushButton(tr("Copy"))
        self.copy_device_button.setMinimumHeight(TOUCH)
        self.copy_device_button.setToolTip(tr("Copy the device id, e.g. for support"))
        self.copy_device_button.setEnabled(False)
        self.copy_device_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.copy_device_button.setMinimumWidth(100)
        self.copy_device_button.clicked.connect(self.copy_device_id)
        self.version_label = _selectable(
            QLabel(
                tr(
                    "Stand Program OS {version} · Qt {qt} · PySide {pyside} · Python {python}"
                ).format(
                    version=__version__,
                    qt=qVersion(),
                    pyside=PySide6.__version__,
                    python=platform.python_version(),
                )
            )
        )
        self.version_label.setObjectName("version")
        about_box = QGroupBox(tr("About this installation"))
        about_form = QFormLayout(about_box)
        about_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        about_form.addRow(tr("Version"), self.version_label)
        about_form.addRow(tr("Device id"), self.device_label)
        about_form.addRow(tr("Device"), self.device_about)
        about_form.addRow("", self.copy_device_button)

        page = QWidget()
        columns = QHBoxLayout(page)
        left, right = QVBoxLayout(), QVBoxLayout()
        left.addWidget(data_box)
        left.addWidget(user_box)
        left.addStretch(1)
        right.addWidget(sync_box)
        right.addWidget(about_box)
        right.addStretch(1)
        columns.addLayout(left, 1)
        columns.addLayout(right, 1)
        self.columns = columns
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setWidget(page)
        kinetic(area)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(area)
        ctx.data_changed.connect(self._on_changed)

    @staticmethod
    def _caption(text: str, buddy: QWidget) -> QLabel:
        label = QLabel(text)
        label.setBuddy(buddy)
        label.setMinimumHeight(TOUCH)
        return label

    # ------------------------------------------------------------------ the view protocol

    def refresh(self) -> None:
        self.loading = True
        self.ctx.read(device_summary, on_done=self._show_device, on_error=self._device_failed)

    def _show_device(self, summary: DeviceSummary) -> None:
        self.loading = False
        self.device = summary
        self.device_label.setText(summary.device_id)
        when = local_time(summary.created_at, date_only=True)
        self.device_about.setText(
            tr("{name}, set up on {when}").format(name=summary.device_name, when=when)
            if summary.device_name
            else tr("Set up on {when}").format(when=when)
        )
        self.copy_device_button.setEnabled(True)
        if summary.pending_changes:
            self.backlog.setText(
                tr(
                    "{n} changes made on this computer are kept in order, waiting to be sent "
                    "when sync is set up. Nothing is lost meanwhile."
                ).format(n=summary.pending_changes)
            )
        else:
            self.backlog.setText(tr("No changes made on this computer yet."))

    def _device_failed(self, exc: Exception) -> None:
        self.loading = False
        self.device_label.setText(tr("Could not read the device id: {error}").format(error=exc))
        self.backlog.setText("")

    def _on_changed(self, changed: Changed) -> None:
        # Every write adds to the backlog; refresh it only when this view is on screen.
        if self.isVisible() and changed.kinds:
            self.refresh()

    # ------------------------------------------------------------------ actions

    def open_folder(self) -> bool:
        if self.folder is None:
            return False
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder)))
        self.folder_message.setText(
            ""
            if opened
            else tr("Could not open a file manager; the folder is {path}.").format(path=self.folder)
        )
        return bool(opened)

    def copy_device_id(self) -> None:
        if self.device is not None:
            clipboard = QGuiApplication.clipboard()
            clipboard.setText(self.device.device_id)
            self.ctx.status.emit(tr("Device id copied."))

    def save_user(self) -> bool:
        name = self.user_edit.text().strip()
        if not name:
            self.user_error.show_message(tr("A user name is required."))
            self.user_edit.setFocus()
            return False
        role = str(self.role_combo.currentData())
        settings = QSettings()
        settings.setValue(USER_KEY, name)
        settings.setValue(ROLE_KEY, role)
        settings.sync()
        same = name == self.ctx.actor.user and role == self.ctx.actor.role.value
        self.user_message.setText(
            tr("Saved.")
            if same
            else tr(
                "Saved. Restart the app to work as {user}, {role}; until then you are "
                "still {current}."
            ).format(
                user=name,
                role=tr(ROLE_NAMES[Role(role)]),
                current=self.ctx.actor.user,
            )
        )
        return True
