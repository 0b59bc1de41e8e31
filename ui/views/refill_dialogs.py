"""Asking for a refill, and the dialogs of its lifecycle.

:class:`RefillRequestView` is the request screen: every SKU of a stand with its stock, par
and a quantity pre-filled from the coach's recommendation
(:func:`app.coach.agent.stand_outlook`: enough for the expected sales until the refill
after next arrives, within capacity, in whole packs) with the reason for each quantity under
the product's name; or, by the user's choice or when the coach has no forecast for the
stand, from :func:`app.services.refills.suggest_refill` (par minus on hand in whole packs).
The Coach screen's "Create refill" opens it with an insight's quantities and reasons, and
the insight is closed as done once the refill is requested. A note, and Submit.

The dialogs collect what each transition needs: quantities to approve, deliver or confirm,
a date and a dealer to schedule, a reason to reject or cancel, and a decision on a delivery
discrepancy.

Every form checks its input before anything is sent (empty, negative or non-numeric
quantities, a missing reason) and shows the message next to the field; the service checks
again, and a refusal from it lands next to the field it names. Nothing is saved on error and
what the user typed stays.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from PySide6.QtCore import QDate, QLocale, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QCompleter,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QScroller,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from app.errors import DomainError
from app.ids import new_id
from app.models import RefillAction, StandStatus
from app.services import refill_views, refills
from app.services.refill_views import DiscrepancyView, RefillDetail, RefillForm, RefillFormLine

# stand_outlook: the coach's, imported on the worker thread that runs it.
from ui.coach_scan import stand_outlook
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.widgets import TOUCH, EmptyState, FieldError, Stepper, local_time, money, show_error

if TYPE_CHECKING:
    from app.coach.agent import StandOutlook

MAX_QTY = refills.MAX_QTY
SUBMIT_KEYS = (QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter"))


def check_quantity(stepper: Stepper, *, maximum: int = MAX_QTY) -> tuple[int | None, str]:
    """The whole number in ``stepper``, or ``None`` and a message to show beside it."""
    text = stepper.text().strip()
    if not text:
        return None, tr("Enter a quantity (0 for none).")
    value = stepper.value()
    if value is None:
        return None, tr("“{text}” is not a whole number.").format(text=text)
    if value < 0:
        return None, tr("The quantity cannot be negative.")
    if value > maximum:
        return None, tr("At most {n}.").format(n=maximum)
    return value, ""


def kinetic(view: QAbstractScrollArea) -> None:
    """Flick to scroll with a finger (a mouse still selects and drags as usual)."""
    QScroller.grabGesture(view.viewport(), QScroller.ScrollerGestureType.TouchGesture)


#: The forecast methods (:mod:`app.coach.forecast`) as a rep or manager reads them.
METHOD_NAMES = {
    "ses": "exponential smoothing",
    "holt_damped": "damped trend",
    "croston_sba": "Croston (SBA)",
    "tsb": "TSB",
    "adida": "ADIDA",
    "imapa": "IMAPA",
    "peer_rate": "rate at peer stands",
    "own_rate": "its own rate so far",
    "tsb_decay": "TSB, fading out",
}


def method_text(method: str) -> str:
    """ "ses+weekday" -> "exponential smoothing with a weekday pattern"."""
    base, _, extra = method.partition("+")
    text = tr(METHOD_NAMES.get(base, base))
    return tr("{method} with a weekday pattern").format(method=text) if extra else text


def coach_basis(demand_class: str, method: str) -> str:
    """ "Demand: intermittent · forecast by TSB"."""
    return tr("Demand: {kind} · forecast by {method}").format(
        kind=tr(demand_class.replace("_", " ")), method=method_text(method)
    )


def has_forecast(outlook: StandOutlook | None) -> bool:
    """True when the coach's outlook expects some sales at the stand: without any (a stand
    with no sales history and no peers) it has nothing to say, and par rules."""
    return outlook is not None and any(any(v > 0 for v in s.forecast) for s in outlook.skus)


def products_text(n: int) -> str:
    """ "1 product", "3 products"."""
    return (tr("{n} product") if n == 1 else tr("{n} products")).format(n=n)


def refill_changed(ctx: UiContext, stand_id: str) -> None:
    """What every refill write changes, for the views that show it."""
    ctx.changed("refills", "inventory", "stands", ids=(stand_id,))


class PackStepper(Stepper):
    """A quantity stepper whose − and + move to the previous or next whole pack."""

    def __init__(self, value: int = 0, pack: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(value, 0, MAX_QTY, parent)
        self.pack = max(1, pack)
        if self.pack > 1:
            self.minus.setToolTip(tr("One pack less ({n})").format(n=self.pack))
            self.plus.setToolTip(tr("One pack more ({n})").format(n=self.pack))

    def step(self, delta: int) -> None:
        current = self.value()
        base = max(0, 0 if current is None else current)
        if delta > 0:
            target = (base // self.pack + 1) * self.pack
        else:
            target = (base - 1) // self.pack * self.pack if base > 0 else 0
        self.setValue(max(self.minimum, min(self.maximum, target)))


def _small(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("color: palette(placeholder-text);")
    return label


def _button(text: str, tip: str = "", keys: QKeySequence | None = None) -> QPushButton:
    button = QPushButton(text)
    button.setMinimumHeight(TOUCH)
    if keys is not None:
        tip = f"{tip} ({keys.toString(QKeySequence.SequenceFormat.NativeText)})"
    if tip:
        button.setToolTip(tip)
    return button


# --------------------------------------------------------------------------- dialogs


class RefillDialog(QDialog):
    """A dialog that runs one service call when the user presses OK.

    The call runs through ``ctx.write``; while it runs, OK and Cancel wait. On success the
    dialog emits :attr:`saved` with the result and closes; on a refusal it stays open with
    the message next to the field.
    """

    saved = Signal(object)

    def __init__(
        self, ctx: UiContext, title: str, ok_text: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.saving = False
        self.setWindowTitle(title)
        self.errors: dict[str, FieldError] = {}
        self.form_error = FieldError()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(ok_text)
        self.ok_button.setToolTip(
            tr("{what} (Ctrl+Return)").format(what=ok_text.rstrip("…").rstrip("."))
        )
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        for b in (self.ok_button, self.cancel_button):
            b.setMinimumSize(TOUCH * 3, TOUCH)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        submit = QAction(self)
        submit.setShortcuts(list(SUBMIT_KEYS))
        submit.triggered.connect(self.accept)
        self.addAction(submit)
        self.body = QVBoxLayout()
        layout = QVBoxLayout(self)
        layout.addLayout(self.body, 1)
        layout.addWidget(self.form_error)
        layout.addWidget(self.buttons)

    def collect(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None:
        """The service call to make, as (function, args, kwargs); or None after showing
        beside the fields what is wrong. Each dialog says what it collects."""
        return None

    def clear_errors(self) -> None:
        for label in self.errors.values():
            label.show_message("")
        self.form_error.show_message("")

    def accept(self) -> None:
        if self.saving:
            return
        self.clear_errors()
        call = self.collect()
        if call is None:
            return
        fn, args, kwargs = call
        self._busy(True)
        self.ctx.write(fn, *args, on_done=self._saved, on_error=self._failed, **kwargs)

    def reject(self) -> None:
        if not self.saving:
            super().reject()

    def _busy(self, busy: bool) -> None:
        self.saving = busy
        self.ok_button.setEnabled(not busy)
        self.cancel_button.setEnabled(not busy)

    def _saved(self, result: object) -> None:
        self._busy(False)
        self.saved.emit(result)
        super().accept()

    def _failed(self, exc: Exception) -> None:
        self._busy(False)
        if isinstance(exc, DomainError):
            show_error(self.errors, exc, self.form_error)
        else:
            self.form_error.show_message(tr("Not saved: {error}").format(error=exc))


class QuantitiesDialog(RefillDialog):
    """Approve, deliver or confirm a refill, with a quantity per line.

    Each line starts at the figure the step before gave (requested, approved, delivered),
    so accepting as-is is one keystroke. A delivery starts at the units still to deliver:
    where part of the refill arrived before, those are shown per line and the rest is
    proposed. "More to come" records this delivery as one part and keeps the refill
    scheduled for the rest.
    """

    SPEC: ClassVar[dict[RefillAction, tuple[str, str, str, str]]] = {
        RefillAction.APPROVE: (
            "Approve refill",
            "Approve",
            "Requested",
            "Approve the quantities below. Lower a line for a partial approval; "
            "0 leaves a product out.",
        ),
        RefillAction.DELIVER: (
            "Record delivery",
            "Deliver",
            "Approved",
            "Enter what was put on the stand. The units go on the stand's stock now. "
            "If the rest follows later, tick More to come.",
        ),
        RefillAction.CONFIRM: (
            "Confirm receipt",
            "Confirm",
            "Delivered",
            "The partner enters what they received. Where a received quantity differs from "
            "the delivered one, a discrepancy is opened for a manager, and stock keeps the "
            "delivered figure until it is resolved.",
        ),
    }

    def __init__(
        self,
        ctx: UiContext,
        detail: RefillDetail,
        action: RefillAction,
        parent: QWidget | None = None,
    ) -> None:
        title, ok_text, reference, explain = self.SPEC[action]
        super().__init__(ctx, tr(title), tr(ok_text), parent)
        self.detail, self.action = detail, action
        self.setObjectName(f"refill_{action.value}_dialog")
        head = QLabel(
            tr("<b>{stand}</b> · {products}").format(
                stand=detail.stand_name, products=products_text(len(detail.lines))
            )
        )
        info = QLabel(tr(explain))
        info.setWordWrap(True)
        if action == RefillAction.CONFIRM:
            info.setObjectName("confirm_notice")
            info.setStyleSheet(
                "background: #fff8e1; color: #5d4037; border: 1px solid #ffe082; "
                "border-radius: 4px; padding: 8px;"
            )
        self.body.addWidget(head)
        self.body.addWidget(info)
        #: Units delivered before this delivery, per line (a refill delivered in parts).
        self.already: dict[str, int] = {
            line.product_id: line.delivered or 0
            for line in detail.lines
            if action == RefillAction.DELIVER and line.delivered
        }
        if self.already:
            earlier = QLabel(
                tr(
                    "{done} of {of} units were delivered before; each line proposes what is "
                    "still to come."
                ).format(done=sum(self.already.values()), of=detail.approved_units)
            )
            earlier.setObjectName("delivered_before")
            earlier.setWordWrap(True)
            self.body.addWidget(earlier)

        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setColumnStretch(0, 1)
        grid.setHorizontalSpacing(12)
        headers = [tr("Product"), tr(reference)]
        if self.already:
            headers.append(tr("Delivered before"))
        headers.append(tr("Quantity"))
        width = len(headers)
        for col, text in enumerate(headers):
            label = QLabel(f"<b>{text}</b>")
            if col:
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(label, 0, col)
        self.steppers: dict[str, Stepper] = {}
        self.notes: dict[str, QLabel] = {}
        #: The figure each line starts at (and, for a delivery, the most it may bring).
        self.reference: dict[str, int] = {}
        self.approved: dict[str, int] = {}
        row = 1
        for line in detail.lines:
            before = self.already.get(line.product_id, 0)
            self.approved[line.product_id] = line.approved or 0
            shown = {
                RefillAction.APPROVE: line.requested,
                RefillAction.DELIVER: line.approved or 0,
                RefillAction.CONFIRM: line.delivered or 0,
            }[action]
            ref = max(shown - before, 0) if action == RefillAction.DELIVER else shown
            self.reference[line.product_id] = ref
            name = QLabel(f"{line.name}<br><small>{line.sku}</small>")
            name.setWordWrap(True)
            grid.addWidget(name, row, 0)
            cells = [str(shown)]
            if self.already:
                cells.append(str(before) if before else "–")
            for col, text in enumerate(cells, start=1):
                cell = QLabel(text)
                cell.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if col == 2:
                    cell.setObjectName(f"before_{line.product_id}")
                grid.addWidget(cell, row, col)
            stepper = Stepper(ref, 0, ref if action == RefillAction.DELIVER else MAX_QTY)
            stepper.setObjectName(f"qty_{line.product_id}")
            self.steppers[line.product_id] = stepper
            grid.addWidget(stepper, row, width - 1)
            error = FieldError()
            self.errors[f"qty:{line.product_id}"] = error
            grid.addWidget(error, row + 1, 0, 1, width)
            if action == RefillAction.CONFIRM:
                note = QLabel()
                note.setStyleSheet("color: #e65100;")
                note.hide()
                self.notes[line.product_id] = note
                grid.addWidget(note, row + 2, 0, 1, width)
                stepper.valueChanged.connect(lambda pid=line.product_id: self._mark(pid))
            row += 3
        self.errors["quantities"] = FieldError()
        grid.addWidget(self.errors["quantities"], row, 0, 1, width)
        grid.setRowStretch(row + 1, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(grid_host)
        kinetic(scroll)
        # Room for up to six lines without scrolling; more scroll (the dialog fits 600 px).
        scroll.setMinimumHeight(min(grid_host.sizeHint().height(), 330))
        self.body.addWidget(scroll, 1)
        self.more_to_come: QCheckBox | None = None
        if action == RefillAction.DELIVER:
            # Alt+M or Space toggles it; Tab reaches it after the quantities.
            self.more_to_come = QCheckBox(tr("&More to come (deliver the rest later)"))
            self.more_to_come.setObjectName("more_to_come")
            self.more_to_come.setMinimumHeight(TOUCH)
            self.more_to_come.setToolTip(
                tr(
                    "Record this as one part of the delivery: the refill stays scheduled "
                    "and the rest is delivered later (Alt+M)"
                )
            )
            self.more_to_come.toggled.connect(self._more_to_come_toggled)
            self.body.addWidget(self.more_to_come)
        self.resize(580, self.sizeHint().height())

    def _more_to_come_toggled(self, checked: bool) -> None:
        self.ok_button.setText(tr("Deliver part") if checked else tr("Deliver"))

    def _mark(self, product_id: str) -> None:
        note = self.notes[product_id]
        value = self.steppers[product_id].value()
        delivered = self.reference[product_id]
        if value is None or value < 0 or value == delivered:
            note.hide()
            return
        note.setText(
            tr("{got} received, {sent} delivered: a discrepancy will be opened.").format(
                got=value, sent=delivered
            )
        )
        note.show()

    def collect(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None:
        quantities: dict[str, int] = {}
        ok = True
        for pid, stepper in self.steppers.items():
            limit = self.reference[pid] if self.action == RefillAction.DELIVER else MAX_QTY
            value, message = check_quantity(stepper, maximum=MAX_QTY)
            if value is not None and value > limit:
                before = self.already.get(pid, 0)
                message = (
                    tr("Only {n} still to deliver ({done} of {of} delivered before).").format(
                        n=limit, done=before, of=self.approved[pid]
                    )
                    if before
                    else tr("Only {n} approved.").format(n=limit)
                )
                value = None
            if value is None:
                self.errors[f"qty:{pid}"].show_message(message)
                ok = False
            else:
                quantities[pid] = value
        if not ok:
            return None
        fn = {
            RefillAction.APPROVE: refills.approve_refill,
            RefillAction.DELIVER: refills.deliver_refill,
            RefillAction.CONFIRM: refills.confirm_refill,
        }[self.action]
        if self.more_to_come is not None:
            return fn, (self.detail.id, quantities), {"more_to_come": self.more_to_come.isChecked()}
        return fn, (self.detail.id, quantities), {}


class ScheduleDialog(RefillDialog):
    """Plan the delivery: a date (tomorrow unless changed) and the dealer who delivers."""

    def __init__(self, ctx: UiContext, detail: RefillDetail, parent: QWidget | None = None) -> None:
        super().__init__(ctx, tr("Schedule delivery"), tr("Schedule"), parent)
        self.detail = detail
        self.setObjectName("refill_schedule_dialog")
        self.body.addWidget(QLabel(tr("<b>{stand}</b>").format(stand=detail.stand_name)))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.date_edit = QDateEdit()
        self.date_edit.setCalendarPopup(True)
        self.date_edit.setMinimumHeight(TOUCH)
        # The stand's date, not this machine's: the service refuses a day before it.
        today = QDate(detail.stand_today.year, detail.stand_today.month, detail.stand_today.day)
        self.date_edit.setMinimumDate(today)
        self.date_edit.setDate(today.addDays(1))
        self.date_edit.setDisplayFormat("ddd d MMM yyyy")
        self.dealer = QLineEdit(detail.dealer or "")
        self.dealer.setMinimumHeight(TOUCH)
        self.dealer.setPlaceholderText(tr("Who delivers, e.g. the wholesaler"))
        self.dealer.setMaxLength(120)
        self.errors = {"scheduled_for": FieldError(), "dealer": FieldError()}
        form.addRow(tr("Delivery date"), self.date_edit)
        form.addRow("", self.errors["scheduled_for"])
        form.addRow(tr("Dealer"), self.dealer)
        form.addRow("", self.errors["dealer"])
        self.body.addLayout(form)
        self.body.addStretch(1)
        self.resize(460, 240)
        ctx.read(refill_views.known_dealers, on_done=self._dealers, on_error=lambda _e: None)

    def _dealers(self, names: list[str]) -> None:
        if not isValid(self):  # closed before the names arrived
            return
        completer = QCompleter(names, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.dealer.setCompleter(completer)

    def collect(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None:
        dealer = self.dealer.text().strip()
        if not dealer:
            self.errors["dealer"].show_message(tr("Enter who delivers."))
            return None
        qd = self.date_edit.date()
        day = date(qd.year(), qd.month(), qd.day())
        return refills.schedule_refill, (self.detail.id, day, dealer), {}


class ReasonDialog(RefillDialog):
    """Reject or cancel a refill; the reason is required and kept with the refill."""

    def __init__(
        self,
        ctx: UiContext,
        detail: RefillDetail,
        action: RefillAction,
        parent: QWidget | None = None,
    ) -> None:
        title, ok_text, prompt = {
            RefillAction.REJECT: (
                "Reject refill",
                "Reject",
                "Why is this refill rejected? The requester sees the reason.",
            ),
            RefillAction.CANCEL: (
                "Cancel refill",
                "Cancel refill",
                "Why is this refill cancelled? The reason stays with the refill.",
            ),
        }[action]
        super().__init__(ctx, tr(title), tr(ok_text), parent)
        self.cancel_button.setText(tr("Keep it"))
        self.detail, self.action = detail, action
        self.setObjectName(f"refill_{action.value}_dialog")
        self.body.addWidget(QLabel(tr("<b>{stand}</b>").format(stand=detail.stand_name)))
        prompt_label = QLabel(tr(prompt))
        prompt_label.setWordWrap(True)
        self.body.addWidget(prompt_label)
        self.reason = QPlainTextEdit()
        self.reason.setTabChangesFocus(True)
        self.reason.setPlaceholderText(tr("Reason"))
        self.reason.setMinimumHeight(TOUCH * 2)
        self.errors = {"reason": FieldError()}
        self.body.addWidget(self.reason, 1)
        self.body.addWidget(self.errors["reason"])
        self.resize(460, 280)

    def collect(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None:
        reason = self.reason.toPlainText().strip()
        if not reason:
            self.errors["reason"].show_message(tr("Give a reason."))
            self.reason.setFocus()
            return None
        if len(reason) > 500:
            self.errors["reason"].show_message(tr("At most 500 characters."))
            return None
        fn = refills.reject_refill if self.action == RefillAction.REJECT else refills.cancel_refill
        return fn, (self.detail.id, reason), {}


class ResolveDiscrepancyDialog(RefillDialog):
    """A manager decides a delivery discrepancy: take the partner's count (stock moves by
    the difference) or keep the delivered figure (stock unchanged)."""

    def __init__(
        self, ctx: UiContext, discrepancy: DiscrepancyView, parent: QWidget | None = None
    ) -> None:
        super().__init__(ctx, tr("Resolve discrepancy"), tr("Resolve"), parent)
        self.discrepancy = discrepancy
        self.setObjectName("resolve_discrepancy_dialog")
        d = discrepancy
        summary = QLabel(
            tr("<b>{name}</b>: {sent} delivered, {got} received by the partner.").format(
                name=d.name, sent=d.delivered, got=d.received
            )
        )
        summary.setWordWrap(True)
        self.body.addWidget(summary)
        diff = d.difference
        self.accept_received = QRadioButton(
            tr("Accept the partner's figure: stock changes by {diff:+d}").format(diff=diff)
        )
        self.keep_delivered = QRadioButton(tr("Keep the delivered figure: stock stays as it is"))
        self.choice = QButtonGroup(self)
        for n, button in enumerate((self.accept_received, self.keep_delivered)):
            button.setMinimumHeight(TOUCH)
            self.choice.addButton(button, n)
            self.body.addWidget(button)
        self.errors = {"choice": FieldError(), "note": FieldError()}
        self.body.addWidget(self.errors["choice"])
        self.note = QLineEdit()
        self.note.setMinimumHeight(TOUCH)
        self.note.setPlaceholderText(tr("Note (optional), e.g. what the driver said"))
        self.note.setMaxLength(500)
        self.body.addWidget(self.note)
        self.body.addWidget(self.errors["note"])
        self.body.addStretch(1)
        self.resize(480, 280)

    def collect(self) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None:
        checked: QAbstractButton | None = self.choice.checkedButton()
        if checked is None:
            self.errors["choice"].show_message(tr("Choose which figure stands."))
            return None
        return (
            refills.resolve_discrepancy,
            (self.discrepancy.id,),
            {
                "accept_received": checked is self.accept_received,
                "note": self.note.text().strip() or None,
            },
        )


def action_dialog(
    ctx: UiContext, detail: RefillDetail, action: RefillAction, parent: QWidget | None = None
) -> RefillDialog:
    """The dialog that collects what ``action`` needs."""
    if action in QuantitiesDialog.SPEC:
        return QuantitiesDialog(ctx, detail, action, parent)
    if action == RefillAction.SCHEDULE:
        return ScheduleDialog(ctx, detail, parent)
    if action in (RefillAction.REJECT, RefillAction.CANCEL):
        return ReasonDialog(ctx, detail, action, parent)
    raise ValueError(f"no dialog for {action}")


# --------------------------------------------------------------------------- request screen

#: Where the request screen's quantities come from.
COACH, PAR = "coach", "par"


def par_reason(line: RefillFormLine) -> str:
    """Why par minus on hand gives the line's quantity, in one line."""
    on_hand = max(line.on_hand, 0)
    head = tr("Par {par}, {on} on hand").format(par=line.par_level, on=on_hand)
    if line.suggested <= 0:
        if on_hand >= line.par_level:
            return tr("{head} → at or above par, no refill").format(head=head)
        return tr("{head} → a pack of {size} does not fit the capacity of {cap}").format(
            head=head, size=line.pack_size, cap=line.capacity
        )
    text = tr("{head} → {n}").format(head=head, n=line.suggested)
    if line.pack_size > 1:
        packs = line.suggested // line.pack_size
        text += " " + (
            tr("(1 pack of {size})") if packs == 1 else tr("({n} packs of {size})")
        ).format(n=packs, size=line.pack_size)
    return text


