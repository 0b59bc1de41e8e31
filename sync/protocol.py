"""The endpoint contract of the stand program, as pydantic v2 models.

This module is the single source of truth for what crosses the wire: the server
(``sync.server``) validates requests and serialises responses with these models, FastAPI
publishes them as the OpenAPI document at ``/api/v1/openapi.json``, and the desktop's sync
client reuses them. Nothing here touches a database.

Conventions of the contract:

- Ids are UUID strings made by the client (UUIDv7 for new records), so a request repeated
  with the same id never makes a second record.
- Money is a decimal **string** (``"12.50"``), never a JSON number: a binary float cannot
  hold 0.10 exactly, and a payment must add up to the cent. A number is refused with a
  message saying so.
- Times are ISO 8601 with a zone; a time without one is refused (it would be ambiguous).
- Errors are RFC 9457 problem details (:class:`Problem`), ``application/problem+json``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.models.enums import (
    LocationType,
    PaymentMethod,
    RefillAction,
    RefillStatus,
    Role,
    StandStatus,
)
from app.services import sync_server

API_PREFIX = "/api/v1"
STAND_PREFIX = f"{API_PREFIX}/stand"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# --------------------------------------------------------------------------- value types

_UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_MONEY_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,4})?$"

#: A record id: a canonical, lower-case UUID string.
Id = Annotated[
    str,
    StringConstraints(pattern=_UUID_PATTERN, min_length=36, max_length=36),
    Field(examples=["01936f6e-8a2b-7c3d-9e4f-5a6b7c8d9e0f"]),
]


def _money_in(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError('give money as a decimal string like "12.50", not a JSON number')
    if not re.fullmatch(_MONEY_PATTERN, value):
        raise ValueError('give money as a decimal string like "12.50" (at most 4 decimals)')
    return value


def _no_nul(value: Any) -> Any:
    """Refuse NUL characters anywhere in a request: PostgreSQL cannot store them in text,
    and no person types one.

    Every nested model runs this on its part again, so a push of 500 ops walked each value
    many times: JSON text (made in C) without the escape ``\\u0000`` holds no NUL, and only
    a request whose text has it (or text like it) is walked. The ops of a push are
    :class:`Nested` models: the push's own check covers them, once."""
    if isinstance(value, dict | list):
        try:
            if "\\u0000" not in json.dumps(value, default=str):
                return value
        except (TypeError, ValueError):
            pass
    return _walk_nul(value)


def _walk_nul(value: Any) -> Any:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text may not contain NUL characters")
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk_nul(k)
            _walk_nul(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _walk_nul(v)
    return value


def _money_out(value: Decimal) -> str:
    cents = value.quantize(Decimal("0.01"))
    return format(cents if cents == value else value, "f")


#: Money sent by a client: a decimal string with at most 4 decimal places.
MoneyIn = Annotated[
    Decimal,
    BeforeValidator(_money_in),
    Field(ge=0, max_digits=16, decimal_places=4),
    WithJsonSchema({"type": "string", "pattern": _MONEY_PATTERN, "examples": ["12.50"]}),
]
#: Money sent by the server: a decimal string, two places unless the value has more.
Money = Annotated[
    Decimal,
    PlainSerializer(_money_out, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2,4}$", "examples": ["12.50"]}),
]
#: A decimal figure that is not money (a ratio, days of cover): a string, like money.
Figure = Annotated[
    Decimal,
    PlainSerializer(lambda v: format(v, "f"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "examples": ["0.25"]}),
]
#: Text a person typed: trimmed, never empty.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: A product reference: its id, SKU or GTIN barcode.
ProductRef = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    Field(examples=["SKU-001", "4000000000012"]),
]
Quantity = Annotated[int, Field(ge=0, le=100_000)]
#: A sale may be stamped a little ahead of the server's clock (a device's clock drifts),
#: but not a day ahead; nor before the program began.
MAX_CLOCK_AHEAD = timedelta(hours=24)
EARLIEST_SALE = datetime(2000, 1, 1, tzinfo=UTC)
Units = Annotated[int, Field(ge=1, le=100_000)]


#: Validation context key: the request's JSON text was read for NUL already.
_TEXT_HAS_NO_NUL = "text_has_no_nul"


