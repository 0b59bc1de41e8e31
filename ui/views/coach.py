"""The Coach: the coach's open insights across stands, and acting on them.

The table lists every open insight (new or acknowledged) — severity in colour and words,
stand, product, kind in plain words, the one-line message and when it last changed — with
filters by kind and severity and a text search, all applied in memory to one background
read of :func:`app.coach.agent.list_insights`. The selected insight shows in the panel
beside: the message, the recommended action in words, the evidence behind it as
"label: value" lines, and the actions:

- **Create refill** (stock-out risks): opens the refill request screen pre-filled with the
  coach's quantities and the reason for each (``navigate("refill", {...})``).
- **Open stand**, **Acknowledge** (seen; it stays open and the coach keeps it current),
  **Done** and **Dismiss…** (with a reason; the coach will not raise it again within its
  period). Partners only read.

Who closes a stock-out insight once its refill is requested: the insight id travels in the
navigation payload, and the refill request screen marks the insight done when the refill it
pre-filled is submitted. This screen also watches, for a refill asked for another way (the
user left the pre-filled form and used New refill later): after "Create refill" it remembers
the insight with its stand and the time, and when a "refills" change for that stand
arrives it reads the stand's open refills and, if the signed-in person requested one since,
marks the insight done ("Refill requested"). Whichever comes second finds the insight
closed and does nothing.

"Run the coach now" runs the whole coach on the database lane through
:class:`ui.coach_scan.CoachRuns`, shared with the background scanner, so the two never run
at once and the screen shows the result of either ("12 new, 3 updated, 2 closed · 1.8 s").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDate,
    QEvent,
    QLocale,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTime,
)
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import DomainError
from app.models import InsightStatus, Role, Severity
from app.services import refill_views
from app.services.base import STAFF
from app.services.refill_views import RefillListRow
from ui import coach_scan as coach
from ui.coach_scan import RunSummary, coach_runs, error_text
from ui.context import Changed, LatestRead, UiContext
from ui.i18n import tr
from ui.views.refill_dialogs import RefillDialog
from ui.widgets import (
    TOUCH,
    EmptyState,
    FieldError,
    kinetic,
    list_and_detail,
    local_time,
    money,
    plural,
    with_shortcut,
)

if TYPE_CHECKING:
    from app.coach.agent import InsightView, StandOutlook

Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2

SEVERITY_COLOURS = {
    Severity.CRITICAL: "#c62828",
    Severity.WARNING: "#e65100",
    Severity.INFO: "#1565c0",
}
SEVERITY_LABELS = {
    Severity.CRITICAL: "Critical",
    Severity.WARNING: "Warning",
    Severity.INFO: "Info",
}
SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
#: Insights still to act on (as :data:`app.coach.OPEN_STATUSES`).
OPEN_STATUSES = (InsightStatus.NEW, InsightStatus.ACKNOWLEDGED)

# The kinds of :mod:`app.coach.insights` (named here so that opening the screen does not
# load the coach's numpy on the GUI thread; a test keeps the two lists the same).
STOCKOUT_RISK = "stockout_risk"
SLOW_MOVER = "slow_mover"
UNDER_FACED = "under_faced"
TREND_BREAK = "trend_break"
BELOW_PEERS = "below_peers"
COUNT_OVERDUE = "count_overdue"
TIER_WITHIN_REACH = "tier_within_reach"

#: Insight kinds in plain words, in the coach's order (stock first).
KIND_LABELS = {
    STOCKOUT_RISK: "Stock-out risk",
    SLOW_MOVER: "Slow mover",
    UNDER_FACED: "Sells out often",
    TREND_BREAK: "Sales trend change",
    BELOW_PEERS: "Behind similar stands",
    COUNT_OVERDUE: "Count overdue",
    TIER_WITHIN_REACH: "Loyalty tier in reach",
}
KIND_TIPS = {
    STOCKOUT_RISK: "A product may run out before the next visit",
    SLOW_MOVER: "Stock sitting on a product that sells badly here",
    UNDER_FACED: "A best seller that keeps selling out",
    TREND_BREAK: "Sales moved away from the forecast in the last two weeks",
    BELOW_PEERS: "Less revenue per product slot than similar stands",
    COUNT_OVERDUE: "No physical count for too long",
    TIER_WITHIN_REACH: "The partner is close to the next loyalty tier",
}

#: Data changes that change what the list shows.
KINDS = ("insights", "stands")
#: Screen actions: name -> (text, keys, tip).
ACTIONS = {
    "create_refill": (
        "Create refill…",
        "Ctrl+Shift+R",
        "Open a refill request pre-filled with the coach's quantities",
    ),
    "open_stand": ("Open stand", "Ctrl+Shift+O", "Show the stand of this insight"),
    "acknowledge": (
        "Acknowledge",
        "Ctrl+Shift+A",
        "Mark as seen: it stays open and the coach keeps it up to date",
    ),
    "done": ("Done", "Ctrl+Shift+D", "Close it: you acted on it"),
    "dismiss": ("Dismiss…", "Ctrl+Shift+X", "Close it as not useful, with a reason"),
    "run": ("Run the coach now", "Ctrl+Shift+S", "Scan every stand now and update the insights"),
}
#: Which columns show, most first, when the table is narrow (the first set that fits).
COLUMN_SETS = (
    ("severity", "stand", "kind", "product", "message", "updated"),
    ("severity", "stand", "kind", "message", "updated"),
    ("severity", "stand", "kind", "message"),
    ("severity", "stand", "message"),
    ("severity", "stand", "kind"),
    ("severity", "stand"),
)
#: The widest a column grows to fit its contents (it elides beyond).
COLUMN_CAPS = {"stand": 220, "kind": 170, "product": 190}
MESSAGE_MIN_WIDTH = 260
#: Text of insights someone has acknowledged (seen): muted.
SEEN_COLOUR = "#6b7480"
DONE_AFTER_REFILL = "Refill requested"


def kind_text(kind: str) -> str:
    return tr(KIND_LABELS.get(kind, kind.replace("_", " ").capitalize()))


def severity_text(severity: Severity) -> str:
    return tr(SEVERITY_LABELS[severity])


def product_text(i: InsightView) -> str:
    return i.product_name or ""


def _number(x: float) -> str:
    if x == int(x):
        return f"{int(x):,}"
    return f"{x:,.2f}" if abs(x) < 10 else f"{x:,.1f}"


def _percent(x: float) -> str:
    return f"{x * 100:.0f} %"


def _days(n: int) -> str:
    return plural(int(n), "{n} day", "{n} days")


def _when(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if len(value) <= 10:  # a calendar day
        day = QDate(moment.year, moment.month, moment.day)
        return str(QLocale().toString(day, QLocale.FormatType.ShortFormat))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return local_time(moment, date_only=True)


# --------------------------------------------------------------------------- evidence


#: Evidence keys in words, with how to show the value.
EVIDENCE = {
    "days_to_visit": ("Next visit in", "days"),
    "next_visit": ("Next visit", "date"),
    "service": ("Service level aimed at", "percent"),
    "window_days": ("Looked at the last", "days"),
    "units_sold": ("Units sold", "number"),
    "in_stock_days": ("Days in stock", "number"),
    "carried_days": ("Days carried", "number"),
    "rate_per_day": ("Sells per day", "number"),
    "peer_rate_per_day": ("Similar stands sell per day", "number"),
    "expected_rate_per_day": ("Expected per day at this stand", "number"),
    "stand_traffic_factor": ("Stand traffic vs similar stands", "times"),
    "fit": ("Sells vs expected", "percent"),
    "z": ("Standard deviations from expected", "number"),
    "on_hand": ("On hand", "number"),
    "days_of_cover": ("Days the stock lasts", "number"),
    "review_days": ("Refilled every", "days"),
    "out_of_stock_days": ("Days sold out", "number"),
    "out_of_stock_share": ("Share of days sold out", "percent"),
    "lost_units": ("Sales lost (units)", "number"),
    "lost_revenue": ("Sales lost (value)", "money"),
    "capacity": ("Capacity", "number"),
    "par": ("Par level", "number"),
    "order_up_to": ("Order-up-to level", "number"),
    "days": ("Days tested", "number"),
    "observed": ("Sold", "number"),
    "expected": ("Expected", "number"),
    "change": ("Change", "signed_percent"),
    "tracking_signal": ("Tracking signal", "number"),
    "revenue_per_slot_day": ("Revenue per product slot a day", "money"),
    "shrunk_revenue_per_slot_day": ("Allowing for chance", "money"),
    "peer_mean": ("Similar stands' average", "money"),
    "ratio_to_peers": ("Share of similar stands' average", "percent"),
    "shrinkage_weight": ("Weight of this stand's own figure", "percent"),
    "peer_group": ("Compared with", "group"),
    "peer_group_size": ("Similar stands", "number"),
    "prices": ("Prices", "text"),
    "last_count": ("Last count", "date"),
    "days_since": ("Days since the count", "number"),
    "limit_days": ("Count due every", "days"),
    "open_days": ("Open for", "days"),
    "tier": ("Tier now", "title"),
    "next_tier": ("Next tier", "title"),
    "earned_in_window": ("Points in the last 365 days", "number"),
    "threshold": ("Points the next tier needs", "number"),
    "points_needed": ("Points to go", "number"),
    "points_per_day_recent": ("Points a day lately", "number"),
    "days_to_reach": ("Days to reach it at this pace", "number"),
}
#: Ids and other keys that mean nothing to a person.
HIDDEN_EVIDENCE = {"partner_id", "product_id", "stand_id"}


def _value(value: Any, how: str) -> str:
    if isinstance(value, bool):
        return tr("yes") if value else tr("no")
    if isinstance(value, int | float):
        x = float(value)
        if how == "percent":
            return _percent(x)
        if how == "signed_percent":
            return f"{x * 100:+.0f} %"
        if how == "days":
            return _days(int(x))
        if how == "money":
            return money(Decimal(str(value)))
        if how == "times":
            return f"× {x:.2f}"
        return _number(x)
    text = str(value)
    if how == "money":
        try:
            return money(Decimal(text))
        except (InvalidOperation, ValueError):
            return text
    if how == "date":
        return _when(text)
    if how == "group":
        return text.replace("/", ", ").replace("_", " ")
    if how == "title":
        return text.replace("_", " ").capitalize()
    return text


def _at_risk_line(line: dict[str, Any]) -> str:
    parts = [
        tr("risk {risk}").format(risk=_percent(float(line.get("risk") or 0))),
        tr("{n} expected before the visit").format(
            n=_number(float(line.get("expected_before_visit") or 0))
        ),
        tr("{n} on hand").format(n=line.get("on_hand", 0)),
    ]
    if line.get("on_order"):
        parts.append(tr("{n} on order").format(n=line["on_order"]))
    parts.append(tr("order up to {n}").format(n=line.get("order_up_to", 0)))
    return f"{line.get('sku', '?')}: " + ", ".join(parts)


def evidence_lines(evidence: dict[str, Any]) -> list[str]:
    """The evidence as "label: value" lines, in a stable, readable order."""
    out = []
    order = {key: n for n, key in enumerate(EVIDENCE)}
    for key, value in sorted(evidence.items(), key=lambda kv: order.get(kv[0], len(order))):
        if key in HIDDEN_EVIDENCE or value is None or key == "at_risk":
            continue
        label, how = EVIDENCE.get(key, (key.replace("_", " ").capitalize(), "text"))
        if isinstance(value, list | dict):
            continue
        out.append(f"{tr(label)}: {_value(value, how)}")
    for line in evidence.get("at_risk") or []:
        if isinstance(line, dict):
            out.append(_at_risk_line(line))
    return out


# --------------------------------------------------------------------------- actions


def refill_quantities(i: InsightView) -> dict[str, int]:
    action = i.action
    if action.get("type") != "refill":
        return {}
    raw = action.get("quantities") or {}
    return {str(pid): int(q) for pid, q in raw.items() if int(q) > 0}


def can_create_refill(i: InsightView | None) -> bool:
    return i is not None and (i.kind == STOCKOUT_RISK or i.action.get("type") == "refill")


def action_text(i: InsightView) -> str:
    """The recommended action in words."""
    a = i.action
    kind = a.get("type")
    if kind == "refill":
        qty = refill_quantities(i)
        units = sum(qty.values())
        text = tr("Refill {units} units of {products}").format(
            units=units, products=plural(len(qty), "{n} product", "{n} products")
        )
        if a.get("value"):
            text += " " + tr("(about {value} at list price)").format(
                value=_value(a["value"], "money")
            )
        return text + "."
    if kind == "deliver_sooner":
        units = sum(int(v) for v in (a.get("on_order") or {}).values())
        return tr(
            "Bring the delivery forward: {units} units are on order but arrive only at the visit."
        ).format(units=units)
    if kind == "swap_sku":
        names = [f"{c.get('name')} ({c.get('sku')})" for c in a.get("candidates") or []]
        if names:
            return tr("Swap this product for one that sells at similar stands: {names}.").format(
                names=", ".join(names)
            )
        return tr("Swap this product for one that sells better here.")
    if kind == "more_facings":
        return tr("Give it more room: capacity {old} → {new} (and par {par} → {new_par}).").format(
            old=a.get("capacity"),
            new=a.get("suggested_capacity"),
            par=a.get("par"),
            new_par=a.get("suggested_par"),
        )
    if kind == "raise_par":
        if a.get("suggested_par") is not None and a.get("suggested_par") != a.get("par"):
            return tr("Raise the par level {old} → {new}, or refill more often.").format(
                old=a.get("par"), new=a.get("suggested_par")
            )
        if a.get("suggested_par") is not None:
            return tr("Refill more often (a shorter cadence).")
        return tr("Sales are up: consider a higher par level (now {par}).").format(par=a.get("par"))
    if kind == "check_shelf":
        return tr("Check the shelf, the placement and the price tag.")
    if kind == "review_assortment":
        slow = len(a.get("slow_movers") or [])
        text = tr("Review the assortment and the placement.")
        if slow:
            text += " " + plural(
                slow, "{n} slow mover is a place to start.", "{n} slow movers are a place to start."
            )
        return text
    if kind == "count":
        return tr("Count the stand.")
    if kind == "loyalty_nudge":
        return tr("Tell the partner: {points} points to {tier}.").format(
            points=f"{int(a.get('points_needed') or 0):,}",
            tier=str(a.get("tier", "")).replace("_", " ").capitalize(),
        )
    return str(kind or "").replace("_", " ").capitalize()


def refill_reasons(i: InsightView, outlook: StandOutlook | None) -> dict[str, str]:
    """The reason for each quantity of a refill insight: the coach's own line for the
    product where its recommendation today is the same quantity, else the insight's
    evidence."""
    qty = refill_quantities(i)
    reasons: dict[str, str] = {}
    by_product = {s.product_id: s for s in outlook.skus} if outlook is not None else {}
    at_risk = {
        str(line.get("product_id")): line
        for line in i.evidence.get("at_risk") or []
        if isinstance(line, dict)
    }
    service = i.evidence.get("service")
    for pid, n in qty.items():
        sku = by_product.get(pid)
        if sku is not None and sku.recommendation.quantity == n:
            reasons[pid] = sku.recommendation.message
        elif pid in at_risk:
            reasons[pid] = tr("Coach: {line} → refill {n}").format(
                line=_at_risk_line(at_risk[pid]), n=n
            )
        else:
            level = _percent(float(service)) if isinstance(service, int | float) else ""
            reasons[pid] = tr(
                "Coach: tops up to the level for {level} service → refill {n}"
            ).format(level=level, n=n)
    return reasons


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Column:
    key: str
    header: str


COLUMNS = (
    Column("severity", "Severity"),
    Column("stand", "Stand"),
    Column("kind", "Kind"),
    Column("product", "Product"),
    Column("message", "Message"),
    Column("updated", "Updated"),
)
COLUMN_KEYS = [c.key for c in COLUMNS]


class InsightModel(QAbstractTableModel):
    """Open insights, as read; acknowledged ones muted."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[InsightView] = []
        self._dots: dict[Severity, QIcon] = {}

    def set_rows(self, rows: list[InsightView]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(COLUMNS)
        ):
            return tr(COLUMNS[section].header)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        if not 0 <= index.column() < len(COLUMNS):
            return None
        i = self.rows[index.row()]
        key = COLUMNS[index.column()].key
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(i, key)
        if role == SORT_ROLE:
            return self._sort(i, key)
        if role == ID_ROLE:
            return i.id
        if role == Qt.ItemDataRole.ForegroundRole:
            if key == "severity":
                return QColor(SEVERITY_COLOURS[i.severity])
            return QColor(SEEN_COLOUR) if i.status == InsightStatus.ACKNOWLEDGED else None
        if role == Qt.ItemDataRole.DecorationRole and key == "severity":
            return self._dot(i.severity)
        if role == Qt.ItemDataRole.FontRole and key == "severity":
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(i, key)
        return None

    def _dot(self, severity: Severity) -> QIcon:
        if severity not in self._dots:
            self._dots[severity] = severity_dot(severity)
        return self._dots[severity]

    @staticmethod
    def _display(i: InsightView, key: str) -> str:
        if key == "severity":
            return severity_text(i.severity)
        if key == "stand":
            return i.stand_name
        if key == "product":
            return product_text(i)
        if key == "kind":
            return kind_text(i.kind)
        if key == "message":
            return i.message
        return local_time(i.updated_at)

    @staticmethod
    def _sort(i: InsightView, key: str) -> Any:
        if key == "severity":
            # Critical first, then the newest.
            return f"{SEVERITY_RANK[i.severity]}{10**11 - int(i.updated_at.timestamp()):012d}"
        if key == "updated":
            return i.updated_at.timestamp()
        if key == "kind":
            return list(KIND_LABELS).index(i.kind) if i.kind in KIND_LABELS else 99
        return InsightModel._display(i, key).casefold()

    @staticmethod
    def _tooltip(i: InsightView, key: str) -> str | None:
        if key == "message":
            return i.message
        if key == "product" and i.sku:
            return f"{i.product_name} ({i.sku})"
        if key == "kind":
            return tr(KIND_TIPS.get(i.kind, ""))
        if key == "severity":
            status = tr("New") if i.status == InsightStatus.NEW else tr("Acknowledged")
            return f"{severity_text(i.severity)} · {status}"
        return None