def visit_text(outlook: StandOutlook) -> str:
    """ "Next visit in 4 days (Thu 27 Nov)", "Next visit tomorrow (…)", "Visit due today",
    "Visit overdue since Mon 17 Nov"."""
    day = outlook.next_visit
    shown = QLocale().toString(QDate(day.year, day.month, day.day), "ddd d MMM")
    days = (day - outlook.today).days
    if days < 0:
        return tr("Visit overdue since {date}").format(date=shown)
    if days == 0:
        return tr("Visit due today")
    if days == 1:
        return tr("Next visit tomorrow ({date})").format(date=shown)
    return tr("Next visit in {n} days ({date})").format(n=days, date=shown)


def no_refill_text(outlook: StandOutlook) -> str:
    """ "the coach suggests no refill (96 units already on order)"."""
    on_order = sum(max(s.on_order, 0) for s in outlook.skus)
    if on_order:
        return tr("the coach suggests no refill ({units} units already on order)").format(
            units=on_order
        )
    return tr("the coach suggests no refill")


class _Line:
    """The widgets of one SKU on the request screen: the product with the reason for its
    quantity under the name, stock, par, pack, what each source proposes, the quantity."""

    def __init__(self, line: RefillFormLine) -> None:
        self.line = line
        self.name = QLabel(
            f"{line.name}<br><small style='color: gray'>{line.sku} · {line.category}</small>"
        )
        self.name.setWordWrap(True)
        self.name.setMinimumWidth(140)
        #: Why the quantity is what it is (the source in use), under the name.
        self.why = QLabel()
        self.why.setObjectName(f"why_{line.product_id}")
        self.why.setWordWrap(True)
        self.why.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.on_hand = self._number(line.on_hand)
        if line.on_hand <= 0:
            self.on_hand.setStyleSheet("color: #c62828; font-weight: bold;")
        elif line.on_hand <= line.reorder_point:
            self.on_hand.setStyleSheet("color: #ef6c00; font-weight: bold;")
        self.par = self._number(line.par_level)
        self.pack = self._number(line.pack_size)
        self.suggested = self._number(line.suggested)
        self.suggested.setObjectName(f"par_{line.product_id}")
        self.coach = self._number(0)
        self.coach.setObjectName(f"coach_{line.product_id}")
        self.stepper = PackStepper(line.suggested, line.pack_size)
        self.stepper.setObjectName(f"qty_{line.product_id}")
        self.stepper.edit.setAccessibleName(tr("Quantity of {name}").format(name=line.name))
        self.error = FieldError()
        #: The coach's quantity and its reason (None: the coach has none for this line).
        self.coach_qty: int | None = None
        self.coach_reason = ""
        self.par_reason = par_reason(line)
        self.source = PAR
        #: The cells of the grid's row, left to right.
        self.cells: tuple[QWidget, ...] = (
            self.name,
            self.on_hand,
            self.par,
            self.pack,
            self.suggested,
            self.coach,
            self.stepper,
        )
        self.widgets: tuple[QWidget, ...] = (*self.cells, self.why, self.error)

    @staticmethod
    def _number(value: int) -> QLabel:
        label = QLabel(str(value))
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        label.setMinimumWidth(44)
        return label

    def set_coach(self, quantity: int | None, reason: str, status: str) -> None:
        """The coach's proposal: a quantity, or none with ``status`` "loading" or "none"."""
        self.coach_qty = quantity
        self.coach_reason = reason
        if quantity is not None:
            self.coach.setText(str(quantity))
            self.coach.setToolTip(reason)
        else:
            self.coach.setText("…" if status == "loading" else "–")
            self.coach.setToolTip(
                tr("The coach is working out its recommendation…")
                if status == "loading"
                else tr("The coach has no forecast for this stand yet")
            )

    def proposal(self, source: str) -> int:
        """What ``source`` proposes (the coach falls back to par where it has nothing)."""
        if source == COACH and self.coach_qty is not None:
            return self.coach_qty
        return self.line.suggested

    def show_source(self, source: str) -> None:
        """Say why, for the source in use, and mark its column."""
        self.source = source
        coach = source == COACH and self.coach_qty is not None
        reason = (self.coach_reason or tr("The coach's recommendation")) if coach else ""
        why = reason if coach else self.par_reason
        self.why.setText(why)
        tips = []
        if self.coach_qty is not None and self.coach_reason:
            tips.append(tr("Coach: {reason}").format(reason=self.coach_reason))
        tips.append(tr("Par minus on hand: {reason}").format(reason=self.par_reason))
        tip = "\n".join(tips)
        for w in (self.name, self.why, self.stepper.edit):
            w.setToolTip(tip)
        used, other = (self.coach, self.suggested) if coach else (self.suggested, self.coach)
        used.setStyleSheet("font-weight: bold;")
        other.setStyleSheet("color: palette(placeholder-text);")

    def set_visible(self, visible: bool) -> None:
        for w in self.widgets:
            shown = visible
            if w is self.error:
                shown = visible and bool(self.error.text())
            elif w is self.why:
                shown = visible and bool(self.why.text())
            w.setVisible(shown)


