"""The demo data generator: a deterministic, realistic history for a stand program.

``generate_demo(factory, stands=60, days=180, seed=7, end=None)`` fills a database that has
no stands yet with partners at different package levels, their stands in six German
cities, an assortment and stock levels per stand, and ``days`` days of history: sales with
intermittent, weekday-shaped, seasonal and trending demand that is censored by stock (so
there are stock-outs), refills through their whole lifecycle, periodic counts that find
shrink, loyalty points and tiers, and monthly commission payouts. The KPI charts and the
AI coach are built and demonstrated on this data, so its shape matters as much as its size.

Time
    ``end`` (default: today's UTC date) is the as-of date. The history covers the ``days``
    full local days (Europe/Berlin) *before* ``end``: nothing is dated at or after ``end``
    00:00 local, so a demo made today never holds records from the future. Refills in
    flight at that moment stay open (requested, approved, scheduled or delivered), payouts
    exist for the complete calendar months, and every partner holds the tier that the rule
    in :mod:`app.rules` gives at that moment.

Determinism
    The same ``seed`` and ``end`` give identical rows, ids included, in a fresh database.
    Every random draw comes from ``numpy.random.default_rng(seed)`` (ids from a second
    stream seeded from the same seed); ids are UUIDv7 made from each row's own timestamp
    exactly as :func:`app.ids.id_from_parts` makes them; every timestamp, ``created_at``
    included, is simulated. Packages, tiers and products that the demo has to create get
    ids fixed by their codes, so every demo database shares them.

No change log
    The demo writes no ``change_log`` rows. It is baseline history, as if the device had
    pulled it from the server; ops would make the device push a history it never made.

The model (what the charts and the coach can find in it)
    Partners are mostly Starters, some Growth, few Pro (with up to ``max_stands`` stands in
    one city); about 5 % are still onboarding (stands planned, first refill in flight), 4 %
    suspended (stands paused), and 3 % of the other stands paused in the last month. Most
    partners join in a launch wave, the rest over the period, so the program grows.
    Each stand carries 65-100 % of its package's ``sku_slots``, chosen by how well each
    category sells at its location type. Customers arrive as a Poisson process with gamma
    day-to-day noise (so unit sales per SKU are negative-binomial and mostly zero), shaped
    by the location type's weekday and hourly profile (offices empty at weekends,
    supermarkets and pharmacies closed on Sundays and holidays), each product's yearly
    season (drinks and sunscreen in summer, chocolate and candles in winter), its trend
    (cold brew and protein bars up, Lightning cables and wired earphones down), a daily
    weather anomaly per city, a lognormal popularity per stand and a step change in traffic
    at 6 % of the stands. Customers buy only what is physically on the shelf: demand beyond
    it is lost (stock-outs, a few percent of demand). 6 % of the stands lose five times the
    usual shrink to theft, which counts every 2-4 weeks reveal as negative variances.
    Refills are requested on the package cadence, or earlier when 40 % of a stand's demand
    sits at or below reorder points, for par minus on hand in whole packs, and delivered
    2-4 days later; a few are rejected, cancelled, partly approved, short-delivered or
    confirmed with a discrepancy. Payment methods drift toward QR over time.

Same rules as the services
    Points come from :func:`app.rules.sale_points`, commissions from
    :func:`app.rules.commission`, payment references and QR payloads from
    :mod:`app.rules`. Refills follow the lifecycle, roles, prices and pack rounding of
    :mod:`app.services.refills`; counts, voids, discrepancies, activation, expiry and tiers
    follow :mod:`app.services.inventory`, :mod:`app.services.sales` and
    :mod:`app.services.loyalty`; payouts are what :func:`app.services.payouts.compute_payouts`
    computes. At the end every ``StandInventory.on_hand`` is set to the sum of its
    movements. ``tests/app/test_demo.py`` asks those services to check the demo.

Speed
    The simulation is vectorised over stands and SKUs with numpy, one day at a time, and
    the rows are written in one transaction with executemany, in batches. On SQLite the
    values are converted in bulk to their stored representation (money as scaled integers,
    times as naive UTC text: what :mod:`app.types` stores), checked against the column
    types' own bind processors; on other databases they go through SQLAlchemy Core and the
    column types. 500 stands x 365 days (2.6 million rows) take 30-45 s on two cores, most
    of it SQLite maintaining the indexes (see ``bench/bench_demo.py``).
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from app import demo_catalog as cat
from app.errors import DomainError, ValidationError
from app.ids import id_from_parts
from app.models import (
    Base,
    DiscrepancyStatus,
    InventoryMovement,
    LocationType,
    LoyaltyKind,
    LoyaltyTier,
    MovementKind,
    OrderKind,
    Package,
    PartnerStatus,
    PaymentMethod,
    Payout,
    PayoutStatus,
    Product,
    RefillAction,
    RefillDiscrepancy,
    RefillStatus,
    Role,
    SnapshotSource,
    StandInventory,
    StandInventorySnapshot,
    StandInventorySnapshotLine,
    StandLocation,
    StandLoyaltyLedger,
    StandOrder,
    StandOrderItem,
    StandPartner,
    StandRefillEvent,
    StandRefillOrder,
    StandRefillOrderItem,
    StandStatus,
)
from app.reference import reference_id, seed_reference_data
from app.rules import (
    PROGRAM_TIMEZONE,
    commission,
    payment_reference,
    qr_payload,
    sale_points,
)
from app.services.base import to_json
from app.types import ScaledDecimal, UTCDateTime

Arr = npt.NDArray[Any]
ProgressFn = Callable[[str, float], None]

TIMEZONE = PROGRAM_TIMEZONE  # every demo stand is in Europe/Berlin, the program's zone
TZ = ZoneInfo(TIMEZONE)
CURRENCY = "EUR"
MONEY_SCALE = 4  # Money() columns keep 4 places; amounts are simulated as integer 1e-4 units
UNIT = 10**MONEY_SCALE
CENT_UNITS = UNIT // 100
MS_PER_DAY = 86_400_000
HOUR = 3_600_000
MINUTE = 60_000
NULL_MS = np.iinfo(np.int64).min  # "no time" in an int64 column of milliseconds
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ------------------------------------------------------------------ behaviour of the model
LINES_P = (0.72, 0.21, 0.07)  # lines per order: 1, 2, 3
QTY_P = (0.82, 0.14, 0.04)  # units per line: 1, 2, 3
UNITS_PER_ORDER = (1 * 0.72 + 2 * 0.21 + 3 * 0.07) * (1 * 0.82 + 2 * 0.14 + 3 * 0.04)
DAY_NOISE_SHAPE = 3.0  # gamma day-to-day noise of a stand's traffic (negative binomial)
VOID_RATE = 0.004
OVERRIDE_RATE = 0.01
SHRINK_PER_UNIT_DAY = 0.0004  # chance a unit on the shelf disappears on a given day
THEFT_FACTOR = 5.0
REJECT_RATE = 0.015
CANCEL_RATE = 0.01
PARTIAL_APPROVAL_RATE = 0.05
SHORT_DELIVERY_RATE = 0.02
DISCREPANCY_RATE = 0.04
LATE_CONFIRM_RATE = 0.12
REDEEM_RATE = 0.08  # chance a partner redeems at a delivery visit (with enough points)
REDEEM_MIN_BALANCE = 500
MONTHLY_BONUS = 500
LOW_STOCK_DEMAND_SHARE = 0.4  # refill early when this share of demand is at/below reorder
EXPIRE_AFTER_DAYS = 365
LEAD_DAYS = (2, 3, 4)
LEAD_P = (0.5, 0.35, 0.15)
SQLITE_CACHE_KIB = 256 * 1024
POS_ACTOR = "pos"
SYSTEM_ACTOR = "system"

MOVE_KINDS = (
    MovementKind.SALE,
    MovementKind.SALE_VOID,
    MovementKind.REFILL_DELIVERY,
    MovementKind.REFILL_CORRECTION,
    MovementKind.COUNT_ADJUSTMENT,
)
MV_SALE, MV_VOID, MV_DELIVERY, MV_CORRECTION, MV_COUNT = range(5)
REF_TYPES: tuple[str | None, ...] = (
    None,
    "stand_order",
    "stand_refill_order",
    "stand_inventory_snapshot",
    "refill_discrepancy",
)
REF_NONE, REF_ORDER, REF_REFILL, REF_SNAPSHOT, REF_DISCREPANCY = range(5)
LEDGER_KINDS = (
    LoyaltyKind.EARN,
    LoyaltyKind.ACTIVATION,
    LoyaltyKind.BONUS,
    LoyaltyKind.REDEEM,
    LoyaltyKind.EXPIRE,
    LoyaltyKind.ADJUST,
)
LK_EARN, LK_ACTIVATION, LK_BONUS, LK_REDEEM, LK_EXPIRE, LK_ADJUST = range(6)
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
METHODS = (PaymentMethod.CASH, PaymentMethod.QR, PaymentMethod.CARD)
LOCATION_TYPES = tuple(LocationType)

# Public holidays with shops closed (fixed dates); Easter-based ones are computed.
FIXED_HOLIDAYS = ((1, 1), (5, 1), (10, 3), (12, 25), (12, 26))
HALF_DAYS = ((12, 24), (12, 31))
CLOSED_ON_HOLIDAYS = {
    LocationType.SUPERMARKET,
    LocationType.PHARMACY,
    LocationType.OFFICE,
    LocationType.CONVENIENCE,
}


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate_demo` made."""

    partners: int
    stands: int
    products: int
    inventory_lines: int
    orders: int
    order_items: int
    movements: int
    counts: int
    count_lines: int
    refills: int
    refill_items: int
    refill_events: int
    discrepancies: int
    ledger_entries: int
    payouts: int
    first_day: date
    last_day: date
    elapsed_seconds: float

    def rows(self) -> dict[str, int]:
        """Rows written per table."""
        return {
            "stand_partner": self.partners,
            "stand_location": self.stands,
            "product": self.products,
            "stand_inventory": self.inventory_lines,
            "stand_order": self.orders,
            "stand_order_item": self.order_items,
            "inventory_movement": self.movements,
            "stand_inventory_snapshot": self.counts,
            "stand_inventory_snapshot_line": self.count_lines,
            "stand_refill_order": self.refills,
            "stand_refill_order_item": self.refill_items,
            "stand_refill_event": self.refill_events,
            "refill_discrepancy": self.discrepancies,
            "stand_loyalty_ledger": self.ledger_entries,
            "payout": self.payouts,
        }

    @property
    def total_rows(self) -> int:
        return sum(self.rows().values())


def generate_demo(
    factory: sessionmaker[Session],
    *,
    stands: int = 60,
    days: int = 180,
    seed: int = 7,
    end: date | None = None,
    progress: ProgressFn | None = None,
) -> DemoSummary:
    """Fill an empty program database with a demo history (see module docstring).

    ``factory`` is the session factory from :func:`app.db.open_db`. Raises
    :class:`~app.errors.DomainError` if the database already has stands. ``progress`` is
    called with a phase ("catalog", "simulate", "write", "finish") and the fraction of it
    done; an exception it raises aborts the run, and the history is written in a single
    transaction, so an aborted run leaves no partial history behind (only the reference
    data and the demo catalog, which a later run reuses).
    """
    started = _time.perf_counter()
    if isinstance(stands, bool) or not isinstance(stands, int) or not 1 <= stands <= 100_000:
        raise ValidationError("The demo needs between 1 and 100000 stands.", field="stands")
    if isinstance(days, bool) or not isinstance(days, int) or not 14 <= days <= 3_660:
        raise ValidationError("The demo covers between 14 and 3660 days.", field="days")
    today = end if end is not None else datetime.now(UTC).date()
    as_of_date = date(today.year, today.month, today.day)  # a datetime counts as its date
    report = _Progress(progress)

    with factory() as session, session.begin():
        _refuse_if_not_empty(session)
        _ensure_reference_data(session)
        packages = [
            _PackageInfo.of(p) for p in session.scalars(select(Package).order_by(Package.rank))
        ]
        tiers = [
            _TierInfo.of(t) for t in session.scalars(select(LoyaltyTier).order_by(LoyaltyTier.rank))
        ]
        first_day = as_of_date - timedelta(days=days)
        products = _ensure_products(session, _local_ms(first_day - timedelta(days=14), 9 * HOUR))
    report("catalog", 1.0)

    sim = _Simulation(
        stands=stands,
        days=days,
        seed=seed,
        as_of=as_of_date,
        packages=packages,
        tiers=tiers,
        products=products,
        report=report,
    )
    sim.run()

    with factory() as session, session.begin():
        _refuse_if_not_empty(session)
        counts = _write(session, sim, report)
    report("finish", 1.0)
    return DemoSummary(
        products=len(products),
        first_day=first_day,
        last_day=as_of_date - timedelta(days=1),
        elapsed_seconds=_time.perf_counter() - started,
        **counts,
    )


# ====================================================================== setup and helpers