class Model(BaseModel):
    """Every contract model refuses unknown fields: a misspelt field is an error, not a
    silently ignored value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context is not None and info.context.get(_TEXT_HAS_NO_NUL) is True:
            return data
        return _no_nul(data)


M = TypeVar("M", bound=Model)


def from_json_text(model: type[M], text: bytes) -> M:
    """``model`` parsed and checked straight from a request's JSON text (pydantic's parser,
    without making Python dicts first). The NUL check reads the text once instead of walking
    the values: JSON carries a NUL only as the escape ``\\u0000`` (a raw control character
    is invalid JSON), and text holding the escape is walked as before."""
    return model.model_validate_json(text, context={_TEXT_HAS_NO_NUL: b"\\u0000" not in text})


class Nested(BaseModel):
    """A part of a request that only ever arrives inside a :class:`Model` (whose NUL check
    covers it): unknown fields are refused, NUL is not checked again."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Out(BaseModel):
    """Responses: tolerant readers (a client built against this version ignores fields a
    later server adds)."""

    model_config = ConfigDict(frozen=True)


# --------------------------------------------------------------------------- vocabularies


class RefillStep(StrEnum):
    """The refill transitions reachable at ``/refill/{refill_id}/{action}``."""

    APPROVE = "approve"
    SCHEDULE = "schedule"
    DELIVER = "deliver"
    CONFIRM = "confirm"
    REJECT = "reject"
    CANCEL = "cancel"


# --------------------------------------------------------------------------- errors


class FieldError(Out):
    """One invalid input: where (a dotted path into the request) and what to do."""

    field: str = Field(examples=["lines.0.quantity"])
    message: str = Field(examples=["Input should be greater than or equal to 1"])


class Problem(Out):
    """An error, as RFC 9457 problem details."""

    type: str = Field(
        default="about:blank",
        description="A URI naming the kind of problem; its last segment equals `code`.",
        examples=["https://stand-program.example/problems/validation_error"],
    )
    title: str = Field(examples=["Invalid request"])
    status: int = Field(ge=400, le=599, examples=[422])
    detail: str = Field(
        description="One sentence for the person at the screen.",
        examples=["Quantity of Trail Mix must be at least 1."],
    )
    instance: str | None = Field(default=None, examples=["/api/v1/stand/sales-record"])
    code: str = Field(description="A stable machine-readable code.", examples=["validation_error"])
    errors: list[FieldError] = Field(default_factory=list)
    expected_seq: int | None = Field(
        default=None,
        description="With `sequence_gap`: the device sequence number to send from.",
        examples=[None],
    )


# --------------------------------------------------------------------------- auth & health


class PasswordGrant(Model):
    grant_type: Literal["password"]
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class DeviceGrant(Model):
    grant_type: Literal["device"]
    device_id: Id
    device_secret: Annotated[str, StringConstraints(min_length=1, max_length=200)]


TokenRequest = Annotated[PasswordGrant | DeviceGrant, Field(discriminator="grant_type")]
TOKEN_REQUEST_EXAMPLES = {
    "password": {
        "summary": "A person signs in",
        "value": {"grant_type": "password", "username": "rep.anna", "password": "correct horse"},
    },
    "device": {
        "summary": "A registered desktop signs in with its device credentials",
        "value": {
            "grant_type": "device",
            "device_id": "01936f6e-8a2b-7c3d-9e4f-5a6b7c8d9e0f",
            "device_secret": "spd_…",
        },
    },
}


class UserInfo(Out):
    username: str
    role: Role
    region: str | None = None
    territory: str | None = None
    partner_id: str | None = None


class TokenResponse(Out):
    access_token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    expires_in: int = Field(description="Seconds until the token expires.")
    user: UserInfo


class DeviceRegistrationRequest(Model):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Anna's tablet"}]})


class DeviceRegistration(Out):
    device_id: str
    device_secret: str = Field(description="Shown once; store it in the device's keyring.")
    name: str
    username: str


class Health(Out):
    status: Literal["ok"] = "ok"
    version: str
    database: str = Field(examples=["sqlite", "postgresql"])
    schema_revision: str | None
    time: datetime


# --------------------------------------------------------------------------- stands


class StandSummary(Out):
    id: str
    name: str
    partner_id: str
    partner_name: str
    city: str
    location_type: LocationType
    status: StandStatus
    assigned_rep: str | None
    sku_count: int
    units_on_hand: int
    low_count: int = Field(description="SKUs at or below their reorder point.")
    out_count: int = Field(description="SKUs with nothing on hand.")
    open_refills: int
    last_counted_at: datetime | None
    needs_attention: bool


