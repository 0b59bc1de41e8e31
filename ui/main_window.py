"""The main window: a navigation rail, one page per screen, menus with shortcuts and a
status bar with the data folder, the signed-in person and the sync state.

Screens are created the first time they are shown. Going to another screen first asks the
current one (``can_leave()``), so unsaved counts or a half-entered sale are never dropped
without a question.

The window owns automatic sync (:mod:`ui.sync_controller`): it starts with
:meth:`MainWindow.start` and stops when the window closes. The status bar's sync part says
how many changes are unsent and since when, when the last sync was, whether any were
rejected; it is kept current after every write and every round, and clicking it (or
Enter on it) opens the Sync screen.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, cast

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from ui.context import UiContext
from ui.i18n import tr
from ui.resources import icon
from ui.sync_controller import StatusLine, sync_controller
from ui.widgets import TOUCH


class Screen(Protocol):
    """What the window needs of every screen (see ui/views/__init__.py)."""

    title: str
    loading: bool

    def refresh(self) -> None: ...


#: Screens in the navigation rail: (name, label, icon, shortcut).
RAIL = (
    ("today", "Today", "today", "Ctrl+1"),
    ("stands", "Stands", "stands", "Ctrl+2"),
    ("partners", "Partners", "partners", "Ctrl+3"),
    ("refills", "Refills", "refills", "Ctrl+4"),
    ("dashboard", "Dashboard", "dashboard", "Ctrl+5"),
    ("coach", "Coach", "coach", "Ctrl+6"),
    ("sync", "Sync", "sync", "Ctrl+7"),
    ("settings", "Settings", "settings", "Ctrl+8"),
)

#: Where each screen lives: name -> (module, class).
SCREENS = {
    "today": ("ui.views.today", "TodayView"),
    "stands": ("ui.views.stands", "StandsView"),
    "partners": ("ui.views.partners", "PartnersView"),
    "refills": ("ui.views.refills", "RefillsView"),
    "settings": ("ui.views.settings", "SettingsView"),
    "sync": ("ui.views.sync_view", "SyncView"),
    "dashboard": ("ui.views.dashboard", "DashboardView"),
    "coach": ("ui.views.coach", "CoachView"),
    "expansion": ("ui.views.expansion", "ExpansionView"),
    "stand": ("ui.views.stand_detail", "StandDetailView"),
    "sale": ("ui.views.sale", "SaleView"),
    "count": ("ui.views.count", "CountView"),
    "refill": ("ui.views.refill_dialogs", "RefillRequestView"),
    "onboarding": ("ui.views.onboarding", "OnboardingView"),
}

#: Screens reached from another one; they show a Back button and belong to this rail item.
PARENT = {
    "stand": "stands",
    "sale": "stands",
    "count": "stands",
    "refill": "stands",
    "onboarding": "partners",
    "expansion": "coach",
}


#: The warning colour of rejected changes in the status bar.
WARNING_COLOUR = "#b3261e"


class SyncStatusButton(QFrame):
    """The status bar's sync state: a clickable, focusable line of text, with the count of
    rejected changes in a warning colour."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sync_status")
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAccessibleName(tr("Sync status"))
        self.setStyleSheet(
            "QFrame#sync_status { border: 1px solid transparent; border-radius: 3px; }"
            "QFrame#sync_status:hover, QFrame#sync_status:focus "
            "{ border-color: palette(highlight); }"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(6)
        self.text = QLabel(tr("Sync: …"))
        self.text.setObjectName("sync_text")
        self.rejected = QLabel()
        self.rejected.setObjectName("sync_rejected")
        self.rejected.setStyleSheet(f"color: {WARNING_COLOUR}; font-weight: bold;")
        self.rejected.hide()
        layout.addWidget(self.text)
        layout.addWidget(self.rejected)

    def show_line(self, line: StatusLine) -> None:
        self.text.setText(line.text)
        self.rejected.setText(line.rejected)
        self.rejected.setVisible(bool(line.rejected))
        self.setToolTip(line.tooltip)
        self.setAccessibleDescription(" · ".join(t for t in (line.text, line.rejected) if t))

    def mouseReleaseEvent(self, event: Any) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
            event.position().toPoint()
        ):
            self.clicked.emit()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: Any) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.clicked.emit()
            return
        super().keyPressEvent(event)