class _Progress:
    def __init__(self, fn: ProgressFn | None) -> None:
        self.fn = fn
        self.last: tuple[str, float] = ("", -1.0)

    def __call__(self, phase: str, fraction: float) -> None:
        if self.fn is None:
            return
        fraction = min(1.0, max(0.0, fraction))
        prev_phase, prev = self.last
        # Report every percent at most, so a callback that repaints a GUI stays cheap.
        if phase == prev_phase and fraction < 1.0 and fraction - prev < 0.01:
            return
        self.last = (phase, fraction)
        self.fn(phase, fraction)


def _refuse_if_not_empty(session: Session) -> None:
    existing = session.scalar(select(func.count()).select_from(StandLocation)) or 0
    if existing:
        raise DomainError(
            f"This database already has {existing} stand{'s' if existing != 1 else ''}; "
            "demo data is only generated into an empty program. Use a new demo database."
        )


def _ensure_reference_data(session: Session) -> None:
    """Packages and tiers, with the ids every database gives them (app.reference)."""
    seed_reference_data(session)


@dataclass(frozen=True)
class _PackageInfo:
    id: str
    code: str
    name: str
    max_stands: int
    sku_slots: int
    commission_rate: Decimal
    loyalty_multiplier: Decimal
    refill_cadence_days: int
    activation_points: int

    @classmethod
    def of(cls, p: Package) -> _PackageInfo:
        return cls(
            p.id,
            p.code,
            p.name,
            p.max_stands,
            p.sku_slots,
            p.commission_rate,
            p.loyalty_multiplier,
            p.refill_cadence_days,
            p.activation_points,
        )


@dataclass(frozen=True)
class _TierInfo:
    id: str
    code: str
    threshold_points: int
    point_multiplier: Decimal

    @classmethod
    def of(cls, t: LoyaltyTier) -> _TierInfo:
        return cls(t.id, t.code, t.threshold_points, t.point_multiplier)


@dataclass(frozen=True)
class _ProductInfo:
    id: str
    list_price: Decimal
    unit_cost: Decimal
    min_price: Decimal | None
    pack_size: int
    spec: cat.DemoProduct


def _ensure_products(session: Session, created_ms: int) -> list[_ProductInfo]:
    """The demo catalog: existing products with a demo SKU are reused as they are."""
    skus = [p.sku for p in cat.PRODUCTS]
    existing = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(skus)))}
    gtins = [p.gtin for p in cat.PRODUCTS]
    taken = set(session.scalars(select(Product.gtin).where(Product.gtin.in_(gtins))))
    created = _dt(created_ms)
    for spec in cat.PRODUCTS:
        if spec.sku in existing:
            continue
        row = Product(
            id=reference_id("product", spec.sku),
            sku=spec.sku,
            gtin=None if spec.gtin in taken else spec.gtin,  # a real product has that code
            name=spec.name,
            category=spec.category,
            list_price=spec.list_price,
            unit_cost=spec.unit_cost,
            min_price=spec.min_price,
            max_price=spec.max_price,
            pack_size=spec.pack_size,
            image_asset=None,
            active=True,
            created_at=created,
            updated_at=created,
        )
        session.add(row)
        existing[spec.sku] = row
    session.flush()
    return [
        _ProductInfo(
            existing[s.sku].id,
            existing[s.sku].list_price,
            existing[s.sku].unit_cost,
            existing[s.sku].min_price,
            existing[s.sku].pack_size,
            s,
        )
        for s in cat.PRODUCTS
    ]


def _dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _local_ms(day: date, local_ms_of_day: int) -> int:
    """UTC milliseconds of a local wall-clock time on ``day`` (Europe/Berlin)."""
    noon = datetime.combine(day, time(12), TZ)
    offset = noon.utcoffset()
    assert offset is not None
    midnight_utc = int(datetime.combine(day, time(0), UTC).timestamp()) * 1000
    return midnight_utc - int(offset.total_seconds()) * 1000 + local_ms_of_day