class InsightFilter(QSortFilterProxyModel):
    """Kind, severity and text filters over :class:`InsightModel`."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.kind: str | None = None
        self.severity: Severity | None = None
        self.text = ""
        self.setSortRole(SORT_ROLE)

    def set_filters(self, kind: str | None, severity: Severity | None, text: str) -> None:
        self.beginFilterChange()
        self.kind, self.severity, self.text = kind, severity, text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        assert isinstance(model, InsightModel)
        i = model.rows[source_row]
        if self.kind is not None and i.kind != self.kind:
            return False
        if self.severity is not None and i.severity != self.severity:
            return False
        if self.text:
            hay = " ".join(
                (i.stand_name, i.product_name or "", i.sku or "", i.message, kind_text(i.kind))
            ).casefold()
            return all(word in hay for word in self.text.split())
        return True


# --------------------------------------------------------------------------- dismiss


class DismissDialog(RefillDialog):
    """Dismiss an insight; the reason is required and kept with it."""

    PRESETS = (
        "Not right for this stand",
        "Seasonal: expected to pass",
        "Already taken care of",
        "The data behind it is wrong",
    )

    def __init__(self, ctx: UiContext, insight: InsightView, parent: QWidget | None = None) -> None:
        super().__init__(ctx, tr("Dismiss insight"), tr("Dismiss"), parent)
        self.insight = insight
        self.setObjectName("dismiss_dialog")
        what = f"{kind_text(insight.kind)} · {insight.stand_name}"
        if insight.product_name:
            what += f" · {insight.product_name}"
        head = QLabel(f"<b>{what}</b>")
        head.setWordWrap(True)
        note = QLabel(
            tr(
                "Dismiss this insight? The coach will not raise it again for this period. "
                "Say why, so whoever reads it later knows."
            )
        )
        note.setWordWrap(True)
        self.body.addWidget(head)
        self.body.addWidget(note)
        self.reason = QPlainTextEdit()
        presets = QHBoxLayout()
        presets.setSpacing(4)
        for text in self.PRESETS:
            button = QToolButton()
            button.setText(tr(text))
            button.setMinimumHeight(TOUCH)
            button.setToolTip(tr("Use this reason"))
            button.clicked.connect(lambda _=False, t=text: self.reason.setPlainText(tr(t)))
            presets.addWidget(button)
        presets.addStretch(1)
        self.reason.setObjectName("reason")
        self.reason.setTabChangesFocus(True)
        self.reason.setPlaceholderText(tr("Reason"))
        self.reason.setMinimumHeight(TOUCH * 2)
        self.errors = {"reason": FieldError()}
        self.body.addLayout(presets)
        self.body.addWidget(self.reason, 1)
        self.body.addWidget(self.errors["reason"])
        self.reason.setFocus()

    def collect(self) -> tuple[Any, tuple[Any, ...], dict[str, Any]] | None:
        reason = self.reason.toPlainText().strip()
        if not reason:
            self.errors["reason"].show_message(tr("Give a reason."))
            self.reason.setFocus()
            return None
        if len(reason) > 500:
            self.errors["reason"].show_message(tr("At most 500 characters."))
            return None
        return coach.dismiss_insight, (self.insight.id, reason), {}


# --------------------------------------------------------------------------- the view


class InsightPane(QWidget):
    """The selected insight: what, the message, what to do, why, and the actions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setObjectName("insight_title")
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.badge = QLabel()
        self.badge.setObjectName("insight_severity")
        self.message = QLabel()
        self.message.setObjectName("insight_message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.message.font()
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.message.setFont(font)
        self.action = QLabel()
        self.action.setObjectName("insight_action")
        self.action.setWordWrap(True)
        self.action.setStyleSheet(
            "background: palette(alternate-base); border-left: 3px solid #2e7d32; padding: 6px;"
        )
        self.primary_row = QHBoxLayout()
        self.primary_row.setSpacing(6)
        self.status_row = QHBoxLayout()
        self.status_row.setSpacing(6)
        self.evidence = QLabel()
        self.evidence.setObjectName("insight_evidence")
        self.evidence.setWordWrap(True)
        self.evidence.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.evidence.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.footer = QLabel()
        self.footer.setObjectName("insight_footer")
        self.footer.setWordWrap(True)
        self.footer.setStyleSheet("color: palette(mid);")

        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 0, 4, 0)
        layout.addLayout(head)
        layout.addWidget(self.message)
        layout.addWidget(_heading(tr("What to do")))
        layout.addWidget(self.action)
        layout.addLayout(self.primary_row)
        layout.addLayout(self.status_row)
        layout.addWidget(_heading(tr("Why")))
        layout.addWidget(self.evidence)
        layout.addWidget(self.footer)
        layout.addStretch(1)

    def show_insight(self, i: InsightView) -> None:
        where = i.stand_name
        if i.product_name:
            where += f" · {i.product_name} ({i.sku})" if i.sku else f" · {i.product_name}"
        self.title.setText(
            f"<span style='font-size: 16px; font-weight: 600;'>{kind_text(i.kind)}</span><br>"
            f"<span style='color: gray;'>{_html(where)}</span>"
        )
        colour = SEVERITY_COLOURS[i.severity]
        self.badge.setText(severity_text(i.severity))
        self.badge.setStyleSheet(
            f"color: white; background: {colour}; border-radius: 10px; padding: 3px 10px;"
            " font-weight: 600;"
        )
        self.message.setText(i.message)
        self.action.setText(action_text(i))
        lines = evidence_lines(i.evidence)
        self.evidence.setText("\n".join(lines) if lines else tr("No figures stored."))
        status = tr("New") if i.status == InsightStatus.NEW else tr("Acknowledged")
        footer = tr("{status} · found {found} · updated {updated} · model {model}").format(
            status=status,
            found=local_time(i.created_at),
            updated=local_time(i.updated_at),
            model=i.model_version,
        )
        if i.status_reason:
            footer += "\n" + i.status_reason
        self.footer.setText(footer)


