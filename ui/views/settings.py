"""Settings: where the data lives, who works on this computer, sync with the program's
server, this device's identity and the version.

The user name and role are kept in QSettings ("user/name", "user/role"), which ``stand-os``
reads at start-up unless ``--user``/``--role`` or ``STAND_OS_USER``/``STAND_OS_ROLE`` say
otherwise. They are not a sign-in, and the screen says so: the server checks what the
linked user may do when changes are sent.

Sync: the server's address (http:// or https://), a user name and password → "Link this
device" signs in once, registers the device and keeps the device's own sign-in (the OS
keyring, or a file only the user can read; the screen says which), never the password;
then it syncs once. "Unlink…" forgets that sign-in; unsent changes stay on the device. The
interval of automatic sync is kept in QSettings ("sync/interval_s").
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
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.errors import ValidationError
from app.models import Role
from app.services.onboarding_views import DeviceSummary, device_summary
from app.services.sync_settings import check_server_url
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.sync_controller import BUSY, INTERVAL_KEY, INTERVALS, OFFLINE, sync_controller
from ui.widgets import TOUCH, FieldError, kinetic, local_time, plural

ROLE_NAMES = {
    Role.REP: "Field rep",
    Role.MANAGER: "Manager",
    Role.ADMIN: "Admin",
    Role.PARTNER: "Partner (shop)",
}
USER_KEY, ROLE_KEY = "user/name", "user/role"
WARNING = "#b3261e"
INTERVAL_NAMES = {
    0: "Off (only after changes and Sync now)",
    60: "Every minute",
    300: "Every 5 minutes",
    900: "Every 15 minutes",
    3600: "Every hour",
}


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
                "folder while the app is closed); once the device is linked, the server "
                "keeps a copy of every change it has received."
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
                "The role is not checked on this computer: anyone here can choose any role. "
                "The server checks what the linked user may do when changes are sent. A "
                "change applies the next time the app starts; the --user and --role options "
                "and the STAND_OS_USER and STAND_OS_ROLE variables take precedence."
            )
        )
        _small(honesty)
        user_form.addRow(honesty)
        user_form.addRow(self.user_message)

        # ---- sync
        self.sync = sync_controller(ctx)
        self.sync_status = _selectable(QLabel(tr("Reading…")))
        self.sync_status.setObjectName("sync_status")
        self.sync_status.setStyleSheet("font-weight: bold;")
        self.sync_where = _small(_selectable(QLabel()))
        self.sync_where.setObjectName("sync_where")
        self.url_edit = QLineEdit()
        self.url_edit.setObjectName("server_url")
        self.url_edit.setPlaceholderText("https://stands.example.com")
        self.url_edit.setInputMethodHints(Qt.InputMethodHint.ImhUrlCharactersOnly)
        self.sync_user_edit = QLineEdit()
        self.sync_user_edit.setObjectName("sync_user")
        self.sync_user_edit.setMaxLength(60)
        self.password_edit = QLineEdit()
        self.password_edit.setObjectName("password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        for edit in (self.url_edit, self.sync_user_edit, self.password_edit):
            edit.setMinimumHeight(TOUCH)
        self.link_errors = {
            "server_url": FieldError(),
            "username": FieldError(),
            "password": FieldError(),
        }
        for name, label in self.link_errors.items():
            label.setObjectName(f"error_{name}")
        self.url_edit.textChanged.connect(
            lambda _t: self.link_errors["server_url"].show_message("")
        )
        self.sync_user_edit.textChanged.connect(
            lambda _t: self.link_errors["username"].show_message("")
        )
        self.password_edit.textChanged.connect(
            lambda _t: self.link_errors["password"].show_message("")
        )
        self.password_edit.returnPressed.connect(self.link)
        self.link_button = QPushButton(tr("Link this device"))
        self.link_button.setObjectName("link_button")
        self.link_button.setMinimumHeight(TOUCH)
        self.link_button.clicked.connect(self.link)
        self.link_error = FieldError()
        self.link_error.setObjectName("link_error")
        self.password_note = _small(
            QLabel(
                tr(
                    "Your password is used once, to register this device with the server; "
                    "it is not stored."
                )
            )
        )
        self.sync_now_button = QPushButton(tr("Sync now"))
        self.sync_now_button.setObjectName("settings_sync_now")
        self.sync_now_button.setMinimumHeight(TOUCH)
        self.sync_now_button.clicked.connect(lambda: self.sync.sync_now())
        self.unlink_button = QPushButton(tr("Unlink…"))
        self.unlink_button.setObjectName("unlink_button")
        self.unlink_button.setMinimumHeight(TOUCH)
        self.unlink_button.clicked.connect(self.unlink)
        self.linked_row = QWidget()
        linked_layout = QHBoxLayout(self.linked_row)
        linked_layout.setContentsMargins(0, 0, 0, 0)
        linked_layout.addWidget(self.sync_now_button, 1)
        linked_layout.addWidget(self.unlink_button, 1)
        self.interval_combo = QComboBox()
        self.interval_combo.setObjectName("sync_interval")
        self.interval_combo.setMinimumHeight(TOUCH)
        for seconds in INTERVALS:
            self.interval_combo.addItem(tr(INTERVAL_NAMES[seconds]), seconds)
        index = self.interval_combo.findData(self.sync.interval_s)
        if index < 0:  # a value set elsewhere: offered as it is
            self.interval_combo.addItem(
                tr("Every {n} s").format(n=self.sync.interval_s), self.sync.interval_s
            )
            index = self.interval_combo.count() - 1
        self.interval_combo.setCurrentIndex(index)
        self.interval_combo.currentIndexChanged.connect(self._interval_chosen)
        #: How the last round went wrong (offline, busy, refused...), when it did.
        self.sync_trouble = _selectable(QLabel())
        self.sync_trouble.setObjectName("sync_trouble")
        self.sync_message = QLabel()
        self.sync_message.setObjectName("sync_message")
        self.sync_message.setWordWrap(True)
        self.sync_message.hide()
        self.backlog = QLabel(tr("Loading…"))
        self.backlog.setObjectName("backlog")
        self.backlog.setWordWrap(True)
        sync_box = QGroupBox(tr("Sync"))
        # One form, its rows shown by state: the sign-in fields while not linked, the
        # linked device's buttons once it is.
        form = QFormLayout(sync_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.sync_form = form
        form.addRow(self.sync_status)
        form.addRow(self.sync_trouble)
        form.addRow(self.sync_where)
        self.link_rows: list[QWidget] = []
        for caption, edit, error in (
            (tr("Server"), self.url_edit, "server_url"),
            (tr("User name"), self.sync_user_edit, "username"),
            (tr("Password"), self.password_edit, "password"),
        ):
            box = QWidget()
            box_layout = QVBoxLayout(box)
            box_layout.setContentsMargins(0, 0, 0, 0)
            box_layout.setSpacing(2)
            box_layout.addWidget(edit)
            box_layout.addWidget(self.link_errors[error])
            form.addRow(self._caption(caption, edit), box)
            self.link_rows.append(box)
        form.addRow("", self.link_button)
        form.addRow(self.link_error)
        form.addRow(self.password_note)
        self.link_rows += [self.link_button, self.link_error, self.password_note]
        form.addRow("", self.linked_row)
        form.addRow(self._caption(tr("Automatic"), self.interval_combo), self.interval_combo)
        form.addRow(self.sync_message)
        form.addRow(self.backlog)
        self.sync.changed.connect(self._show_sync)
        self.sync.link_finished.connect(self._link_finished)
        self.sync.unlink_finished.connect(self._unlink_finished)
        self._linking = False
        self._show_sync()

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
        self.sync.refresh()
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
        self._show_backlog(summary.pending_changes)

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

    # ------------------------------------------------------------------ sync

    def _show_backlog(self, pending: int) -> None:
        if not pending:
            self.backlog.setText(tr("No changes are waiting to be sent."))
        elif self.sync.linked:
            self.backlog.setText(
                plural(
                    pending,
                    "{n} change made on this computer is waiting to be sent.",
                    "{n} changes made on this computer are waiting to be sent.",
                )
            )
        else:
            self.backlog.setText(
                plural(
                    pending,
                    "{n} change made on this computer is kept in order, waiting to be sent "
                    "once this device is linked. Nothing is lost meanwhile.",
                    "{n} changes made on this computer are kept in order, waiting to be sent "
                    "once this device is linked. Nothing is lost meanwhile.",
                )
            )

    def _show_sync(self) -> None:
        s = self.sync
        linked = s.linked
        relink = s.sign_in_refused
        for row in self.link_rows:
            self.sync_form.setRowVisible(row, not linked or relink)
        if not linked or relink:
            self.link_error.setVisible(bool(self.link_error.text()))
        self.sync_form.setRowVisible(self.linked_row, linked)
        self.sync_now_button.setEnabled(not s.running)
        headline, explanation = s.trouble() if linked else ("", "")
        self.sync_trouble.setText(f"{headline}. {explanation}" if headline else "")
        self.sync_trouble.setStyleSheet(
            "color: #5f6b7a;" if s.connection in (OFFLINE, BUSY) else f"color: {WARNING};"
        )
        self.sync_form.setRowVisible(self.sync_trouble, bool(headline))
        if relink:
            if not self.url_edit.text():
                self.url_edit.setText(s.server_url or "")
            if not self.sync_user_edit.text():
                self.sync_user_edit.setText(s.username or "")
        if linked:
            self.sync_status.setText(
                tr("Linked to {url} as {user}.").format(url=s.server_url, user=s.username)
            )
            self.sync_where.setText(
                tr("This device's sign-in is kept in {where}. Your password is not stored.").format(
                    where=s.store.describe()
                )
            )
        else:
            if s.server_url and not self.url_edit.text():
                self.url_edit.setText(s.server_url)  # linked before: the same server again
            self.sync_status.setText(tr("Not linked to a server."))
            self.sync_where.setText(
                tr(
                    "Link this device to the program's server to send what you record here "
                    "and receive everyone else's changes. Until then, everything stays on "
                    "this computer."
                )
                + (f" {s.link_error}" if s.link_error else "")
            )
        if s.status is not None:
            self._show_backlog(s.status.unsent)
        self._set_linking(self._linking)

    def _say(self, text: str) -> None:
        self.sync_message.setText(text)
        self.sync_message.setVisible(bool(text))

    def _set_linking(self, busy: bool) -> None:
        self._linking = busy
        for widget in (self.url_edit, self.sync_user_edit, self.password_edit, self.link_button):
            widget.setEnabled(not busy)
        again = self.sync.sign_in_refused
        self.link_button.setText(
            tr("Linking…")
            if busy
            else tr("Link this device again")
            if again
            else tr("Link this device")
        )

    def link(self) -> bool:
        """Check the form, then link in the background (:meth:`_link_finished` answers).
        A linked device whose sign-in the server refused may be linked again."""
        if self._linking or (self.sync.linked and not self.sync.sign_in_refused):
            return False
        for label in (*self.link_errors.values(), self.link_error):
            label.show_message("")
        ok = True
        try:
            url = check_server_url(self.url_edit.text())
        except ValidationError as exc:
            self.link_errors["server_url"].show_message(exc.message)
            ok = False
        user = self.sync_user_edit.text().strip()
        if not user:
            self.link_errors["username"].show_message(tr("Enter your user name on the server."))
            ok = False
        password = self.password_edit.text()
        if not password:
            self.link_errors["password"].show_message(tr("Enter your password."))
            ok = False
        if not ok:
            return False
        self._set_linking(True)
        self._say(tr("Signing in to {url}…").format(url=url))
        self.sync.link(url, user, password)
        return True

    def _link_finished(self, error: str | None) -> None:
        self._set_linking(False)
        if error:
            self._say("")
            self.link_error.show_message(
                tr("This device was not linked: {error}").format(error=error)
            )
            return
        self.password_edit.clear()
        self.link_error.show_message("")
        self._say(tr("Linked. Sending this device's changes now…"))
        self._show_sync()

    def unlink(self) -> bool:
        s = self.sync
        if not s.linked:
            return False
        unsent = s.status.unsent if s.status is not None else 0
        kept = (
            plural(
                unsent,
                "The {n} unsent change stays on this device and is sent when you link it again.",
                "The {n} unsent changes stay on this device and are sent when you link it again.",
            )
            if unsent
            else tr("Changes you make stay on this device and are sent when you link it again.")
        )
        answer = QMessageBox.question(
            self,
            tr("Unlink this device"),
            tr("Unlink this device from {url}? Its sign-in is removed from this computer.").format(
                url=s.server_url
            )
            + " "
            + kept,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.unlink_button.setEnabled(False)
        s.unlink()
        return True

    def _unlink_finished(self, error: str | None) -> None:
        self.unlink_button.setEnabled(True)
        if error:
            self._say(tr("Could not unlink: {error}").format(error=error))
            return
        self._say(
            tr("Unlinked. Changes you make are kept on this device until it is linked again.")
        )
        self._show_sync()

    def _interval_chosen(self, _index: int) -> None:
        seconds = int(self.interval_combo.currentData())
        settings = QSettings()
        settings.setValue(INTERVAL_KEY, seconds)
        settings.sync()
        self.sync.set_interval(seconds)
