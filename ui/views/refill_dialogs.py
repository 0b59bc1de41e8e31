"""Asking for a refill, and the dialogs of its lifecycle.

:class:`RefillRequestView` is the request screen: every SKU of a stand with its stock, par
and a quantity pre-filled from :func:`app.services.refills.suggest_refill` (par minus on
hand in whole packs), a note, and Submit. The dialogs collect what each transition needs:
quantities to approve, deliver or confirm, a date and a dealer to schedule, a reason to
reject or cancel, and a decision on a delivery discrepancy.

Every form checks its input before anything is sent (empty, negative or non-numeric
quantities, a missing reason) and shows the message next to the field; the service checks
again, and a refusal from it lands next to the field it names. Nothing is saved on error and
what the user typed stays.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

from PySide6.QtCore import QDate, Qt, Signal
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
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.widgets import TOUCH, EmptyState, FieldError, Stepper, local_time, money, show_error

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
        self.date_edit.setMinimumDate(QDate.currentDate())
        self.date_edit.setDate(QDate.currentDate().addDays(1))
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


class _Line:
    """The widgets of one SKU on the request screen."""

    def __init__(self, line: RefillFormLine) -> None:
        self.line = line
        self.name = QLabel(
            f"{line.name}<br><small style='color: gray'>{line.sku} · {line.category}</small>"
        )
        self.name.setWordWrap(True)
        self.name.setMinimumWidth(140)
        self.on_hand = self._number(line.on_hand)
        if line.on_hand <= 0:
            self.on_hand.setStyleSheet("color: #c62828; font-weight: bold;")
        elif line.on_hand <= line.reorder_point:
            self.on_hand.setStyleSheet("color: #ef6c00; font-weight: bold;")
        self.par = self._number(line.par_level)
        self.pack = self._number(line.pack_size)
        self.suggested = self._number(line.suggested)
        self.stepper = PackStepper(line.suggested, line.pack_size)
        self.stepper.setObjectName(f"qty_{line.product_id}")
        self.stepper.edit.setAccessibleName(tr("Quantity of {name}").format(name=line.name))
        self.error = FieldError()
        self.widgets: tuple[QWidget, ...] = (
            self.name,
            self.on_hand,
            self.par,
            self.pack,
            self.suggested,
            self.stepper,
            self.error,
        )

    @staticmethod
    def _number(value: int) -> QLabel:
        label = QLabel(str(value))
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        label.setMinimumWidth(44)
        return label

    def set_visible(self, visible: bool) -> None:
        for w in self.widgets:
            w.setVisible(visible if w is not self.error else visible and bool(w.text()))


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
        self.below_par_only = QCheckBox(tr("Only products below par"))
        self.below_par_only.setMinimumHeight(TOUCH)
        self.below_par_only.toggled.connect(lambda _on: self._apply_filter())

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
            tr("Use suggestion"), tr("Set every quantity to the suggestion again")
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
        bottom = QHBoxLayout()
        bottom.addWidget(self.note, 1)
        bottom.addWidget(self.use_suggestion)
        bottom.addWidget(self.clear_all)
        bottom.addWidget(self.submit_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.stand_info)
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

    def open(self, stand_id: str | None = None) -> None:
        """Show the request form of ``stand_id`` (or let the user pick a stand)."""
        if stand_id != self.stand_id:
            self.stand_id = stand_id
            self._clear_lines()
            self._refill_id = new_id()
        self.refresh()

    def refresh(self) -> None:
        """Reload the stands and the form; quantities already typed are kept."""
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

    def can_leave(self) -> bool:
        """False while typed quantities or a note would be lost."""
        return not self.dirty()

    def dirty(self) -> bool:
        if self.note.text().strip():
            return True
        return any(w.stepper.text().strip() != str(w.line.suggested) for w in self.lines.values())

    def discard(self) -> None:
        """Forget what was typed: back to the suggestion, no note."""
        self.note.clear()
        self._reset_to_suggestion()

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
        typed = {pid: w.stepper.text() for pid, w in self.lines.items()}
        suggested = {pid: w.line.suggested for pid, w in self.lines.items()}
        self._show_form(form)
        for pid, text in typed.items():
            widget = self.lines.get(pid)
            # Keep what the user changed; follow the new suggestion where they did not.
            if widget is not None and text.strip() != str(suggested[pid]):
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
        if form is None:
            self.stand_info.setText("")
            self.empty.setText(tr("Choose a stand to see its products."))
            self.totals.setText("")
            return
        below = sum(1 for line in form.lines if line.suggested > 0)
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
        headers = (tr("Product"), tr("On hand"), tr("Par"), tr("Pack"), tr("Suggested"))
        for col, text in enumerate(headers):
            label = QLabel(f"<b>{text}</b>")
            if col:
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.grid.addWidget(label, 0, col)
        qty_head = QLabel(f"<b>{tr('Quantity')}</b>")
        qty_head.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.grid.addWidget(qty_head, 0, 5)
        self.grid.setColumnStretch(0, 1)
        row = 1
        # What needs refilling first; the rest below, by category and name as before.
        for line in sorted(form.lines, key=lambda ln: ln.suggested == 0):
            widget = _Line(line)
            self.lines[line.product_id] = widget
            for col, cell in enumerate(widget.widgets[:6]):
                self.grid.addWidget(cell, row, col)
            self.grid.addWidget(widget.error, row + 1, 0, 1, 6)
            self.errors[f"qty:{line.product_id}"] = widget.error
            widget.stepper.valueChanged.connect(self._update_totals)
            row += 2
        self.grid.setRowStretch(row, 1)
        self._apply_filter()
        self._update_totals()

    # ------------------------------------------------------------------ editing

    def clear_errors(self) -> None:
        for label in self.errors.values():
            label.show_message("")
        self.form_error.show_message("")

    def _apply_filter(self) -> None:
        only = self.below_par_only.isChecked()
        for widget in self.lines.values():
            widget.set_visible(not only or widget.line.on_hand < widget.line.par_level)

    def _set_all(self, value: Callable[[RefillFormLine], int]) -> None:
        for widget in self.lines.values():
            widget.stepper.setValue(value(widget.line))

    def _reset_to_suggestion(self) -> None:
        self._set_all(lambda line: line.suggested)
        self.clear_errors()

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
        self.ctx.write(
            refills.request_refill,
            stand_id,
            quantities,
            note=self.note.text().strip() or None,
            refill_id=self._refill_id,
            on_done=lambda result: self._submitted(stand_id, result),
            on_error=self._submit_failed,
        )

    def _submitted(self, stand_id: str, result: refills.RefillResult) -> None:
        self.saving = False
        self.submit_button.setEnabled(True)
        self._refill_id = new_id()
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
        if change.touches("inventory", "refills", "stands") and (
            not change.ids or self.stand_id in change.ids
        ):
            self.refresh()