def _easter(year: int) -> date:
    """Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _holidays(years: Sequence[int]) -> tuple[set[date], set[date]]:
    closed: set[date] = set()
    half: set[date] = set()
    for y in years:
        closed.update(date(y, m, d) for m, d in FIXED_HOLIDAYS)
        half.update(date(y, m, d) for m, d in HALF_DAYS)
        e = _easter(y)
        closed.update(e + timedelta(days=k) for k in (-2, 1, 39, 50))
    return closed, half


def _round_cents(units: Arr) -> Arr:
    """Round non-negative 1e-4 amounts to cents, half up (app.rules.round_money)."""
    out: Arr = (units + CENT_UNITS // 2) // CENT_UNITS * CENT_UNITS
    return out


# ====================================================================== the simulation


@dataclass
class _Partner:
    idx: int
    package: int
    city: int
    loc_type: LocationType
    name: str
    contact: str
    email: str
    phone: str
    iban: str
    user: str
    onboard_day: int
    created_ms: int
    final_status: PartnerStatus = PartnerStatus.ACTIVE
    activated_ms: int | None = None
    suspend_day: int | None = None
    suspended_ms: int | None = None
    stands: list[int] = field(default_factory=list)


@dataclass
class _Stand:
    idx: int
    partner: int
    city: int
    loc_type: LocationType
    name: str
    address: str
    postal_code: str
    latitude: float
    longitude: float
    rep: str
    created_ms: int
    go_live: int  # first day of sales (the initial delivery), >= days if never
    stop: int  # first day without sales (pause/suspension), days if none
    paused_ms: int | None = None
    capacity_units: int = 0


@dataclass
class _Refill:
    idx: int
    stand: int
    day: int
    pairs: Arr
    requested: Arr
    approved: Arr
    delivered: Arr
    received: Arr
    prices: Arr
    requested_by: str
    # (action, ms, actor, role, reason or "")
    events: list[tuple[RefillAction, int, str, Role, str]] = field(default_factory=list)
    scheduled_for: int | None = None  # day index
    dealer: str | None = None
    discrepancy_line: int = -1
    confirm_same_visit: bool = True
    delivery_movements: Arr | None = None
    discrepancy: int = -1


@dataclass
class _Discrepancy:
    idx: int
    refill: int
    stand: int
    pair: int
    delivered: int
    received: int
    created_ms: int
    resolve_day: int
    resolve_ms: int
    resolver: str
    status: DiscrepancyStatus = DiscrepancyStatus.OPEN
    count_seen: bool = False
    resolved: bool = False


@dataclass
class _Snapshot:
    stand: int
    ms: int
    actor: str


class _Rows:
    """Column chunks of one bulk table, appended as the days go by.

    Integer columns are kept as int32 (indexes, quantities, codes) except the ``wide`` ones
    (times in ms, amounts of money), to halve the memory of a big simulation.
    """

    WIDE = frozenset({"ms", "total", "price", "cost"})

    def __init__(self, *names: str) -> None:
        self.chunks: dict[str, list[Arr]] = {n: [] for n in names}
        self.n = 0

    def add(self, **cols: Arr) -> int:
        """Append rows (one array per column, equal lengths); returns the first row index."""
        sizes = {len(v) for v in cols.values()}
        if len(sizes) != 1 or set(cols) != set(self.chunks):
            raise ValueError("every column, with equal lengths")
        start = self.n
        for name, values in cols.items():
            if values.dtype.kind == "i" and name not in self.WIDE:
                values = values.astype(np.int32)
            self.chunks[name].append(values)
        self.n += sizes.pop()
        return start

    def col(self, name: str, dtype: Any = np.int64) -> Arr:
        parts = self.chunks[name]
        if not parts:
            return np.empty(0, dtype=dtype)
        merged: Arr = np.concatenate(parts)
        self.chunks[name] = [merged]
        return merged


class _Simulation:
    """Runs the program day by day and keeps everything that happened in memory."""

    def __init__(
        self,
        *,
        stands: int,
        days: int,
        seed: int,
        as_of: date,
        packages: list[_PackageInfo],
        tiers: list[_TierInfo],
        products: list[_ProductInfo],
        report: _Progress,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.id_rng = np.random.default_rng([seed, 0x1D5])
        self.n_stands = stands
        self.D = days
        self.as_of_date = as_of
        self.first_day = as_of - timedelta(days=days)
        self.as_of_ms = int(datetime.combine(as_of, time(0), TZ).timestamp()) * 1000
        self.packages = packages
        self.tiers = tiers
        self.products = products
        self.report = report
        if not packages or not tiers:
            raise DomainError("Packages and loyalty tiers are missing; cannot make a demo.")

        self.orders = _Rows(
            "ms", "day", "stand", "partner", "kind", "voided", "method", "total", "points"
        )
        self.items = _Rows(
            "order", "line_no", "product", "qty", "price", "cost", "total", "overridden"
        )
        self.moves = _Rows("ms", "pair", "qty", "kind", "ref_type", "ref", "actor")
        self.ledger = _Rows("ms", "partner", "kind", "points", "ref_type", "ref", "actor", "note")
        self.count_lines = _Rows("snapshot", "pair", "expected", "counted", "variance", "move")
        self.refill_items = _Rows("refill", "line_no", "pair")  # quantities live on _Refill
        self.refills: list[_Refill] = []
        self.snapshots: list[_Snapshot] = []
        self.discrepancies: list[_Discrepancy] = []
        self.actors: list[str] = []
        self._actor_codes: dict[str, int] = {}
        self.notes: list[str] = []
        self._note_codes: dict[str, int] = {}
        self._points_cache: dict[tuple[int, int, int], int] = {}

        self._setup_calendar()
        self._setup_products()
        self._setup_partners_and_stands()
        self._setup_assortments()
        self._setup_state()

    # ------------------------------------------------------------------ codes

    def actor(self, name: str) -> int:
        code = self._actor_codes.get(name)
        if code is None:
            code = self._actor_codes[name] = len(self.actors)
            self.actors.append(name)
        return code

    def note(self, text: str) -> int:
        code = self._note_codes.get(text)
        if code is None:
            code = self._note_codes[text] = len(self.notes)
            self.notes.append(text)
        return code

    # ------------------------------------------------------------------ setup

    def _setup_calendar(self) -> None:
        D = self.D
        self.dates = [self.first_day + timedelta(days=t) for t in range(D + 1)]
        self.base_ms = np.array([_local_ms(d, 0) for d in self.dates], dtype=np.int64)
        self.dow = np.array([d.weekday() for d in self.dates[:D]], dtype=np.int64)
        doy = np.array([d.timetuple().tm_yday for d in self.dates[:D]], dtype=np.float64)
        self.doy = doy
        closed, half = _holidays(sorted({d.year for d in self.dates}))
        n_types = len(LOCATION_TYPES)
        hol = np.ones((n_types, D))
        for t, d in enumerate(self.dates[:D]):
            if d in closed:
                for k, lt in enumerate(LOCATION_TYPES):
                    hol[k, t] = 0.0 if lt in CLOSED_ON_HOLIDAYS else 0.6
            elif d in half:
                hol[:, t] = 0.6
            # Offices empty out in the summer holidays and between the years.
            if d.month in (7, 8):
                hol[LOCATION_TYPES.index(LocationType.OFFICE), t] *= 0.8
            if (d.month == 12 and d.day >= 22) or (d.month == 1 and d.day <= 3):
                hol[LOCATION_TYPES.index(LocationType.OFFICE), t] *= 0.4
        self.holiday = hol
        wd = np.array([cat.WEEKDAY_PROFILES[lt] for lt in LOCATION_TYPES])
        self.weekday = wd / wd.mean(axis=1, keepdims=True)
        hours = np.array([cat.HOURLY_PROFILES[lt] for lt in LOCATION_TYPES], dtype=np.float64)
        self.hour_cdf = np.cumsum(hours / hours.sum(axis=1, keepdims=True), axis=1)
        self.hour_cdf[:, -1] = 1.0
        self.pay_mix = np.array([cat.PAYMENT_MIX[lt] for lt in LOCATION_TYPES])
        # Day-to-day weather per city: an AR(1) temperature anomaly in standard units.
        n_cities = len(cat.CITIES)
        anomaly = np.zeros((n_cities, D))
        shocks = self.rng.normal(0.0, 0.55, size=(n_cities, D))
        for t in range(1, D):
            anomaly[:, t] = 0.75 * anomaly[:, t - 1] + shocks[:, t]
        self.anomaly = anomaly

    def _setup_products(self) -> None:
        prods = self.products
        self.n_products = len(prods)
        self.price_u = np.array([int(p.list_price * UNIT) for p in prods], dtype=np.int64)
        self.cost_u = np.array([int(p.unit_cost * UNIT) for p in prods], dtype=np.int64)
        self.min_u = np.array(
            [int((p.min_price or Decimal(0)) * UNIT) for p in prods], dtype=np.int64
        )
        self.pack = np.array([max(1, p.pack_size) for p in prods], dtype=np.int64)
        self.popularity = np.array([p.spec.popularity for p in prods])
        self.category = np.array([cat.CATEGORIES.index(p.spec.category) for p in prods])
        self.weather_sens = np.array([p.spec.weather for p in prods])
        amp = np.array([p.spec.season_amplitude for p in prods])[:, None]
        peak = np.array([p.spec.season_peak_doy for p in prods], dtype=np.float64)[:, None]
        trend = np.array([p.spec.trend for p in prods])[:, None]
        years = (np.arange(self.D) / 365.25)[None, :]
        season = 1.0 + amp * np.cos(2 * np.pi * (self.doy[None, :] - peak) / 365.25)
        self.prod_factor = season * np.exp(trend * years)  # products x days

    def _pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(0, len(options)))]

    def _setup_partners_and_stands(self) -> None:
        rng = self.rng
        pk_weights = np.array(
            [0.55, 0.33, 0.12][: len(self.packages)] + [0.05] * max(0, len(self.packages) - 3)
        )
        pk_weights /= pk_weights.sum()
        city_w = np.array([c.weight for c in cat.CITIES])
        city_w /= city_w.sum()
        type_w = np.array([cat.LOCATION_PROFILES[lt][1] for lt in LOCATION_TYPES])
        type_w /= type_w.sum()

        self.partners: list[_Partner] = []
        self.stands: list[_Stand] = []
        remaining = self.n_stands
        while remaining > 0:
            pk = int(rng.choice(len(self.packages), p=pk_weights))
            max_stands = self.packages[pk].max_stands
            if max_stands <= 1:
                k = 1
            else:
                p_geo = min(0.8, max(0.15, 1.6 / max_stands))
                k = min(max_stands, int(rng.geometric(p_geo)) + (1 if max_stands > 3 else 0))
            k = max(1, min(k, remaining))
            remaining -= k
            city = int(rng.choice(len(cat.CITIES), p=city_w))
            loc_type = LOCATION_TYPES[int(rng.choice(len(LOCATION_TYPES), p=type_w))]
            first, last = self._pick(cat.FIRST_NAMES), self._pick(cat.LAST_NAMES)
            street = self._pick(cat.STREETS)
            business = str(self._pick(cat.NAME_PATTERNS[loc_type])).format(
                first=first, last=last, street=street
            )
            idx = len(self.partners)
            city_info = cat.CITIES[city]
            self.partners.append(
                _Partner(
                    idx=idx,
                    package=pk,
                    city=city,
                    loc_type=loc_type,
                    name=business,
                    contact=f"{first} {last}",
                    email=f"{cat.slug(first, '.')}.{cat.slug(last, '.')}@"
                    f"{cat.slug(business)[:40].strip('-')}.example.de",
                    phone=f"+49 {city_info.area_code} {int(rng.integers(200_0000, 999_9999))}",
                    iban=cat.fake_iban(
                        int(rng.integers(10_000_000, 99_999_999)), int(rng.integers(10**8, 10**10))
                    ),
                    user=f"partner.{cat.slug(business, '.')[:40]}",
                    onboard_day=0,
                    created_ms=0,
                )
            )
            streets: set[str] = set()  # a chain's stands are told apart by their street
            for _ in range(k):
                self.partners[idx].stands.append(len(self.stands))
                self.stands.append(self._new_stand(idx, city, loc_type, business, k, streets))

        self._assign_lifecycles()

    def _new_stand(
        self,
        partner: int,
        city: int,
        partner_type: LocationType,
        business: str,
        chain_size: int,
        streets: set[str],
    ) -> _Stand:
        rng = self.rng
        c = cat.CITIES[city]
        loc_type = partner_type  # a chain's stands are all the same kind of shop
        street = self._pick(cat.STREETS)
        while street in streets and len(streets) < len(cat.STREETS):
            street = self._pick(cat.STREETS)
        streets.add(street)
        number = int(rng.integers(1, 160))
        name = business if chain_size == 1 else f"{business} – {street}"
        return _Stand(
            idx=len(self.stands),
            partner=partner,
            city=city,
            loc_type=loc_type,
            name=name,
            address=f"{street} {number}",
            postal_code=f"{self._pick(c.postal_prefixes)}{int(rng.integers(0, 100)):02d}",
            latitude=round(c.latitude + float(rng.normal(0, 0.035)), 6),
            longitude=round(c.longitude + float(rng.normal(0, 0.055)), 6),
            rep=str(self._pick(c.reps)),
            created_ms=0,
            go_live=self.D,
            stop=self.D,
        )

    def _assign_lifecycles(self) -> None:
        rng, D = self.rng, self.D
        n = len(self.partners)
        order = rng.permutation(n)
        n_onboarding = max(1 if n >= 3 else 0, round(0.05 * n))
        n_suspended = max(1 if n >= 5 else 0, round(0.04 * n))
        onboarding = set(order[:n_onboarding].tolist())
        suspended = set(order[n_onboarding : n_onboarding + n_suspended].tolist())
        wave = max(1, D // 12)
        latest = max(1, min(int(0.8 * D), D - 6))
        self.initial_lead: dict[int, int] = {}
        for p in self.partners:
            if p.idx in onboarding:
                p.onboard_day = max(0, D - 1 - int(rng.integers(0, 2)))
                p.final_status = PartnerStatus.ONBOARDING
            elif rng.random() < 0.6:
                p.onboard_day = int(rng.integers(0, wave))
            else:
                p.onboard_day = int(rng.integers(0, latest))
            p.onboard_day = min(p.onboard_day, D - 1)
            lead = int(rng.choice(LEAD_DAYS, p=LEAD_P))
            self.initial_lead[p.idx] = lead
            p.created_ms = int(self.base_ms[p.onboard_day]) + int(
                rng.integers(10 * HOUR, 16 * HOUR)
            )
            go_live = p.onboard_day + lead if p.final_status != PartnerStatus.ONBOARDING else D
            if go_live >= D:
                go_live = D
                p.final_status = PartnerStatus.ONBOARDING
            for k, s in enumerate(p.stands):
                st = self.stands[s]
                st.created_ms = p.created_ms + k * 7 * MINUTE
                st.go_live = go_live
            if p.idx in suspended and go_live + 21 <= D - 5:
                day = int(rng.integers(go_live + 21, D - 4))
                p.suspend_day = day
                p.suspended_ms = int(self.base_ms[day]) + 9 * HOUR + int(rng.integers(0, HOUR))
                p.final_status = PartnerStatus.SUSPENDED
                for s in p.stands:
                    self.stands[s].stop = day
                    self.stands[s].paused_ms = p.suspended_ms
        # A few stands of active partners are paused in the last month (renovation, closure).
        for st in self.stands:
            p = self.partners[st.partner]
            if p.final_status != PartnerStatus.ACTIVE or rng.random() >= 0.03:
                continue
            lo, hi = max(st.go_live + 14, D - 30), D - 2
            if lo < hi:
                day = int(rng.integers(lo, hi))
                st.stop = day
                st.paused_ms = int(self.base_ms[day]) + 9 * HOUR + int(rng.integers(0, HOUR))

    def _setup_assortments(self) -> None:
        rng = self.rng
        S, J = len(self.stands), self.n_products
        affinity = np.array([cat.CATEGORY_AFFINITY[lt] for lt in LOCATION_TYPES])
        pair_stand: list[Arr] = []
        pair_prod: list[Arr] = []
        share: list[Arr] = []
        R = np.zeros(S)
        for st in self.stands:
            pkg = self.packages[self.partners[st.partner].package]
            slots = min(pkg.sku_slots, J)
            low = max(1, round(slots * 0.65))
            n = int(rng.integers(low, slots + 1))
            t_idx = LOCATION_TYPES.index(st.loc_type)
            w = self.popularity * affinity[t_idx, self.category]
            keys = np.log(w) + rng.gumbel(size=J)
            chosen = np.sort(np.argsort(-keys, kind="stable")[:n])
            s_w = w[chosen] * rng.lognormal(-0.125, 0.5, size=n)
            pair_stand.append(np.full(n, st.idx, dtype=np.int64))
            pair_prod.append(chosen.astype(np.int64))
            share.append(s_w / s_w.sum())
            base = cat.LOCATION_PROFILES[st.loc_type][0]
            R[st.idx] = base * rng.lognormal(-0.1, 0.45) * (n / 20.0) ** 0.25
        self.pair_stand = np.concatenate(pair_stand)
        self.pair_prod = np.concatenate(pair_prod)
        self.share = np.concatenate(share)
        self.P = len(self.pair_stand)
        counts = np.bincount(self.pair_stand, minlength=S)
        self.stand_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.R = R
        self.pair_city = np.array([self.stands[s].city for s in self.pair_stand.tolist()])

        # Levels: par covers a refill cycle of expected demand (some stands face products
        # too tightly: those run out), capacity leaves room for a whole pack on top of a
        # nearly full facing, the reorder point covers the lead time.
        cadence = np.array(
            [
                self.packages[self.partners[st.partner].package].refill_cadence_days
                for st in self.stands
            ],
            dtype=np.float64,
        )
        demand = R[self.pair_stand] * self.share
        self.pair_demand = demand
        facing = rng.lognormal(-0.1, 0.4, size=self.P)
        pack = self.pack[self.pair_prod]
        par = np.maximum(2, np.ceil(demand * (cadence[self.pair_stand] + 3) * facing)).astype(
            np.int64
        )
        cap = np.maximum(par + pack - 1, np.ceil(par * 1.25)).astype(np.int64)
        rop = np.minimum(par, np.maximum(1, np.ceil(demand * 3.5))).astype(np.int64)
        self.par, self.cap, self.rop = par, cap, rop
        self.pair_pack = pack
        for st in self.stands:
            a, b = int(self.stand_off[st.idx]), int(self.stand_off[st.idx + 1])
            st.capacity_units = int(cap[a:b].sum())

        self.stand_type = np.array([LOCATION_TYPES.index(st.loc_type) for st in self.stands])
        self.stand_partner = np.array([st.partner for st in self.stands], dtype=np.int64)
        self.go_live = np.array([st.go_live for st in self.stands], dtype=np.int64)
        self.stop = np.array([st.stop for st in self.stands], dtype=np.int64)
        self.partner_pkg = np.array([p.package for p in self.partners], dtype=np.int64)
        self.cadence = cadence.astype(np.int64)
        # Stand-level quirks: a step change in traffic (construction, a new neighbour) and
        # shelves that lose more than their share to theft.
        self.step_day = np.full(S, self.D + 1, dtype=np.int64)
        self.step_factor = np.ones(S)
        stepped = rng.random(S) < 0.06
        for s in np.flatnonzero(stepped).tolist():
            self.step_day[s] = int(rng.integers(self.D // 4, max(self.D // 4 + 1, 3 * self.D // 4)))
            self.step_factor[s] = 0.55 if rng.random() < 0.5 else 1.6
        self.shrink_p = np.where(
            rng.random(S) < 0.06, SHRINK_PER_UNIT_DAY * THEFT_FACTOR, SHRINK_PER_UNIT_DAY
        )
        self.count_interval = rng.integers(14, 29, size=S)

    def _setup_state(self) -> None:
        S, NP, D = len(self.stands), len(self.partners), self.D
        self.book = np.zeros(self.P, dtype=np.int64)  # what the movements say
        self.true = np.zeros(self.P, dtype=np.int64)  # what is physically on the shelf
        self.last_move_ms = np.array(
            [self.stands[s].created_ms for s in self.pair_stand.tolist()], dtype=np.int64
        )
        self.last_counted_ms = np.full(self.P, NULL_MS, dtype=np.int64)
        self.last_delivery = np.full(S, -1000, dtype=np.int64)
        self.last_count = self.go_live.copy()
        self.free_from = self.go_live.copy()  # first day a new refill may be requested
        self.deliveries: dict[int, list[int]] = {}
        self.resolutions: dict[int, list[int]] = {}
        self.open_discrepancies: dict[int, list[int]] = {}
        self.earned = np.zeros((NP, D + 1), dtype=np.int64)
        self.lots = np.zeros((NP, D + 1), dtype=np.int64)
        self.lot_head = np.zeros(NP, dtype=np.int64)
        self.balance = np.zeros(NP, dtype=np.int64)
        self.window = np.zeros(NP, dtype=np.int64)
        self.tier = np.zeros(NP, dtype=np.int64)
        self.day_pos = np.zeros(NP, dtype=np.int64)
        self.day_neg = np.zeros(NP, dtype=np.int64)
        self.day_reversed = np.zeros(NP, dtype=np.int64)  # points taken back by voids
        self.redeemed_today = np.zeros(NP, dtype=np.int64)
        self.month_sales = np.zeros(NP, dtype=np.int64)
        self.thresholds = [t.threshold_points for t in self.tiers]
        self.tier_mult = [t.point_multiplier for t in self.tiers]
        self.pkg_mult = [p.loyalty_multiplier for p in self.packages]
        self.activated = np.zeros(NP, dtype=bool)

    # ------------------------------------------------------------------ the days

    def run(self) -> None:
        # Initial refills go out when a partner is onboarded.
        onboard: dict[int, list[_Partner]] = {}
        for p in self.partners:
            onboard.setdefault(p.onboard_day, []).append(p)
        for t in range(self.D):
            self._start_of_day(t)
            self._counts(t)
            self._deliveries(t)
            self._resolutions(t)
            for p in onboard.get(t, []):
                self._initial_refills(p)
            self._sales(t)
            self._shrink(t)
            self._requests(t)
            self._end_of_day(t)
            self.report("simulate", (t + 1) / self.D)
        self._update_tiers(self.D)

    def date_of(self, day: int) -> date:
        return self.first_day + timedelta(days=day)

    def _day_ms(self, day: int) -> int:
        """Local midnight of day ``day`` in UTC ms (days after the period extrapolated)."""
        if day < len(self.base_ms):
            return int(self.base_ms[day])
        return int(self.base_ms[-1]) + (day - len(self.base_ms) + 1) * MS_PER_DAY

    def _at(self, day: int, lo: int, hi: int) -> int:
        """A random time between local ``lo`` and ``hi`` (ms after midnight) on ``day``."""
        return self._day_ms(day) + int(self.rng.integers(lo, hi))

    def _ledger_one(
        self,
        ms: int,
        partner: int,
        kind: int,
        points: int,
        actor: str,
        note: str | None,
        ref_type: int = REF_NONE,
        ref: int = -1,
    ) -> None:
        self.ledger.add(
            ms=np.array([ms], dtype=np.int64),
            partner=np.array([partner], dtype=np.int64),
            kind=np.array([kind], dtype=np.int64),
            points=np.array([points], dtype=np.int64),
            ref_type=np.array([ref_type], dtype=np.int64),
            ref=np.array([ref], dtype=np.int64),
            actor=np.array([self.actor(actor)], dtype=np.int64),
            note=np.array([-1 if note is None else self.note(note)], dtype=np.int64),
        )

    def _update_tiers(self, t: int) -> None:
        """Tiers as of day ``t`` 00:00: points earned on days t-365 .. t-1."""
        if t >= 1:
            self.window += self.earned[:, t - 1]
        if t - 1 - 365 >= 0:
            self.window -= self.earned[:, t - 1 - 365]
        held = np.zeros(len(self.partners), dtype=np.int64)
        for i, threshold in enumerate(self.thresholds):
            held = np.where(self.window >= threshold, i, held)
        self.tier = held

    def _start_of_day(self, t: int) -> None:
        self._update_tiers(t)
        self.day_pos[:] = 0
        self.day_neg[:] = 0
        self.day_reversed[:] = 0
        self.redeemed_today[:] = 0
        d = self.dates[t]
        if d.day != 1:
            return
        # Points expire, oldest first, once a month (the job a manager runs on the 1st).
        cut = t - EXPIRE_AFTER_DAYS  # lots of days < cut are older than 365 days
        if cut > 0:
            for p in range(len(self.partners)):
                amount = int(self.lots[p, :cut].sum())
                if amount <= 0:
                    continue
                self.lots[p, :cut] = 0
                self.balance[p] -= amount
                self._ledger_one(
                    self._at(t, 2 * HOUR + 30 * MINUTE, 2 * HOUR + 31 * MINUTE),
                    p,
                    LK_EXPIRE,
                    -amount,
                    SYSTEM_ACTOR,
                    f"Points older than {EXPIRE_AFTER_DAYS} days",
                )
        # The best partner of the month before gets a bonus.
        if t >= 20 and self.month_sales.max() > 0:
            best = int(np.argmax(self.month_sales))
            manager = cat.CITIES[self.partners[best].city].manager
            prev = self.dates[t - 1]
            month = f"{MONTH_NAMES[prev.month - 1]} {prev.year}"  # not %B: locale-dependent
            self._ledger_one(
                self._at(t, 10 * HOUR, 11 * HOUR),
                best,
                LK_BONUS,
                MONTHLY_BONUS,
                manager,
                f"Top partner of {month}",
            )
            self.day_pos[best] += MONTHLY_BONUS
        self.month_sales[:] = 0

    def _end_of_day(self, t: int) -> None:
        self.balance += self.day_pos - self.day_neg
        # Earned, for tiers: earn, activation and bonus, less what voids took back.
        self.earned[:, t] = self.day_pos - self.day_reversed
        self.lots[:, t] = self.day_pos
        # Negative entries consume the oldest lots first (FIFO); see app.rules.
        for p in np.flatnonzero(self.day_neg).tolist():
            need = int(self.day_neg[p])
            head = int(self.lot_head[p])
            while need > 0 and head <= t:
                take = min(need, int(self.lots[p, head]))
                self.lots[p, head] -= take
                need -= take
                if self.lots[p, head] == 0:
                    head += 1
            self.lot_head[p] = min(head, t)

    # ------------------------------------------------------------------ counts

    def _counts(self, t: int) -> None:
        active = (self.go_live < t) & (t < self.stop)
        if not active.any():
            return
        since = t - self.last_count
        delivering = np.zeros(len(self.stands), dtype=bool)
        for r in self.deliveries.get(t, []):
            delivering[self.refills[r].stand] = True
        due = active & (
            ((since >= self.count_interval) & delivering) | (since >= self.count_interval + 5)
        )
        stands = np.flatnonzero(due)
        if len(stands) == 0:
            return
        snap0 = len(self.snapshots)
        snap_ms = np.empty(len(stands), dtype=np.int64)
        for k, s in enumerate(stands.tolist()):
            ms = self._at(t, 7 * HOUR, 7 * HOUR + 9 * MINUTE)
            snap_ms[k] = ms
            self.snapshots.append(_Snapshot(s, ms, self.stands[s].rep))
            self.last_count[s] = t
            for d in self.open_discrepancies.get(s, []):
                self.discrepancies[d].count_seen = True
        counted_mask = due[self.pair_stand]
        pairs = np.flatnonzero(counted_mask)
        snap_of_stand = np.full(len(self.stands), -1, dtype=np.int64)
        snap_of_stand[stands] = np.arange(len(stands))
        local = snap_of_stand[self.pair_stand[pairs]]
        ms = snap_ms[local]
        expected = self.book[pairs]
        counted = self.true[pairs]
        variance = counted - expected
        nz = variance != 0
        move = np.full(len(pairs), -1, dtype=np.int64)
        if nz.any():
            start = self.moves.add(
                ms=ms[nz],
                pair=pairs[nz],
                qty=variance[nz],
                kind=np.full(int(nz.sum()), MV_COUNT, dtype=np.int64),
                ref_type=np.full(int(nz.sum()), REF_SNAPSHOT, dtype=np.int64),
                ref=snap0 + local[nz],
                actor=np.array(
                    [self.actor(self.stands[s].rep) for s in self.pair_stand[pairs[nz]].tolist()],
                    dtype=np.int64,
                ),
            )
            move[nz] = start + np.arange(int(nz.sum()))
            self.last_move_ms[pairs[nz]] = ms[nz]
        self.count_lines.add(
            snapshot=snap0 + local,
            pair=pairs,
            expected=expected,
            counted=counted,
            variance=variance,
            move=move,
        )
        self.book[pairs] = counted
        self.last_counted_ms[pairs] = ms

    # ------------------------------------------------------------------ refills

    def _initial_refills(self, p: _Partner) -> None:
        lead = self.initial_lead[p.idx]
        for s in p.stands:
            a, b = int(self.stand_off[s]), int(self.stand_off[s + 1])
            pairs = np.arange(a, b, dtype=np.int64)
            qty = -(-self.par[a:b] // self.pair_pack[a:b]) * self.pair_pack[a:b]
            ms = self.stands[s].created_ms + int(self.rng.integers(10 * MINUTE, 40 * MINUTE))
            self._plan_refill(
                s,
                p.onboard_day,
                ms,
                self.stands[s].rep,
                Role.REP,
                pairs,
                qty,
                lead=lead,
                initial=True,
            )

    def _requests(self, t: int) -> None:
        S = len(self.stands)
        eligible = (
            (self.go_live <= t)
            & (t < self.stop)
            & (self.free_from <= t)
            & (t - self.last_delivery >= 2)
        )
        if not eligible.any():
            return
        low_pairs = (self.book <= self.rop).astype(np.float64) * self.pair_demand
        at_risk = np.add.reduceat(low_pairs, self.stand_off[:-1])
        total = np.add.reduceat(self.pair_demand, self.stand_off[:-1])
        low = at_risk >= LOW_STOCK_DEMAND_SHARE * total
        cadence_due = (t - self.last_delivery) >= self.cadence - 3
        trigger = eligible & (low | cadence_due)
        wanted = (self.book < self.par) & (
            (self.book <= self.rop) | (self.par - self.book >= np.maximum(1, self.par // 3))
        )
        for s in np.flatnonzero(trigger[:S]).tolist():
            a, b = int(self.stand_off[s]), int(self.stand_off[s + 1])
            sel = np.flatnonzero(wanted[a:b]) + a
            if len(sel) == 0:
                continue
            qty = self._suggested(sel)
            keep = qty > 0
            if not keep.any():
                continue
            by_system = bool(low[s] and not cadence_due[s])
            who = SYSTEM_ACTOR if by_system else self.stands[s].rep
            role = Role.ADMIN if by_system else Role.REP
            ms = self._at(t, 21 * HOUR + 30 * MINUTE, 21 * HOUR + 59 * MINUTE)
            self._plan_refill(s, t, ms, who, role, sel[keep], qty[keep])

    def _suggested(self, pairs: Arr) -> Arr:
        """Par minus on hand, rounded up to whole packs, never above capacity (the rule of
        app.services.refills.suggested_quantities)."""
        on_hand = np.maximum(self.book[pairs], 0)
        pack = self.pair_pack[pairs]
        qty = -(-(self.par[pairs] - on_hand) // pack) * pack
        room = self.cap[pairs] - on_hand
        over = qty > room
        if over.any():
            fit = room // pack * pack
            qty = np.where(over, fit, qty)
        out: Arr = np.maximum(qty, 0)
        return out

    def _plan_refill(
        self,
        s: int,
        day: int,
        request_ms: int,
        requester: str,
        role: Role,
        pairs: Arr,
        qty: Arr,
        *,
        lead: int | None = None,
        initial: bool = False,
    ) -> None:
        """Decide a refill's whole future at request time (its times, people and fate)."""
        rng, D = self.rng, self.D
        st = self.stands[s]
        manager = cat.CITIES[st.city].manager
        partner = self.partners[st.partner]
        n = len(pairs)
        r = _Refill(
            idx=len(self.refills),
            stand=s,
            day=day,
            pairs=pairs,
            requested=qty,
            approved=qty.copy(),
            delivered=qty.copy(),
            received=qty.copy(),
            prices=self.price_u[self.pair_prod[pairs]],
            requested_by=requester,
        )
        self.refills.append(r)
        self.refill_items.add(
            refill=np.full(n, r.idx, dtype=np.int64),
            line_no=np.arange(1, n + 1, dtype=np.int64),
            pair=pairs,
        )
        r.events.append((RefillAction.REQUEST, request_ms, requester, role, ""))
        lead = lead if lead is not None else int(rng.choice(LEAD_DAYS, p=LEAD_P))
        fate = rng.random()
        approve_ms = self._at(day + 1, 8 * HOUR, 12 * HOUR)
        if not initial and fate < REJECT_RATE:
            r.events.append(
                (
                    RefillAction.REJECT,
                    approve_ms,
                    manager,
                    Role.MANAGER,
                    str(self._pick(cat.REJECT_REASONS)),
                )
            )
            self.free_from[s] = day + 1
            return
        if rng.random() < PARTIAL_APPROVAL_RATE:
            k = int(rng.integers(0, n))
            if r.approved[k] > self.pair_pack[pairs[k]]:
                r.approved[k] -= self.pair_pack[pairs[k]]
        r.events.append((RefillAction.APPROVE, approve_ms, manager, Role.MANAGER, ""))
        if lead >= 3 and rng.random() < 0.3:
            schedule_ms = self._at(day + 2, 8 * HOUR, 12 * HOUR)
        else:
            schedule_ms = approve_ms + int(rng.integers(5 * MINUTE, 90 * MINUTE))
        r.scheduled_for = day + lead
        r.dealer = cat.CITIES[st.city].dealer
        r.events.append((RefillAction.SCHEDULE, schedule_ms, manager, Role.MANAGER, ""))
        deliver_day = day + lead
        if not initial and fate < REJECT_RATE + CANCEL_RATE:
            cancel_day = deliver_day - 1
            who, who_role = (requester, Role.REP) if role == Role.REP else (manager, Role.MANAGER)
            r.events.append(
                (
                    RefillAction.CANCEL,
                    self._at(cancel_day, 14 * HOUR, 17 * HOUR),
                    who,
                    who_role,
                    str(self._pick(cat.CANCEL_REASONS)),
                )
            )
            self.free_from[s] = cancel_day
            return
        if st.stop <= deliver_day:
            reason = "Partner suspended" if partner.suspend_day == st.stop else "Stand paused"
            r.events.append(
                (
                    RefillAction.CANCEL,
                    self._at(st.stop, 16 * HOUR, 16 * HOUR + 30 * MINUTE),
                    manager,
                    Role.MANAGER,
                    reason,
                )
            )
            self.free_from[s] = D + 1
            return
        r.delivered = r.approved.copy()
        if rng.random() < SHORT_DELIVERY_RATE:
            k = int(rng.integers(0, n))
            r.delivered[k] = max(0, int(r.delivered[k]) - int(self.pair_pack[pairs[k]]))
            if not r.delivered.any():
                r.delivered[k] = r.approved[k]
        deliver_ms = self._at(deliver_day, 7 * HOUR + 10 * MINUTE, 7 * HOUR + 55 * MINUTE)
        r.events.append((RefillAction.DELIVER, deliver_ms, st.rep, Role.REP, ""))
        r.received = r.delivered.copy()
        if rng.random() < LATE_CONFIRM_RATE:
            r.confirm_same_visit = False
            confirm_ms = self._at(deliver_day + 1, 9 * HOUR, 18 * HOUR)
        else:
            confirm_ms = deliver_ms + int(rng.integers(3 * MINUTE, 20 * MINUTE))
            candidates = np.flatnonzero(r.delivered >= 2)
            if len(candidates) and rng.random() < DISCREPANCY_RATE:
                k = int(candidates[int(rng.integers(0, len(candidates)))])
                short = int(rng.integers(1, min(3, int(r.delivered[k]) - 1) + 1))
                r.received[k] = r.delivered[k] - short
                r.discrepancy_line = k
        r.events.append((RefillAction.CONFIRM, confirm_ms, partner.user, Role.PARTNER, ""))
        self.free_from[s] = deliver_day
        if deliver_day < D:
            self.deliveries.setdefault(deliver_day, []).append(r.idx)

    def _deliveries(self, t: int) -> None:
        for ridx in self.deliveries.pop(t, []):
            r = self.refills[ridx]
            s = r.stand
            st = self.stands[s]
            deliver_ms = next(ms for a, ms, *_ in r.events if a == RefillAction.DELIVER)
            confirm_ms = next(ms for a, ms, *_ in r.events if a == RefillAction.CONFIRM)
            self.book[r.pairs] += r.delivered
            self.true[r.pairs] += r.received
            pos = np.flatnonzero(r.delivered > 0)
            self.last_move_ms[r.pairs[pos]] = deliver_ms
            start = self.moves.add(
                ms=np.full(len(pos), deliver_ms, dtype=np.int64),
                pair=r.pairs[pos],
                qty=r.delivered[pos],
                kind=np.full(len(pos), MV_DELIVERY, dtype=np.int64),
                ref_type=np.full(len(pos), REF_REFILL, dtype=np.int64),
                ref=np.full(len(pos), ridx, dtype=np.int64),
                actor=np.full(len(pos), self.actor(st.rep), dtype=np.int64),
            )
            moves = np.full(len(r.pairs), -1, dtype=np.int64)
            moves[pos] = start + np.arange(len(pos))
            r.delivery_movements = moves
            self.last_delivery[s] = t
            if r.discrepancy_line >= 0:
                k = r.discrepancy_line
                rday = t + int(self.rng.integers(1, 5))
                rms = self._at(rday, 10 * HOUR, 16 * HOUR)
                d = _Discrepancy(
                    idx=len(self.discrepancies),
                    refill=ridx,
                    stand=s,
                    pair=int(r.pairs[k]),
                    delivered=int(r.delivered[k]),
                    received=int(r.received[k]),
                    created_ms=confirm_ms,
                    resolve_day=rday,
                    resolve_ms=rms,
                    resolver=cat.CITIES[st.city].manager,
                )
                self.discrepancies.append(d)
                r.discrepancy = d.idx
                self.open_discrepancies.setdefault(s, []).append(d.idx)
                self.resolutions.setdefault(rday, []).append(d.idx)
            p = self.partners[st.partner]
            if not self.activated[p.idx]:
                # The rep activates the partner at the first delivery, before sales open.
                self._activate(p, deliver_ms + int(self.rng.integers(MINUTE, 4 * MINUTE)))
            elif (
                self.balance[p.idx] - self.redeemed_today[p.idx] >= REDEEM_MIN_BALANCE
                and self.rng.random() < REDEEM_RATE
            ):
                available = int(self.balance[p.idx] - self.redeemed_today[p.idx])
                amount = int(available * self.rng.uniform(0.3, 0.7)) // 50 * 50
                if amount > 0:
                    self.redeemed_today[p.idx] += amount
                    self.day_neg[p.idx] += amount
                    self._ledger_one(
                        deliver_ms + int(self.rng.integers(MINUTE, 4 * MINUTE)),
                        p.idx,
                        LK_REDEEM,
                        -amount,
                        st.rep,
                        str(self._pick(cat.REDEEM_NOTES)),
                    )

    def _activate(self, p: _Partner, ms: int) -> None:
        """The partner goes live: stands active, activation points (app.services.loyalty)."""
        self.activated[p.idx] = True
        p.activated_ms = ms
        points = self.packages[p.package].activation_points
        if points > 0:
            rep = self.stands[p.stands[0]].rep
            self._ledger_one(
                ms, p.idx, LK_ACTIVATION, points, rep, f"Welcome to {self.packages[p.package].name}"
            )
            self.day_pos[p.idx] += points

    def _resolutions(self, t: int) -> None:
        for didx in self.resolutions.pop(t, []):
            d = self.discrepancies[didx]
            d.resolved = True
            self.open_discrepancies[d.stand].remove(didx)
            if d.count_seen:
                # A count since the delivery already brought the books in line.
                d.status = DiscrepancyStatus.KEPT_DELIVERED
                continue
            d.status = DiscrepancyStatus.ACCEPTED_RECEIVED
            diff = d.received - d.delivered
            self.moves.add(
                ms=np.array([d.resolve_ms], dtype=np.int64),
                pair=np.array([d.pair], dtype=np.int64),
                qty=np.array([diff], dtype=np.int64),
                kind=np.array([MV_CORRECTION], dtype=np.int64),
                ref_type=np.array([REF_DISCREPANCY], dtype=np.int64),
                ref=np.array([didx], dtype=np.int64),
                actor=np.array([self.actor(d.resolver)], dtype=np.int64),
            )
            self.book[d.pair] += diff
            self.last_move_ms[d.pair] = max(int(self.last_move_ms[d.pair]), d.resolve_ms)

    # ------------------------------------------------------------------ sales

    def _sales(self, t: int) -> None:
        rng = self.rng
        S, P = len(self.stands), self.P
        active = (self.go_live <= t) & (t < self.stop)
        if not active.any():
            return
        pf = self.prod_factor[self.pair_prod, t] * np.exp(
            0.18 * self.weather_sens[self.pair_prod] * self.anomaly[self.pair_city, t]
        )
        w = self.share * pf
        mix = np.add.reduceat(w, self.stand_off[:-1])
        step = np.where(t >= self.step_day, self.step_factor, 1.0)
        lam = (
            self.R
            * self.weekday[self.stand_type, self.dow[t]]
            * self.holiday[self.stand_type, t]
            * step
            * mix
            * rng.gamma(DAY_NOISE_SHAPE, 1.0 / DAY_NOISE_SHAPE, size=S)
            * active
        )
        n_orders = rng.poisson(lam / UNITS_PER_ORDER)
        n_ord = int(n_orders.sum())
        if n_ord == 0:
            return
        o_stand = np.repeat(np.arange(S, dtype=np.int64), n_orders)
        # When: an hour from the type's profile, then any moment within it.
        u = rng.random(n_ord)
        hour = (u[:, None] > self.hour_cdf[self.stand_type[o_stand]]).sum(axis=1)
        tod = 8 * HOUR + hour * HOUR + rng.integers(0, HOUR, size=n_ord)
        srt = np.lexsort((tod, o_stand))
        o_stand, tod = o_stand[srt], tod[srt]
        # What: 1-3 lines, each a SKU drawn from the stand's demand mix of the day.
        ul = rng.random(n_ord)
        n_lines = 1 + (ul > LINES_P[0]).astype(np.int64) + (ul > LINES_P[0] + LINES_P[1])
        l_order = np.repeat(np.arange(n_ord, dtype=np.int64), n_lines)
        l_stand = o_stand[l_order]
        cum = np.cumsum(w)
        start_cum = np.concatenate([[0.0], cum[self.stand_off[1:-1] - 1]])
        within = (cum - start_cum[self.pair_stand]) / mix[self.pair_stand]
        within[self.stand_off[1:] - 1] = 1.0
        G = self.pair_stand + within
        l_pair = np.searchsorted(G, l_stand + rng.random(len(l_order)), side="right")
        l_pair = np.minimum(l_pair, self.stand_off[l_stand + 1] - 1)
        uq = rng.random(len(l_order))
        qty = 1 + (uq > QTY_P[0]).astype(np.int64) + (uq > QTY_P[0] + QTY_P[1])
        # The same SKU twice in one order is one line.
        keys, inverse = np.unique(l_order * P + l_pair, return_inverse=True)
        q = np.zeros(len(keys), dtype=np.int64)
        np.add.at(q, inverse, qty)
        l_order, l_pair = keys // P, keys % P
        # Censoring: customers take what is physically there, in the order they come.
        by_pair = np.lexsort((l_order, l_pair))
        qs, ps = q[by_pair], l_pair[by_pair]
        cum_q = np.cumsum(qs)
        first = np.ones(len(ps), dtype=bool)
        first[1:] = ps[1:] != ps[:-1]
        group = np.cumsum(first) - 1
        before = cum_q - qs - (cum_q - qs)[first][group]
        sold_sorted = np.clip(self.true[ps] - before, 0, qs)
        sold = np.empty_like(q)
        sold[by_pair] = sold_sorted
        keep = sold > 0
        if not keep.any():
            return
        l_order, l_pair, sold = l_order[keep], l_pair[keep], sold[keep]
        taken = np.bincount(l_pair, weights=sold, minlength=P).astype(np.int64)
        self.true -= taken
        self.book -= taken
        has_lines = np.bincount(l_order, minlength=n_ord) > 0
        new_index = np.cumsum(has_lines) - 1
        kept = np.flatnonzero(has_lines)
        o_stand, tod = o_stand[kept], tod[kept]
        l_order = new_index[l_order]
        n_kept = len(kept)
        line_start = np.searchsorted(l_order, np.arange(n_kept))
        line_no = np.arange(len(l_order)) - line_start[l_order] + 1
        # Prices: the list price, sometimes a discount within the guardrails.
        prod = self.pair_prod[l_pair]
        price = self.price_u[prod].copy()
        override = rng.random(len(prod)) < OVERRIDE_RATE
        if override.any():
            pct = rng.choice(np.array([5, 10, 15, 20]), size=int(override.sum()))
            discounted = _round_cents(price[override] * (100 - pct) // 100)
            price[override] = np.maximum(discounted, self.min_u[prod[override]])
        overridden = price != self.price_u[prod]
        line_total = _round_cents(sold * price)
        totals = np.add.reduceat(line_total, line_start)
        ms = int(self.base_ms[t]) + tod
        partner = self.stand_partner[o_stand]
        points = self._points(totals, partner)
        mix_p = self.pay_mix[self.stand_type[o_stand]].copy()
        years = t / 365.0
        mix_p[:, 1] *= 1.0 + 0.8 * years
        mix_p /= mix_p.sum(axis=1, keepdims=True)
        uq = rng.random(n_kept)
        method = (uq > mix_p[:, 0]).astype(np.int64) + (uq > mix_p[:, 0] + mix_p[:, 1])

        o0 = self.orders.add(
            ms=ms,
            day=np.full(n_kept, t, dtype=np.int64),
            stand=o_stand,
            partner=partner,
            kind=np.zeros(n_kept, dtype=np.int64),
            voided=np.full(n_kept, -1, dtype=np.int64),
            method=method,
            total=totals,
            points=points,
        )
        g_order = o0 + l_order
        cost = self.cost_u[prod]
        self.items.add(
            order=g_order,
            line_no=line_no,
            product=prod,
            qty=sold,
            price=price,
            cost=cost,
            total=line_total,
            overridden=overridden,
        )
        pos_actor = self.actor(POS_ACTOR)
        n_lines_k = len(l_order)
        self.moves.add(
            ms=ms[l_order],
            pair=l_pair,
            qty=-sold,
            kind=np.full(n_lines_k, MV_SALE, dtype=np.int64),
            ref_type=np.full(n_lines_k, REF_ORDER, dtype=np.int64),
            ref=g_order,
            actor=np.full(n_lines_k, pos_actor, dtype=np.int64),
        )
        self.last_move_ms[l_pair] = np.maximum(self.last_move_ms[l_pair], ms[l_order])
        earn = np.flatnonzero(points > 0)
        n_earn = len(earn)
        self.ledger.add(
            ms=ms[earn],
            partner=partner[earn],
            kind=np.full(n_earn, LK_EARN, dtype=np.int64),
            points=points[earn],
            ref_type=np.full(n_earn, REF_ORDER, dtype=np.int64),
            ref=o0 + earn,
            actor=np.full(n_earn, pos_actor, dtype=np.int64),
            note=np.full(n_earn, -1, dtype=np.int64),
        )
        np.add.at(self.day_pos, partner, points)
        np.add.at(self.month_sales, partner, totals)

        # Voids: a few sales are taken back minutes later (a compensating order).
        voided = np.flatnonzero(rng.random(n_kept) < VOID_RATE)
        if len(voided) == 0:
            return
        nv = len(voided)
        v_ms = ms[voided] + rng.integers(MINUTE, 10 * MINUTE, size=nv)
        v0 = self.orders.add(
            ms=v_ms,
            day=np.full(nv, t, dtype=np.int64),
            stand=o_stand[voided],
            partner=partner[voided],
            kind=np.ones(nv, dtype=np.int64),
            voided=o0 + voided,
            method=method[voided],
            total=-totals[voided],
            points=-points[voided],
        )
        void_of = np.full(n_kept, -1, dtype=np.int64)
        void_of[voided] = np.arange(nv)
        vl = np.flatnonzero(void_of[l_order] >= 0)
        v_order = v0 + void_of[l_order[vl]]
        self.items.add(
            order=v_order,
            line_no=line_no[vl],
            product=prod[vl],
            qty=-sold[vl],
            price=price[vl],
            cost=cost[vl],
            total=-line_total[vl],
            overridden=overridden[vl],
        )
        v_line_ms = v_ms[void_of[l_order[vl]]]
        self.moves.add(
            ms=v_line_ms,
            pair=l_pair[vl],
            qty=sold[vl],
            kind=np.full(len(vl), MV_VOID, dtype=np.int64),
            ref_type=np.full(len(vl), REF_ORDER, dtype=np.int64),
            ref=v_order,
            actor=np.full(len(vl), pos_actor, dtype=np.int64),
        )
        self.last_move_ms[l_pair[vl]] = np.maximum(self.last_move_ms[l_pair[vl]], v_line_ms)
        back = np.bincount(l_pair[vl], weights=sold[vl], minlength=P).astype(np.int64)
        self.true += back
        self.book += back
        rev = np.flatnonzero(points[voided] > 0)
        if len(rev):
            nr = len(rev)
            self.ledger.add(
                ms=v_ms[rev],
                partner=partner[voided[rev]],
                kind=np.full(nr, LK_ADJUST, dtype=np.int64),
                points=-points[voided[rev]],
                ref_type=np.full(nr, REF_ORDER, dtype=np.int64),
                ref=v0 + rev,
                actor=np.full(nr, pos_actor, dtype=np.int64),
                note=np.full(nr, self.note("Sale voided"), dtype=np.int64),
            )
            np.add.at(self.day_neg, partner[voided[rev]], points[voided[rev]])
            np.add.at(self.day_reversed, partner[voided[rev]], points[voided[rev]])
        np.add.at(self.month_sales, partner[voided], -totals[voided])

    def _points(self, totals: Arr, partner: Arr) -> Arr:
        """app.rules.sale_points for each order, at the partner's package and current tier."""
        pkg = self.partner_pkg[partner]
        tier = self.tier[partner]
        combo = (totals * 64 + pkg * 8 + tier).astype(np.int64)
        uniq, inverse = np.unique(combo, return_inverse=True)
        values = np.empty(len(uniq), dtype=np.int64)
        for i, key in enumerate(uniq.tolist()):
            total_u, rest = divmod(key, 64)
            k, tr = divmod(rest, 8)
            cache_key = (total_u, k, tr)
            pts = self._points_cache.get(cache_key)
            if pts is None:
                pts = sale_points(
                    Decimal(total_u).scaleb(-MONEY_SCALE), self.pkg_mult[k], self.tier_mult[tr]
                )
                self._points_cache[cache_key] = pts
            values[i] = pts
        out: Arr = values[inverse]
        return out

    def _shrink(self, t: int) -> None:
        on_shelf = self.true > 0
        if not on_shelf.any():
            return
        p = self.shrink_p[self.pair_stand]
        lost = self.rng.binomial(np.maximum(self.true, 0), p)
        self.true -= lost


# ====================================================================== writing


def _rows_of(column: Arr | _Lazy, rows: Arr) -> Arr:
    if isinstance(column, _Lazy):
        return column.fn(rows)
    selected: Arr = column[rows]
    return selected


def _use_fast_path(dialect_name: str) -> bool:
    """Whether rows go to the driver in their stored form (SQLite) or through Core."""
    return dialect_name == "sqlite"


class _Writer:
    """Bulk inserts: stored representation on SQLite, Core with the column types elsewhere."""

    BATCH = 50_000

    def __init__(self, session: Session, total_rows: int, report: _Progress) -> None:
        self.conn: Connection = session.connection()
        self.dialect = self.conn.dialect
        self.fast = _use_fast_path(self.dialect.name)
        self.cache_size: Any = None
        if self.dialect.name == "sqlite":
            # Index pages of the big tables stay in memory while they grow; with the default
            # 2 MiB cache every index insert is a page read. Restored by finish().
            self.cache_size = self.conn.exec_driver_sql("PRAGMA cache_size").scalar()
            self.conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        self.total = max(1, total_rows)
        self.done = 0
        self.report = report

    def insert(self, table: Table, cols: dict[str, Arr | _Lazy], order: Arr | None = None) -> int:
        """Insert the rows given as one array per column, in ``order`` if given.

        Rows are converted and sent in batches, so memory stays flat however big the table.
        """
        names = [c.name for c in table.columns]
        if set(cols) != set(names):
            missing, extra = set(names) - set(cols), set(cols) - set(names)
            raise ValueError(f"{table.name}: missing {sorted(missing)}, extra {sorted(extra)}")
        n = len(cols[names[0]])
        for name in names:
            if len(cols[name]) != n:
                raise ValueError(f"{table.name}.{name}: {len(cols[name])} values for {n} rows")
        if n == 0:
            return 0
        prep = self.dialect.identifier_preparer
        sql = (
            f"INSERT INTO {prep.format_table(table)} "
            f"({', '.join(prep.quote(name) for name in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        stmt = insert(table)
        rows_in_order = order if order is not None else np.arange(n)
        for i in range(0, n, self.BATCH):
            take = rows_in_order[i : i + self.BATCH]
            values = [
                self._convert(table, name, table.c[name].type, _rows_of(cols[name], take))
                for name in names
            ]
            if self.fast:
                self.conn.exec_driver_sql(sql, list(zip(*values, strict=True)))
            else:
                chunk = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
                self.conn.execute(stmt, chunk)
            self._advance(len(take))
        return n

    def finish(self) -> None:
        if self.cache_size is not None:
            self.conn.exec_driver_sql(f"PRAGMA cache_size={int(self.cache_size)}")

    def _advance(self, k: int) -> None:
        self.done += k
        self.report("write", self.done / self.total)

    def _convert(self, table: Table, name: str, type_: Any, arr: Arr) -> list[Any]:
        """Values of one column, ready for the driver (fast) or for Core (otherwise).

        int64 arrays for ScaledDecimal columns are amounts in the column's own units (what
        SQLite stores); int64 arrays for UTCDateTime columns are UTC epoch milliseconds,
        NULL_MS meaning NULL. Anything else holds values of the column's Python type.
        """
        raw_kind = None
        if arr.dtype.kind == "i" and isinstance(type_, ScaledDecimal):
            raw_kind = "money"
        elif arr.dtype.kind == "i" and isinstance(type_, UTCDateTime):
            raw_kind = "time"
        if raw_kind is None:
            plain: list[Any] = arr.tolist()
            if not self.fast:
                return plain
            processor = type_.dialect_impl(self.dialect).bind_processor(self.dialect)
            if processor is None:
                return plain
            cache: dict[Any, Any] = {}
            out = []
            for v in plain:
                try:
                    out.append(cache[v])
                except KeyError:
                    cache[v] = processor(v)
                    out.append(cache[v])
                except TypeError:  # unhashable
                    out.append(processor(v))
            return out
        if raw_kind == "money":
            scale = int(type_.scale)
            if not self.fast:
                return [Decimal(v).scaleb(-scale) for v in arr.tolist()]
            fast_money: list[Any] = arr.tolist()
            self._check(table, name, type_, Decimal(fast_money[0]).scaleb(-scale), fast_money[0])
            return fast_money
        nulls = arr == NULL_MS
        if not self.fast:
            return [None if v == NULL_MS else _dt(v) for v in arr.tolist()]
        fast_time = _sqlite_times(np.where(nulls, 0, arr))
        if nulls.any():
            for i in np.flatnonzero(nulls).tolist():
                fast_time[i] = None
        first = int(np.flatnonzero(~nulls)[0]) if (~nulls).any() else -1
        if first >= 0:
            self._check(table, name, type_, _dt(int(arr[first])), fast_time[first])
        return fast_time

    def _check(self, table: Table, name: str, type_: Any, value: Any, fast: Any) -> None:
        processor = type_.dialect_impl(self.dialect).bind_processor(self.dialect)
        stored = processor(value) if processor is not None else value
        if stored != fast:
            raise RuntimeError(
                f"demo fast path disagrees with the column type for {table.name}.{name}: "
                f"{fast!r} != {stored!r}; update app.demo"
            )


def _sqlite_times(ms: Arr) -> list[Any]:
    """Epoch milliseconds as SQLAlchemy's SQLite DATETIME text (naive UTC, microseconds)."""
    n = len(ms)
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="us").astype("S26")
    raw = text.view(np.uint8).reshape(n, 26).copy()
    raw[:, 10] = ord(" ")
    joined = raw.tobytes().decode("ascii")
    return [joined[i : i + 26] for i in range(0, 26 * n, 26)]


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _uuid7_strings(ms: Arr, rand_a: Arr, rand_b: Arr) -> list[str]:
    """Vectorised :func:`app.ids.id_from_parts` (ms, rand_a << 62 | rand_b)."""
    n = len(ms)
    hi = (
        ((ms.astype(np.uint64) & np.uint64(0xFFFF_FFFF_FFFF)) << np.uint64(16))
        | np.uint64(0x7000)
        | rand_a.astype(np.uint64)
    )
    lo = (np.uint64(2) << np.uint64(62)) | rand_b.astype(np.uint64)
    words = np.empty((n, 2), dtype=">u8")
    words[:, 0] = hi
    words[:, 1] = lo
    octets = words.view(np.uint8).reshape(n, 16)
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = octets >> 4
    nibbles[:, 1::2] = octets & 15
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_POS] = _HEX[nibbles]
    joined = text.tobytes().decode("ascii")
    return [joined[i : i + 36] for i in range(0, 36 * n, 36)]


