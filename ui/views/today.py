"""Today: the stands to visit, most urgent first, each with why and what to do there.

The order and the reasons are :func:`app.services.today.visit_list` (its docstring has the
rule; the coach's stock-out risk is one of the reasons, and a change of "insights" reloads
the list). A rep sees their own stands; a manager or admin sees everyone's and may narrow
the list to one rep. Each card has quick actions (open the stand, record a sale, count, refill,
and deliver when a refill is due); every action is a button, so Tab reaches it, and the
focused card also answers to keys: Return opens the stand, S sale, C count, R refill,
D deliver, Up and Down move between cards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QDate, QLocale, Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.models import Role
from app.services import today
from app.services.today import VisitRow
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.views.refill_dialogs import kinetic
from ui.widgets import TOUCH, EmptyState

#: Colour of a reason by its kind (red: act now, amber: soon, blue: routine; the coach's
#: stock-out risk in crimson, between a refill due and a product out).
REASON_COLOURS = {
    "refill_due": "#6a1b9a",
    "risk": "#ad1457",
    "out": "#c62828",
    "cover": "#e65100",
    "low": "#ef6c00",
    "count": "#1565c0",
    "confirm": "#00838f",
}

#: Quick actions: (name, label, key on a focused card, tooltip, navigate target).
QUICK_ACTIONS = (
    ("stand", "Open stand", Qt.Key.Key_Return, "Open the stand's page", "stand"),
    ("sale", "Sale", Qt.Key.Key_S, "Record a sale at this stand", "sale"),
    ("count", "Count", Qt.Key.Key_C, "Count the stand's stock", "count"),
    ("refill", "Refill", Qt.Key.Key_R, "Request a refill for this stand", "refill"),
)
DELIVER = ("deliver", "Deliver", Qt.Key.Key_D, "Open the refill to deliver", "refills")


def _key_name(key: Qt.Key) -> str:
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)


class VisitCard(QFrame):
    """One stand to visit: name, where, the reasons, and quick action buttons."""

    #: (target view, argument) for ``ctx.navigate``.
    activated = Signal(str, object)
    move_focus = Signal(object, int)

    def __init__(
        self, row: VisitRow, rank: int, parent: QWidget | None = None, *, show_rep: bool = True
    ) -> None:
        super().__init__(parent)
        self.row = row
        self.setObjectName("VisitCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName(row.stand_name)
        self.setStyleSheet(
            "#VisitCard { border: 1px solid palette(mid); border-radius: 8px; "
            "background: palette(base); }"
            "#VisitCard:focus { border: 2px solid palette(highlight); }"
        )
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        name = QLabel(
            f"<span style='font-size: 15px; font-weight: 600;'>{rank}. {row.stand_name}</span>"
        )
        name.setTextFormat(Qt.TextFormat.RichText)
        where = [f"{row.address}, {row.city}"]
        if row.partner_name != row.stand_name and not row.stand_name.startswith(row.partner_name):
            where.append(row.partner_name)
        if row.assigned_rep and show_rep:
            where.append(row.assigned_rep)
        self.place = place = QLabel(" · ".join(p for p in where if p))
        place.setObjectName("place")
        place.setStyleSheet("color: palette(placeholder-text);")
        place.setWordWrap(True)
        self.reasons = QLabel(
            " &nbsp;·&nbsp; ".join(
                f"<span style='color: {REASON_COLOURS.get(r.kind, '#424242')}; "
                f"font-weight: 600;'>{tr(r.text)}</span>"
                for r in row.reasons
            )
        )
        self.reasons.setObjectName("reasons")
        self.reasons.setTextFormat(Qt.TextFormat.RichText)
        self.reasons.setWordWrap(True)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(name)
        text.addWidget(place)
        text.addWidget(self.reasons)

        self.buttons: dict[str, QPushButton] = {}
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        actions = list(QUICK_ACTIONS)
        if row.refills_due:
            # First, so the four everyday buttons stay lined up from card to card.
            actions.insert(0, DELIVER)
        for name_, label, key, tip, target in actions:
            button = QPushButton(tr(label))
            button.setObjectName(f"{name_}_button")
            button.setMinimumSize(TOUCH * 2, TOUCH)
            button.setToolTip(f"{tr(tip)} ({_key_name(key)})")
            arg: object = row.refills_due[0] if name_ == "deliver" else row.stand_id
            button.clicked.connect(lambda _=False, t=target, a=arg: self.activated.emit(t, a))
            if name_ == "deliver":
                button.setStyleSheet(f"font-weight: 600; color: {REASON_COLOURS['refill_due']};")
            self.buttons[name_] = button
            buttons.addWidget(button)
        self._keys = {
            key: (target, row.refills_due[0] if n == "deliver" else row.stand_id)
            for n, _l, key, _t, target in actions
        }

        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.addLayout(text, 1)
        layout.addLayout(buttons)
        self.setToolTip(
            tr("Score {score}: {reasons}").format(
                score=row.score, reasons="; ".join(tr(t) for t in row.reason_texts)
            )
        )

    def keyPressEvent(self, event: Any) -> None:
        key = event.key()
        if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            super().keyPressEvent(event)
            return
        if key == Qt.Key.Key_Enter:
            key = Qt.Key.Key_Return
        if key in self._keys:
            self.activated.emit(*self._keys[key])
        elif key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            self.move_focus.emit(self, 1 if key == Qt.Key.Key_Down else -1)
        else:
            super().keyPressEvent(event)


class TodayView(QWidget):
    """See the module docstring."""

    title = "Today"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.rows: list[VisitRow] = []
        self.cards: list[VisitCard] = []
        self._pending = 0
        self._generation = 0
        self._stale = False
        self.is_rep = ctx.actor.role == Role.REP

        self.heading = QLabel()
        self.heading.setObjectName("heading")
        self.heading.setStyleSheet("font-size: 18px; font-weight: 600;")
        self.summary = QLabel()
        self.summary.setObjectName("summary")
        self.summary.setWordWrap(True)
        self.rep_filter = QComboBox()
        self.rep_filter.setObjectName("rep_filter")
        self.rep_filter.setMinimumHeight(TOUCH)
        self.rep_filter.setToolTip(tr("Show the stands of one rep"))
        self.rep_filter.addItem(tr("All reps"), None)
        if self.is_rep:
            # (hide, never show: showing a widget before it has a parent opens a window)
            self.rep_filter.hide()
        self.rep_filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self.refresh_button = QPushButton(tr("Refresh"))
        self.refresh_button.setMinimumHeight(TOUCH)
        # F5 is the main window's View › Refresh, which refreshes the screen shown.
        refresh_keys = QKeySequence(QKeySequence.StandardKey.Refresh)
        self.refresh_button.setToolTip(
            tr("Load the list again ({keys})").format(
                keys=refresh_keys.toString(QKeySequence.SequenceFormat.NativeText)
            )
        )
        self.refresh_button.clicked.connect(self.refresh)

        self.list_host = QWidget()
        self.list_layout = QVBoxLayout(self.list_host)
        self.list_layout.setSpacing(8)
        self.list_layout.addStretch(1)
        self.scroll_area = QScrollArea()
        self.scroll_area.setObjectName("visit_list")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setWidget(self.list_host)
        kinetic(self.scroll_area)
        self.empty = EmptyState(
            tr("All stands look fine today.")
            + "\n"
            + tr("Nothing is out, low, overdue for a count or waiting for a delivery.")
        )
        self.empty.setObjectName("empty")
        self.empty.hide()
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)

        top = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(self.heading)
        titles.addWidget(self.summary)
        top.addLayout(titles, 1)
        top.addWidget(self.rep_filter)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.scroll_area, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.message)
        ctx.data_changed.connect(self._on_changed)
        # Reps with stands: the manager's filter, and how a rep with none is told so.
        self.known_reps: list[str] | None = None
        ctx.read(today.reps, on_done=self._reps_loaded, on_error=lambda _e: None)
        self._pending += 1

    # ------------------------------------------------------------------ public API

    @property
    def loading(self) -> bool:
        return self._pending > 0

    def rep(self) -> str | None:
        """Whose stands are listed (None: everyone's)."""
        if self.is_rep:
            return self.ctx.actor.user
        data = self.rep_filter.currentData()
        return str(data) if data else None

    def refresh(self) -> None:
        self._generation += 1
        generation = self._generation
        self._pending += 1
        self.ctx.read(
            today.visit_list,
            rep=self.rep(),
            on_done=lambda rows: self._loaded(generation, rows),
            on_error=self._failed,
        )

    # ------------------------------------------------------------------ loading

    def _reps_loaded(self, reps: list[str]) -> None:
        self._pending = max(0, self._pending - 1)
        self.known_reps = list(reps)
        self._explain_empty()
        current = self.rep_filter.currentData()
        self.rep_filter.blockSignals(True)
        while self.rep_filter.count() > 1:
            self.rep_filter.removeItem(1)
        for rep in reps:
            self.rep_filter.addItem(rep, rep)
        self.rep_filter.setCurrentIndex(max(0, self.rep_filter.findData(current)))
        self.rep_filter.blockSignals(False)

    def _failed(self, exc: Exception) -> None:
        self._pending = max(0, self._pending - 1)
        self.message.setText(tr("Could not load today's visits: {error}").format(error=exc))

    def _loaded(self, generation: int, rows: list[VisitRow]) -> None:
        self._pending = max(0, self._pending - 1)
        if generation != self._generation:
            return
        self.message.setText("")
        focused = next((c.row.stand_id for c in self.cards if c.hasFocus()), None)
        self.rows = rows
        for card in self.cards:
            self.list_layout.removeWidget(card)
            card.deleteLater()
        self.cards = []
        for rank, row in enumerate(rows, start=1):
            card = VisitCard(row, rank, show_rep=not self.is_rep)
            card.activated.connect(self._activate)
            card.move_focus.connect(self._move_focus)
            self.list_layout.insertWidget(self.list_layout.count() - 1, card)
            self.cards.append(card)
            if row.stand_id == focused:
                card.setFocus()
        self.scroll_area.setVisible(bool(rows))
        self.empty.setVisible(not rows)
        self._explain_empty()
        now = datetime.now().astimezone()
        self.heading.setText(
            QLocale().toString(QDate(now.year, now.month, now.day), QLocale.FormatType.LongFormat)
        )
        whose = tr("your stands") if self.is_rep else (self.rep() or tr("all reps"))
        self.summary.setText(
            tr("{n} stands to visit ({whose}), most urgent first").format(n=len(rows), whose=whose)
            if rows
            else tr("Nothing urgent ({whose})").format(whose=whose)
        )

    def _explain_empty(self) -> None:
        """A rep with no stands assigned hears that, not "all stands look fine"."""
        unassigned = (
            self.is_rep
            and self.known_reps is not None
            and self.ctx.actor.user not in self.known_reps
        )
        if unassigned:
            self.empty.setText(
                tr("No stands are assigned to {user}.").format(user=self.ctx.actor.user)
                + "\n"
                + tr("A manager assigns stands to reps; every stand is listed under Stands.")
            )
        else:
            self.empty.setText(
                tr("All stands look fine today.")
                + "\n"
                + tr("Nothing is out, low, overdue for a count or waiting for a delivery.")
            )

    def _activate(self, target: str, arg: object) -> None:
        self.ctx.navigate.emit(target, arg)

    def _move_focus(self, card: VisitCard, step: int) -> None:
        index = self.cards.index(card) + step
        if 0 <= index < len(self.cards):
            self.cards[index].setFocus()
            self.scroll_area.ensureWidgetVisible(self.cards[index])

    def _on_changed(self, change: Changed) -> None:
        # "insights": a coach run or someone acting on an insight changes the coach's risk.
        if not change.touches("stands", "inventory", "refills", "sales", "counts", "insights"):
            return
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.refresh()