class MainWindow(QMainWindow):
    def __init__(self, ctx: UiContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.setObjectName("MainWindow")
        self.setWindowTitle(tr("Stand Program OS"))
        self.setMinimumSize(1000, 580)
        self.views: dict[str, QWidget] = {}
        self.current: str | None = None
        self.history: list[tuple[str, object]] = []
        self._rail_item: str | None = None

        self.rail_buttons = QButtonGroup(self)
        self.rail_buttons.setExclusive(True)
        rail = QFrame()
        rail.setObjectName("Rail")
        rail.setFrameShape(QFrame.Shape.NoFrame)
        rail_layout = QVBoxLayout(rail)
        rail_layout.setContentsMargins(4, 8, 4, 8)
        rail_layout.setSpacing(4)
        for name, label, icon_name, shortcut in RAIL:
            button = QToolButton()
            button.setText(tr(label))
            button.setIcon(icon(icon_name))
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setMinimumSize(84, 60)
            button.setToolTip(f"{tr(label)} ({shortcut})")
            button.setObjectName(f"rail_{name}")
            button.clicked.connect(lambda _=False, n=name: self.go(n))
            self.rail_buttons.addButton(button)
            rail_layout.addWidget(button)
        rail_layout.addStretch(1)

        self.back_button = QToolButton()
        self.back_button.setIcon(icon("back"))
        self.back_button.setText(tr("Back"))
        self.back_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.back_button.setMinimumHeight(TOUCH)
        self.back_button.setToolTip(tr("Back (Alt+Left)"))
        self.back_button.clicked.connect(self.back)
        self.page_title = QLabel()
        self.page_title.setObjectName("PageTitle")
        font = self.page_title.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.page_title.setFont(font)
        title_row = QHBoxLayout()
        title_row.addWidget(self.back_button)
        title_row.addWidget(self.page_title, 1)

        self.stack = QStackedWidget()
        page = QWidget()
        page_layout = QVBoxLayout(page)
        page_layout.setContentsMargins(8, 8, 8, 0)
        page_layout.addLayout(title_row)
        page_layout.addWidget(self.stack, 1)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(rail)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.VLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        layout.addWidget(page, 1)
        self.setCentralWidget(central)

        self.message = QLabel()
        self.statusBar().addWidget(self.message, 1)
        self.sync = sync_controller(ctx)
        self.sync_status = SyncStatusButton()
        self.sync_status.clicked.connect(lambda: self.go("sync"))
        self.sync.changed.connect(self._show_sync)
        self._show_sync()
        self.statusBar().addPermanentWidget(self.sync_status)
        self.statusBar().addPermanentWidget(
            QLabel(tr("{user} ({role})").format(user=ctx.actor.user, role=tr(ctx.actor.role.value)))
        )
        folder = QLabel(tr("Data: {path}").format(path=ctx.backend.location))
        folder.setToolTip(ctx.backend.location)
        self.statusBar().addPermanentWidget(folder)
        self._clear_message = QTimer(self, singleShot=True, interval=8000)
        self._clear_message.timeout.connect(lambda: self.message.setText(""))
        ctx.status.connect(self.show_message)
        ctx.navigate.connect(self.go)

        self._build_menus()
        self._restore()

    def _show_sync(self) -> None:
        self.sync_status.show_line(self.sync.line())

    # ------------------------------------------------------------------ navigation

    def view(self, name: str) -> QWidget:
        """The screen called ``name``, created on first use."""
        if name not in self.views:
            module_name, class_name = SCREENS[name]
            cls = getattr(importlib.import_module(module_name), class_name)
            widget = cls(self.ctx)
            self.views[name] = widget
            self.stack.addWidget(widget)
        return self.views[name]

    def go(self, name: str, arg: object = None, *, remember: bool = True) -> bool:
        """Show a screen; ``arg`` is handed to its ``open()`` (a stand id, say)."""
        # A screen reached from another one (a refill requested from the Coach) belongs to
        # the rail item the user came from, else to its usual parent.
        origin = self._rail_item
        if self.current is not None:
            leaving = self.views.get(self.current)
            can_leave = getattr(leaving, "can_leave", None)
            if name != self.current and callable(can_leave) and not can_leave():
                self._check_rail(self.current)
                return False
            if remember and (name, arg) != (self.current, None):
                self.history.append((self.current, getattr(self, "_current_arg", None)))
                del self.history[:-20]
        widget = self.view(name)
        self.stack.setCurrentWidget(widget)
        self.current = name
        self._current_arg = arg
        opener = getattr(widget, "open", None)
        if arg is not None and callable(opener):
            opener(arg)
        else:
            cast(Screen, widget).refresh()
        self.page_title.setText(tr(getattr(widget, "title", name.capitalize())))
        self._fill_screen_menu(widget)
        self.back_button.setVisible(name in PARENT and bool(self.history))
        rail = name if name not in PARENT else (origin if remember and origin else PARENT[name])
        self._rail_item = rail
        self._check_rail(rail)
        QSettings().setValue("main/view", rail)
        return True

    def back(self) -> None:
        while self.history:
            name, arg = self.history.pop()
            if name != self.current or arg is not None:
                self.go(name, arg, remember=False)
                return

    def _fill_screen_menu(self, widget: QWidget) -> None:
        self.screen_menu.clear()
        for action in widget.actions():
            if action.text() and not action.isSeparator():
                self.screen_menu.addAction(action)
        self.screen_menu.setEnabled(not self.screen_menu.isEmpty())

    def _check_rail(self, name: str) -> None:
        for button in self.rail_buttons.buttons():
            button.setChecked(button.objectName() == f"rail_{name}")

    @property
    def busy(self) -> bool:
        """True while any screen is loading or background work is running."""
        loading = any(getattr(v, "loading", False) for v in self.views.values())
        return self.ctx.runner.busy or loading

    # ------------------------------------------------------------------ chrome

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu(tr("&File"))
        self._action(file_menu, tr("&New partner…"), "Ctrl+N", lambda: self.go("onboarding"))
        file_menu.addSeparator()
        self._action(file_menu, tr("&Quit"), QKeySequence.StandardKey.Quit, self.close)

        go_menu = bar.addMenu(tr("&Go"))
        group = QActionGroup(self)
        for name, label, _icon, shortcut in RAIL:
            action = self._action(go_menu, tr(label), shortcut, lambda n=name: self.go(n))
            group.addAction(action)
        go_menu.addSeparator()
        self._action(go_menu, tr("&Back"), "Alt+Left", self.back)

        # The current screen's own actions (save, undo, find...), with their shortcuts.
        self.screen_menu = bar.addMenu(tr("&Screen"))
        self.screen_menu.setEnabled(False)

        view_menu = bar.addMenu(tr("&View"))
        self._action(view_menu, tr("&Refresh"), QKeySequence.StandardKey.Refresh, self.refresh)

        help_menu = bar.addMenu(tr("&Help"))
        self._action(help_menu, tr("&About Stand Program OS"), None, self._about)

    def _action(self, menu: Any, text: str, shortcut: Any, slot: Any) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    def refresh(self) -> None:
        """View > Refresh (F5): read the screen again; a screen that keeps computed figures
        while they are current (the dashboard) recomputes them."""
        if self.current is not None:
            view = self.views[self.current]
            force = getattr(view, "force_refresh", None)
            if callable(force):
                force()
            else:
                cast(Screen, view).refresh()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self._clear_message.start()

    def _about(self) -> None:
        QMessageBox.about(
            self,
            tr("About Stand Program OS"),
            tr(
                "Stand Program OS {version}\n\nRun a retail stand program, online or offline.\n"
                "Data folder: {path}"
            ).format(version=__version__, path=self.ctx.backend.location),
        )

    def _restore(self) -> None:
        settings = QSettings()
        geometry = settings.value("main/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def start(self) -> None:
        """Show the screen the user had open last time (Today on first start)."""
        last = str(QSettings().value("main/view", "today"))
        self.go(last if last in {n for n, *_ in RAIL} else "today", remember=False)
        self.sync.start()

    def closeEvent(self, event: Any) -> None:
        current = self.views.get(self.current or "")
        can_leave = getattr(current, "can_leave", None)
        if callable(can_leave) and not can_leave():
            event.ignore()
            return
        QSettings().setValue("main/geometry", self.saveGeometry())
        self._clear_message.stop()
        self.sync.stop()
        self.ctx.runner.wait()
        super().closeEvent(event)