@dataclass(frozen=True)
class _Lazy:
    """A column whose values are made batch by batch, when the writer needs them."""

    size: int
    fn: Callable[[Arr], Arr]

    def __len__(self) -> int:
        return self.size


class _IdBlock:
    """The ids of one table: random bits drawn up front (in a fixed order, for determinism),
    text made on demand, so millions of id strings never sit in memory at once."""

    def __init__(self, ms: Arr, a: Arr, b: Arr) -> None:
        self.ms, self.a, self.b = ms, a, b
        self.order: Arr = np.lexsort((b, a, ms))  # the rows in id order

    def __len__(self) -> int:
        return len(self.ms)

    def take(self, rows: Arr) -> Arr:
        return _obj(_uuid7_strings(self.ms[rows], self.a[rows], self.b[rows]))

    def all(self) -> Arr:
        return self.take(np.arange(len(self)))

    def lazy(self) -> _Lazy:
        return _Lazy(len(self), self.take)

    def lazy_refs(self, index: Arr) -> _Lazy:
        """The ids of rows ``index`` (-1: NULL), made batch by batch."""

        def fn(rows: Arr) -> Arr:
            idx = index[rows]
            out = np.full(len(idx), None, dtype=object)
            known = idx >= 0
            if known.any():
                out[known] = self.take(idx[known])
            return out

        return _Lazy(len(index), fn)


