"""A small program for the server tests: two regions, two reps, three partners, four
stands with 30 days of real history, and one user of each role and scope, with tokens.

Built once per test session through the app/ services (so the history is what the
services make), then copied per test or loaded into PostgreSQL.

    region North: partner N1 (stands "North Kiosk A" and "North Kiosk B", rep.anna)
                  partner N2 (stand "North Cafe", rep.ben)
    region South: partner S1 (stand "South Kiosk", rep.ben)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.models import Product, Role, StandLocation
from app.reference import seed_reference_data
from app.rules import local_date
from app.services import loyalty, onboarding, refills, sales, users
from app.services.base import Actor

PASSWORD = "correct-horse-battery"
HISTORY_DAYS = 30
TOKEN_TTL = timedelta(days=30)

ADMIN = Actor("admin", Role.ADMIN)
REP_ANNA = Actor("rep.anna", Role.REP)
REP_BEN = Actor("rep.ben", Role.REP)
MANAGER = Actor("mgr.north", Role.MANAGER)

PRODUCTS = (
    ("SKU-A", "Trail Mix", "snacks", "2.50"),
    ("SKU-B", "Dark Chocolate", "snacks", "3.00"),
    ("SKU-C", "Sparkling Water", "drinks", "1.50"),
    ("SKU-D", "Cold Brew", "drinks", "3.50"),
    ("SKU-E", "Protein Bar", "snacks", "2.00"),
    ("SKU-F", "Lip Balm", "care", "4.00"),
)

#: name -> (partner key, rep, city)
STANDS = {
    "North Kiosk A": ("N1", "rep.anna", "Hamburg"),
    "North Kiosk B": ("N1", "rep.anna", "Hamburg"),
    "North Cafe": ("N2", "rep.ben", "Bremen"),
    "South Kiosk": ("S1", "rep.ben", "Munich"),
}
PARTNERS = {"N1": "North", "N2": "North", "S1": "South"}

#: username -> (role, region, territory, partner key)
USERS = {
    "admin": (Role.ADMIN, None, None, None),
    "mgr.north": (Role.MANAGER, "North", None, None),
    "mgr.south": (Role.MANAGER, "South", None, None),
    "rep.anna": (Role.REP, None, "rep.anna", None),
    "rep.ben": (Role.REP, None, "rep.ben", None),
    "partner.n1": (Role.PARTNER, None, None, "N1"),
    "partner.s1": (Role.PARTNER, None, None, "S1"),
}


@dataclass
class World:
    product: dict[str, str] = field(default_factory=dict)  # sku -> id
    partner: dict[str, str] = field(default_factory=dict)  # key -> id
    stand: dict[str, str] = field(default_factory=dict)  # name -> id
    token: dict[str, str] = field(default_factory=dict)  # username -> bearer token
    open_refill: dict[str, str] = field(default_factory=dict)  # stand name -> refill id
    built_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def stands_of(self, username: str) -> set[str]:
        """The stand names ``username`` may see (the test's own statement of the scopes)."""
        role, region, territory, partner = USERS[username]
        out = set()
        for name, (pkey, rep, _city) in STANDS.items():
            if (
                role == Role.ADMIN
                or (role == Role.MANAGER and PARTNERS[pkey] == region)
                or (role == Role.REP and rep == territory)
                or (role == Role.PARTNER and pkey == partner)
            ):
                out.add(name)
        return out


def build_world(factory: SessionFactory) -> World:
    w = World()
    now = w.built_at
    start = now - timedelta(days=HISTORY_DAYS)
    with factory() as s:
        with s.begin():
            seed_reference_data(s)
            for sku, name, category, price in PRODUCTS:
                product = Product(
                    sku=sku,
                    gtin=None,
                    name=name,
                    category=category,
                    list_price=Decimal(price),
                    unit_cost=Decimal(price) / 2,
                    pack_size=1,
                )
                s.add(product)
                s.flush()
                w.product[sku] = product.id
        _partners_and_stands(s, w, start)
        _history(s, w, start, now)
        _users(s, w, now)
    return w


def _partners_and_stands(s: Session, w: World, start: datetime) -> None:
    skus = [w.product[sku] for sku, *_ in PRODUCTS]
    for name, (pkey, rep, city) in STANDS.items():
        stand_in = onboarding.StandInput(
            name=name,
            address="Hauptstr. 1",
            city=city,
            location_type="kiosk" if "Kiosk" in name else "cafe",
            capacity_units=300,
            latitude=53.55 if PARTNERS[pkey] == "North" else 48.14,
            longitude=10.0 if PARTNERS[pkey] == "North" else 11.58,
            assigned_rep=rep,
            products=skus[:5] if "Cafe" in name else skus,
        )
        if pkey not in w.partner:
            result = onboarding.onboard_partner(
                s,
                ADMIN,
                onboarding.PartnerInput(
                    name=f"Partner {pkey}",
                    contact_name="Eva Berg",
                    package_code="growth",
                    region=PARTNERS[pkey],
                ),
                stand_in,
                now=start,
            )
            assert result.stand is not None
            w.partner[pkey] = result.partner_id
            w.stand[name] = result.stand.stand_id
            loyalty.activate_partner(s, ADMIN, result.partner_id, now=start)
        else:
            created = onboarding.add_stand(s, ADMIN, w.partner[pkey], stand_in, now=start)
            w.stand[name] = created.stand_id


def _history(s: Session, w: World, start: datetime, now: datetime) -> None:
    for n, stand_id in enumerate(w.stand.values()):
        r = refills.request_refill(s, REP_ANNA if n < 2 else REP_BEN, stand_id, now=start)
        refills.approve_refill(s, ADMIN, r.refill_id, now=start + timedelta(minutes=5))
        # For the stand's own today: its date at that moment, not UTC's (between 22:50 and
        # midnight UTC, Berlin's date is already the next day's).
        planned = start + timedelta(minutes=10)
        with s.begin():
            today = local_date(planned, s.get_one(StandLocation, stand_id).timezone)
        refills.schedule_refill(s, ADMIN, r.refill_id, today, "Dealer", now=planned)
        refills.deliver_refill(s, ADMIN, r.refill_id, now=start + timedelta(hours=1))
        carried = r.lines
        for day in range(1, HISTORY_DAYS):
            at = start + timedelta(days=day, hours=2)
            if at >= now:
                break
            line = carried[(day + n) % len(carried)]
            sales.record_sale(
                s,
                ADMIN,
                stand_id,
                [sales.SaleLine(line.product_id, 1 + (day + n) % 3)],
                "cash" if day % 2 else "qr",
                occurred_at=at,
            )
    # An open refill on each of two stands, for the transition tests.
    for name in ("North Kiosk A", "South Kiosk"):
        sku_a = w.product["SKU-A"]
        r = refills.request_refill(
            s, ADMIN, w.stand[name], {sku_a: 5}, now=now - timedelta(hours=1)
        )
        w.open_refill[name] = r.refill_id


def _users(s: Session, w: World, now: datetime) -> None:
    for username, (role, region, territory, pkey) in USERS.items():
        users.add_user(
            s,
            username,
            PASSWORD,
            role,
            region=region,
            territory=territory,
            partner_id=w.partner[pkey] if pkey else None,
            now=now,
        )
        w.token[username] = users.token_for_password(
            s, username, PASSWORD, ttl=TOKEN_TTL, now=now
        ).token
