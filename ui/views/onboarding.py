"""New partner: a step-by-step wizard that signs up a partner with their first stand.

Steps: partner details → package → first stand → assortment → review (with the stand's QR
payment label exactly as it will print) → done (export the label, activate, open the stand).

Each step checks its own input when the user moves on and puts a message next to the field;
nothing is saved until "Create partner", which runs one service call
(``onboarding.onboard_partner``). If the service refuses, its message is shown next to the
field it names, on the step that field is on. The partner and stand ids are made here, before
saving, because the payment reference derives from the stand id: the label preview is the
label the stand gets.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QHideEvent, QKeySequence, QMouseEvent, QPixmap, QResizeEvent, QShortcut
from PySide6.QtWidgets import (
    QBoxLayout,
    QButtonGroup,
    QComboBox,
    QCompleter,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.errors import DomainError
from app.ids import new_id
from app.models import LocationType
from app.services import loyalty, onboarding
from app.services.base import STAFF
from app.services.onboarding_views import (
    AssortmentPreview,
    OnboardingChoices,
    PackageOption,
    assortment_preview,
    onboarding_choices,
)
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.labels import LabelData, export_pdf, export_png, render_label
from ui.widgets import TOUCH, FieldError, Stepper, kinetic, money, show_error

PARTNER, PACKAGE, STAND, ASSORTMENT, REVIEW, DONE = range(6)
STEP_NAMES = ("Partner", "Package", "Stand", "Assortment", "Review")

#: Stored payout method codes and how they read.
PAYOUT_METHODS = (
    ("", "Not set yet"),
    ("sepa", "Bank transfer (SEPA)"),
    ("paypal", "PayPal"),
    ("cash", "Cash at the visit"),
)
LOCATION_NAMES = {
    LocationType.CONVENIENCE: "Convenience store",
    LocationType.SUPERMARKET: "Supermarket",
    LocationType.PHARMACY: "Pharmacy",
    LocationType.CAFE: "Café",
    LocationType.GAS_STATION: "Gas station",
    LocationType.KIOSK: "Kiosk",
    LocationType.OFFICE: "Office",
    LocationType.GYM: "Gym",
}
DEFAULT_CAPACITY = 120
DEFAULT_COUNTRY = "DE"
#: The same shape the service accepts: something@domain.tld, no spaces.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_CHARS = set("0123456789+-() /.")
#: "52.52, 13.40" (as a map app copies a point): both coordinates at once.
COORDINATE_PAIR = re.compile(r"^\s*(-?\d{1,3}\.\d+)(?:\s*[,;]\s*|\s+)(-?\d{1,3}\.\d+)\s*$")
#: Service field names that live on the partner page.
PARTNER_FIELDS = frozenset(
    {"name", "contact_name", "email", "phone", "region", "payout_method", "payout_account", "notes"}
)
STAND_FIELDS = frozenset(
    {
        "stand_name",
        "address",
        "postal_code",
        "city",
        "country",
        "latitude",
        "longitude",
        "location_type",
        "capacity_units",
        "assigned_rep",
        "timezone",
    }
)


def parse_coordinate(text: str, label: str, limit: float) -> float | None:
    """A latitude or longitude typed by a person: empty is "not known"; a decimal comma
    is accepted; anything else raises ValueError with the message to show."""
    value = text.strip().replace("°", "")
    if not value:
        return None
    if "," in value and "." not in value and value.count(",") == 1:
        value = value.replace(",", ".")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(
            tr("{label} must be a number such as 52.52.").format(label=label)
        ) from None
    if number != number or not -limit <= number <= limit:
        raise ValueError(
            tr("{label} must be between {low:g} and {high:g}.").format(
                label=label, low=-limit, high=limit
            )
        )
    return number


def _touch(widget: QWidget) -> QWidget:
    widget.setMinimumHeight(TOUCH)
    return widget


def _small(label: QLabel) -> QLabel:
    """Explanatory text under a field: a little smaller, same colour (grey on grey is hard
    to read on a tablet in daylight)."""
    label.setWordWrap(True)
    font = label.font()
    font.setPointSizeF(max(7.0, font.pointSizeF() - 1))
    label.setFont(font)
    return label


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def _cadence(days: int) -> str:
    if days == 7:
        return tr("Weekly refills")
    if days == 14:
        return tr("Refills every two weeks")
    return tr("Refills every {days} days").format(days=days)


class _Form(QWidget):
    """Two columns of labelled fields (one column when narrow), each field with its error
    message underneath."""

    NARROW = 720

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self.columns.setContentsMargins(0, 0, 0, 0)
        self.columns.setSpacing(24)
        self.forms = [QFormLayout(), QFormLayout()]
        for form in self.forms:
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            form.setVerticalSpacing(6)
            self.columns.addLayout(form, 1)
        self.errors: dict[str, FieldError] = {}

    def add(self, column: int, key: str, label: str, widget: QWidget, hint: str = "") -> None:
        box = QWidget()
        inner = QVBoxLayout(box)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.setSpacing(2)
        inner.addWidget(widget)
        if hint:
            note = _small(QLabel(hint))
            inner.addWidget(note)
        error = FieldError()
        error.setObjectName(f"error_{key}")
        inner.addWidget(error)
        self.errors[key] = error
        caption = QLabel(label)
        caption.setFixedHeight(TOUCH)
        caption.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        caption.setBuddy(widget)
        self.forms[column].addRow(caption, box)
        # A field's message goes away as soon as the user changes the field.
        signal = getattr(widget, "textChanged", None) or getattr(widget, "valueChanged", None)
        if isinstance(widget, QComboBox):
            signal = widget.currentTextChanged
        if signal is not None:
            signal.connect(lambda *_: error.show_message(""))

    def resizeEvent(self, event: QResizeEvent) -> None:
        narrow = self.width() < self.NARROW
        self.columns.setDirection(
            QBoxLayout.Direction.TopToBottom if narrow else QBoxLayout.Direction.LeftToRight
        )
        super().resizeEvent(event)


class PackageCard(QFrame):
    """One package as a card: its name as a radio button, then what it includes."""

    def __init__(self, option: PackageOption, group: QButtonGroup) -> None:
        super().__init__()
        self.option = option
        self.setObjectName("PackageCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.radio = QRadioButton(option.name)
        self.radio.setObjectName(f"package_{option.code}")
        self.radio.setMinimumHeight(TOUCH)
        self.radio.setStyleSheet("font-size: 17px; font-weight: bold;")
        group.addButton(self.radio)
        stands = (
            tr("1 stand")
            if option.max_stands == 1
            else tr("Up to {n} stands").format(n=option.max_stands)
        )
        facts = [
            stands,
            tr("{n} products per stand").format(n=option.sku_slots),
            tr("{rate} commission on sales").format(rate=_percent(option.commission_rate)),
            tr("Standard loyalty points")
            if option.loyalty_multiplier == 1
            else tr("×{m} loyalty points").format(m=f"{option.loyalty_multiplier.normalize():f}"),
            _cadence(option.refill_cadence_days),
            tr("{n} welcome points on activation").format(n=option.activation_points),
        ]
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 8, 14, 12)
        layout.setSpacing(4)
        layout.addWidget(self.radio)
        for fact in facts:
            line = QLabel("• " + fact)
            line.setWordWrap(True)
            layout.addWidget(line)
        if option.description:
            description = QLabel(option.description)
            description.setWordWrap(True)
            description.setStyleSheet("font-style: italic; padding-top: 6px;")
            layout.addWidget(description)
        layout.addStretch(1)
        self.radio.toggled.connect(self._restyle)
        self._restyle(False)

    def _restyle(self, checked: bool) -> None:
        border = "2px solid palette(highlight)" if checked else "1px solid palette(mid)"
        self.setStyleSheet(f"#PackageCard {{ border: {border}; border-radius: 8px; }}")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        # The whole card is the hit target, not just the radio button.
        self.radio.setChecked(True)
        self.radio.setFocus()
        super().mousePressEvent(event)


class OnboardingView(QWidget):
    """The new-partner wizard (see module docstring)."""

    title = "New partner"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._reads = 0
        self.saving = False
        self.choices: OnboardingChoices | None = None
        self.preview: AssortmentPreview | None = None
        self.result: onboarding.PartnerOnboarded | None = None
        self.activated = False
        self._left_after_done = False
        self._customised = False
        self._products_message = ""
        self._filling_tree = False
        self._initial: dict[QLineEdit, str] = {}
        self.partner_id = new_id()
        self.stand_id = new_id()

        self.steps: list[QToolButton] = []
        steps_row = QHBoxLayout()
        steps_row.setSpacing(4)
        for i, name in enumerate(STEP_NAMES):
            button = QToolButton()
            button.setText(f"{i + 1}  {tr(name)}")
            button.setCheckable(True)
            button.setAutoRaise(True)
            button.setMinimumHeight(TOUCH)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.clicked.connect(lambda _=False, step=i: self.go_to(step))
            self.steps.append(button)
            steps_row.addWidget(button)
        steps_row.addStretch(1)

        self.heading = QLabel()
        self.heading.setStyleSheet("font-size: 20px; font-weight: bold;")
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("font-weight: bold;")
        self.notice.setVisible(False)
        self.banner = FieldError()
        self.banner.setObjectName("banner")

        self.stack = QStackedWidget()
        self.stack.addWidget(self._scroll(self._build_partner_page()))
        self.stack.addWidget(self._scroll(self._build_package_page()))
        self.stack.addWidget(self._scroll(self._build_stand_page()))
        self.stack.addWidget(self._build_assortment_page())
        self.stack.addWidget(self._scroll(self._build_review_page()))
        self.stack.addWidget(self._scroll(self._build_done_page()))

        self.back_button = QPushButton(tr("‹ &Back"))
        self.back_button.setToolTip(tr("Previous step (Alt+B)"))
        self.next_button = QPushButton(tr("&Next ›"))
        self.next_button.setToolTip(tr("Next step (Alt+N or Ctrl+Enter)"))
        self.finish_button = QPushButton(tr("Create partner"))
        self.finish_button.setToolTip(
            tr("Save the partner and the stand (Ctrl+Enter); nothing is saved before this")
        )
        self.finish_button.setDefault(False)
        for nav_button in (self.back_button, self.next_button, self.finish_button):
            nav_button.setMinimumSize(120, TOUCH)
        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.finish_button.clicked.connect(self.finish)
        self.nav = QWidget()
        nav = QHBoxLayout(self.nav)
        nav.setContentsMargins(0, 0, 0, 0)
        nav.addWidget(self.back_button)
        nav.addStretch(1)
        nav.addWidget(self.next_button)
        nav.addWidget(self.finish_button)

        layout = QVBoxLayout(self)
        layout.addLayout(steps_row)
        layout.addWidget(self.heading)
        layout.addWidget(self.notice)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.nav)

        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self._primary)

        for edit in self.findChildren(QLineEdit):
            if edit is not self.filter:
                self._initial[edit] = edit.text()
        ctx.data_changed.connect(self._on_changed)
        if ctx.actor.role not in STAFF:
            self.notice.setText(
                tr(
                    "Only reps, managers and admins can sign up partners; you are signed in "
                    "as {role}."
                ).format(role=ctx.actor.role.value)
            )
            self.notice.setVisible(True)
        self._show_step(PARTNER)

    # ------------------------------------------------------------------ building

    @staticmethod
    def _scroll(page: QWidget) -> QScrollArea:
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setWidget(page)
        kinetic(area)
        return area

    def _line(self, name: str, max_len: int, placeholder: str = "") -> QLineEdit:
        edit = QLineEdit()
        edit.setObjectName(name)
        edit.setMaxLength(max_len)
        edit.setPlaceholderText(placeholder)
        _touch(edit)
        return edit

    def _build_partner_page(self) -> QWidget:
        page = QWidget()
        self.partner_form = form = _Form()
        self.partner_name = self._line("partner_name", 120, tr("e.g. Café Sonne GmbH"))
        self.contact_name = self._line("contact_name", 120, tr("Who we talk to"))
        self.email = self._line("email", 200, tr("name@example.com"))
        self.email.setInputMethodHints(Qt.InputMethodHint.ImhEmailCharactersOnly)
        self.phone = self._line("phone", 40, tr("+49 30 1234567"))
        self.phone.setInputMethodHints(Qt.InputMethodHint.ImhDialableCharactersOnly)
        self.region = QComboBox()
        self.region.setObjectName("region")
        self.region.setEditable(True)
        self.region.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        _touch(self.region)
        region_edit = self.region.lineEdit()
        assert region_edit is not None
        region_edit.setMaxLength(60)
        region_edit.setPlaceholderText(tr("e.g. Berlin-Mitte"))
        self.payout_method = QComboBox()
        self.payout_method.setObjectName("payout_method")
        for code, label in PAYOUT_METHODS:
            self.payout_method.addItem(tr(label), code)
        _touch(self.payout_method)
        self.payout_account = self._line("payout_account", 64, tr("IBAN, PayPal address…"))
        self.notes = self._line("notes", 500, tr("Anything the next rep should know"))
        form.add(0, "name", tr("Business name *"), self.partner_name)
        form.add(0, "contact_name", tr("Contact person *"), self.contact_name)
        form.add(0, "email", tr("Email"), self.email)
        form.add(0, "phone", tr("Phone"), self.phone)
        form.add(1, "region", tr("Region"), self.region)
        form.add(1, "payout_method", tr("Payout method"), self.payout_method)
        form.add(1, "payout_account", tr("Payout account"), self.payout_account)
        form.add(1, "notes", tr("Notes"), self.notes)
        layout = QVBoxLayout(page)
        layout.addWidget(form)
        layout.addStretch(1)
        return page

    def _build_package_page(self) -> QWidget:
        page = QWidget()
        self.package_group = QButtonGroup(self)
        self.package_group.setExclusive(True)
        self.package_group.buttonToggled.connect(self._on_package_toggled)
        self.cards: dict[str, PackageCard] = {}
        self.cards_row = QHBoxLayout()
        self.cards_row.setSpacing(12)
        self.packages_loading = QLabel(tr("Loading packages…"))
        self.cards_row.addWidget(self.packages_loading)
        self.package_error = FieldError()
        self.package_error.setObjectName("error_package_code")
        intro = QLabel(
            tr(
                "The package sets how many stands and products the partner may have, their "
                "commission and how fast they collect loyalty points. It can be upgraded later."
            )
        )
        intro.setWordWrap(True)
        layout = QVBoxLayout(page)
        layout.addWidget(intro)
        layout.addLayout(self.cards_row)
        layout.addWidget(self.package_error)
        layout.addStretch(1)
        return page

    def _build_stand_page(self) -> QWidget:
        page = QWidget()
        self.stand_form = form = _Form()
        self.stand_name = self._line("stand_name", 120, tr("e.g. Café Sonne, counter"))
        self.address = self._line("address", 200, tr("Street and number"))
        self.postal_code = self._line("postal_code", 16, tr("e.g. 10115"))
        self.city = self._line("city", 80, tr("e.g. Berlin"))
        self.country = self._line("country", 2, "DE")
        self.country.setText(DEFAULT_COUNTRY)
        self.country.setMaximumWidth(80)
        self.latitude = self._line("latitude", 40, tr("e.g. 52.5200"))
        self.longitude = self._line("longitude", 40, tr("e.g. 13.4050"))
        # "52.52, 13.40" as a map app copies a point fills both fields once typing is done.
        self.latitude.editingFinished.connect(self._split_coordinate_pair)
        self.location_type = QComboBox()
        self.location_type.setObjectName("location_type")
        for kind in LocationType:
            self.location_type.addItem(tr(LOCATION_NAMES.get(kind, kind.value)), kind.value)
        _touch(self.location_type)
        self.capacity = Stepper(DEFAULT_CAPACITY, minimum=1, maximum=100_000)
        self.capacity.setObjectName("capacity")
        self.capacity.edit.setObjectName("capacity_edit")
        self.capacity.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.rep = QComboBox()
        self.rep.setObjectName("assigned_rep")
        self.rep.setEditable(True)
        self.rep.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        rep_edit = self.rep.lineEdit()
        assert rep_edit is not None
        rep_edit.setMaxLength(60)
        self.rep.setEditText(self.ctx.actor.user)
        _touch(self.rep)
        form.add(0, "stand_name", tr("Stand name *"), self.stand_name)
        form.add(0, "address", tr("Address *"), self.address)
        form.add(0, "postal_code", tr("Postal code"), self.postal_code)
        form.add(0, "city", tr("City *"), self.city)
        form.add(0, "country", tr("Country *"), self.country, tr("Two letters, e.g. DE, AT"))
        form.add(1, "latitude", tr("Latitude"), self.latitude)
        form.add(
            1,
            "longitude",
            tr("Longitude"),
            self.longitude,
            tr("Paste “52.52, 13.40” into Latitude to fill both"),
        )
        form.add(1, "location_type", tr("Location type *"), self.location_type)
        form.add(
            1,
            "capacity_units",
            tr("Capacity (units) *"),
            self.capacity,
            tr("How many items the stand holds in all"),
        )
        form.add(1, "assigned_rep", tr("Assigned rep"), self.rep)
        layout = QVBoxLayout(page)
        layout.addWidget(form)
        layout.addStretch(1)
        return page

    def _build_assortment_page(self) -> QWidget:
        page = QWidget()
        self.assortment_count = QLabel()
        self.assortment_count.setStyleSheet("font-weight: bold;")
        self.assortment_count.setWordWrap(True)
        self.capacity_note = QLabel()
        self.capacity_note.setWordWrap(True)
        self.products_error = FieldError()
        self.products_error.setObjectName("error_products")
        self.filter = QLineEdit(placeholderText=tr("Filter products by name, SKU or category…"))
        self.filter.setClearButtonEnabled(True)
        _touch(self.filter)
        self.filter.textChanged.connect(self._apply_filter)
        self.default_button = QPushButton(tr("Package default"))
        self.default_button.setToolTip(tr("Tick the package's default assortment again"))
        self.clear_button = QPushButton(tr("Clear all"))
        for button in (self.default_button, self.clear_button):
            button.setMinimumHeight(TOUCH)
        self.default_button.clicked.connect(self.use_default_assortment)
        self.clear_button.clicked.connect(self.clear_assortment)
        self.tree = QTreeWidget()
        self.tree.setObjectName("assortment")
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setHeaderLabels(
            [tr("Product"), tr("SKU"), tr("Category"), tr("Price"), tr("Pack")]
        )
        header = self.tree.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        self.tree.itemChanged.connect(self._on_item_changed)
        kinetic(self.tree)
        self.assortment_empty = QLabel()
        self.assortment_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.assortment_empty.setWordWrap(True)
        self.assortment_empty.hide()
        tools = QHBoxLayout()
        tools.addWidget(self.filter, 1)
        tools.addWidget(self.default_button)
        tools.addWidget(self.clear_button)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.assortment_count)
        layout.addWidget(self.capacity_note)
        layout.addWidget(self.products_error)
        layout.addLayout(tools)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.assortment_empty, 1)
        return page

    def _build_review_page(self) -> QWidget:
        page = QWidget()
        self.summary = QLabel()
        self.summary.setObjectName("summary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.summary.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.review_label = QLabel()
        self.review_label.setObjectName("label_preview")
        self.review_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        caption = QLabel(tr("The stand's payment label, as it will print"))
        caption.setWordWrap(True)
        caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        _small(caption)
        right = QVBoxLayout()
        right.addWidget(self.review_label)
        right.addWidget(caption)
        right.addStretch(1)
        layout = QHBoxLayout(page)
        layout.addWidget(self.summary, 3)
        layout.addLayout(right, 2)
        return page

    def _build_done_page(self) -> QWidget:
        page = QWidget()
        self.done_title = QLabel()
        self.done_title.setObjectName("done_title")
        self.done_title.setWordWrap(True)
        self.done_title.setStyleSheet("font-size: 18px; font-weight: bold; color: #2e7d32;")
        self.done_text = QLabel()
        self.done_text.setWordWrap(True)
        self.done_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_png_button = QPushButton(tr("Export label as PNG…"))
        self.export_pdf_button = QPushButton(tr("Export label as PDF…"))
        self.activate_button = QPushButton(tr("Activate partner now…"))
        self.activate_button.setToolTip(
            tr("The stand goes live and the partner receives the package's welcome points")
        )
        self.open_stand_button = QPushButton(tr("Open stand"))
        self.again_button = QPushButton(tr("Sign up another partner"))
        for button in (
            self.export_png_button,
            self.export_pdf_button,
            self.activate_button,
            self.open_stand_button,
            self.again_button,
        ):
            button.setMinimumHeight(TOUCH)
        self.export_png_button.clicked.connect(lambda: self.export_label_png())
        self.export_pdf_button.clicked.connect(lambda: self.export_label_pdf())
        self.activate_button.clicked.connect(self.activate_partner)
        self.open_stand_button.clicked.connect(self.open_stand)
        self.again_button.clicked.connect(self.reset)
        self.done_message = QLabel()
        self.done_message.setObjectName("done_message")
        self.done_message.setWordWrap(True)
        self.done_label = QLabel()
        self.done_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        buttons = QVBoxLayout()
        for button in (
            self.export_png_button,
            self.export_pdf_button,
            self.activate_button,
            self.open_stand_button,
            self.again_button,
        ):
            buttons.addWidget(button)
        left = QVBoxLayout()
        left.addWidget(self.done_title)
        left.addWidget(self.done_text)
        left.addSpacing(8)
        left.addLayout(buttons)
        left.addWidget(self.done_message)
        left.addStretch(1)
        layout = QHBoxLayout(page)
        layout.addLayout(left, 3)
        layout.addWidget(self.done_label, 2)
        return page

    # ------------------------------------------------------------------ the view protocol

    @property
    def loading(self) -> bool:
        return self._reads > 0 or self.saving

    def refresh(self) -> None:
        """Load the packages and suggestions. What was typed stays; a sign-up that was
        finished and then left makes way for a fresh one."""
        if self.result is not None and self._left_after_done:
            self.reset()
        self._reads += 1
        self.ctx.read(onboarding_choices, on_done=self._got_choices, on_error=self._load_failed)

    def open(self, _arg: object = None) -> None:
        self.refresh()

    def hideEvent(self, event: QHideEvent) -> None:
        # Leaving the Done page (not minimising the window) ends this sign-up.
        if not event.spontaneous() and self.result is not None:
            self._left_after_done = True
        super().hideEvent(event)

    def has_input(self) -> bool:
        """True while something typed or chosen would be lost by leaving."""
        if self.result is not None:
            return False
        return any(edit.text() != start for edit, start in self._initial.items())

    def can_leave(self) -> bool:
        if self.saving:
            self.ctx.status.emit(tr("The new partner is being saved; one moment."))
            return False
        if not self.has_input():
            return True
        if self._confirm(
            tr("Discard the new partner?"),
            tr("What you typed for the new partner has not been saved. Leave and discard it?"),
        ):
            self.reset()
            return True
        return False

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _ask_save_path(self, caption: str, name: str, filters: str) -> str | None:
        folder = str(QSettings().value("onboarding/label_folder", str(Path.home())))
        path, _ = QFileDialog.getSaveFileName(self, caption, str(Path(folder) / name), filters)
        if path:
            QSettings().setValue("onboarding/label_folder", str(Path(path).parent))
        return path or None

    # ------------------------------------------------------------------ loading

    def _got_choices(self, choices: OnboardingChoices) -> None:
        self._reads -= 1
        unchanged = self.choices is not None and self.choices.packages == choices.packages
        self.choices = choices
        self._set_items(self.region, choices.regions)
        self._set_items(self.rep, choices.reps)
        if unchanged:
            return  # keep the cards (and the keyboard focus on them)
        selected = self.package_code()
        for card in self.cards.values():
            self.package_group.removeButton(card.radio)
            card.deleteLater()
        self.cards.clear()
        self.packages_loading.setVisible(not choices.packages)
        self.packages_loading.setText(tr("No packages are set up in this database; ask a manager."))
        for option in choices.packages:
            card = PackageCard(option, self.package_group)
            self.cards[option.code] = card
            self.cards_row.addWidget(card, 1)
        if choices.packages:
            code = selected if selected in self.cards else choices.packages[0].code
            self.cards[code].radio.setChecked(True)

    @staticmethod
    def _set_items(combo: QComboBox, items: tuple[str, ...]) -> None:
        text = combo.currentText()
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(list(items))
        combo.setEditText(text)
        combo.blockSignals(False)
        completer = QCompleter(list(items), combo)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        # Inline: the suggestion appears in the field; the drop-down lists them all.
        completer.setCompletionMode(QCompleter.CompletionMode.InlineCompletion)
        combo.setCompleter(completer)

    def _load_failed(self, exc: Exception) -> None:
        self._reads -= 1
        self.banner.show_message(tr("Could not load: {error}").format(error=exc))

    def _on_changed(self, changed: Changed) -> None:
        # A new or discontinued product changes what a stand may carry.
        if changed.touches("products", "catalog", "packages"):
            self.refresh()
            self._load_preview()

    def package_code(self) -> str | None:
        button = self.package_group.checkedButton()
        for code, card in self.cards.items():
            if card.radio is button:
                return code
        return None

    def package(self) -> PackageOption | None:
        code = self.package_code()
        return self.cards[code].option if code else None

    def _on_package_toggled(self, _button: object, checked: bool) -> None:
        if checked:
            self.package_error.show_message("")
            self._load_preview()

    def _load_preview(self) -> None:
        code = self.package_code()
        if code is None:
            return
        self._reads += 1
        self.ctx.read(
            assortment_preview, code, on_done=self._got_preview, on_error=self._preview_failed
        )

    def _preview_failed(self, exc: Exception) -> None:
        self._reads -= 1
        self.products_error.show_message(str(exc))

    def _got_preview(self, preview: AssortmentPreview) -> None:
        self._reads -= 1
        if preview.package_code != self.package_code():
            return  # the user has chosen another package since
        kept = self.checked_products()
        available = {p.id for p in preview.products}
        # Keep the user's own choice where it still fits (a product may have been
        # discontinued meanwhile); otherwise tick the package's default.
        still = [k for k in kept if k in available]
        note = self._products_message
        self._products_message = ""
        if self._customised and still and len(still) <= preview.sku_slots:
            chosen = set(still)
        else:
            if self._customised and kept and not note:
                note = tr(
                    "Your choice did not fit the {package} package; the package's default "
                    "assortment is ticked instead."
                ).format(package=preview.package_name)
            self._customised = False
            chosen = set(preview.default_ids)
        self.preview = preview
        self._fill_tree(chosen)
        self.products_error.show_message(note)

    def _fill_tree(self, chosen: set[str]) -> None:
        assert self.preview is not None
        self._filling_tree = True
        self.tree.clear()
        for p in self.preview.products:
            item = QTreeWidgetItem(
                [p.name, p.sku, p.category, money(p.list_price), str(p.pack_size)]
            )
            item.setData(0, Qt.ItemDataRole.UserRole, p.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                0, Qt.CheckState.Checked if p.id in chosen else Qt.CheckState.Unchecked
            )
            item.setSizeHint(0, QSize(0, TOUCH))
            for col in (3, 4):
                item.setTextAlignment(
                    col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
            self.tree.addTopLevelItem(item)
        self._filling_tree = False
        self._apply_filter()
        self._update_assortment()

    def _items(self) -> list[QTreeWidgetItem]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [item for item in items if item is not None]

    def checked_products(self) -> list[str]:
        """Ids of the ticked products, in list order."""
        return [
            str(item.data(0, Qt.ItemDataRole.UserRole))
            for item in self._items()
            if item.checkState(0) == Qt.CheckState.Checked
        ]

    def set_product_checked(self, product_id: str, checked: bool) -> None:
        for item in self._items():
            if item.data(0, Qt.ItemDataRole.UserRole) == product_id:
                item.setCheckState(0, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def use_default_assortment(self) -> None:
        if self.preview is not None:
            self._customised = False
            self._fill_tree(set(self.preview.default_ids))
            self.products_error.show_message("")

    def clear_assortment(self) -> None:
        if self.preview is not None:
            self._customised = True
            self._fill_tree(set())

    def _on_item_changed(self, _item: QTreeWidgetItem, column: int) -> None:
        if self._filling_tree or column != 0:
            return
        self._customised = True
        self.products_error.show_message("")
        self._update_assortment()

    def _apply_filter(self) -> None:
        needle = self.filter.text().strip().lower()
        shown = 0
        for item in self._items():
            text = " ".join(item.text(c) for c in range(3)).lower()
            hidden = bool(needle) and needle not in text
            item.setHidden(hidden)
            shown += not hidden
        has_products = bool(self.preview and self.preview.products)
        self.tree.setVisible(has_products)
        self.assortment_empty.setVisible(not has_products)
        if self.preview is None:
            self.assortment_empty.setText(tr("Loading the products…"))
        elif not has_products:
            self.assortment_empty.setText(
                tr(
                    "The catalog has no products for sale yet. A manager adds them in Products; "
                    "a stand cannot be set up without any."
                )
            )

    def _update_assortment(self) -> None:
        """Counter, capacity split, and the slots limit: once full, the unticked products
        are greyed out until one is unticked."""
        if self.preview is None:
            return
        chosen = len(self.checked_products())
        slots = self.preview.sku_slots
        full = chosen >= slots
        self._filling_tree = True
        for item in self._items():
            if item.checkState(0) != Qt.CheckState.Checked:
                flags = item.flags()
                item.setFlags(
                    flags & ~Qt.ItemFlag.ItemIsEnabled
                    if full
                    else flags | Qt.ItemFlag.ItemIsEnabled
                )
        self._filling_tree = False
        self.assortment_count.setText(
            tr(
                "{n} of {slots} products chosen. The {package} package allows {slots} per stand"
                "{full}."
            ).format(
                n=chosen,
                slots=slots,
                package=self.preview.package_name,
                full=tr(": untick one to choose another") if full else "",
            )
        )
        capacity = self.capacity.value()
        if chosen and capacity:
            each = capacity // chosen
            par = min(self.preview.default_par, each)
            self.capacity_note.setText(
                tr("Capacity {capacity} units: {each} per product, refilled up to {par}.").format(
                    capacity=capacity, each=each, par=par
                )
                if each
                else tr(
                    "Capacity {capacity} units is too small for {n} products; raise the "
                    "capacity on the Stand step or choose fewer products."
                ).format(capacity=capacity, n=chosen)
            )
        else:
            self.capacity_note.setText("")

    # ------------------------------------------------------------------ steps

    def current_step(self) -> int:
        return self.stack.currentIndex()

    def _show_step(self, step: int) -> None:
        self.stack.setCurrentIndex(step)
        self.banner.show_message("")
        done = step == DONE
        for i, button in enumerate(self.steps):
            button.setChecked(i == step)
            button.setEnabled(not done and not self.saving)
            font = button.font()
            font.setBold(i == step)
            button.setFont(font)
        headings = (
            tr("Who is the partner?"),
            tr("Which package?"),
            tr("Where is the first stand?"),
            tr("What will the stand sell?"),
            tr("Check and create"),
            tr("Done"),
        )
        self.heading.setText(headings[step])
        self.nav.setVisible(not done)
        self.back_button.setEnabled(step > PARTNER and not self.saving)
        self.next_button.setVisible(step < REVIEW)
        self.finish_button.setVisible(step == REVIEW)
        self.finish_button.setEnabled(not self.saving and self.ctx.actor.role in STAFF)
        if step == ASSORTMENT:
            if self.preview is None or self.preview.package_code != self.package_code():
                self._apply_filter()
                self._load_preview()
            self._update_assortment()
        if step == REVIEW:
            self._fill_review()
        self._focus_first(step)

    def _focus_first(self, step: int) -> None:
        first: dict[int, QWidget] = {
            PARTNER: self.partner_name,
            STAND: self.stand_name,
            ASSORTMENT: self.tree,
            REVIEW: self.finish_button,
            DONE: self.export_png_button,
        }
        if step == PACKAGE:
            checked = self.package_group.checkedButton()
            if checked is not None:
                checked.setFocus()
            return
        if step in first:
            first[step].setFocus()

    def go_to(self, step: int) -> bool:
        """Move to ``step``; moving forward checks every step on the way and stops at the
        first one with a problem."""
        current = self.current_step()
        if self.saving or current == DONE:
            return False
        while current < step:
            if not self._validate(current):
                self._show_step(current)
                self._focus_error(current)
                return False
            current += 1
        self._show_step(step)
        return True

    def next(self) -> None:
        if self.current_step() < REVIEW:
            self.go_to(self.current_step() + 1)

    def back(self) -> None:
        if PARTNER < self.current_step() < DONE and not self.saving:
            self._show_step(self.current_step() - 1)

    def _primary(self) -> None:
        if self.current_step() == REVIEW:
            self.finish()
        elif self.current_step() < REVIEW:
            self.next()

    def _focus_error(self, step: int) -> None:
        widgets: dict[str, QWidget] = {}
        errors: dict[str, FieldError] = {}
        if step == PARTNER:
            errors = self.partner_form.errors
            widgets = {
                "name": self.partner_name,
                "contact_name": self.contact_name,
                "email": self.email,
                "phone": self.phone,
                "region": self.region,
                "payout_method": self.payout_method,
                "payout_account": self.payout_account,
                "notes": self.notes,
            }
        elif step == STAND:
            errors = self.stand_form.errors
            widgets = {
                "stand_name": self.stand_name,
                "address": self.address,
                "postal_code": self.postal_code,
                "city": self.city,
                "country": self.country,
                "latitude": self.latitude,
                "longitude": self.longitude,
                "location_type": self.location_type,
                "capacity_units": self.capacity.edit,
                "assigned_rep": self.rep,
            }
        for key, label in errors.items():
            if not label.isHidden() and label.text() and key in widgets:
                widgets[key].setFocus()
                return

    # ------------------------------------------------------------------ validation

    def _validate(self, step: int) -> bool:
        check: dict[int, Callable[[], bool]] = {
            PARTNER: self._validate_partner,
            PACKAGE: self._validate_package,
            STAND: self._validate_stand,
            ASSORTMENT: self._validate_assortment,
        }
        return check[step]() if step in check else True

    @staticmethod
    def _report(errors: dict[str, FieldError], found: dict[str, str]) -> bool:
        for key, label in errors.items():
            label.show_message(found.get(key, ""))
        return not found

    def _validate_partner(self) -> bool:
        found: dict[str, str] = {}
        if not self.partner_name.text().strip():
            found["name"] = tr("Business name is required.")
        if not self.contact_name.text().strip():
            found["contact_name"] = tr("Contact person is required.")
        email = self.email.text().strip()
        if email and not EMAIL.match(email):
            found["email"] = tr(
                "“{email}” is not an email address such as name@example.com."
            ).format(email=email)
        phone = self.phone.text().strip()
        if phone and not set(phone) <= PHONE_CHARS:
            found["phone"] = tr("Use digits and + - ( ) / . only, e.g. +49 30 1234567.")
        if not self.payout_method.currentData() and self.payout_account.text().strip():
            found["payout_method"] = tr("Choose how the account is paid, or clear the account.")
        return self._report(self.partner_form.errors, found)

    def _validate_package(self) -> bool:
        if self.choices is None:
            self.package_error.show_message(tr("The packages are still loading; one moment."))
            return False
        if self.package_code() is None:
            self.package_error.show_message(tr("Choose a package."))
            return False
        self.package_error.show_message("")
        return True

    def _validate_stand(self) -> bool:
        self._split_coordinate_pair()
        found: dict[str, str] = {}
        for key, edit, label in (
            ("stand_name", self.stand_name, tr("Stand name")),
            ("address", self.address, tr("Address")),
            ("city", self.city, tr("City")),
        ):
            if not edit.text().strip():
                found[key] = tr("{label} is required.").format(label=label)
        country = self.country.text().strip()
        if len(country) != 2 or not country.isalpha():
            found["country"] = tr("Country must be a two-letter code such as DE.")
        for key, edit, label, limit in (
            ("latitude", self.latitude, tr("Latitude"), 90.0),
            ("longitude", self.longitude, tr("Longitude"), 180.0),
        ):
            try:
                parse_coordinate(edit.text(), label, limit)
            except ValueError as exc:
                found[key] = str(exc)
        if bool(self.latitude.text().strip()) != bool(self.longitude.text().strip()):
            missing = "longitude" if self.latitude.text().strip() else "latitude"
            found.setdefault(missing, tr("Give both coordinates, or neither."))
        capacity = self.capacity.value()
        if capacity is None:
            found["capacity_units"] = tr("Capacity must be a whole number, e.g. 120.")
        elif capacity < 1:
            found["capacity_units"] = tr("Capacity must be at least 1.")
        elif capacity > 100_000:
            found["capacity_units"] = tr("Capacity must be at most 100000.")
        return self._report(self.stand_form.errors, found)

    def _validate_assortment(self) -> bool:
        if self.preview is None:
            self.products_error.show_message(tr("The products are still loading; one moment."))
            return False
        chosen = self.checked_products()
        capacity = self.capacity.value() or 0
        message = ""
        if not chosen:
            message = tr("Choose at least one product.")
        elif len(chosen) > self.preview.sku_slots:
            message = tr("The {package} package allows {n} products per stand.").format(
                package=self.preview.package_name, n=self.preview.sku_slots
            )
        elif capacity < len(chosen):
            message = tr(
                "A stand with {n} products needs a capacity of at least {n} units; raise the "
                "capacity on the Stand step."
            ).format(n=len(chosen))
        self.products_error.show_message(message)
        return not message

    # ------------------------------------------------------------------ input values

    def partner_input(self) -> onboarding.PartnerInput:
        package = self.package_code() or ""
        return onboarding.PartnerInput(
            name=self.partner_name.text().strip(),
            contact_name=self.contact_name.text().strip(),
            package_code=package,
            email=self.email.text().strip() or None,
            phone=self.phone.text().strip() or None,
            region=self.region.currentText().strip() or None,
            payout_method=self.payout_method.currentData() or None,
            payout_account=self.payout_account.text().strip() or None,
            notes=self.notes.text().strip(),
        )

    def stand_input(self) -> onboarding.StandInput:
        def coordinate(edit: QLineEdit, limit: float) -> float | None:
            try:
                return parse_coordinate(edit.text(), "", limit)
            except ValueError:
                return None

        return onboarding.StandInput(
            name=self.stand_name.text().strip(),
            address=self.address.text().strip(),
            city=self.city.text().strip(),
            postal_code=self.postal_code.text().strip() or None,
            country=self.country.text().strip().upper(),
            latitude=coordinate(self.latitude, 90.0),
            longitude=coordinate(self.longitude, 180.0),
            location_type=str(self.location_type.currentData()),
            capacity_units=self.capacity.value() or 0,
            assigned_rep=self.rep.currentText().strip() or None,
            products=tuple(self.checked_products()),
        )

    def label_data(self) -> LabelData:
        """The label the stand will get (exact: the reference derives from the stand id)."""
        if self.result is not None and self.result.stand is not None:
            stand = self.result.stand
            return LabelData(
                stand.stand_id,
                stand.name,
                self.partner_name.text().strip(),
                stand.payment_reference,
                stand.qr_payload,
            )
        return LabelData.for_stand(
            self.stand_id, self.stand_name.text().strip(), self.partner_name.text().strip()
        )

    def _split_coordinate_pair(self) -> None:
        match = COORDINATE_PAIR.match(self.latitude.text())
        if match and not self.longitude.text().strip():
            self.latitude.setText(match.group(1))
            self.longitude.setText(match.group(2))

    # ------------------------------------------------------------------ review and save

    def _preview_pixmap(self, height: int) -> QPixmap:
        ratio = self.devicePixelRatioF() or 1.0
        dpi = max(30, round(height * ratio / (150 / 25.4)))
        pixmap = QPixmap.fromImage(render_label(self.label_data(), dpi))
        pixmap.setDevicePixelRatio(ratio)
        return pixmap

    def _fill_review(self) -> None:
        p, s = self.partner_input(), self.stand_input()
        package = self.package()
        e = html.escape

        def row(label: str, value: str | None) -> str:
            missing = f"<span style='color: gray'>{e(tr('not given'))}</span>"
            shown = e(value) if value else missing
            cell = "<td style='padding-right: 12px; color: gray'>"
            return f"<tr>{cell}{e(label)}</td><td>{shown}</td></tr>"

        payout = dict(PAYOUT_METHODS).get(p.payout_method or "", p.payout_method or "")
        coordinates = (
            f"{s.latitude:.5f}, {s.longitude:.5f}"
            if s.latitude is not None and s.longitude is not None
            else None
        )
        names = {
            str(item.data(0, Qt.ItemDataRole.UserRole)): item.text(0) for item in self._items()
        }
        products = [names.get(pid, pid) for pid in s.products or ()]
        shown_products = ", ".join(products[:8]) + (
            tr(" and {n} more").format(n=len(products) - 8) if len(products) > 8 else ""
        )
        address = ", ".join(
            x for x in (s.address, f"{s.postal_code or ''} {s.city}".strip(), s.country) if x
        )
        sections = [
            (
                tr("Partner"),
                [
                    row(tr("Business"), p.name),
                    row(tr("Contact"), p.contact_name),
                    row(tr("Email"), p.email),
                    row(tr("Phone"), p.phone),
                    row(tr("Region"), p.region),
                    row(
                        tr("Payout"),
                        " · ".join(
                            x for x in (tr(payout) if payout else "", p.payout_account or "") if x
                        ),
                    ),
                ],
            ),
            (
                tr("Package"),
                [
                    row(tr("Package"), package.name if package else None),
                    row(tr("Includes"), package.description if package else None),
                ],
            ),
            (
                tr("First stand"),
                [
                    row(tr("Name"), s.name),
                    row(tr("Address"), address),
                    row(tr("Coordinates"), coordinates),
                    row(tr("Type"), self.location_type.currentText()),
                    row(tr("Capacity"), tr("{n} units").format(n=s.capacity_units)),
                    row(tr("Assigned rep"), s.assigned_rep),
                    row(tr("Products"), f"{len(products)}: {shown_products}" if products else None),
                    row(tr("Payment reference"), self.label_data().reference),
                ],
            ),
        ]
        body = "".join(
            f"<h3 style='margin: 10px 0 4px 0'>{e(title)}</h3><table>{''.join(rows)}</table>"
            for title, rows in sections
        )
        note = e(
            tr(
                "Nothing is saved until you press Create partner. The partner starts in "
                "onboarding and the stand as planned, until you activate them."
            )
        )
        self.summary.setText(body + f"<p style='color: gray'>{note}</p>")
        self.review_label.setPixmap(self._preview_pixmap(340))

    def finish(self) -> None:
        """Save: one service call creates the partner and the stand."""
        if self.saving or self.current_step() != REVIEW:
            return
        for step in (PARTNER, PACKAGE, STAND, ASSORTMENT):
            if not self._validate(step):
                self._show_step(step)
                self._focus_error(step)
                return
        self.saving = True
        self._show_step(REVIEW)
        self.finish_button.setText(tr("Saving…"))
        self.ctx.write(
            onboarding.onboard_partner,
            self.partner_input(),
            self.stand_input(),
            partner_id=self.partner_id,
            stand_id=self.stand_id,
            on_done=self._saved,
            on_error=self._save_failed,
        )

    def _end_saving(self) -> None:
        self.saving = False
        self.finish_button.setText(tr("Create partner"))

    def _saved(self, result: onboarding.PartnerOnboarded) -> None:
        self._end_saving()
        self.result = result
        stand = result.stand
        assert stand is not None
        self.ctx.changed("partners", "stands", ids=(result.partner_id, stand.stand_id))
        partner = self.partner_name.text().strip()
        self.ctx.status.emit(
            tr("{partner} is signed up with stand {stand}.").format(
                partner=partner, stand=stand.name
            )
        )
        package = self.package()
        self.done_title.setText(tr("✓ {partner} is signed up").format(partner=partner))
        self.done_text.setText(
            tr(
                "Stand “{stand}” is planned with {n} products on the {package} package; its "
                "payment reference is {reference}. The partner is in onboarding: activate "
                "them when the stand is in place, and the stand goes live."
            ).format(
                stand=stand.name,
                n=len(stand.product_ids),
                package=package.name if package else result.package_code,
                reference=stand.payment_reference,
            )
        )
        self.done_message.setText("")
        self.activate_button.setEnabled(True)
        self.activated = False
        self._show_step(DONE)
        self.done_label.setPixmap(self._preview_pixmap(340))

    def _page_for_error(self, exc: DomainError) -> int:
        field = exc.field or ""
        if field in PARTNER_FIELDS:
            return PARTNER
        if field == "package_code":
            return PACKAGE
        if field in STAND_FIELDS:
            return STAND
        if field == "products":
            return ASSORTMENT
        return REVIEW

    def _save_failed(self, exc: Exception) -> None:
        self._end_saving()
        if not isinstance(exc, DomainError):
            self._show_step(REVIEW)
            self.banner.show_message(
                tr("Could not save; nothing was saved: {error}").format(error=exc)
            )
            return
        if exc.field == "stand_id":
            # The id's payment reference is taken (rare): a new id, a new label to check.
            self.stand_id = new_id()
        if exc.field == "partner_id":
            self.partner_id = new_id()
        step = self._page_for_error(exc)
        self._show_step(step)
        if step == PARTNER:
            show_error(self.partner_form.errors, exc, self.banner)
        elif step == STAND:
            show_error(self.stand_form.errors, exc, self.banner)
        elif step == PACKAGE:
            self.package_error.show_message(exc.message)
        elif step == ASSORTMENT:
            # The catalog may have changed under us (a product discontinued): reload it,
            # keeping what is still available ticked, then say what was wrong.
            self._products_message = exc.message
            self.products_error.show_message(exc.message)
            self._load_preview()
        else:
            if exc.field == "stand_id":
                self._fill_review()
                self.banner.show_message(
                    exc.message + " " + tr("A new label was made; check it and create again.")
                )
            else:
                self.banner.show_message(exc.message)
        self._focus_error(step)

    # ------------------------------------------------------------------ after saving

    def export_label_png(self, path: str | Path | None = None) -> Path | None:
        data = self.label_data()
        target = path or self._ask_save_path(
            tr("Export label as PNG"), f"label-{data.reference}.png", tr("PNG image (*.png)")
        )
        return self._export(export_png, data, target)

    def export_label_pdf(self, path: str | Path | None = None) -> Path | None:
        data = self.label_data()
        target = path or self._ask_save_path(
            tr("Export label as PDF"), f"label-{data.reference}.pdf", tr("PDF document (*.pdf)")
        )
        return self._export(export_pdf, data, target)

    def _export(
        self,
        writer: Callable[[LabelData, str | Path], Path],
        data: LabelData,
        target: str | Path | None,
    ) -> Path | None:
        if not target:
            return None
        try:
            written = writer(data, target)
        except OSError as exc:
            self.done_message.setStyleSheet("color: #c62828;")
            self.done_message.setText(tr("Could not write the label: {error}").format(error=exc))
            return None
        self.done_message.setStyleSheet("")
        self.done_message.setText(tr("Label saved to {path}").format(path=written))
        return written

    def activate_partner(self) -> None:
        if self.result is None or self.activated:
            return
        package = self.package()
        points = package.activation_points if package else 0
        if not self._confirm(
            tr("Activate partner?"),
            tr(
                "Activate {partner} now? Their stand goes live and they receive {points} "
                "welcome points. Do this when the stand is in place."
            ).format(partner=self.partner_name.text().strip(), points=points),
        ):
            return
        self.activate_button.setEnabled(False)
        self.ctx.write(
            loyalty.activate_partner,
            self.result.partner_id,
            on_done=self._activated,
            on_error=self._activate_failed,
        )

    def _activated(self, result: loyalty.PointsResult) -> None:
        self.activated = True
        assert self.result is not None
        assert self.result.stand is not None
        self.ctx.changed(
            "partners",
            "stands",
            "loyalty",
            ids=(self.result.partner_id, self.result.stand.stand_id),
        )
        self.done_message.setStyleSheet("")
        self.done_message.setText(
            tr(
                "The partner is active, the stand is live, and {points} welcome points were added."
            ).format(points=result.points)
        )

    def _activate_failed(self, exc: Exception) -> None:
        self.activate_button.setEnabled(True)
        self.done_message.setStyleSheet("color: #c62828;")
        self.done_message.setText(str(exc))

    def open_stand(self) -> None:
        if self.result is not None and self.result.stand is not None:
            self.ctx.navigate.emit("stand", self.result.stand.stand_id)

    def reset(self) -> None:
        """Start over with an empty wizard (new ids)."""
        for edit, start in self._initial.items():
            edit.setText(start)
        self.rep.setEditText(self.ctx.actor.user)
        self.region.setEditText("")
        self.payout_method.setCurrentIndex(0)
        self.location_type.setCurrentIndex(0)
        self.capacity.setValue(DEFAULT_CAPACITY)
        self.filter.clear()
        for form in (self.partner_form, self.stand_form):
            for label in form.errors.values():
                label.show_message("")
        self.package_error.show_message("")
        self.products_error.show_message("")
        self.result = None
        self.activated = False
        self._left_after_done = False
        self.partner_id, self.stand_id = new_id(), new_id()
        if self.choices and self.choices.packages:
            self.cards[self.choices.packages[0].code].radio.setChecked(True)
        self._customised = False
        if self.preview is not None:
            self._fill_tree(set(self.preview.default_ids))
        self._show_step(PARTNER)