class _Ids:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def make(self, ms: Arr) -> _IdBlock:
        """UUIDv7 ids for rows with these timestamps (as app.ids.id_from_parts makes them)."""
        n = len(ms)
        ms = ms.astype(np.int64)
        a = self.rng.integers(0, 1 << 12, size=n, dtype=np.int64)
        b = self.rng.integers(0, 1 << 62, size=n, dtype=np.int64)
        block = _IdBlock(ms, a, b)
        if n and block.take(np.zeros(1, dtype=np.int64))[0] != id_from_parts(
            int(ms[0]), int(a[0]) << 62 | int(b[0])
        ):
            raise RuntimeError("vectorised ids disagree with app.ids.id_from_parts")
        return block


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _obj(values: Sequence[Any]) -> Arr:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _ms_or_null(values: Sequence[int | None]) -> Arr:
    return np.array([NULL_MS if v is None else v for v in values], dtype=np.int64)


def _write(session: Session, sim: _Simulation, report: _Progress) -> dict[str, int]:
    """Everything the simulation made, as rows, in one transaction (the caller's)."""
    ids = _Ids(sim.id_rng)
    as_of = sim.as_of_ms
    S, NP = len(sim.stands), len(sim.partners)
    orders_n, items_n, moves_n = sim.orders.n, sim.items.n, sim.moves.n
    total_guess = (
        orders_n
        + items_n
        + moves_n
        + sim.ledger.n
        + sim.count_lines.n
        + sim.refill_items.n
        + 4 * len(sim.refills)
        + len(sim.snapshots)
        + sim.P
    )
    w = _Writer(session, total_guess, report)
    out: dict[str, int] = {}

    # --- ids, drawn in a fixed order so they are reproducible
    partner_block = ids.make(np.array([p.created_ms for p in sim.partners]))
    stand_block = ids.make(np.array([s.created_ms for s in sim.stands]))
    product_ids = _obj([p.id for p in sim.products])
    pair_created = np.array(
        [sim.stands[s].created_ms for s in sim.pair_stand.tolist()], dtype=np.int64
    )
    inv_block = ids.make(pair_created)
    order_ms = sim.orders.col("ms")
    order_block = ids.make(order_ms)
    item_order = sim.items.col("order")
    item_block = ids.make(order_ms[item_order])
    refill_ms = np.array([r.events[0][1] for r in sim.refills], dtype=np.int64)
    refill_block = ids.make(refill_ms)
    ri_refill = sim.refill_items.col("refill")
    ri_block = ids.make(refill_ms[ri_refill])
    snap_ms = np.array([s.ms for s in sim.snapshots], dtype=np.int64)
    snap_block = ids.make(snap_ms)
    disc_ms = np.array([d.created_ms for d in sim.discrepancies], dtype=np.int64)
    disc_block = ids.make(disc_ms)
    cl_snap = sim.count_lines.col("snapshot")
    cl_block = ids.make(snap_ms[cl_snap])
    move_ms = sim.moves.col("ms")
    move_block = ids.make(move_ms)
    ledger_ms = sim.ledger.col("ms")
    ledger_block = ids.make(ledger_ms)
    # Text of the ids that many rows refer to; the others are made batch by batch.
    partner_ids, stand_ids = partner_block.all(), stand_block.all()
    order_ids, refill_ids = order_block.all(), refill_block.all()
    snap_ids, disc_ids = snap_block.all(), disc_block.all()
    partner_order, stand_order, inv_order = (
        partner_block.order,
        stand_block.order,
        inv_block.order,
    )
    order_sort, item_sort, refill_sort = order_block.order, item_block.order, refill_block.order
    ri_sort, snap_sort, disc_sort = ri_block.order, snap_block.order, disc_block.order
    cl_sort, move_sort, ledger_sort = cl_block.order, move_block.order, ledger_block.order
    delivery_rows = np.array(
        sorted(
            m
            for r in sim.refills
            if r.delivery_movements is not None
            for m in r.delivery_movements.tolist()
            if m >= 0
        ),
        dtype=np.int64,
    )
    move_text = dict(
        zip(delivery_rows.tolist(), move_block.take(delivery_rows).tolist(), strict=True)
    )

    tiers_final = sim.tier
    stand_ids_list: list[str] = stand_ids.tolist()

    # --- partners
    status, updated = [], []
    for p in sim.partners:
        final = p.final_status
        if final == PartnerStatus.ACTIVE and p.activated_ms is None:
            final = PartnerStatus.ONBOARDING
        status.append(final.value)
        updated.append(
            max(x for x in (p.created_ms, p.activated_ms, p.suspended_ms) if x is not None)
        )
    out["partners"] = w.insert(
        _table(StandPartner),
        {
            "id": partner_ids,
            "name": _obj([p.name for p in sim.partners]),
            "contact_name": _obj([p.contact for p in sim.partners]),
            "email": _obj([p.email for p in sim.partners]),
            "phone": _obj([p.phone for p in sim.partners]),
            "package_id": _obj([sim.packages[p.package].id for p in sim.partners]),
            "loyalty_tier_id": _obj([sim.tiers[int(k)].id for k in tiers_final.tolist()]),
            "status": _obj(status),
            "region": _obj([cat.CITIES[p.city].region for p in sim.partners]),
            "payout_method": _obj(["sepa"] * NP),
            "payout_account": _obj([p.iban for p in sim.partners]),
            "notes": _obj([""] * NP),
            "created_at": np.array([p.created_ms for p in sim.partners], dtype=np.int64),
            "updated_at": np.array(updated, dtype=np.int64),
        },
        partner_order,
    )

    # --- stands
    refs = [payment_reference(i) for i in stand_ids_list]
    stand_status, stand_updated = [], []
    for st in sim.stands:
        p = sim.partners[st.partner]
        if p.activated_ms is None:
            stand_status.append(StandStatus.PLANNED.value)
            stand_updated.append(st.created_ms)
        elif st.paused_ms is not None:
            stand_status.append(StandStatus.PAUSED.value)
            stand_updated.append(st.paused_ms)
        else:
            stand_status.append(StandStatus.ACTIVE.value)
            stand_updated.append(p.activated_ms)
    out["stands"] = w.insert(
        _table(StandLocation),
        {
            "id": stand_ids,
            "partner_id": partner_ids[[st.partner for st in sim.stands]],
            "name": _obj([st.name for st in sim.stands]),
            "address": _obj([st.address for st in sim.stands]),
            "city": _obj([cat.CITIES[st.city].name for st in sim.stands]),
            "postal_code": _obj([st.postal_code for st in sim.stands]),
            "country": _obj(["DE"] * S),
            "latitude": _obj([st.latitude for st in sim.stands]),
            "longitude": _obj([st.longitude for st in sim.stands]),
            "location_type": _obj([st.loc_type.value for st in sim.stands]),
            "assigned_rep": _obj([st.rep for st in sim.stands]),
            "capacity_units": np.array([st.capacity_units for st in sim.stands], dtype=np.int64),
            "timezone": _obj([TIMEZONE] * S),
            "payment_reference": _obj(refs),
            "qr_payload": _obj(
                [qr_payload(i, r) for i, r in zip(stand_ids_list, refs, strict=True)]
            ),
            "status": _obj(stand_status),
            "created_at": np.array([st.created_ms for st in sim.stands], dtype=np.int64),
            "updated_at": np.array(stand_updated, dtype=np.int64),
        },
        stand_order,
    )

    # --- inventory (on_hand from the simulation; recomputed from the movements at the end)
    pair_stand_ids = stand_ids[sim.pair_stand]
    pair_product_ids = product_ids[sim.pair_prod]
    out["inventory_lines"] = w.insert(
        _table(StandInventory),
        {
            "id": inv_block.lazy(),
            "stand_id": pair_stand_ids,
            "product_id": pair_product_ids,
            "par_level": sim.par,
            "reorder_point": sim.rop,
            "capacity": sim.cap,
            "on_hand": sim.book,
            "last_counted_at": sim.last_counted_ms,
            "active": np.ones(sim.P, dtype=bool),
            "created_at": pair_created,
            "updated_at": np.maximum(sim.last_move_ms, pair_created),
        },
        inv_order,
    )

    # --- orders and their items
    o_stand = sim.orders.col("stand")
    voided = sim.orders.col("voided")
    voided_ids = np.full(orders_n, None, dtype=object)
    has_void = voided >= 0
    voided_ids[has_void] = order_ids[voided[has_void]]
    out["orders"] = w.insert(
        _table(StandOrder),
        {
            "id": order_ids,
            "stand_id": stand_ids[o_stand],
            "partner_id": partner_ids[sim.orders.col("partner")],
            "kind": _obj([OrderKind.SALE.value, OrderKind.VOID.value])[sim.orders.col("kind")],
            "voided_order_id": voided_ids,
            "occurred_at": order_ms,
            "payment_method": _obj([m.value for m in METHODS])[sim.orders.col("method")],
            "currency": np.full(orders_n, CURRENCY, dtype=object),
            "total": sim.orders.col("total"),
            "points_earned": sim.orders.col("points"),
            "oversold": np.zeros(orders_n, dtype=bool),
            "actor": np.full(orders_n, POS_ACTOR, dtype=object),
            "created_at": order_ms,
        },
        order_sort,
    )
    out["order_items"] = w.insert(
        _table(StandOrderItem),
        {
            "id": item_block.lazy(),
            "order_id": order_ids[item_order],
            "line_no": sim.items.col("line_no"),
            "product_id": product_ids[sim.items.col("product")],
            "quantity": sim.items.col("qty"),
            "unit_price": sim.items.col("price"),
            "unit_cost": sim.items.col("cost"),
            "line_total": sim.items.col("total"),
            "price_overridden": sim.items.col("overridden", bool),
        },
        item_sort,
    )

    # --- refills, their items and events (each cut at the as-of moment)
    ri_pair = sim.refill_items.col("pair")
    ri_req = (
        np.concatenate([r.requested for r in sim.refills])
        if sim.refills
        else np.empty(0, dtype=np.int64)
    )
    ri_price = (
        np.concatenate([r.prices for r in sim.refills])
        if sim.refills
        else np.empty(0, dtype=np.int64)
    )
    ri_appr: list[int | None] = []
    ri_deliv: list[int | None] = []
    ri_recv: list[int | None] = []
    r_cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "status",
            "total",
            "approved_by",
            "approved_at",
            "scheduled_by",
            "scheduled_at",
            "scheduled_for",
            "dealer",
            "delivered_by",
            "delivered_at",
            "confirmed_by",
            "confirmed_at",
            "closed_by",
            "closed_at",
            "close_reason",
            "updated_at",
        )
    }
    ev_ms: list[int] = []
    ev_refill: list[int] = []
    ev_action: list[str] = []
    ev_from: list[str | None] = []
    ev_to: list[str] = []
    ev_actor: list[str] = []
    ev_role: list[str] = []
    ev_detail: list[str] = []
    disc_id_list: list[str] = disc_ids.tolist()
    to_state = {
        RefillAction.REQUEST: RefillStatus.REQUESTED,
        RefillAction.APPROVE: RefillStatus.APPROVED,
        RefillAction.SCHEDULE: RefillStatus.SCHEDULED,
        RefillAction.DELIVER: RefillStatus.DELIVERED,
        RefillAction.CONFIRM: RefillStatus.CONFIRMED,
        RefillAction.REJECT: RefillStatus.REJECTED,
        RefillAction.CANCEL: RefillStatus.CANCELLED,
    }
    for r in sim.refills:
        events = [e for e in r.events if e[1] < as_of]
        done = {e[0]: e for e in events}
        pids = [product_ids[int(p)] for p in sim.pair_prod[r.pairs].tolist()]
        approved = done.get(RefillAction.APPROVE) is not None
        delivered = done.get(RefillAction.DELIVER) is not None
        confirmed = done.get(RefillAction.CONFIRM) is not None
        appr = r.approved.tolist() if approved else [None] * len(pids)
        deliv = r.delivered.tolist() if delivered else [None] * len(pids)
        recv = r.received.tolist() if confirmed else [None] * len(pids)
        ri_appr.extend(appr)
        ri_deliv.extend(deliv)
        ri_recv.extend(recv)
        basis = r.approved if approved else r.requested
        total_u = int(_round_cents(basis * r.prices).sum())
        r_cols["total"].append(total_u)
        state: RefillStatus | None = None
        for action, ms, actor, role, reason in events:
            if action == RefillAction.APPROVE:
                detail: dict[str, Any] = {"approved": dict(zip(pids, appr, strict=True))}
            elif action == RefillAction.SCHEDULE:
                assert r.scheduled_for is not None
                detail = {"scheduled_for": sim.date_of(r.scheduled_for), "dealer": r.dealer}
            elif action == RefillAction.DELIVER:
                assert r.delivery_movements is not None
                detail = {
                    "delivered": dict(zip(pids, deliv, strict=True)),
                    "movements": {
                        pid: move_text[m]
                        for pid, m in zip(pids, r.delivery_movements.tolist(), strict=True)
                        if m >= 0
                    },
                }
            elif action == RefillAction.CONFIRM:
                detail = {
                    "received": dict(zip(pids, recv, strict=True)),
                    "discrepancies": [disc_id_list[r.discrepancy]] if r.discrepancy >= 0 else [],
                }
            elif action in (RefillAction.REJECT, RefillAction.CANCEL):
                detail = {"reason": reason}
            else:
                detail = {}
            ev_ms.append(ms)
            ev_refill.append(r.idx)
            ev_action.append(action.value)
            ev_from.append(state.value if state is not None else None)
            state = to_state[action]
            ev_to.append(state.value)
            ev_actor.append(actor)
            ev_role.append(role.value)
            ev_detail.append(to_json(detail))
        assert state is not None
        r_cols["status"].append(state.value)
        for action, by, at in (
            (RefillAction.APPROVE, "approved_by", "approved_at"),
            (RefillAction.SCHEDULE, "scheduled_by", "scheduled_at"),
            (RefillAction.DELIVER, "delivered_by", "delivered_at"),
            (RefillAction.CONFIRM, "confirmed_by", "confirmed_at"),
        ):
            e = done.get(action)
            r_cols[by].append(e[2] if e else None)
            r_cols[at].append(e[1] if e else None)
        closing = done.get(RefillAction.REJECT) or done.get(RefillAction.CANCEL)
        r_cols["closed_by"].append(closing[2] if closing else None)
        r_cols["closed_at"].append(closing[1] if closing else None)
        r_cols["close_reason"].append(closing[4] if closing else None)
        scheduled = RefillAction.SCHEDULE in done
        r_cols["scheduled_for"].append(
            sim.date_of(r.scheduled_for) if scheduled and r.scheduled_for is not None else None
        )
        r_cols["dealer"].append(r.dealer if scheduled else None)
        r_cols["updated_at"].append(events[-1][1])
    n_ref = len(sim.refills)
    out["refills"] = w.insert(
        _table(StandRefillOrder),
        {
            "id": refill_ids,
            "stand_id": stand_ids[[r.stand for r in sim.refills]] if n_ref else _obj([]),
            "status": _obj(r_cols["status"]),
            "currency": np.full(n_ref, CURRENCY, dtype=object),
            "total": np.array(r_cols["total"], dtype=np.int64),
            "note": np.full(n_ref, "", dtype=object),
            "requested_by": _obj([r.requested_by for r in sim.refills]),
            "requested_at": refill_ms,
            "approved_by": _obj(r_cols["approved_by"]),
            "approved_at": _ms_or_null(r_cols["approved_at"]),
            "scheduled_by": _obj(r_cols["scheduled_by"]),
            "scheduled_at": _ms_or_null(r_cols["scheduled_at"]),
            "scheduled_for": _obj(r_cols["scheduled_for"]),
            "dealer": _obj(r_cols["dealer"]),
            "delivered_by": _obj(r_cols["delivered_by"]),
            "delivered_at": _ms_or_null(r_cols["delivered_at"]),
            "confirmed_by": _obj(r_cols["confirmed_by"]),
            "confirmed_at": _ms_or_null(r_cols["confirmed_at"]),
            "closed_by": _obj(r_cols["closed_by"]),
            "closed_at": _ms_or_null(r_cols["closed_at"]),
            "close_reason": _obj(r_cols["close_reason"]),
            "created_at": refill_ms,
            "updated_at": np.array(r_cols["updated_at"], dtype=np.int64),
        },
        refill_sort,
    )
    out["refill_items"] = w.insert(
        _table(StandRefillOrderItem),
        {
            "id": ri_block.lazy(),
            "refill_id": refill_ids[ri_refill],
            "line_no": sim.refill_items.col("line_no"),
            "product_id": product_ids[sim.pair_prod[ri_pair]],
            "requested_qty": ri_req,
            "approved_qty": _obj(ri_appr),
            "delivered_qty": _obj(ri_deliv),
            "received_qty": _obj(ri_recv),
            "unit_price": ri_price,
        },
        ri_sort,
    )
    ev_ms_arr = np.array(ev_ms, dtype=np.int64)
    ev_block = ids.make(ev_ms_arr)
    out["refill_events"] = w.insert(
        _table(StandRefillEvent),
        {
            "id": ev_block.lazy(),
            "refill_id": refill_ids[np.array(ev_refill, dtype=np.int64)] if ev_refill else _obj([]),
            "action": _obj(ev_action),
            "from_status": _obj(ev_from),
            "to_status": _obj(ev_to),
            "actor": _obj(ev_actor),
            "role": _obj(ev_role),
            "occurred_at": ev_ms_arr,
            "detail": _obj(ev_detail),
        },
        ev_block.order,
    )

    # --- counts
    cl_move = sim.count_lines.col("move")
    out["counts"] = w.insert(
        _table(StandInventorySnapshot),
        {
            "id": snap_ids,
            "stand_id": stand_ids[[s.stand for s in sim.snapshots]] if sim.snapshots else _obj([]),
            "source": np.full(len(sim.snapshots), SnapshotSource.COUNT.value, dtype=object),
            "counted_at": snap_ms,
            "actor": _obj([s.actor for s in sim.snapshots]),
            "note": np.full(len(sim.snapshots), None, dtype=object),
            "created_at": snap_ms,
        },
        snap_sort,
    )
    cl_pair = sim.count_lines.col("pair")
    out["count_lines"] = w.insert(
        _table(StandInventorySnapshotLine),
        {
            "id": cl_block.lazy(),
            "snapshot_id": snap_ids[cl_snap],
            "product_id": product_ids[sim.pair_prod[cl_pair]],
            "expected_qty": sim.count_lines.col("expected"),
            "counted_qty": sim.count_lines.col("counted"),
            "variance": sim.count_lines.col("variance"),
            "adjustment_movement_id": move_block.lazy_refs(cl_move),
        },
        cl_sort,
    )

    # --- delivery discrepancies
    ds = sim.discrepancies
    resolved = [d.resolved and d.resolve_ms < as_of for d in ds]
    out["discrepancies"] = w.insert(
        _table(RefillDiscrepancy),
        {
            "id": disc_ids,
            "refill_id": refill_ids[[d.refill for d in ds]] if ds else _obj([]),
            "stand_id": stand_ids[[d.stand for d in ds]] if ds else _obj([]),
            "product_id": product_ids[sim.pair_prod[[d.pair for d in ds]]] if ds else _obj([]),
            "delivered_qty": np.array([d.delivered for d in ds], dtype=np.int64),
            "received_qty": np.array([d.received for d in ds], dtype=np.int64),
            "status": _obj(
                [
                    (d.status if ok else DiscrepancyStatus.OPEN).value
                    for d, ok in zip(ds, resolved, strict=True)
                ]
            ),
            "resolved_by": _obj(
                [d.resolver if ok else None for d, ok in zip(ds, resolved, strict=True)]
            ),
            "resolved_at": _ms_or_null(
                [d.resolve_ms if ok else None for d, ok in zip(ds, resolved, strict=True)]
            ),
            "resolution_note": _obj(
                [
                    (
                        "Settled by the stock count"
                        if d.status == DiscrepancyStatus.KEPT_DELIVERED
                        else "Accepted the partner's received quantity"
                    )
                    if ok
                    else None
                    for d, ok in zip(ds, resolved, strict=True)
                ]
            ),
            "created_at": disc_ms,
        },
        disc_sort,
    )

    # --- movements
    m_pair = sim.moves.col("pair")
    m_ref_type = sim.moves.col("ref_type")
    m_ref = sim.moves.col("ref")
    ref_ids = np.full(moves_n, None, dtype=object)
    for code, table_ids in (
        (REF_ORDER, order_ids),
        (REF_REFILL, refill_ids),
        (REF_SNAPSHOT, snap_ids),
        (REF_DISCREPANCY, disc_ids),
    ):
        sel = m_ref_type == code
        if sel.any():
            ref_ids[sel] = table_ids[m_ref[sel]]
    m_notes = np.full(moves_n, None, dtype=object)
    out["movements"] = w.insert(
        _table(InventoryMovement),
        {
            "id": move_block.lazy(),
            "stand_id": pair_stand_ids[m_pair],
            "product_id": pair_product_ids[m_pair],
            "quantity": sim.moves.col("qty"),
            "kind": _obj([k.value for k in MOVE_KINDS])[sim.moves.col("kind")],
            "occurred_at": move_ms,
            "recorded_at": move_ms,
            "ref_type": _obj(list(REF_TYPES))[m_ref_type],
            "ref_id": ref_ids,
            "actor": _obj(sim.actors)[sim.moves.col("actor")],
            "note": m_notes,
        },
        move_sort,
    )

    # --- loyalty ledger
    l_ref_type = sim.ledger.col("ref_type")
    l_ref = sim.ledger.col("ref")
    l_ref_ids = np.full(sim.ledger.n, None, dtype=object)
    sel = l_ref_type == REF_ORDER
    l_ref_ids[sel] = order_ids[l_ref[sel]]
    l_note = sim.ledger.col("note")
    notes = _obj([*sim.notes, None])
    out["ledger_entries"] = w.insert(
        _table(StandLoyaltyLedger),
        {
            "id": ledger_block.lazy(),
            "partner_id": partner_ids[sim.ledger.col("partner")],
            "kind": _obj([k.value for k in LEDGER_KINDS])[sim.ledger.col("kind")],
            "points": sim.ledger.col("points"),
            "occurred_at": ledger_ms,
            "ref_type": _obj(list(REF_TYPES))[l_ref_type],
            "ref_id": l_ref_ids,
            "actor": _obj(sim.actors)[sim.ledger.col("actor")],
            "note": notes[np.where(l_note >= 0, l_note, len(sim.notes))],
            "created_at": ledger_ms,
        },
        ledger_sort,
    )

    # --- payouts
    out["payouts"] = _write_payouts(w, sim, ids, partner_ids)

    # --- the on-hand cache is the sum of the movements, by definition
    inv = _table(StandInventory)
    mv = _table(InventoryMovement)
    ledger_sum = (
        select(func.coalesce(func.sum(mv.c.quantity), 0))
        .where(mv.c.stand_id == inv.c.stand_id, mv.c.product_id == inv.c.product_id)
        .scalar_subquery()
    )
    w.conn.execute(update(inv).values(on_hand=ledger_sum, updated_at=inv.c.updated_at))
    w.finish()
    return out