class RefillRequestView(QWidget):
    """Ask for a refill for one stand (see the module docstring)."""

    title = "Request refill"
    #: A refill was requested: its id.
    submitted = Signal(str)

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.stand_id: str | None = None
        self.form: RefillForm | None = None
        self.lines: dict[str, _Line] = {}
        self.saving = False
        self._pending = 0
        self._generation = 0
        self._refill_id = new_id()
        #: The coach's outlook of the stand (None: not here yet, or none).
        self.outlook: StandOutlook | None = None
        #: "loading", "ready" (it has a forecast) or "none" (it has none, or failed).
        self.coach_status = "loading"
        #: Quantities and reasons handed over by the Coach screen ("Create refill"), and the
        #: insight they answer: closed as done once the refill is requested.
        self.given: dict[str, int] | None = None
        self.given_reasons: dict[str, str] = {}
        self.insight_id: str | None = None

        self.stand_picker = QComboBox()
        self.stand_picker.setObjectName("stand_picker")
        self.stand_picker.setMinimumHeight(TOUCH)
        self.stand_picker.setEditable(True)
        self.stand_picker.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.stand_picker.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.stand_picker.setMinimumContentsLength(24)
        picker_completer = self.stand_picker.completer()
        if picker_completer is not None:
            picker_completer.setFilterMode(Qt.MatchFlag.MatchContains)
            picker_completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.stand_picker.setToolTip(tr("The stand to refill; type to search"))
        self.stand_info = QLabel()
        self.stand_info.setWordWrap(True)
        self.open_notice = QLabel()
        self.open_notice.setObjectName("open_refills_notice")
        self.open_notice.setWordWrap(True)
        self.open_notice.setTextFormat(Qt.TextFormat.RichText)
        self.open_notice.setStyleSheet(
            "background: #fff8e1; color: #5d4037; border: 1px solid #ffe082; "
            "border-radius: 4px; padding: 6px;"
        )
        self.open_notice.linkActivated.connect(lambda rid: ctx.navigate.emit("refills", rid))
        self.open_notice.hide()
        self.below_par_only = QCheckBox(tr("Only products to refill"))
        self.below_par_only.setMinimumHeight(TOUCH)
        self.below_par_only.setToolTip(
            tr("Hide the products below neither par nor the coach's recommendation")
        )
        self.below_par_only.toggled.connect(lambda _on: self._apply_filter())

        # Where the quantities come from: the coach (default) or par minus on hand.
        self.use_coach = QRadioButton(tr("Coach recommendation"))
        self.use_coach.setObjectName("use_coach")
        self.use_coach.setToolTip(
            tr(
                "Enough for the expected sales until the refill after next arrives, from the "
                "coach's forecast of this stand"
            )
        )
        self.use_par = QRadioButton(tr("Par minus on hand"))
        self.use_par.setObjectName("use_par")
        self.use_par.setToolTip(tr("Fill every product up to its par level, in whole packs"))
        self.source_group = QButtonGroup(self)
        for button in (self.use_coach, self.use_par):
            button.setMinimumHeight(TOUCH)
            self.source_group.addButton(button)
        self.use_coach.setChecked(True)
        #: The source the user chose (the coach unless they chose par).
        self.source = COACH
        self.use_coach.toggled.connect(self._source_toggled)
        self.coach_info = QLabel()
        self.coach_info.setObjectName("coach_info")
        self.coach_info.setWordWrap(True)

        self.lines_area = QScrollArea()
        self.lines_area.setWidgetResizable(True)
        kinetic(self.lines_area)
        self.empty = EmptyState(tr("Choose a stand to see its products."))
        self.errors: dict[str, FieldError] = {"quantities": FieldError(), "note": FieldError()}
        self.form_error = FieldError()

        self.note = QLineEdit()
        self.note.setObjectName("note")
        self.note.setMinimumHeight(TOUCH)
        self.note.setMaxLength(1000)
        self.note.setPlaceholderText(tr("Note for the approver (optional)"))
        self.totals = QLabel()
        self.totals.setObjectName("totals")
        self.use_suggestion = _button(
            tr("Use suggestion"), tr("Set every quantity to the chosen suggestion again")
        )
        self.clear_all = _button(tr("All to 0"), tr("Set every quantity to 0"))
        self.submit_button = _button(
            tr("Submit request"), tr("Send the refill request for approval"), SUBMIT_KEYS[0]
        )
        self.submit_button.setObjectName("submit")
        self.submit_button.setDefault(True)
        submit = QAction(tr("Submit request"), self)
        submit.setShortcuts(list(SUBMIT_KEYS))
        submit.triggered.connect(self.submit)
        self.addAction(submit)
        self.submit_button.clicked.connect(self.submit)
        self.use_suggestion.clicked.connect(self._reset_to_suggestion)
        self.clear_all.clicked.connect(lambda: self._set_all(lambda _line: 0))
        self.stand_picker.activated.connect(self._picked)

        top = QHBoxLayout()
        top.addWidget(QLabel(tr("Stand")))
        top.addWidget(self.stand_picker, 1)
        top.addWidget(self.below_par_only)
        source = QHBoxLayout()
        source.addWidget(QLabel(tr("Use:")))
        source.addWidget(self.use_coach)
        source.addWidget(self.use_par)
        source.addSpacing(12)
        source.addWidget(self.coach_info, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.note, 1)
        bottom.addWidget(self.use_suggestion)
        bottom.addWidget(self.clear_all)
        bottom.addWidget(self.submit_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.stand_info)
        layout.addLayout(source)
        layout.addWidget(self.open_notice)
        layout.addWidget(self.errors["quantities"])
        layout.addWidget(self.lines_area, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.errors["note"])
        layout.addWidget(self.totals)
        layout.addLayout(bottom)
        layout.addWidget(self.form_error)
        self._show_form(None)
        ctx.data_changed.connect(self._on_changed)

    # ------------------------------------------------------------------ public API

    @property
    def loading(self) -> bool:
        return self._pending > 0

    def open(self, arg: str | dict[str, Any] | None = None) -> None:
        """Show the request form of a stand: ``arg`` is its id (or None: the user picks
        one), or what the Coach screen's "Create refill" hands over, ``{"stand_id": ...,
        "quantities": {product id: units}, "reasons": {product id: text}, "insight_id":
        optional}``: the form starts at those quantities, with those reasons, and the
        insight is closed as done once the refill is requested."""
        if isinstance(arg, dict):
            stand_id = arg.get("stand_id")
            self.stand_id = str(stand_id) if stand_id else None
            self._clear_lines()
            self._refill_id = new_id()
            self.note.clear()
            self.outlook, self.coach_status = None, "loading"
            self.given = {str(k): max(0, int(v)) for k, v in (arg.get("quantities") or {}).items()}
            self.given_reasons = {str(k): str(v) for k, v in (arg.get("reasons") or {}).items()}
            insight = arg.get("insight_id")
            self.insight_id = str(insight) if insight else None
            self._choose(COACH)
        else:
            stand_id = str(arg) if arg else None
            if stand_id != self.stand_id:
                self.stand_id = stand_id
                self._clear_lines()
                self._refill_id = new_id()
                self.outlook, self.coach_status = None, "loading"
                self.given, self.given_reasons, self.insight_id = None, {}, None
        self.refresh()

    def refresh(self) -> None:
        """Reload the stands, the form and the coach's outlook; quantities already typed
        are kept."""
        self._generation += 1
        generation = self._generation
        self._start()
        self.ctx.read(
            refill_views.refillable_stands,
            on_done=lambda rows: self._stands_loaded(generation, rows),
            on_error=self._load_failed,
        )
        if self.stand_id:
            self._start()
            self.ctx.read(
                refill_views.refill_form,
                self.stand_id,
                on_done=lambda form: self._form_loaded(generation, form),
                on_error=self._load_failed,
            )
            stand_id = self.stand_id
            self._start()
            self.ctx.read(
                stand_outlook,
                stand_id,
                on_done=lambda outlook: self._outlook_loaded(generation, stand_id, outlook),
                on_error=lambda exc: self._outlook_failed(generation, stand_id, exc),
            )

    def can_leave(self) -> bool:
        """False while typed quantities or a note would be lost."""
        return not self.dirty()

    def dirty(self) -> bool:
        if self.note.text().strip():
            return True
        source = self.effective_source()
        return any(w.stepper.text().strip() != str(w.proposal(source)) for w in self.lines.values())

    def discard(self) -> None:
        """Forget what was typed: back to the suggestion, no note."""
        self.note.clear()
        self._reset_to_suggestion()

    def coach_available(self) -> bool:
        """True when the coach has quantities to offer (its forecast, or an insight's)."""
        return self.given is not None or self.coach_status == "ready"

    def effective_source(self) -> str:
        """The source the quantities follow: the user's choice, or par while the coach has
        nothing to offer."""
        return COACH if self.source == COACH and self.coach_available() else PAR

    # ------------------------------------------------------------------ loading

    def _start(self) -> None:
        self._pending += 1

    def _finish(self) -> None:
        self._pending = max(0, self._pending - 1)

    def _load_failed(self, exc: Exception) -> None:
        self._finish()
        self.form_error.show_message(tr("Could not load: {error}").format(error=exc))

    def _stands_loaded(self, generation: int, rows: list[refill_views.StandChoice]) -> None:
        self._finish()
        if generation != self._generation:
            return
        self.stand_picker.blockSignals(True)
        self.stand_picker.clear()
        for row in rows:
            self.stand_picker.addItem(f"{row.name} · {row.city}", row.id)
        index = self.stand_picker.findData(self.stand_id) if self.stand_id else -1
        self.stand_picker.setCurrentIndex(index)
        if index < 0:
            self.stand_picker.setEditText("")
            picker_edit = self.stand_picker.lineEdit()
            if picker_edit is not None:
                picker_edit.setPlaceholderText(tr("Choose a stand…"))
        self.stand_picker.blockSignals(False)

    def _picked(self, index: int) -> None:
        stand_id = self.stand_picker.itemData(index)
        if not stand_id or stand_id == self.stand_id:
            return
        if self.dirty() and not self._confirm_discard():
            self.stand_picker.setCurrentIndex(self.stand_picker.findData(self.stand_id))
            return
        self.note.clear()
        self.open(str(stand_id))

    def _confirm_discard(self) -> bool:
        answer = QMessageBox.question(
            self,
            tr("Request refill"),
            tr("Discard the quantities and note typed for {stand}?").format(
                stand=self.form.stand_name if self.form else ""
            ),
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard

    def _form_loaded(self, generation: int, form: RefillForm) -> None:
        self._finish()
        if generation != self._generation or form.stand_id != self.stand_id:
            return
        self._rebuild(lambda: setattr(self, "form", form))

    def _outlook_loaded(self, generation: int, stand_id: str, outlook: StandOutlook) -> None:
        self._finish()
        if generation != self._generation or stand_id != self.stand_id:
            return

        def change() -> None:
            self.outlook = outlook
            self.coach_status = "ready" if has_forecast(outlook) else "none"

        self._rebuild(change)

    def _outlook_failed(self, generation: int, stand_id: str, exc: Exception) -> None:
        # The coach failing is no reason not to ask for a refill: par takes over.
        self._finish()
        if generation != self._generation or stand_id != self.stand_id:
            return

        def change() -> None:
            self.outlook, self.coach_status = None, "none"

        self._rebuild(change)
        self.coach_info.setToolTip(str(exc))

    def _rebuild(self, change: Callable[[], None]) -> None:
        """Apply ``change`` (new form or outlook) and show the form again: where the user
        typed a quantity it stays, elsewhere the quantity follows the new proposal."""
        source = self.effective_source()
        typed = {pid: w.stepper.text() for pid, w in self.lines.items()}
        proposed = {pid: str(w.proposal(source)) for pid, w in self.lines.items()}
        change()
        if self.form is None or self.form.stand_id != self.stand_id:
            self._show_coach_info()
            return
        self._show_form(self.form)
        for pid, text in typed.items():
            widget = self.lines.get(pid)
            if widget is not None and text.strip() != proposed[pid]:
                widget.stepper.edit.setText(text)
        self._update_totals()

    def _clear_lines(self) -> None:
        # A fresh grid each time: the old one (and its rows) goes with its widget.
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setHorizontalSpacing(14)
        self.grid.setVerticalSpacing(4)
        self.lines_area.setWidget(self.grid_host)
        self.lines = {}
        self.errors = {k: v for k, v in self.errors.items() if not k.startswith("qty:")}

    def _coach_line(self, pid: str) -> tuple[int | None, str]:
        """The coach's quantity and reason for one product."""
        outlook = self.outlook
        rec = None
        if outlook is not None and self.coach_status == "ready":
            rec = next((s.recommendation for s in outlook.skus if s.product_id == pid), None)
        if self.given is not None:
            qty = self.given.get(pid, 0)
            reason = self.given_reasons.get(pid, "")
            if not reason and rec is not None and rec.quantity == qty:
                reason = rec.message
            return qty, reason
        if self.coach_status != "ready":
            return None, ""
        if rec is None:  # not in the outlook (e.g. placed since): the coach says nothing
            return None, ""
        return (outlook.quantities.get(pid, 0) if outlook else 0), rec.message

    def _show_form(self, form: RefillForm | None) -> None:
        self.form = form
        self._clear_lines()
        self.clear_errors()
        has_lines = form is not None and bool(form.lines)
        self.lines_area.setVisible(has_lines)
        self.empty.setVisible(not has_lines)
        self.open_notice.hide()
        can = form is not None and form.can_request and has_lines
        for w in (self.submit_button, self.use_suggestion, self.clear_all, self.note):
            w.setEnabled(can)
        self._show_coach_info()
        if form is None:
            self.stand_info.setText("")
            self.empty.setText(tr("Choose a stand to see its products."))
            self.totals.setText("")
            return
        below = sum(1 for line in form.lines if line.on_hand < line.par_level)
        status = (
            ""
            if form.stand_status == StandStatus.ACTIVE
            else f" · {tr(form.stand_status.value.capitalize())}"
        )
        self.stand_info.setText(
            tr("{partner}{status} · {products}, {below} below par").format(
                partner=form.partner_name,
                status=status,
                products=products_text(len(form.lines)),
                below=below,
            )
        )
        if not form.can_request:
            self.empty.setText(tr("{stand} cannot receive refills.").format(stand=form.stand_name))
            self.lines_area.hide()
            self.empty.show()
        elif not form.lines:
            self.empty.setText(tr("{stand} carries no products yet.").format(stand=form.stand_name))
        if form.open_refills:
            items = ", ".join(
                tr("<a href='{id}'>{status} on {day}, {units} units</a>").format(
                    id=r.id,
                    status=tr(r.status.value.capitalize()).lower(),
                    day=local_time(r.requested_at, date_only=True),
                    units=r.units,
                )
                for r in form.open_refills
            )
            self.open_notice.setText(
                tr(
                    "This stand already has open refills: {items}. Check them before asking again."
                ).format(items=items)
            )
            self.open_notice.show()
        headers = (
            (tr("Product"), ""),
            (tr("On hand"), ""),
            (tr("Par"), ""),
            (tr("Pack"), ""),
            (tr("Par fill"), tr("Par minus on hand, in whole packs within the capacity")),
            (tr("Coach"), tr("The coach's recommendation for the stand's next refill")),
            (tr("Quantity"), ""),
        )
        qty_col = len(headers) - 1
        for col, (text, tip) in enumerate(headers):
            label = QLabel(f"<b>{text}</b>")
            label.setToolTip(tip)
            if col == qty_col:
                label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            elif col:
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.grid.addWidget(label, 0, col)
        self.grid.setColumnStretch(0, 1)
        source = self.effective_source()
        widgets = []
        for line in form.lines:
            widget = _Line(line)
            qty, reason = self._coach_line(line.product_id)
            widget.set_coach(qty, reason, self.coach_status)
            widget.show_source(source)
            widget.stepper.setValue(widget.proposal(source))
            widgets.append(widget)
        row = 1
        # What needs refilling first (by either source); the rest below, by category and
        # name as before.
        for widget in sorted(
            widgets, key=lambda w: w.proposal(COACH) == 0 and w.line.suggested == 0
        ):
            pid = widget.line.product_id
            self.lines[pid] = widget
            for col, cell in enumerate(widget.cells):
                self.grid.addWidget(cell, row, col)
            self.grid.addWidget(widget.why, row + 1, 0, 1, qty_col)
            self.grid.addWidget(widget.error, row + 2, 0, 1, qty_col + 1)
            self.errors[f"qty:{pid}"] = widget.error
            widget.stepper.valueChanged.connect(self._update_totals)
            row += 3
        self.grid.setRowStretch(row, 1)
        self._apply_filter()
        self._update_totals()

    def _show_coach_info(self) -> None:
        """The source choice and the line beside it: what the coach offers, or why not."""
        available = self.coach_available()
        self.use_coach.setEnabled(available or self.coach_status == "loading")
        # The coach's button stays on while it loads; par shows when the coach has nothing.
        coach_on = self.source == COACH and (available or self.coach_status == "loading")
        self.use_coach.blockSignals(True)
        (self.use_coach if coach_on else self.use_par).setChecked(True)
        self.use_coach.blockSignals(False)
        self.coach_info.setToolTip("")
        outlook = self.outlook
        if self.stand_id is None:
            self.coach_info.setText("")
            return
        visit = visit_text(outlook) if outlook is not None else ""
        if self.given is not None:
            units = sum(self.given.values())
            n = sum(1 for q in self.given.values() if q > 0)
            text = tr("from the coach's insight: {products}, {units} units").format(
                products=products_text(n), units=units
            )
        elif self.coach_status == "loading":
            text = tr("The coach is working out its recommendation…")
        elif self.coach_status == "none":
            text = tr(
                "The coach has no forecast for this stand yet (it needs some sales here or at "
                "its peers): the quantities are par minus on hand."
            )
        elif outlook is not None and outlook.quantities:
            text = tr("the coach recommends {products}, {units} units").format(
                products=products_text(len(outlook.quantities)), units=outlook.refill_units
            )
        elif outlook is not None:
            text = no_refill_text(outlook)
        else:
            text = ""
        self.coach_info.setText(" · ".join(t for t in (visit, text) if t))

    # ------------------------------------------------------------------ editing

    def clear_errors(self) -> None:
        for label in self.errors.values():
            label.show_message("")
        self.form_error.show_message("")

    def _apply_filter(self) -> None:
        only = self.below_par_only.isChecked()
        source = self.effective_source()
        for widget in self.lines.values():
            line = widget.line
            wanted = line.on_hand < line.par_level or widget.proposal(source) > 0
            widget.set_visible(not only or wanted)

    def _set_all(self, value: Callable[[RefillFormLine], int]) -> None:
        for widget in self.lines.values():
            widget.stepper.setValue(value(widget.line))

    def _reset_to_suggestion(self) -> None:
        source = self.effective_source()
        for widget in self.lines.values():
            widget.stepper.setValue(widget.proposal(source))
        self.clear_errors()

    def _choose(self, source: str) -> None:
        self.source = source
        self.use_coach.blockSignals(True)
        (self.use_coach if source == COACH else self.use_par).setChecked(True)
        self.use_coach.blockSignals(False)

    def _source_toggled(self, coach: bool) -> None:
        """The user chose where the quantities come from: every line follows it."""
        self.source = COACH if coach else PAR
        source = self.effective_source()
        for widget in self.lines.values():
            widget.show_source(source)
        self._reset_to_suggestion()
        self._apply_filter()
        self._show_coach_info()

    def _update_totals(self) -> None:
        if not self.lines:
            self.totals.setText("")
            return
        products = units = 0
        value = sum(
            (
                w.line.list_price * (w.stepper.value() or 0)
                for w in self.lines.values()
                if (w.stepper.value() or 0) > 0
            ),
            start=Decimal(0),
        )
        for w in self.lines.values():
            qty = w.stepper.value()
            if qty is not None and qty > 0:
                products += 1
                units += qty
        self.totals.setText(
            tr(
                "To request: {products} of {n} products, {units} units, {value} at list price"
            ).format(products=products, n=len(self.lines), units=units, value=money(value))
        )

    def submit(self) -> None:
        if self.saving or self.form is None or not self.form.can_request:
            return
        self.clear_errors()
        quantities: dict[str, int] = {}
        first_bad: QLineEdit | None = None
        for pid, widget in self.lines.items():
            value, message = check_quantity(widget.stepper)
            if value is None:
                widget.error.show_message(message)
                widget.set_visible(True)
                first_bad = first_bad or widget.stepper.edit
            elif value > 0:
                quantities[pid] = value
        if first_bad is not None:
            self.lines_area.ensureWidgetVisible(first_bad)
            first_bad.setFocus()
            return
        if not quantities:
            self.errors["quantities"].show_message(
                tr("Enter a quantity above 0 for at least one product.")
            )
            return
        self.saving = True
        self.submit_button.setEnabled(False)
        stand_id = self.form.stand_id
        insight_id = self.insight_id
        self.ctx.write(
            refills.request_refill,
            stand_id,
            quantities,
            note=self.note.text().strip() or None,
            refill_id=self._refill_id,
            insight_id=insight_id,
            on_done=lambda result: self._submitted(stand_id, insight_id, result),
            on_error=self._submit_failed,
        )

    def _submitted(
        self, stand_id: str, insight_id: str | None, result: refills.RefillResult
    ) -> None:
        self.saving = False
        self.submit_button.setEnabled(True)
        self._refill_id = new_id()
        # The insight's quantities are used up: the next load shows the coach's new
        # recommendation (the requested units now count as on order).
        self.given, self.given_reasons, self.insight_id = None, {}, None
        # Saved: what was typed is no longer unsaved work, and the next load shows the new
        # suggestion (the requested units now count as on the way).
        self.discard()
        units = sum(line.requested for line in result.lines)
        self.ctx.status.emit(
            tr("Refill requested for {stand}: {products}, {units} units.").format(
                stand=self.form.stand_name if self.form else "",
                products=products_text(len(result.lines)),
                units=units,
            )
        )
        refill_changed(self.ctx, stand_id)
        if insight_id is not None:  # closed by the same transaction as the request
            self.ctx.changed("insights", ids=(insight_id, stand_id))
        self.submitted.emit(result.refill_id)
        self.ctx.navigate.emit("refills", result.refill_id)

    def _submit_failed(self, exc: Exception) -> None:
        self.saving = False
        self.submit_button.setEnabled(True)
        if isinstance(exc, DomainError):
            show_error(self.errors, exc, self.form_error)
            target = self.errors.get(exc.field or "")
            if target is not None and target.isVisible():
                self.lines_area.ensureWidgetVisible(target)
        else:
            self.form_error.show_message(tr("Not saved: {error}").format(error=exc))

    def _on_changed(self, change: Changed) -> None:
        if not self.isVisible() or self.saving:
            return
        if change.touches("inventory", "refills", "stands", "sales") and (
            not change.ids or self.stand_id in change.ids
        ):
            self.refresh()
