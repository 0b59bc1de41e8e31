"""Onboarding: partners, stands, package limits, default assortment, QR payment metadata."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import (
    DomainError,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from app.ids import id_from_parts, new_id
from app.models import (
    LoyaltyKind,
    LoyaltyTier,
    Package,
    PartnerStatus,
    StandInventory,
    StandLocation,
    StandLoyaltyLedger,
    StandPartner,
    StandStatus,
)
from app.reference import PACKAGES
from app.rules import is_valid_payment_reference, payment_reference
from app.services import loyalty, onboarding
from tests.conftest import ADMIN, MANAGER, PARTNER, REP, CatalogProduct
from tests.helpers import Watch, assert_readable, reading


def partner_input(**changes: Any) -> onboarding.PartnerInput:
    base = onboarding.PartnerInput(
        name="Café Sonne GmbH",
        contact_name="Eva Schmidt",
        package_code="growth",
        email="eva@example.com",
        phone="+49 (30) 123-4567",
        region="Berlin-Mitte",
        payout_method="sepa",
        payout_account="DE89370400440532013000",
    )
    return replace(base, **changes)


def stand_input(**changes: Any) -> onboarding.StandInput:
    base = onboarding.StandInput(
        name="Café Sonne",
        address="Hauptstraße 5",
        city="Berlin",
        location_type="cafe",
        capacity_units=240,
        postal_code="10115",
        latitude=52.53,
        longitude=13.38,
        assigned_rep=REP.user,
    )
    return replace(base, **changes)


def spec(code: str) -> Any:
    return next(p for p in PACKAGES if p.code == code)


# --------------------------------------------------------------------------- happy paths


def test_onboard_partner_with_default_assortment(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    watch = Watch(factory)
    result = onboarding.onboard_partner(session, REP, partner_input(), stand_input())

    assert result.package_code == "growth"
    assert result.tier_code == "bronze"
    assert result.stand is not None
    growth = spec("growth")
    assert len(result.stand.product_ids) == growth.sku_slots == 24
    assert len(set(result.stand.product_ids)) == 24

    with reading(factory) as s:
        partner = s.get_one(StandPartner, result.partner_id)
        assert partner.status == PartnerStatus.ONBOARDING
        assert partner.name == "Café Sonne GmbH"
        assert partner.email == "eva@example.com"
        assert s.get_one(Package, partner.package_id).code == "growth"
        assert s.get_one(LoyaltyTier, partner.loyalty_tier_id).code == "bronze"
        loc = s.get_one(StandLocation, result.stand.stand_id)
        assert loc.partner_id == partner.id
        assert loc.status == StandStatus.PLANNED
        assert loc.timezone == "Europe/Berlin"
        assert loc.latitude == pytest.approx(52.53)
        inv = s.scalars(select(StandInventory).where(StandInventory.stand_id == loc.id)).all()
        assert {i.product_id for i in inv} == set(result.stand.product_ids)
        # 240 units over 24 SKUs: 10 each; par is the package default (8), reorder a third.
        assert {(i.par_level, i.reorder_point, i.capacity, i.on_hand) for i in inv} == {
            (growth.default_par, math.ceil(growth.default_par / 3), 10, 0)
        }
        # Spread across the three categories: 8 of each.
        by_id = {p.id: p for p in catalog}
        cats = [("snacks", "drinks", "care")[int(by_id[i.product_id].sku[-3:]) % 3] for i in inv]
        assert sorted(cats.count(c) for c in set(cats)) == [8, 8, 8]
        # No loyalty points before activation.
        assert s.scalar(select(func.count()).select_from(StandLoyaltyLedger)) == 0

    ops = watch.ops()
    assert [o.op_type for o in ops] == ["partner.onboard", "stand.create"]
    assert ops[0].entity_id == result.partner_id
    assert ops[0].payload["partner"]["package"] == "growth"
    assert ops[0].payload["partner"]["tier"] == "bronze"
    assert ops[0].payload["partner"]["email"] == "eva@example.com"
    assert ops[0].actor == REP.user
    assert ops[1].entity_id == result.stand.stand_id
    assert ops[1].payload["stand"]["partner_id"] == result.partner_id
    assert ops[1].payload["stand"]["status"] == "planned"
    assert len(ops[1].payload["inventory"]) == 24
    assert watch.added() == {
        "stand_partner": 1,
        "stand_location": 1,
        "stand_inventory": 24,
        "change_log": 2,
    }


def test_onboard_partner_without_stand(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    watch = Watch(factory)
    result = onboarding.onboard_partner(session, MANAGER, partner_input(package_code=" PRO "))
    assert result.stand is None
    assert result.package_code == "pro"
    assert [o.op_type for o in watch.ops()] == ["partner.onboard"]
    assert watch.added() == {"stand_partner": 1, "change_log": 1}


def test_starter_package_par_levels(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    result = onboarding.onboard_partner(
        session, REP, partner_input(package_code="starter"), stand_input(capacity_units=240)
    )
    assert result.stand is not None
    starter = spec("starter")
    assert len(result.stand.product_ids) == starter.sku_slots == 12
    with reading(factory) as s:
        inv = s.scalars(
            select(StandInventory).where(StandInventory.stand_id == result.stand.stand_id)
        ).all()
        # 240 units over 12 SKUs: 20 each; par is the package default (6), reorder a third.
        assert {(i.par_level, i.reorder_point, i.capacity) for i in inv} == {(6, 2, 20)}


@pytest.mark.parametrize(("package", "capacity"), [("starter", 60), ("growth", 100)])
def test_initial_levels_fit_the_stand(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    session: Session,
    package: str,
    capacity: int,
) -> None:
    """A small stand either gets levels that fit its capacity or is refused; the SKUs' par
    levels (what a refill fills up to) never add up to more than the stand holds."""
    watch = Watch(factory)
    outcome: object
    try:
        outcome = onboarding.onboard_partner(
            session, REP, partner_input(package_code=package), stand_input(capacity_units=capacity)
        )
    except ValidationError as exc:
        outcome = exc
    if isinstance(outcome, ValidationError):
        assert outcome.field == "capacity_units"
        watch.assert_nothing_saved()
        return
    assert isinstance(outcome, onboarding.PartnerOnboarded)
    result = outcome
    assert result.stand is not None
    with reading(factory) as s:
        inv = s.scalars(
            select(StandInventory).where(StandInventory.stand_id == result.stand.stand_id)
        ).all()
    assert sum(i.par_level for i in inv) <= capacity
    assert sum(i.capacity for i in inv) <= capacity


def test_activation_makes_partner_and_stand_active_and_awards_points_once(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    result = onboarding.onboard_partner(session, REP, partner_input(), stand_input())
    assert result.stand is not None
    watch = Watch(factory)
    activated = loyalty.activate_partner(session, REP, result.partner_id)
    assert activated.points == spec("growth").activation_points == 250
    assert activated.balance == 250

    with reading(factory) as s:
        assert s.get_one(StandPartner, result.partner_id).status == PartnerStatus.ACTIVE
        assert s.get_one(StandLocation, result.stand.stand_id).status == StandStatus.ACTIVE
        entries = s.scalars(select(StandLoyaltyLedger)).all()
        assert [(e.kind, e.points, e.partner_id) for e in entries] == [
            (LoyaltyKind.ACTIVATION, 250, result.partner_id)
        ]
    ops = watch.ops()
    assert [o.op_type for o in ops] == ["partner.activate"]
    assert ops[0].payload["stands"] == [result.stand.stand_id]
    assert ops[0].payload["points"] == 250
    assert ops[0].payload["entry_id"] == activated.entry_id

    again = Watch(factory)
    with pytest.raises(ValidationError) as err:
        loyalty.activate_partner(session, REP, result.partner_id)
    assert err.value.field == "partner_id"
    assert "active" in str(err.value)
    assert_readable(err.value)
    again.assert_nothing_saved()


def test_stand_added_after_activation_is_active(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    result = onboarding.onboard_partner(session, REP, partner_input(), stand_input())
    loyalty.activate_partner(session, REP, result.partner_id)
    watch = Watch(factory)
    second = onboarding.add_stand(
        session, REP, result.partner_id, stand_input(name="Café Sonne II", products=["SKU-001"])
    )
    with reading(factory) as s:
        assert s.get_one(StandLocation, second.stand_id).status == StandStatus.ACTIVE
    ops = watch.ops()
    assert [o.op_type for o in ops] == ["stand.create"]
    assert ops[0].payload["stand"]["status"] == "active"
    assert watch.added() == {"stand_location": 1, "stand_inventory": 1, "change_log": 1}


def test_explicit_products_by_id_sku_and_barcode(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    refs = [catalog[5].id, catalog[7].sku, catalog[11].gtin, f"  {catalog[2].sku} "]
    result = onboarding.onboard_partner(session, REP, partner_input(), stand_input(products=refs))
    assert result.stand is not None
    assert result.stand.product_ids == (catalog[5].id, catalog[7].id, catalog[11].id, catalog[2].id)
    with reading(factory) as s:
        ids = set(
            s.scalars(
                select(StandInventory.product_id).where(
                    StandInventory.stand_id == result.stand.stand_id
                )
            )
        )
    assert ids == set(result.stand.product_ids)


def test_qr_payload_and_payment_reference(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    result = onboarding.onboard_partner(session, REP, partner_input(), stand_input())
    created = result.stand
    assert created is not None
    ref = created.payment_reference
    assert re.fullmatch(r"SP-[0-9A-HJKMNP-TV-Z]{8}-[0-9A-HJKMNP-TV-Z]{2}", ref)
    assert is_valid_payment_reference(ref)
    assert ref == payment_reference(created.stand_id)
    assert created.qr_payload == f"standpay:v1?stand={created.stand_id}&ref={ref}"
    with reading(factory) as s:
        loc = s.get_one(StandLocation, created.stand_id)
        assert (loc.payment_reference, loc.qr_payload) == (ref, created.qr_payload)
    # A mistyped character is caught by the check symbol.
    body = ref[3:11]
    typo = body[:4] + ("0" if body[4] != "0" else "1") + body[5:]
    assert not is_valid_payment_reference(f"SP-{typo}-{ref[-1]}")


def test_client_supplied_ids_are_kept(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    pid, sid = new_id(), new_id()
    result = onboarding.onboard_partner(
        session, REP, partner_input(), stand_input(), partner_id=pid, stand_id=sid
    )
    assert result.partner_id == pid
    assert result.stand is not None
    assert result.stand.stand_id == sid
    with reading(factory) as s:
        assert s.get(StandPartner, pid) is not None
        assert s.get(StandLocation, sid) is not None


# --------------------------------------------------------------------------- package limits


def test_starter_allows_one_stand(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    result = onboarding.onboard_partner(
        session, REP, partner_input(package_code="starter"), stand_input()
    )
    watch = Watch(factory)
    with pytest.raises(LimitExceeded) as err:
        onboarding.add_stand(session, REP, result.partner_id, stand_input(name="Second"))
    assert err.value.field == "package_code"
    assert "Starter" in str(err.value)
    assert "1 stand" in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()


def test_growth_allows_three_stands_and_removed_ones_do_not_count(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    result = onboarding.onboard_partner(session, REP, partner_input(), stand_input())
    onboarding.add_stand(session, REP, result.partner_id, stand_input(name="Two"))
    third = onboarding.add_stand(session, REP, result.partner_id, stand_input(name="Three"))
    watch = Watch(factory)
    with pytest.raises(LimitExceeded) as err:
        onboarding.add_stand(session, REP, result.partner_id, stand_input(name="Four"))
    assert err.value.field == "package_code"
    assert "3 stands" in str(err.value)
    watch.assert_nothing_saved()

    with session.begin():
        session.execute(
            update(StandLocation)
            .where(StandLocation.id == third.stand_id)
            .values(status=StandStatus.REMOVED)
        )
    four = onboarding.add_stand(session, REP, result.partner_id, stand_input(name="Four"))
    with reading(factory) as s:
        assert s.get(StandLocation, four.stand_id) is not None


def test_products_within_sku_slots(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    result = onboarding.onboard_partner(
        session,
        REP,
        partner_input(package_code="starter"),
        stand_input(products=[p.sku for p in catalog[:12]]),
    )
    assert result.stand is not None
    assert len(result.stand.product_ids) == 12

    watch = Watch(factory)
    with pytest.raises(LimitExceeded) as err:
        onboarding.onboard_partner(
            session,
            REP,
            partner_input(package_code="starter"),
            stand_input(products=[p.sku for p in catalog[:13]]),
        )
    assert err.value.field == "products"
    assert "12 products" in str(err.value)
    assert "13" in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- bad input

BAD_PARTNER = [
    pytest.param(
        {"package_code": "platinum"},
        NotFound,
        "package_code",
        "starter, growth, pro",
        id="unknown-package",
    ),
    pytest.param({"package_code": ""}, NotFound, "package_code", "package", id="no-package"),
    pytest.param({"email": "not-an-email"}, ValidationError, "email", "email", id="email-no-at"),
    pytest.param({"email": "eva@localhost"}, ValidationError, "email", "email", id="email-no-dot"),
    pytest.param(
        {"email": "eva schmidt@example.com"}, ValidationError, "email", "email", id="email-space"
    ),
    pytest.param({"phone": "call me maybe"}, ValidationError, "phone", "phone", id="phone-text"),
    pytest.param({"phone": "1" * 41}, ValidationError, "phone", "40", id="phone-long"),
    pytest.param({"name": ""}, ValidationError, "name", "Business name", id="empty-name"),
    pytest.param({"name": "   "}, ValidationError, "name", "Business name", id="blank-name"),
    pytest.param({"name": "x" * 121}, ValidationError, "name", "120", id="long-name"),
    pytest.param(
        {"contact_name": ""}, ValidationError, "contact_name", "Contact", id="empty-contact"
    ),
]


@pytest.mark.parametrize(("changes", "error", "field", "words"), BAD_PARTNER)
def test_bad_partner_input_saves_nothing(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    session: Session,
    changes: dict[str, Any],
    error: type[DomainError],
    field: str,
    words: str,
) -> None:
    watch = Watch(factory)
    with pytest.raises(error) as err:
        onboarding.onboard_partner(session, REP, partner_input(**changes), stand_input())
    assert err.value.field == field
    assert words.lower() in str(err.value).lower()
    assert_readable(err.value)
    watch.assert_nothing_saved()


BAD_STAND = [
    pytest.param({"latitude": 91.0}, "latitude", "between -90 and 90", id="lat-91"),
    pytest.param({"latitude": -90.5}, "latitude", "between -90 and 90", id="lat-minus"),
    pytest.param({"latitude": math.nan}, "latitude", "between -90 and 90", id="lat-nan"),
    pytest.param({"latitude": math.inf}, "latitude", "between -90 and 90", id="lat-inf"),
    pytest.param({"latitude": "north"}, "latitude", "latitude", id="lat-text"),
    pytest.param({"longitude": 180.01}, "longitude", "between -180 and 180", id="lon-181"),
    pytest.param({"longitude": math.nan}, "longitude", "between -180 and 180", id="lon-nan"),
    pytest.param({"location_type": "castle"}, "location_type", "kiosk", id="unknown-type"),
    pytest.param({"location_type": ""}, "location_type", "location type", id="empty-type"),
    pytest.param(
        {"timezone": "Mars/Olympus_Mons"}, "timezone", "Mars/Olympus_Mons", id="unknown-tz"
    ),
    pytest.param({"timezone": ""}, "timezone", "time zone", id="empty-tz"),
    pytest.param({"name": ""}, "stand_name", "Stand name", id="empty-name"),
    pytest.param({"address": "  "}, "address", "Address", id="blank-address"),
    pytest.param({"city": ""}, "city", "City", id="empty-city"),
    pytest.param({"capacity_units": 0}, "capacity_units", "at least 1", id="capacity-0"),
    pytest.param({"capacity_units": "lots"}, "capacity_units", "whole number", id="capacity-text"),
    pytest.param({"capacity_units": 2.5}, "capacity_units", "whole number", id="capacity-fraction"),
    pytest.param({"country": "Germany"}, "country", "two-letter", id="country"),
    pytest.param({"products": []}, "products", "at least one product", id="no-products"),
    pytest.param({"products": ["SKU-001", "SKU-001"]}, "products", "twice", id="dup-sku"),
    pytest.param({"postal_code": "1" * 17}, "postal_code", "16", id="long-postcode"),
]


@pytest.mark.parametrize(("changes", "field", "words"), BAD_STAND)
def test_bad_stand_input_saves_nothing(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    session: Session,
    changes: dict[str, Any],
    field: str,
    words: str,
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        onboarding.onboard_partner(session, REP, partner_input(), stand_input(**changes))
    assert err.value.field == field
    assert words.lower() in str(err.value).lower()
    assert_readable(err.value)
    # The partner row was written before the stand was validated: it must be rolled back too.
    watch.assert_nothing_saved()


def test_same_product_by_sku_and_barcode_is_a_duplicate(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        onboarding.onboard_partner(
            session, REP, partner_input(), stand_input(products=[catalog[3].sku, catalog[3].gtin])
        )
    assert err.value.field == "products"
    assert catalog[3].name in str(err.value)
    watch.assert_nothing_saved()


def test_unknown_product_saves_nothing(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(NotFound) as err:
        onboarding.onboard_partner(
            session, REP, partner_input(), stand_input(products=["SKU-001", "NO-SUCH-SKU"])
        )
    assert "NO-SUCH-SKU" in str(err.value)
    # The input that was wrong is the stand's product list.
    assert err.value.field == "products"
    assert_readable(err.value)
    watch.assert_nothing_saved()


def test_inactive_product_is_refused(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    with session.begin():
        session.execute(text("UPDATE product SET active = 0 WHERE sku = 'SKU-004'"))
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        onboarding.onboard_partner(session, REP, partner_input(), stand_input(products=["SKU-004"]))
    assert "no longer sold" in str(err.value)
    watch.assert_nothing_saved()
    # ...and it is not part of a default assortment either.
    result = onboarding.onboard_partner(
        session, REP, partner_input(package_code="pro"), stand_input()
    )
    assert result.stand is not None
    assert catalog[4].id not in result.stand.product_ids
    assert len(result.stand.product_ids) == 29


def test_reused_partner_id_is_refused(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    pid = new_id()
    onboarding.onboard_partner(session, REP, partner_input(), partner_id=pid)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        onboarding.onboard_partner(
            session, REP, partner_input(name="Other GmbH"), stand_input(), partner_id=pid
        )
    assert err.value.field == "partner_id"
    assert pid in str(err.value)
    watch.assert_nothing_saved()
    with reading(factory) as s:
        assert s.get_one(StandPartner, pid).name == "Café Sonne GmbH"


def test_reused_stand_id_is_refused(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    sid = new_id()
    first = onboarding.onboard_partner(session, REP, partner_input(), stand_input(), stand_id=sid)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        onboarding.add_stand(
            session, REP, first.partner_id, stand_input(name="Other"), stand_id=sid
        )
    assert err.value.field == "stand_id"
    watch.assert_nothing_saved()
    with pytest.raises(ValidationError) as err:
        onboarding.onboard_partner(
            session, REP, partner_input(name="Other GmbH"), stand_input(name="Other"), stand_id=sid
        )
    assert err.value.field == "stand_id"
    watch.assert_nothing_saved()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"partner_id": "not-a-uuid"}, "partner_id", id="partner"),
        pytest.param({"stand_id": "12345"}, "stand_id", id="stand"),
    ],
)
def test_malformed_client_ids_are_refused(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    session: Session,
    kwargs: dict[str, str],
    field: str,
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        onboarding.onboard_partner(session, REP, partner_input(), stand_input(), **kwargs)
    assert err.value.field == field
    watch.assert_nothing_saved()


def test_naive_time_is_refused(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    from datetime import datetime

    watch = Watch(factory)
    with pytest.raises(ValidationError):
        onboarding.onboard_partner(
            session, REP, partner_input(), stand_input(), now=datetime(2024, 5, 1, 12, 0)
        )
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- roles and state


def test_partner_role_may_not_onboard(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(PermissionDenied) as err:
        onboarding.onboard_partner(session, PARTNER, partner_input(), stand_input())
    assert "partner" in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()


@pytest.mark.parametrize("actor", [REP, MANAGER, ADMIN], ids=lambda a: a.role.value)
def test_staff_roles_may_onboard(
    catalog: list[CatalogProduct], session: Session, actor: Any
) -> None:
    result = onboarding.onboard_partner(session, actor, partner_input(), stand_input())
    assert result.stand is not None


def test_partner_role_may_not_add_stands(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    result = onboarding.onboard_partner(session, REP, partner_input())
    watch = Watch(factory)
    with pytest.raises(PermissionDenied):
        onboarding.add_stand(session, PARTNER, result.partner_id, stand_input())
    watch.assert_nothing_saved()


def test_add_stand_to_unknown_partner(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(NotFound) as err:
        onboarding.add_stand(session, REP, new_id(), stand_input())
    assert err.value.field == "partner_id"
    with pytest.raises(NotFound):
        onboarding.add_stand(session, REP, "junk", stand_input())
    watch.assert_nothing_saved()


@pytest.mark.parametrize("status", [PartnerStatus.ENDED, PartnerStatus.SUSPENDED])
def test_add_stand_to_ended_or_suspended_partner(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    session: Session,
    status: PartnerStatus,
) -> None:
    result = onboarding.onboard_partner(session, REP, partner_input())
    with session.begin():
        session.execute(
            update(StandPartner).where(StandPartner.id == result.partner_id).values(status=status)
        )
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        onboarding.add_stand(session, REP, result.partner_id, stand_input())
    assert err.value.field == "partner_id"
    assert status.value in str(err.value)
    watch.assert_nothing_saved()


def test_payment_reference_collision_takes_a_new_id(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two ids with the same low 40 bits give the same reference: a stand whose id we make
    takes another id; a client-supplied id is refused clearly."""
    first = onboarding.onboard_partner(
        session, REP, partner_input(package_code="pro"), stand_input(name="First")
    )
    assert first.stand is not None
    ref = first.stand.payment_reference
    clash = id_from_parts(1_800_000_000_000, int(first.stand.stand_id[-10:], 16))
    assert payment_reference(clash) == ref

    with pytest.raises(ValidationError) as err:
        onboarding.add_stand(
            session, REP, first.partner_id, stand_input(name="Second"), stand_id=clash
        )
    assert err.value.field == "stand_id"

    real_client_id = onboarding.client_id

    def first_id_clashes(value: str | None, field_name: str = "id") -> str:
        return clash if field_name == "stand_id" else real_client_id(value, field_name)

    monkeypatch.setattr(onboarding, "client_id", first_id_clashes)
    created = onboarding.add_stand(session, REP, first.partner_id, stand_input(name="Third"))
    assert created.stand_id != clash
    assert created.payment_reference != ref
    assert is_valid_payment_reference(created.payment_reference)