def _write_payouts(w: _Writer, sim: _Simulation, ids: _Ids, partner_ids: Arr) -> int:
    """Monthly commission per partner for every complete month (app.services.payouts)."""
    as_of_date = sim.as_of_date
    day = sim.orders.col("day")
    partner = sim.orders.col("partner").astype(np.int64)
    total = sim.orders.col("total")
    kind = sim.orders.col("kind")
    month_of_day = np.array([d.year * 12 + d.month - 1 for d in sim.dates[: sim.D]], dtype=np.int64)
    month = month_of_day[day] if len(day) else np.empty(0, dtype=np.int64)
    key = partner * 100_000 + month
    uniq, inverse = np.unique(key, return_inverse=True)
    sums = np.zeros(len(uniq), dtype=np.int64)
    np.add.at(sums, inverse, total)
    # Sales not voided: a void counts against the sale it undoes.
    sales = np.zeros(len(uniq), dtype=np.int64)
    np.add.at(sales, inverse, np.where(kind == 0, 1, -1))
    rows: list[tuple[int, date, date, Decimal, int]] = []
    for k, s_u, n_sales in zip(uniq.tolist(), sums.tolist(), sales.tolist(), strict=True):
        p, m = divmod(k, 100_000)
        y, mo = divmod(m, 12)
        start = date(y, mo + 1, 1)
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if end >= as_of_date:
            continue  # the month is not over
        rows.append((p, start, end, Decimal(s_u).scaleb(-MONEY_SCALE), n_sales))
    latest: dict[int, date] = {}
    for p, start, *_ in rows:
        latest[p] = max(latest.get(p, start), start)
    created: list[int] = []
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "partner_id",
            "period_start",
            "period_end",
            "sales_total",
            "order_count",
            "commission_rate",
            "amount",
            "status",
            "scheduled_for",
            "paid_at",
            "payment_reference",
            "updated_at",
        )
    }
    as_of = sim.as_of_ms
    for p, start, end, sales_total, n_sales in rows:
        pkg = sim.packages[sim.partners[p].package]
        partner_obj = sim.partners[p]
        manager_day = end + timedelta(days=2)
        created_ms = min(_local_ms(manager_day, 9 * HOUR), as_of - HOUR)
        scheduled_ms = _local_ms(end + timedelta(days=5), 10 * HOUR)
        pay_day = end + timedelta(days=15)
        paid_ms = _local_ms(pay_day, 10 * HOUR)
        if latest[p] != start:
            status, sched_for, paid_at, updated = PayoutStatus.PAID, pay_day, paid_ms, paid_ms
            reference: str | None = f"SEPA-{start:%Y%m}-{cat.slug(partner_obj.name)[:20]}"
        elif as_of - created_ms < 4 * MS_PER_DAY or scheduled_ms >= as_of:
            status, sched_for, paid_at, updated = PayoutStatus.DRAFT, None, None, created_ms
            reference = None
        else:
            sched_for = max(pay_day, as_of_date)
            status, paid_at, updated = PayoutStatus.SCHEDULED, None, scheduled_ms
            reference = None
        created.append(created_ms)
        cols["partner_id"].append(partner_ids[p])
        cols["period_start"].append(start)
        cols["period_end"].append(end)
        cols["sales_total"].append(sales_total)
        cols["order_count"].append(n_sales)
        cols["commission_rate"].append(pkg.commission_rate)
        cols["amount"].append(commission(sales_total, pkg.commission_rate))
        cols["status"].append(status.value)
        cols["scheduled_for"].append(sched_for)
        cols["paid_at"].append(paid_at)
        cols["payment_reference"].append(reference)
        cols["updated_at"].append(updated)
    created_arr = np.array(created, dtype=np.int64)
    payout_block = ids.make(created_arr)
    n = len(created)
    return w.insert(
        _table(Payout),
        {
            "id": payout_block.all(),
            "partner_id": _obj(cols["partner_id"]),
            "period_start": _obj(cols["period_start"]),
            "period_end": _obj(cols["period_end"]),
            "currency": np.full(n, CURRENCY, dtype=object),
            "sales_total": _obj(cols["sales_total"]),
            "order_count": np.array(cols["order_count"], dtype=np.int64),
            "commission_rate": _obj(cols["commission_rate"]),
            "amount": _obj(cols["amount"]),
            "status": _obj(cols["status"]),
            "scheduled_for": _obj(cols["scheduled_for"]),
            "paid_at": _ms_or_null(cols["paid_at"]),
            "payment_reference": _obj(cols["payment_reference"]),
            "created_at": created_arr,
            "updated_at": np.array(cols["updated_at"], dtype=np.int64),
        },
        payout_block.order,
    )
