"""Onboarding: a partner with a package and tier, their stands within the package's limits,
each stand's initial assortment and par levels, and its QR payment payload."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import LimitExceeded, NotFound, ValidationError
from app.ids import new_id
from app.models import (
    LocationType,
    LoyaltyTier,
    Package,
    PartnerStatus,
    Product,
    StandInventory,
    StandLocation,
    StandPartner,
    StandStatus,
)
from app.rules import payment_reference, qr_payload
from app.services.base import (
    STAFF,
    Actor,
    client_id,
    get_or_404,
    optional_text,
    record_op,
    require_text,
    to_int,
    to_time,
    transactional,
)

DEFAULT_TIMEZONE = "Europe/Berlin"


@dataclass(frozen=True)
class PartnerInput:
    name: str
    contact_name: str
    package_code: str
    email: str | None = None
    phone: str | None = None
    region: str | None = None
    payout_method: str | None = None
    payout_account: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class StandInput:
    name: str
    address: str
    city: str
    location_type: str
    capacity_units: int
    postal_code: str | None = None
    country: str = "DE"
    latitude: float | None = None
    longitude: float | None = None
    assigned_rep: str | None = None
    timezone: str = DEFAULT_TIMEZONE
    #: Products by id, SKU or GTIN; ``None`` takes the package's default assortment.
    products: Sequence[str] | None = None


@dataclass(frozen=True)
class StandCreated:
    stand_id: str
    partner_id: str
    name: str
    payment_reference: str
    qr_payload: str
    product_ids: tuple[str, ...]


@dataclass(frozen=True)
class PartnerOnboarded:
    partner_id: str
    package_code: str
    tier_code: str
    stand: StandCreated | None


def resolve_product(
    session: Session, ref: str, *, include_inactive: bool = False, field: str = "product"
) -> Product:
    """Find a product by id, SKU or GTIN (what a rep types or scans).

    Discontinued products are refused for new placements and sales, but can still be
    counted and refilled while a stand carries them (``include_inactive``)."""
    key = (ref or "").strip()
    if not key:
        raise ValidationError("A product is required.", field=field)
    product = session.scalars(
        select(Product).where((Product.id == key) | (Product.sku == key) | (Product.gtin == key))
    ).first()
    if product is None:
        raise NotFound(f"No product with id, SKU or barcode {key!r}.", field=field)
    if not product.active and not include_inactive:
        raise ValidationError(f"{product.name} is no longer sold.", field=field)
    return product


def package_by_code(session: Session, code: str) -> Package:
    """The package with this code, or a :class:`NotFound` listing the codes there are."""
    pkg = session.scalars(
        select(Package).where(Package.code == (code or "").strip().lower())
    ).first()
    if pkg is None:
        codes = ", ".join(session.scalars(select(Package.code).order_by(Package.rank)))
        raise NotFound(f"No package {code!r}; choose one of: {codes}.", field="package_code")
    return pkg


def _entry_tier(session: Session) -> LoyaltyTier:
    tier = session.scalars(select(LoyaltyTier).order_by(LoyaltyTier.rank)).first()
    if tier is None:
        raise NotFound("No loyalty tiers are set up; run the reference data seed.")
    return tier


def tier_by_code(session: Session, code: str) -> LoyaltyTier:
    """The loyalty tier with this code, or a :class:`NotFound` listing the codes there are."""
    tier = session.scalars(
        select(LoyaltyTier).where(LoyaltyTier.code == (code or "").strip().lower())
    ).first()
    if tier is None:
        codes = ", ".join(session.scalars(select(LoyaltyTier.code).order_by(LoyaltyTier.rank)))
        raise NotFound(f"No loyalty tier {code!r}; choose one of: {codes}.", field="tier")
    return tier


def default_assortment(session: Session, slots: int) -> list[Product]:
    """The package's starting assortment: active products, spread across categories."""
    products = list(
        session.scalars(
            select(Product).where(Product.active).order_by(Product.category, Product.sku)
        )
    )
    by_cat: dict[str, list[Product]] = {}
    for p in products:
        by_cat.setdefault(p.category, []).append(p)
    picked: list[Product] = []
    queues = list(by_cat.values())
    while len(picked) < slots and any(queues):
        for q in queues:
            if q and len(picked) < slots:
                picked.append(q.pop(0))
    return picked


def _coordinate(value: object, field: str, label: str, limit: float) -> float | None:
    if value is None or value == "":
        return None
    message = f"{label} must be a number such as 52.52."
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValidationError(message, field=field)
    try:
        number = float(value)
    except ValueError:
        raise ValidationError(message, field=field) from None
    if math.isnan(number) or not -limit <= number <= limit:
        raise ValidationError(f"{label} must be between {-limit:g} and {limit:g}.", field=field)
    return number


