"""Small widgets and helpers every screen shares: money and date formatting in the user's
locale, field error messages shown next to the field, big touch-friendly steppers, and an
empty-state label."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from PySide6.QtCore import QDate, QDateTime, QLocale, Qt, QTime, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QScroller,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import DomainError
from ui.i18n import tr

#: The smallest touch target, in device-independent pixels.
TOUCH = 40
CURRENCY = "EUR"


CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF"}


def money(value: Decimal | int | None, currency: str = CURRENCY) -> str:
    """An amount in the user's locale, e.g. "12,50 €" in Germany, "€12.50" in Ireland.

    Display only: the amount is rounded to cents first, and a float carries any amount below
    90 trillion exactly to two places, which is all QLocale needs to place separators.
    """
    if value is None:
        return ""
    cents = Decimal(value).quantize(Decimal("0.01"))
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    return str(QLocale().toCurrencyString(float(cents), symbol))


def local_time(value: datetime | None, *, date_only: bool = False) -> str:
    """A UTC time shown in the computer's local time zone, in the locale's short format."""
    if value is None:
        return ""
    local = value.astimezone()
    fmt = QLocale.FormatType.ShortFormat
    if date_only:
        return str(QLocale().toString(QDate(local.year, local.month, local.day), fmt))
    moment = QDateTime(
        QDate(local.year, local.month, local.day), QTime(local.hour, local.minute, local.second)
    )
    return str(QLocale().toString(moment, fmt))


class FieldError(QLabel):
    """A message shown under (or beside) the field it is about; hidden when empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FieldError")
        self.setWordWrap(True)
        self.setStyleSheet("color: #c62828;")
        self.hide()

    def show_message(self, text: str) -> None:
        self.setText(text)
        self.setVisible(bool(text))


def show_error(errors: dict[str, FieldError], exc: DomainError, fallback: FieldError) -> None:
    """Put a refused action's message next to the field it names (else ``fallback``)."""
    for label in errors.values():
        label.show_message("")
    fallback.show_message("")
    target = errors.get(exc.field or "", fallback)
    if exc.field and exc.field not in errors:
        # fields like "lines[2].quantity" or "qty:<id>" fall back to their first part
        head = exc.field.split("[", 1)[0].split(":", 1)[0]
        target = errors.get(head, fallback)
    target.show_message(exc.message)


class Stepper(QWidget):
    """A whole-number field with large − and + buttons, for fingers as well as keys.

    Text that is not a whole number is kept as typed (so nothing the user entered is lost)
    and reported by :meth:`value` as ``None``; the caller shows the message.
    """

    valueChanged = Signal()

    def __init__(
        self, value: int = 0, minimum: int = 0, maximum: int = 9999, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.minimum, self.maximum = minimum, maximum
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.minus = QToolButton()
        self.minus.setText("−")
        self.plus = QToolButton()
        self.plus.setText("+")
        self.edit = QLineEdit(str(value))
        self.edit.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.edit.setInputMethodHints(Qt.InputMethodHint.ImhDigitsOnly)
        for button, step, tip in ((self.minus, -1, tr("One less")), (self.plus, 1, tr("One more"))):
            button.setMinimumSize(TOUCH, TOUCH)
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _=False, s=step: self.step(s))
        self.edit.setMinimumHeight(TOUCH)
        self.edit.setMaximumWidth(90)
        self.edit.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.edit.textChanged.connect(self.valueChanged)
        layout.addWidget(self.minus)
        layout.addWidget(self.edit)
        layout.addWidget(self.plus)

    def value(self) -> int | None:
        text = self.edit.text().strip()
        if not text.lstrip("-").isdigit():
            return None
        return int(text)

    def text(self) -> str:
        return self.edit.text()

    def setValue(self, value: int) -> None:
        self.edit.setText(str(value))

    def step(self, delta: int) -> None:
        current = self.value()
        base = 0 if current is None else current
        self.setValue(max(self.minimum, min(self.maximum, base + delta)))

    def keyPressEvent(self, event: Any) -> None:
        if event.key() == Qt.Key.Key_Up:
            self.step(1)
        elif event.key() == Qt.Key.Key_Down:
            self.step(-1)
        else:
            super().keyPressEvent(event)


class EmptyState(QLabel):
    """A centred, friendly line for a list with nothing in it."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setStyleSheet("color: palette(mid); font-size: 15px; padding: 24px;")


def kinetic(area: QAbstractItemView | QScrollArea) -> None:
    """Flick-to-scroll with a finger, pixel by pixel (mouse and wheel work as before)."""
    if isinstance(area, QAbstractItemView):
        area.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    QScroller.grabGesture(area.viewport(), QScroller.ScrollerGestureType.TouchGesture)


def with_shortcut(text: str, action: QAction) -> str:
    """A tooltip that names the action's shortcuts, as the user's keyboard shows them."""
    keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
    return f"{text} ({keys})" if keys else text


def plural(n: int, one: str, many: str) -> str:
    """``one`` or ``many`` (translated), with ``{n}`` filled in: "1 item", "3 items"."""
    return (tr(one) if n == 1 else tr(many)).format(n=n)


def list_and_detail(
    list_view: QWidget,
    list_empty: QWidget,
    detail: QWidget,
    detail_empty: QWidget,
    sizes: tuple[int, int],
) -> QSplitter:
    """A list beside its detail panel, each with the empty state shown in its place (the
    caller shows one of each pair); the list takes most of the width."""
    splitter = QSplitter(Qt.Orientation.Horizontal)
    splitter.setChildrenCollapsible(False)
    for shown, empty in ((list_view, list_empty), (detail, detail_empty)):
        side = QWidget()
        layout = QVBoxLayout(side)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(shown, 1)
        layout.addWidget(empty, 1)
        splitter.addWidget(side)
    splitter.setStretchFactor(0, 3)
    splitter.setStretchFactor(1, 2)
    splitter.setSizes(list(sizes))
    return splitter