class StandPage(Out):
    items: list[StandSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )
    limit: int


class PartnerIn(Model):
    """A new partner (shop) signing up with its first stand."""

    id: Id | None = Field(default=None, description="Client-made id; a repeat is a no-op.")
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    contact_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)
    ]
    package_code: Annotated[str, StringConstraints(min_length=1, max_length=24)] = Field(
        examples=["starter", "growth", "pro"]
    )
    email: Annotated[str, StringConstraints(max_length=200)] | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    region: Annotated[str, StringConstraints(max_length=60)] | None = None
    payout_method: Annotated[str, StringConstraints(max_length=24)] | None = None
    payout_account: Annotated[str, StringConstraints(max_length=64)] | None = None
    notes: Annotated[str, StringConstraints(max_length=2000)] = ""


class StandIn(Model):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    location_type: LocationType
    capacity_units: Annotated[int, Field(ge=1, le=100_000)]
    postal_code: Annotated[str, StringConstraints(max_length=16)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "DE"
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    assigned_rep: Annotated[str, StringConstraints(max_length=60)] | None = Field(
        default=None, description="Defaults to the calling rep's territory."
    )
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=40)] = "Europe/Berlin"
    products: Annotated[list[ProductRef], Field(max_length=200)] | None = Field(
        default=None, description="The assortment; default: the package's default assortment."
    )


class CreateStandRequest(Model):
    """Either a stand for an existing partner (`partner_id`) or a new partner with its
    first stand (`partner`)."""

    stand_id: Id | None = Field(default=None, description="Client-made id; a repeat is a no-op.")
    partner_id: Id | None = None
    partner: PartnerIn | None = None
    stand: StandIn

    @model_validator(mode="after")
    def _one_partner(self) -> CreateStandRequest:
        if (self.partner_id is None) == (self.partner is None):
            raise ValueError("give either partner_id (an existing partner) or partner (a new one)")
        return self

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "stand_id": "01936f6e-8a2b-7c3d-9e4f-5a6b7c8d9e0f",
                    "partner_id": "01936f6e-0000-7000-8000-000000000001",
                    "stand": {
                        "name": "Kiosk Hauptbahnhof",
                        "address": "Europaplatz 1",
                        "city": "Berlin",
                        "location_type": "kiosk",
                        "capacity_units": 240,
                    },
                },
                {
                    "partner": {
                        "name": "Café Morgenrot",
                        "contact_name": "Lena Vogt",
                        "package_code": "starter",
                        "region": "Berlin",
                    },
                    "stand": {
                        "name": "Café Morgenrot",
                        "address": "Oderberger Str. 7",
                        "city": "Berlin",
                        "location_type": "cafe",
                        "capacity_units": 120,
                    },
                },
            ]
        },
    )


class StandCreated(Out):
    stand_id: str
    partner_id: str
    partner_created: bool
    name: str
    status: StandStatus
    payment_reference: str
    qr_payload: str
    product_ids: list[str]
    duplicate: bool = Field(description="True when this id was already created (a repeat).")


class PartnerInfo(Out):
    id: str
    name: str
    region: str | None


class PackageInfo(Out):
    code: str
    name: str


class TierInfo(Out):
    code: str
    name: str


class InventoryLine(Out):
    product_id: str
    sku: str
    name: str
    category: str
    on_hand: int
    par_level: int
    reorder_point: int
    capacity: int
    list_price: Money
    state: Literal["out", "low", "ok"]
    units_sold_28d: int
    avg_daily_sales: Figure
    days_of_cover: Figure | None = Field(description="Null when nothing sold in 28 days.")


class RefillSummary(Out):
    id: str
    status: RefillStatus
    total: Money
    requested_by: str
    requested_at: datetime
    scheduled_for: str | None
    line_count: int


class SalesSummary(Out):
    days: int
    orders: int
    units: int
    revenue: Money
    points_earned: int


class InsightOut(Out):
    id: str
    stand_id: str
    product_id: str | None
    sku: str | None
    kind: str
    severity: Literal["info", "warning", "critical"]
    status: Literal["new", "acknowledged", "dismissed", "done"]
    message: str
    action: dict[str, Any]
    evidence: dict[str, Any]
    model_version: str
    created_at: datetime
    updated_at: datetime