def severity_dot(severity: Severity, size: int = 12) -> QIcon:
    """A round dot in the severity's colour (colour is never the only cue: the text says
    it too)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(SEVERITY_COLOURS[severity]))
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return QIcon(pixmap)


def _heading(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    label.setContentsMargins(0, 6, 0, 0)
    return label


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class CoachView(QWidget):
    """See the module docstring."""

    title = "Coach"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.runs = coach_runs(ctx)
        self.rows: list[InsightView] = []
        self.insight: InsightView | None = None
        self.dialog: DismissDialog | None = None
        self._list_loading = False
        self._outlook_reads = 0
        self._stale = False
        self._loaded = False
        self._want_id: str | None = None
        self._latest = LatestRead(ctx, self)
        #: "Create refill" was used: stand id -> (insight id, since when).
        self.refill_pending: dict[str, tuple[str, datetime]] = {}
        staff = ctx.actor.role in STAFF

        # ---- filters and the run button
        self.kind_filter = QComboBox()
        self.kind_filter.setObjectName("kind_filter")
        self.kind_filter.setMinimumHeight(TOUCH)
        self.kind_filter.setAccessibleName(tr("Kind"))
        self.kind_filter.setToolTip(tr("Show insights of this kind"))
        self.kind_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.severity_filter = QComboBox()
        self.severity_filter.setObjectName("severity_filter")
        self.severity_filter.setMinimumHeight(TOUCH)
        self.severity_filter.setAccessibleName(tr("Severity"))
        self.severity_filter.setToolTip(tr("Show insights of this severity"))
        self.severity_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._fill_filters()
        # A rep sees the stands assigned to them first; the whole program is one choice away.
        self.whose = QComboBox()
        self.whose.setObjectName("whose_filter")
        self.whose.setMinimumHeight(TOUCH)
        self.whose.setAccessibleName(tr("Stands"))
        self.whose.addItem(tr("My stands"), ctx.actor.user)
        self.whose.addItem(tr("All stands"), None)
        self.whose.setVisible(ctx.actor.role == Role.REP)
        if ctx.actor.role != Role.REP:
            self.whose.setCurrentIndex(1)
        self.whose.currentIndexChanged.connect(lambda _i: self.refresh())
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setMinimumHeight(TOUCH)
        self.search.setClearButtonEnabled(True)
        self.search.setPlaceholderText(tr("Search stand, product, message…"))
        find = QAction(tr("Find"), self)
        find.setShortcut(QKeySequence(QKeySequence.StandardKey.Find))
        find.triggered.connect(self._find)
        self.addAction(find)

        # Window shortcuts: Qt matches them only while this screen is the one shown.
        self.actions_by_name: dict[str, QAction] = {}
        for name, (text, keys, tip) in ACTIONS.items():
            qa = QAction(tr(text), self)
            qa.setObjectName(name)
            qa.setShortcut(QKeySequence(keys))
            qa.setToolTip(with_shortcut(tr(tip), qa))
            self.addAction(qa)
            self.actions_by_name[name] = qa
        a = self.actions_by_name
        a["create_refill"].triggered.connect(self.create_refill)
        a["open_stand"].triggered.connect(self.open_stand)
        a["acknowledge"].triggered.connect(self.acknowledge)
        a["done"].triggered.connect(self.mark_done)
        a["dismiss"].triggered.connect(self.dismiss)
        a["run"].triggered.connect(self.run_coach)

        self.run_button = QPushButton(tr("Run the coach now"))
        self.run_button.setObjectName("run_coach")
        self.run_button.setMinimumHeight(TOUCH)
        self.run_button.setToolTip(a["run"].toolTip())
        self.run_button.clicked.connect(self.run_coach)
        self.expansion_button = QPushButton(tr("Expansion sites…"))
        self.expansion_button.setObjectName("expansion_sites")
        self.expansion_button.setMinimumHeight(TOUCH)
        self.expansion_button.setToolTip(
            tr("Where a new stand would do well: candidate sites scored against our best stands")
        )
        self.expansion_button.clicked.connect(lambda: self.ctx.navigate.emit("expansion", None))
        self.progress = QProgressBar()
        self.progress.setObjectName("scan_progress")
        self.progress.setRange(0, 0)  # busy, without a known end
        self.progress.setMaximumWidth(90)
        self.progress.setMaximumHeight(10)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.run_label = QLabel()
        self.run_label.setObjectName("run_label")
        self.run_label.setStyleSheet("color: #5f6b7a;")
        self.run_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        # ---- the table
        self.model = InsightModel(self)
        self.proxy = InsightFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setObjectName("insight_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(TOUCH)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(False)
        self.shown_columns: tuple[str, ...] = COLUMN_SETS[0]
        kinetic(self.table)
        self.table.viewport().installEventFilter(self)
        self.table.activated.connect(lambda _i: self.open_stand())
        self.list_empty = EmptyState("")
        self.list_empty.setObjectName("list_empty")
        self.list_empty.hide()
        self.count_label = QLabel()
        self.count_label.setObjectName("count_label")
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)

        # ---- the detail
        self.pane = InsightPane()
        self.buttons: dict[str, QToolButton] = {}
        for name in ("create_refill", "open_stand"):
            self.buttons[name] = _button(a[name])
            self.pane.primary_row.addWidget(self.buttons[name])
        self.pane.primary_row.addStretch(1)
        for name in ("acknowledge", "done", "dismiss"):
            self.buttons[name] = _button(a[name])
            self.pane.status_row.addWidget(self.buttons[name])
        self.pane.status_row.addStretch(1)
        if not staff:
            # Partners read; acting on insights is the staff's (as the services require).
            for name in ("create_refill", "acknowledge", "done", "dismiss", "run"):
                a[name].setEnabled(False)
                a[name].setVisible(False)
            self.run_button.hide()
        self.pane_scroll = QScrollArea()
        self.pane_scroll.setWidgetResizable(True)
        self.pane_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.pane_scroll.setWidget(self.pane)
        self.pane_scroll.setMinimumWidth(340)
        kinetic(self.pane_scroll)
        self.detail_empty = EmptyState(tr("Select an insight to see why and what to do."))
        self.detail_empty.setObjectName("detail_empty")

        # ---- layout
        top = QHBoxLayout()
        top.addWidget(self.whose)
        top.addWidget(self.kind_filter)
        top.addWidget(self.severity_filter)
        top.addWidget(self.search, 1)
        top.addWidget(self.run_button)
        top.addWidget(self.expansion_button)
        status = QHBoxLayout()
        status.addWidget(self.count_label)
        status.addStretch(1)
        status.addWidget(self.progress)
        status.addWidget(self.run_label)
        self.splitter = list_and_detail(
            self.table, self.list_empty, self.pane_scroll, self.detail_empty, (660, 360)
        )
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(status)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.message)

        self.kind_filter.currentIndexChanged.connect(lambda _i: self._apply_filters())
        self.severity_filter.currentIndexChanged.connect(lambda _i: self._apply_filters())
        self.search.textChanged.connect(lambda _t: self._apply_filters())
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._selection_changed())
        self.runs.started.connect(self._scan_started)
        self.runs.finished.connect(self._scan_finished)
        self.runs.failed.connect(self._scan_failed)
        ctx.data_changed.connect(self._on_changed)
        self._show_insight(None)
        self._show_run_state()

    def _find(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    # ------------------------------------------------------------------ Screen protocol

    @property
    def loading(self) -> bool:
        return self._list_loading or self._outlook_reads > 0 or self.runs.running

    def refresh(self) -> None:
        self._stale = False
        self._list_loading = True
        self._latest(
            coach.list_insights,
            rep=self.whose.currentData(),
            on_done=self._loaded_rows,
            on_error=self._load_failed,
        )

    def open(self, arg: object = None) -> None:
        """Show the list; with an insight id, select that insight (clearing the filters)."""
        if isinstance(arg, str) and arg:
            self._want_id = arg
            for w in (self.kind_filter, self.severity_filter, self.search):
                w.blockSignals(True)
            self.kind_filter.setCurrentIndex(0)
            self.severity_filter.setCurrentIndex(0)
            self.search.clear()
            for w in (self.kind_filter, self.severity_filter, self.search):
                w.blockSignals(False)
            self._apply_filters()
        self.refresh()

    # ------------------------------------------------------------------ loading

    def _load_failed(self, exc: Exception) -> None:
        self._list_loading = False
        self.message.setText(tr("Could not load the insights: {error}").format(error=exc))

    def _loaded_rows(self, rows: list[InsightView]) -> None:
        self._list_loading = False  # (LatestRead drops the answers to older reads)
        self._loaded = True
        keep = self._want_id or (self.insight.id if self.insight else None)
        self._want_id = None
        row_before = max(self.table.currentIndex().row(), 0)
        self.rows = rows
        self.model.set_rows(rows)
        self._fill_filters()
        self._apply_filters(keep=keep, row_before=row_before)
        self._show_run_state()

    def _fill_filters(self) -> None:
        kind = self.kind_filter.currentData()
        severity = self.severity_filter.currentData()
        by_kind: dict[str, int] = {}
        by_severity: dict[Severity, int] = {}
        for i in self.rows:
            by_kind[i.kind] = by_kind.get(i.kind, 0) + 1
            by_severity[i.severity] = by_severity.get(i.severity, 0) + 1
        for combo in (self.kind_filter, self.severity_filter):
            combo.blockSignals(True)
            combo.clear()
        self.kind_filter.addItem(tr("All kinds ({n})").format(n=len(self.rows)), None)
        for k in KIND_LABELS:
            self.kind_filter.addItem(f"{kind_text(k)} ({by_kind.get(k, 0)})", k)
            self.kind_filter.setItemData(
                self.kind_filter.count() - 1, tr(KIND_TIPS[k]), Qt.ItemDataRole.ToolTipRole
            )
        self.severity_filter.addItem(tr("All severities"), None)
        for s in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
            self.severity_filter.addItem(f"{severity_text(s)} ({by_severity.get(s, 0)})", s)
            self.severity_filter.setItemIcon(self.severity_filter.count() - 1, severity_dot(s))
        self.kind_filter.setCurrentIndex(max(self.kind_filter.findData(kind), 0))
        self.severity_filter.setCurrentIndex(max(self.severity_filter.findData(severity), 0))
        for combo in (self.kind_filter, self.severity_filter):
            combo.blockSignals(False)

    def _apply_filters(self, *, keep: str | None = None, row_before: int = 0) -> None:
        keep = keep or (self.insight.id if self.insight else None)
        self.proxy.set_filters(
            self.kind_filter.currentData(), self.severity_filter.currentData(), self.search.text()
        )
        shown = self.proxy.rowCount()
        filtered = shown < len(self.rows) or bool(
            self.kind_filter.currentData() or self.severity_filter.currentData()
        )
        if not self.rows:
            self.list_empty.setText(tr("No open insights. Run the coach to scan your stands."))
        elif not shown:
            self.list_empty.setText(tr("No insights match these filters."))
        self.table.setVisible(shown > 0)
        self.list_empty.setVisible(shown == 0)
        if filtered:
            self.count_label.setText(
                tr("{shown} of {n} open insights").format(shown=shown, n=len(self.rows))
            )
        else:
            self.count_label.setText(
                plural(len(self.rows), "{n} open insight", "{n} open insights")
            )
        self._fit_columns()
        if not shown:
            self.table.setCurrentIndex(QModelIndex())
            self._show_insight(None)
            return
        row = None
        if keep is not None:
            for r in range(shown):
                if self.proxy.index(r, 0).data(ID_ROLE) == keep:
                    row = r
                    break
        if row is None:
            # The insight was closed: the one that took its place, so triage goes on.
            row = min(row_before, shown - 1)
        index = self.proxy.index(row, 0)
        if index != self.table.currentIndex():
            self.table.setCurrentIndex(index)
        else:
            self._selection_changed()
        self.table.scrollTo(index)

    def _fit_columns(self) -> None:
        """Show the first of :data:`COLUMN_SETS` that fits the table's width; the message
        (else the stand) takes the room left."""
        header = self.table.horizontalHeader()
        need = {}
        for i, column in enumerate(COLUMNS):
            hint = max(self.table.sizeHintForColumn(i), header.sectionSizeHint(i))
            need[column.key] = min(hint, COLUMN_CAPS.get(column.key, hint))
        need["message"] = MESSAGE_MIN_WIDTH
        available = self.table.viewport().width()
        shown: tuple[str, ...] = COLUMN_SETS[-1]
        for keys in COLUMN_SETS:
            if sum(need[k] for k in keys) <= available:
                shown = keys
                break
        stretch = "message" if "message" in shown else "stand"
        for i, column in enumerate(COLUMNS):
            header.setSectionHidden(i, column.key not in shown)
            if column.key == stretch:
                header.setSectionResizeMode(i, QHeaderView.ResizeMode.Stretch)
            else:
                header.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
                header.resizeSection(i, need[column.key])
        self.shown_columns = shown

    def selected(self) -> InsightView | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        source = self.proxy.mapToSource(index)
        return self.model.rows[source.row()] if 0 <= source.row() < len(self.model.rows) else None

    def _selection_changed(self) -> None:
        self._show_insight(self.selected())

    def _show_insight(self, i: InsightView | None) -> None:
        self.insight = i
        self.pane_scroll.setVisible(i is not None)
        self.detail_empty.setVisible(i is None)
        if i is not None:
            self.pane.show_insight(i)
        self._update_actions()

    def _update_actions(self) -> None:
        i = self.insight
        staff = self.ctx.actor.role in STAFF
        a = self.actions_by_name
        open_ = i is not None and i.status in OPEN_STATUSES
        a["open_stand"].setEnabled(i is not None)
        a["create_refill"].setEnabled(staff and open_ and can_create_refill(i))
        a["acknowledge"].setEnabled(staff and i is not None and i.status == InsightStatus.NEW)
        a["done"].setEnabled(staff and open_)
        a["dismiss"].setEnabled(staff and open_)
        a["run"].setEnabled(staff and not self.runs.running)
        self.buttons["create_refill"].setVisible(staff and can_create_refill(i))
        for name in ("acknowledge", "done", "dismiss"):
            self.buttons[name].setVisible(staff)

    # ------------------------------------------------------------------ running the coach

    def run_coach(self) -> None:
        if self.ctx.actor.role not in STAFF:
            return
        self.runs.run()

    def _scan_started(self) -> None:
        self._show_run_state()
        self._update_actions()

    def _scan_finished(self, summary: RunSummary) -> None:
        self._show_run_state()
        self._update_actions()
        # The list reloads on the Changed({"insights"}) that came with it.

    def _scan_failed(self, exc: Exception) -> None:
        self._show_run_state()
        self._update_actions()
        self.message.setText(tr("The coach could not run: {error}").format(error=error_text(exc)))

    def _show_run_state(self) -> None:
        running = self.runs.running
        self.progress.setVisible(running)
        self.run_button.setEnabled(not running and self.ctx.actor.role in STAFF)
        self.run_button.setText(tr("Scanning…") if running else tr("Run the coach now"))
        last = self.runs.last
        if running:
            self.run_label.setText(tr("Scanning your stands…"))
            self.run_label.setToolTip("")
        elif last is not None:
            self.run_label.setText(
                tr("Ran {when}: {result}").format(when=_short_time(last.at), result=last.text())
            )
            self.run_label.setToolTip(
                tr("{stands} stands scanned, {found} insights found").format(
                    stands=last.stands, found=last.found
                )
            )
        elif self.rows:
            newest = max(i.updated_at for i in self.rows)
            self.run_label.setText(
                tr("Not run since the app started · newest change {when}").format(
                    when=local_time(newest)
                )
            )
            self.run_label.setToolTip(
                tr("The coach also runs by itself a few seconds after start and every half hour.")
            )
        elif self._loaded:
            self.run_label.setText(tr("The coach has not run since the app started."))
            self.run_label.setToolTip("")

    # ------------------------------------------------------------------ actions

    def open_stand(self) -> None:
        if self.insight is not None:
            self.ctx.navigate.emit("stand", self.insight.stand_id)

    def create_refill(self) -> None:
        """Open the refill request for the insight's stand, pre-filled with the coach's
        quantities and the reason for each."""
        i = self.insight
        if i is None or not can_create_refill(i) or self.ctx.actor.role not in STAFF:
            return
        self.actions_by_name["create_refill"].setEnabled(False)
        self._outlook_reads += 1
        self.ctx.read(
            coach.stand_outlook,
            i.stand_id,
            on_done=lambda outlook: self._go_refill(i, outlook),
            on_error=lambda _exc: self._go_refill(i, None),
        )

    def _go_refill(self, i: InsightView, outlook: StandOutlook | None) -> None:
        self._outlook_reads = max(0, self._outlook_reads - 1)
        self._update_actions()
        payload = {
            "stand_id": i.stand_id,
            "quantities": refill_quantities(i),
            "reasons": refill_reasons(i, outlook),
            "insight_id": i.id,
        }
        self.refill_pending[i.stand_id] = (i.id, datetime.now(UTC) - timedelta(seconds=1))
        self.ctx.navigate.emit("refill", payload)

    def acknowledge(self) -> None:
        i = self.insight
        if i is not None and i.status == InsightStatus.NEW and self.ctx.actor.role in STAFF:
            self._write(coach.acknowledge_insight, i, tr("Acknowledged"))

    def mark_done(self) -> None:
        i = self.insight
        if i is not None and i.status in OPEN_STATUSES and self.ctx.actor.role in STAFF:
            self._write(coach.mark_insight_done, i, tr("Done"))

    def dismiss(self) -> DismissDialog | None:
        """Ask for the reason (the dialog dismisses it on OK)."""
        i = self.insight
        if i is None or i.status not in OPEN_STATUSES or self.ctx.actor.role not in STAFF:
            return None
        dialog = DismissDialog(self.ctx, i, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.saved.connect(lambda result: self._written(tr("Dismissed"), result))
        dialog.open()
        self.dialog = dialog
        return dialog

    def _write(self, fn: Any, i: InsightView, what: str) -> None:
        for name in ("acknowledge", "done", "dismiss"):
            self.actions_by_name[name].setEnabled(False)
        self.ctx.write(
            fn,
            i.id,
            on_done=lambda result: self._written(what, result),
            on_error=self._write_failed,
        )

    def _written(self, what: str, result: InsightView) -> None:
        text = f"{what}: {kind_text(result.kind)} · {result.stand_name}"
        self.message.setText(text)
        self.ctx.status.emit(tr("Coach insight: {text}").format(text=text))
        self.ctx.changed("insights", ids=(result.id, result.stand_id))

    def _write_failed(self, exc: Exception) -> None:
        message = error_text(exc)
        self.message.setText(tr("Not saved: {error}").format(error=message))
        self.refresh()  # someone or the coach may have closed it meanwhile

    # ------------------------------------------------------------------ refills requested

    def _check_refills(self, change: Changed) -> None:
        for stand_id, (insight_id, since) in list(self.refill_pending.items()):
            if change.ids and stand_id not in change.ids:
                continue
            self._read_refills(stand_id, insight_id, since)

    def _read_refills(self, stand_id: str, insight_id: str, since: datetime) -> None:
        def done(rows: list[RefillListRow]) -> None:
            self._refills_read(stand_id, insight_id, since, rows)

        self.ctx.read(
            refill_views.refill_list,
            stand_id=stand_id,
            state=refill_views.OPEN_FILTER,
            on_done=done,
            on_error=lambda _exc: None,
        )

    def _refills_read(
        self, stand_id: str, insight_id: str, since: datetime, rows: list[RefillListRow]
    ) -> None:
        if self.refill_pending.get(stand_id, (None,))[0] != insight_id:
            return
        mine = [
            r for r in rows if r.requested_by == self.ctx.actor.user and r.requested_at >= since
        ]
        if not mine:
            return
        del self.refill_pending[stand_id]
        self.ctx.write(
            coach.mark_insight_done,
            insight_id,
            tr(DONE_AFTER_REFILL),
            on_done=lambda result: self._written(tr("Done (refill requested)"), result),
            # Already closed (by the refill screen, or retired by the coach): nothing to do.
            on_error=lambda exc: None if isinstance(exc, DomainError) else self._write_failed(exc),
        )

    # ------------------------------------------------------------------ notifications

    def _on_changed(self, change: Changed) -> None:
        if self.refill_pending and change.touches("refills"):
            self._check_refills(change)
        if not change.touches(*KINDS):
            return
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return super().eventFilter(watched, event)


def _button(action: QAction) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    button.setMinimumSize(TOUCH * 2, TOUCH)
    button.setObjectName(f"action_{action.objectName()}")
    return button


def _short_time(value: datetime) -> str:
    """Today's time as a time, an older one with its date."""
    local = value.astimezone()
    if local.date() == datetime.now().astimezone().date():
        moment = QTime(local.hour, local.minute, local.second)
        return str(QLocale().toString(moment, QLocale.FormatType.ShortFormat))
    return local_time(value)


__all__ = ["CoachView", "DismissDialog", "InsightModel", "action_text", "evidence_lines"]