def validate_stand(stand: StandInput) -> dict[str, object]:
    """The stand's columns from ``stand``, checked (location type, coordinates, time zone,
    country, text lengths, capacity)."""
    try:
        loc_type = LocationType(stand.location_type)
    except ValueError:
        kinds = ", ".join(t.value for t in LocationType)
        raise ValidationError(
            f"Unknown location type {stand.location_type!r}; choose one of: {kinds}.",
            field="location_type",
        ) from None
    latitude = _coordinate(stand.latitude, "latitude", "Latitude", 90.0)
    longitude = _coordinate(stand.longitude, "longitude", "Longitude", 180.0)
    if stand.timezone not in available_timezones():
        raise ValidationError(f"Unknown time zone {stand.timezone!r}.", field="timezone")
    ZoneInfo(stand.timezone)
    country = (stand.country or "").strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise ValidationError("Country must be a two-letter code such as DE.", field="country")
    return {
        "name": require_text(stand.name, "stand_name", "Stand name"),
        "address": require_text(stand.address, "address", "Address", max_len=200),
        "city": require_text(stand.city, "city", "City", max_len=80),
        "postal_code": optional_text(stand.postal_code, "postal_code", "Postal code", max_len=16),
        "country": country,
        "latitude": latitude,
        "longitude": longitude,
        "location_type": loc_type,
        "capacity_units": to_int(
            stand.capacity_units, "capacity_units", "Capacity", minimum=1, maximum=100_000
        ),
        "assigned_rep": optional_text(
            stand.assigned_rep, "assigned_rep", "Assigned rep", max_len=60
        ),
        "timezone": stand.timezone,
    }


def _reference_taken(session: Session, reference: str) -> bool:
    found = session.scalar(
        select(StandLocation.id).where(StandLocation.payment_reference == reference)
    )
    return found is not None


def check_reference_free(session: Session, reference: str) -> None:
    """Refuse a client-chosen stand id whose payment reference another stand already has."""
    if _reference_taken(session, reference):
        raise ValidationError(
            "This stand id gives a payment reference another stand already has; "
            "create the stand with a new id.",
            field="stand_id",
        )


def check_stand_limit(session: Session, partner: StandPartner, package: Package) -> None:
    """Refuse one more stand beyond the package's limit (removed stands do not count). Call
    it with the partner row locked (:func:`partner_for_new_stand`) so that two stands added
    at once are counted one after the other."""
    open_stands = (
        session.scalar(
            select(func.count())
            .select_from(StandLocation)
            .where(
                StandLocation.partner_id == partner.id, StandLocation.status != StandStatus.REMOVED
            )
        )
        or 0
    )
    if open_stands >= package.max_stands:
        raise LimitExceeded(
            f"The {package.name} package allows {package.max_stands} stand"
            f"{'s' if package.max_stands != 1 else ''}; {partner.name} already has "
            f"{open_stands}. Upgrade the package to add more.",
            field="package_code",
        )


def partner_for_new_stand(session: Session, partner_id: str) -> StandPartner:
    """The partner a stand is being added for, locked until the transaction ends, so two
    stands added at once for one partner are counted one after the other against the
    package's limit (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises them already). An ended
    or suspended partner gets no new stands."""
    partner = get_or_404(session, StandPartner, partner_id, "partner", for_update=True)
    if partner.status in (PartnerStatus.ENDED, PartnerStatus.SUSPENDED):
        raise ValidationError(
            f"{partner.name} is {partner.status.value}; no stands can be added.", field="partner_id"
        )
    return partner


def initial_stand_status(partner: StandPartner) -> StandStatus:
    """A new stand is live at once for an active partner, else planned until activation."""
    return StandStatus.ACTIVE if partner.status == PartnerStatus.ACTIVE else StandStatus.PLANNED