class StandDetails(Out):
    stand: StandSummary
    address: str
    postal_code: str | None
    latitude: float | None
    longitude: float | None
    capacity_units: int
    timezone: str
    payment_reference: str
    partner: PartnerInfo
    package: PackageInfo
    tier: TierInfo
    loyalty_balance: int
    inventory: list[InventoryLine]
    open_refills: list[RefillSummary]
    sales_7d: SalesSummary
    sales_28d: SalesSummary
    insights: list[InsightOut]


# --------------------------------------------------------------------------- refills


class RefillLineIn(Model):
    product: ProductRef
    quantity: Units


class RefillRequest(Model):
    refill_id: Id | None = Field(default=None, description="Client-made id; a repeat is a no-op.")
    stand_id: Id
    lines: Annotated[list[RefillLineIn], Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Default: every product below par, up to par."
    )
    note: Annotated[str, StringConstraints(max_length=500)] | None = None
    insight_id: Id | None = Field(
        default=None, description="The coach insight this refill answers; it is closed."
    )
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "refill_id": "01936f6e-8a2b-7c3d-9e4f-5a6b7c8d9e0f",
                    "stand_id": "01936f6e-0000-7000-8000-000000000002",
                    "lines": [{"product": "SKU-001", "quantity": 12}],
                    "note": "Weekend rush",
                }
            ]
        },
    )


class RefillLineOut(Out):
    product_id: str
    sku: str
    name: str
    requested: int
    approved: int | None
    delivered: int | None
    received: int | None
    unit_price: Money


class RefillOut(Out):
    refill_id: str
    stand_id: str
    status: RefillStatus
    total: Money
    lines: list[RefillLineOut]
    discrepancies: list[str] = Field(description="Ids of discrepancies opened by this step.")
    duplicate: bool = Field(description="True when the request repeated an earlier one.")
    allowed_actions: list[RefillAction] = Field(
        description="What the caller may do next with this refill."
    )


QuantityMap = Annotated[
    dict[ProductRef, Quantity],
    Field(max_length=200, description="Units per product (id, SKU or GTIN)."),
]


class ApproveBody(Model):
    quantities: QuantityMap | None = Field(
        default=None, description="Approved units per product; default: as requested."
    )
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"quantities": {"SKU-001": 10}}]},
    )


class ScheduleBody(Model):
    scheduled_for: date
    dealer: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"scheduled_for": "2026-11-27", "dealer": "North van"}]},
    )


class DeliverBody(Model):
    quantities: QuantityMap | None = Field(
        default=None, description="Units in this delivery; default: everything still due."
    )
    more_to_come: bool = Field(default=False, description="A part delivery; the rest follows.")
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"quantities": {"SKU-001": 2}, "more_to_come": True}]},
    )


class ConfirmBody(Model):
    received: QuantityMap | None = Field(
        default=None, description="Units received; a difference opens a discrepancy."
    )
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"received": {"SKU-001": 9}}]}
    )


class ReasonBody(Model):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"reason": "Stand closed"}]}
    )


# --------------------------------------------------------------------------- sales


class SaleLineIn(Model):
    product: ProductRef
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    unit_price: MoneyIn | None = Field(
        default=None, description="Default: the list price; an override must keep to guardrails."
    )


class SaleRequest(Model):
    order_id: Id = Field(description="Client-made id of the sale; a repeat is a no-op.")
    stand_id: Id
    payment_method: PaymentMethod
    occurred_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    lines: Annotated[list[SaleLineIn], Field(min_length=1, max_length=200)]

    @field_validator("occurred_at")
    @classmethod
    def _plausible_time(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            if value > datetime.now(UTC) + MAX_CLOCK_AHEAD:
                raise ValueError("the time is in the future; check the device's clock")
            if value < EARLIEST_SALE:
                raise ValueError("the time is before the program began")
        return value

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "order_id": "01936f6e-8a2b-7c3d-9e4f-5a6b7c8d9e0f",
                    "stand_id": "01936f6e-0000-7000-8000-000000000002",
                    "payment_method": "qr",
                    "occurred_at": "2026-11-24T10:15:00+01:00",
                    "lines": [
                        {"product": "SKU-001", "quantity": 2},
                        {"product": "4000000000029", "quantity": 1, "unit_price": "3.50"},
                    ],
                }
            ]
        },
    )


class OversoldLine(Out):
    product_id: str
    name: str
    quantity: int
    expected_on_hand: int


class OrderOut(Out):
    id: str
    stand_id: str
    total: Money
    payment_method: PaymentMethod
    occurred_at: datetime
    points_earned: int


class SaleRecorded(Out):
    order: OrderOut
    points_earned: int
    stock_after: dict[str, int] = Field(description="On hand after the sale, per product id.")
    oversold: list[OversoldLine] = Field(
        description="Lines that sold more than the stock the records expected (kept; a count "
        "will reconcile)."
    )
    duplicate: bool


# --------------------------------------------------------------------------- performance


class KpiOut(Out):
    key: str
    label: str
    unit: str
    value: Figure | None
    prior: Figure | None
    change: Figure | None = Field(description="Relative change against the prior period.")
    higher_is_better: bool | None
    formula: str


class DayRevenue(Out):
    day: date
    revenue: Money
    prior: Money


class PerformanceOut(Out):
    stand_id: str
    period: str
    start: date
    end: date
    prior_start: date
    prior_end: date
    currency: str
    kpis: list[KpiOut]
    revenue_by_day: list[DayRevenue]
    computed_at: datetime


# --------------------------------------------------------------------------- the coach

StandIds = Annotated[list[Id], Field(min_length=1, max_length=200)]


class StandsRequest(Model):
    stand_ids: StandIds
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"stand_ids": ["01936f6e-0000-7000-8000-000000000002"]}]},
    )


class SkuForecast(Out):
    product_id: str
    sku: str
    name: str
    on_hand: int
    on_order: int
    forecast: list[float] = Field(description="Expected units per day from today.")
    days_of_cover: float | None
    stockout_risk: float = Field(ge=0, le=1)
    expected_before_visit: float
    demand_class: str
    method: str
    recommended_quantity: int
    reason: str


class StandForecast(Out):
    stand_id: str
    stand_name: str
    today: date
    next_visit: date
    days_to_visit: int
    service: float
    model_version: str
    skus: list[SkuForecast]
    quantities: dict[str, int] = Field(description="The recommended refill per product id.")
    refill_units: int
    refill_value: Money


class RefillForecastOut(Out):
    stands: list[StandForecast]


class PerformanceInsightsRequest(StandsRequest):
    refresh: bool = Field(
        default=True, description="Run the coach first; false returns the stored insights."
    )


class PerformanceInsightsOut(Out):
    model_version: str
    insights: list[InsightOut]


class CandidateIn(Model):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    location_type: LocationType
    address: Annotated[str, StringConstraints(max_length=200)] | None = None
    city: Annotated[str, StringConstraints(max_length=80)] | None = None
    postal_code: Annotated[str, StringConstraints(max_length=16)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "DE"
    attributes: Annotated[dict[str, float], Field(max_length=50)] = Field(
        default_factory=dict, description="Known numbers about the place, e.g. footfall_per_day."
    )


class LocationExpansionRequest(Model):
    candidates: Annotated[list[CandidateIn], Field(min_length=1, max_length=100)]
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "candidates": [
                        {
                            "name": "Späti Warschauer Str.",
                            "latitude": 52.5055,
                            "longitude": 13.4497,
                            "location_type": "kiosk",
                            "city": "Berlin",
                            "attributes": {"footfall_per_day": 1800},
                        }
                    ]
                }
            ]
        },
    )


class Analogue(Out):
    stand_id: str | None = Field(
        description="Null for a stand outside the caller's scope (its name is withheld too)."
    )
    name: str
    revenue_per_day: Money
    distance_km: float | None
    weight: float


class CandidateScoreOut(Out):
    candidate_id: str
    name: str
    location_type: str
    score: int = Field(ge=0, le=100)
    expected_low: Money
    expected_mid: Money
    expected_high: Money
    cannibalisation: float
    fit: float
    reference_stands: int
    analogues: list[Analogue]
    message: str
    currency: str


class LocationExpansionOut(Out):
    candidates: list[CandidateScoreOut]


# --------------------------------------------------------------------------- automation


class LowStockRequest(Model):
    stand_id: Id
    product: ProductRef
    on_hand: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        default=None,
        description="What the caller saw on hand (an observation; stock is not changed).",
    )
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "stand_id": "01936f6e-0000-7000-8000-000000000002",
                    "product": "SKU-001",
                    "on_hand": 2,
                }
            ]
        },
    )


class LowStockOut(Out):
    outcome: Literal["created", "added", "existing"]
    quantity: int
    reason: str
    refill: RefillOut