def _create_stand(
    session: Session,
    actor: Actor,
    partner: StandPartner,
    package: Package,
    stand: StandInput,
    stand_id: str | None,
    now: datetime,
) -> StandCreated:
    fields = validate_stand(stand)
    check_stand_limit(session, partner, package)
    if stand.products is None:
        products = default_assortment(session, package.sku_slots)
    else:
        products = []
        seen: set[str] = set()
        for ref in stand.products:
            p = resolve_product(session, ref, field="products")
            if p.id in seen:
                raise ValidationError(f"{p.name} is listed twice.", field="products")
            seen.add(p.id)
            products.append(p)
    if not products:
        raise ValidationError("A stand needs at least one product.", field="products")
    if len(products) > package.sku_slots:
        raise LimitExceeded(
            f"The {package.name} package allows {package.sku_slots} products per stand; "
            f"{len(products)} were chosen.",
            field="products",
        )
    # The stand's capacity is shared evenly between its products; par levels fit inside.
    capacity_units = fields["capacity_units"]
    assert isinstance(capacity_units, int)
    capacity_each = capacity_units // len(products)
    if capacity_each < 1:
        raise ValidationError(
            f"A stand with {len(products)} products needs a capacity of at least "
            f"{len(products)} units.",
            field="capacity_units",
        )
    sid = client_id(stand_id, "stand_id")
    if session.get(StandLocation, sid) is not None:
        raise ValidationError(f"A stand with id {sid} already exists.", field="stand_id")
    ref = payment_reference(sid)
    # The reference holds 40 bits of the id, so two stands can (rarely) share one: a new
    # stand then takes another id; a stand whose id came from a client cannot.
    while _reference_taken(session, ref):
        if stand_id is not None:
            check_reference_free(session, ref)
        sid = new_id()
        ref = payment_reference(sid)
    payload = qr_payload(sid, ref)
    status = initial_stand_status(partner)
    location = StandLocation(
        id=sid,
        partner_id=partner.id,
        payment_reference=ref,
        qr_payload=payload,
        status=status,
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(location)
    session.flush()  # the stand row must exist before its inventory rows
    par = min(package.default_par, capacity_each)
    reorder = max(1, math.ceil(par / 3)) if par else 0
    lines = []
    for p in products:
        session.add(
            StandInventory(
                id=(inventory_id := new_id()),
                stand_id=sid,
                product_id=p.id,
                par_level=par,
                reorder_point=min(reorder, par),
                capacity=capacity_each,
                on_hand=0,
                created_at=now,
                updated_at=now,
            )
        )
        lines.append(
            {
                "id": inventory_id,
                "product_id": p.id,
                "par_level": par,
                "reorder_point": min(reorder, par),
                "capacity": capacity_each,
            }
        )
    session.flush()
    record_op(
        session,
        "stand.create",
        sid,
        {
            "stand": {
                "id": sid,
                "partner_id": partner.id,
                "status": status,
                "payment_reference": ref,
                **fields,
            },
            "inventory": lines,
            "at": now,
        },
        actor,
    )
    return StandCreated(
        sid, partner.id, str(fields["name"]), ref, payload, tuple(p.id for p in products)
    )


@transactional
def onboard_partner(
    session: Session,
    actor: Actor,
    partner: PartnerInput,
    first_stand: StandInput | None = None,
    *,
    partner_id: str | None = None,
    stand_id: str | None = None,
    now: datetime | None = None,
) -> PartnerOnboarded:
    """Sign up a partner (status ``onboarding``, entry loyalty tier) and optionally a first
    stand (status ``planned`` until the partner is activated)."""
    actor.require(STAFF, "onboard partners")
    at = to_time(now)
    package = package_by_code(session, partner.package_code)
    tier = _entry_tier(session)
    pid = client_id(partner_id, "partner_id")
    if session.get(StandPartner, pid) is not None:
        raise ValidationError(f"A partner with id {pid} already exists.", field="partner_id")
    email = optional_text(partner.email, "email", "Email")
    if email and ("@" not in email or "." not in email.split("@")[-1] or " " in email):
        raise ValidationError(f"{email!r} is not an email address.", field="email")
    phone = optional_text(partner.phone, "phone", "Phone", max_len=40)
    if phone and not all(c.isdigit() or c in "+-() /." for c in phone):
        raise ValidationError(f"{phone!r} is not a phone number.", field="phone")
    row = StandPartner(
        id=pid,
        name=require_text(partner.name, "name", "Business name"),
        contact_name=require_text(partner.contact_name, "contact_name", "Contact name"),
        email=email,
        phone=phone,
        package_id=package.id,
        loyalty_tier_id=tier.id,
        status=PartnerStatus.ONBOARDING,
        region=optional_text(partner.region, "region", "Region", max_len=60),
        payout_method=optional_text(
            partner.payout_method, "payout_method", "Payout method", max_len=24
        ),
        payout_account=optional_text(
            partner.payout_account, "payout_account", "Payout account", max_len=64
        ),
        notes=(partner.notes or "").strip(),
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    record_op(
        session,
        "partner.onboard",
        pid,
        {
            "partner": {
                "id": pid,
                "name": row.name,
                "contact_name": row.contact_name,
                "email": email,
                "phone": phone,
                "package": package.code,
                "tier": tier.code,
                "region": row.region,
                "payout_method": row.payout_method,
                "payout_account": row.payout_account,
                "notes": row.notes,
            },
            "at": at,
        },
        actor,
    )
    created = None
    if first_stand is not None:
        created = _create_stand(session, actor, row, package, first_stand, stand_id, at)
    return PartnerOnboarded(pid, package.code, tier.code, created)


@transactional
def add_stand(
    session: Session,
    actor: Actor,
    partner_id: str,
    stand: StandInput,
    *,
    stand_id: str | None = None,
    now: datetime | None = None,
) -> StandCreated:
    """Add a stand for an existing partner, within their package's stand limit."""
    actor.require(STAFF, "add stands")
    partner = partner_for_new_stand(session, partner_id)
    package = session.get_one(Package, partner.package_id)
    return _create_stand(session, actor, partner, package, stand, stand_id, to_time(now))