# --------------------------------------------------------------------------- sync

SYNC_PREFIX = f"{API_PREFIX}/sync"
#: The most ops one push may carry (:data:`app.services.sync_server.MAX_PUSH_OPS`, the rule
#: the service applies). A device starts with smaller batches and grows them up to what the
#: server's answers say it takes (:attr:`PushResponse.max_ops`).
MAX_PUSH_OPS = sync_server.MAX_PUSH_OPS
#: A push body may be larger than other requests (the device stops a batch before 3.5 MB).
MAX_PUSH_BYTES = 4 * 1024 * 1024

_OP_TYPE_PATTERN = r"^[a-z_]+\.[a-z_]+$"


class PushedOpIn(Nested):
    """One change-log op of the device, as it wrote it (inside a :class:`PushRequest`)."""

    op_id: Id
    device_seq: int = Field(ge=1, examples=[42])
    op_type: Annotated[str, StringConstraints(pattern=_OP_TYPE_PATTERN, max_length=40)] = Field(
        examples=["sale.record"]
    )
    entity_id: Id
    payload: dict[str, Any] = Field(
        description="The op's payload object; money and times are strings.",
        examples=[{"order": {"id": "0190a1c2-7e4b-7c3d-9a1b-2c3d4e5f6a7b"}, "items": []}],
    )
    schema_version: int = Field(ge=1, le=99, examples=[2])
    actor: str | None = Field(default=None, max_length=60, examples=["rep.anna"])
    actor_role: Role | None = Field(default=None, examples=["rep"])
    created_at: AwareDatetime
    base_seq: int = Field(default=0, ge=0, description="The feed cursor the device had applied.")
    pending_from_seq: int | None = Field(
        default=None, ge=1, description="The device's oldest unanswered op when it wrote this one."
    )


class PushRequest(Model):
    """A batch of one device's ops, with consecutive device sequence numbers."""

    device_id: Id
    ops: list[PushedOpIn] = Field(min_length=1, max_length=MAX_PUSH_OPS)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": "0190a1c2-7e4b-7c3d-9a1b-2c3d4e5f6a70",
                    "ops": [
                        {
                            "op_id": "0190a1c2-7e4b-7c3d-9a1b-2c3d4e5f6a71",
                            "device_seq": 1,
                            "op_type": "stock.write_off",
                            "entity_id": "0190a1c2-7e4b-7c3d-9a1b-2c3d4e5f6a72",
                            "payload": {"movement_id": "0190a1c2-7e4b-7c3d-9a1b-2c3d4e5f6a72"},
                            "schema_version": 2,
                            "actor": "rep.anna",
                            "actor_role": "rep",
                            "created_at": "2026-11-20T09:30:00+00:00",
                            "base_seq": 0,
                            "pending_from_seq": 1,
                        }
                    ],
                }
            ]
        }
    )


class OpResult(Out):
    """The server's answer to one op. ``status`` is this push's answer; ``outcome`` is what
    happened to the op (for a duplicate, what happened the first time)."""

    op_id: str
    device_seq: int
    status: Literal["applied", "duplicate", "rejected"]
    outcome: Literal["applied", "rejected"]
    server_seq: int | None = Field(description="Its feed row, when applied.")
    reason: str | None = Field(default=None, description="Why it was rejected, for the rep.")
    code: str | None = None
    field: str | None = None
    amended: bool = False
    payload: dict[str, Any] | None = Field(
        default=None, description="The payload as applied, when the server amended it."
    )


class PushResponse(Out):
    results: list[OpResult]
    high_water: int = Field(description="The last device sequence number received with no gap.")
    max_ops: int | None = Field(
        default=None,
        description="The most ops this server takes in one push: a device with more to send "
        "may grow its batches up to it.",
        examples=[MAX_PUSH_OPS],
    )


class FeedOp(Out):
    """One change in the server's feed."""

    seq: int
    op_id: str
    op_type: str
    entity_id: str
    payload: dict[str, Any]
    schema_version: int
    actor: str | None
    actor_role: str | None
    origin_device_id: str | None = Field(description="The device that made it; null: the server.")
    amended: bool
    created_at: datetime


class PullResponse(Out):
    ops: list[FeedOp]
    cursor: int = Field(description="Pass as `since` next time.")
    more: bool = Field(description="Whether more changes are waiting now.")
    head: int = Field(description="The feed's last sequence number when this page was read.")
