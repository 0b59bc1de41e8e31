"""Automation's low-stock call: one refill per stand however often it is called (created,
added to, or answered by an existing one), with the coach's quantity; and adding a line to
a requested refill."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.coach.agent import stand_outlook
from app.db import SessionFactory
from app.errors import InvalidTransition, NotFound, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import RefillAction, RefillStatus, StandRefillEvent, StandRefillOrder
from app.services import inventory, loyalty, onboarding, queries, refills, sales
from app.services.automation import on_low_stock
from tests.conftest import ADMIN, MANAGER, PARTNER, REP, CatalogProduct
from tests.helpers import Watch, assert_readable, reading

NOW = utcnow().replace(microsecond=0)


@dataclass(frozen=True)
class Shop:
    """A stand opened 40 days ago carrying four products (par 8, capacity 20):

    - ``selling`` (pack 1) sells one a day and is down to 1: the coach asks for more;
    - ``full`` (pack 1) is at par, nothing sold: nobody asks for more;
    - ``short`` (pack 1) is at 5 of 8, nothing sold: par minus on hand asks for 3;
    - ``sixes`` (pack 6) is at par.
    """

    stand_id: str
    partner_id: str
    selling: CatalogProduct
    full: CatalogProduct
    short: CatalogProduct
    sixes: CatalogProduct
    other: CatalogProduct  # in the catalog, not at this stand


@pytest.fixture
def shop(session: Session, catalog: list[CatalogProduct]) -> Shop:
    opened = NOW - timedelta(days=40)
    ones = [c for c in catalog if c.pack_size == 1]
    six = next(c for c in catalog if c.pack_size == 6)
    selling, full, short, other = ones[:4]
    done = onboarding.onboard_partner(
        session,
        REP,
        onboarding.PartnerInput(name="Eck GmbH", contact_name="Eva", package_code="growth"),
        onboarding.StandInput(
            name="Kiosk am Eck",
            address="Eckstr. 1",
            city="Berlin",
            location_type="kiosk",
            capacity_units=80,
            assigned_rep=REP.user,
            products=[selling.id, full.id, short.id, six.id],
        ),
        now=opened,
    )
    assert done.stand is not None
    loyalty.activate_partner(session, REP, done.partner_id, now=opened)
    sid = done.stand.stand_id
    inventory.record_count(
        session, REP, sid, {selling.id: 8, full.id: 8, short.id: 5, six.id: 8}, counted_at=opened
    )
    for d in range(35, 0, -1):
        at = NOW - timedelta(days=d, hours=-1)
        if d % 7 == 0:  # topped up weekly
            inventory.record_count(
                session, REP, sid, {selling.id: 8}, counted_at=at - timedelta(minutes=5)
            )
        sales.record_sale(
            session, REP, sid, [sales.SaleLine(selling.id, 1)], "cash", occurred_at=at
        )
    return Shop(sid, done.partner_id, selling, full, short, six, other)


def refill_count(factory: SessionFactory, stand_id: str) -> int:
    with reading(factory) as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(StandRefillOrder)
                .where(StandRefillOrder.stand_id == stand_id)
            )
            or 0
        )


def stock(session: Session, stand_id: str) -> dict[str, int]:
    return {
        line.product_id: line.on_hand for line in queries.stand_detail(session, stand_id).inventory
    }


def test_a_new_refill_with_the_coachs_quantity(
    session: Session, factory: SessionFactory, shop: Shop
) -> None:
    with session.begin():
        coach = stand_outlook(session, shop.stand_id, now=NOW).quantities[shop.selling.id]
    assert coach > 0
    before = stock(session, shop.stand_id)
    watch = Watch(factory)
    result = on_low_stock(session, REP, shop.stand_id, shop.selling.sku, on_hand=0, now=NOW)
    assert result.outcome == "created"
    assert result.quantity == coach
    assert result.refill.status == RefillStatus.REQUESTED
    assert [(line.product_id, line.requested) for line in result.refill.lines] == [
        (shop.selling.id, coach)
    ]
    assert f"the coach recommends {coach} units" in result.reason
    assert "Automation reported 0 on hand; our records say 1" in result.reason
    assert [op.op_type for op in watch.ops()] == ["refill.request"]
    # The reported stock is an observation: nothing moved.
    assert stock(session, shop.stand_id) == before
    assert watch.added() == {
        "stand_refill_order": 1,
        "stand_refill_order_item": 1,
        "stand_refill_event": 1,
        "change_log": 1,
    }


def test_repeated_calls_never_make_a_second_refill(
    session: Session, factory: SessionFactory, shop: Shop
) -> None:
    first = on_low_stock(session, REP, shop.stand_id, shop.selling.id, now=NOW)
    assert first.outcome == "created"
    watch = Watch(factory)
    for ref in (shop.selling.id, shop.selling.sku, shop.selling.gtin) * 3:
        again = on_low_stock(session, ADMIN, shop.stand_id, ref, on_hand=1, now=NOW)
        assert again.outcome == "existing"
        assert again.refill.refill_id == first.refill.refill_id
        assert again.quantity == first.quantity
        assert "already asks for" in again.reason
    watch.assert_nothing_saved()
    assert refill_count(factory, shop.stand_id) == 1


def test_another_sku_is_added_to_the_requested_refill(
    session: Session, factory: SessionFactory, shop: Shop
) -> None:
    first = on_low_stock(session, REP, shop.stand_id, shop.selling.id, now=NOW)
    watch = Watch(factory)
    # Nobody asks for more of a SKU at par: the minimum, one pack.
    added = on_low_stock(session, MANAGER, shop.stand_id, shop.full.gtin, on_hand=2, now=NOW)
    assert added.outcome == "added"
    assert added.refill.refill_id == first.refill.refill_id
    assert added.quantity == 1
    assert "minimum of one pack" in added.reason
    assert {line.product_id: line.requested for line in added.refill.lines} == {
        shop.selling.id: first.quantity,
        shop.full.id: 1,
    }
    assert added.refill.total == first.refill.total + shop.full.list_price
    (op,) = watch.ops()
    assert op.op_type == "refill.add_line"
    assert op.payload["item"]["product_id"] == shop.full.id
    # Par minus on hand, when the coach has nothing to say.
    short = on_low_stock(session, REP, shop.stand_id, shop.short.sku, now=NOW)
    assert (short.outcome, short.quantity) == ("added", 3)
    assert "par minus on hand" in short.reason
    # Asking again changes nothing.
    watch = Watch(factory)
    for product in (shop.full, shop.short, shop.selling):
        assert on_low_stock(session, REP, shop.stand_id, product.id, now=NOW).outcome == (
            "existing"
        )
    watch.assert_nothing_saved()
    assert refill_count(factory, shop.stand_id) == 1


def test_a_refill_under_way_answers_unchanged(
    session: Session, factory: SessionFactory, shop: Shop
) -> None:
    first = on_low_stock(session, REP, shop.stand_id, shop.selling.id, now=NOW)
    refills.approve_refill(session, MANAGER, first.refill.refill_id, now=NOW)
    watch = Watch(factory)
    other = on_low_stock(session, REP, shop.stand_id, shop.full.id, now=NOW)
    assert other.outcome == "existing"
    assert other.refill.refill_id == first.refill.refill_id
    assert other.refill.status == RefillStatus.APPROVED
    assert other.quantity == 0
    assert "already approved" in other.reason
    assert "does not carry" in other.reason
    same = on_low_stock(session, REP, shop.stand_id, shop.selling.id, now=NOW)
    assert (same.outcome, same.quantity) == ("existing", first.quantity)
    watch.assert_nothing_saved()
    # Once it is closed, the next call requests a new refill.
    refills.cancel_refill(session, MANAGER, first.refill.refill_id, "Wrong stand", now=NOW)
    second = on_low_stock(session, REP, shop.stand_id, shop.short.id, now=NOW)
    assert second.outcome == "created"
    assert second.refill.refill_id != first.refill.refill_id
    assert [(line.product_id, line.requested) for line in second.refill.lines] == [
        (shop.short.id, 3)
    ]
    assert refill_count(factory, shop.stand_id) == 2


def test_a_pack_is_the_least_that_is_ordered(session: Session, shop: Shop) -> None:
    result = on_low_stock(session, REP, shop.stand_id, shop.sixes.id, now=NOW)
    assert (result.outcome, result.quantity) == ("created", 6)
    assert "one pack: 6 units" in result.reason


def test_refusals(session: Session, factory: SessionFactory, shop: Shop) -> None:
    watch = Watch(factory)
    cases: list[tuple[type[Exception], dict[str, object]]] = [
        (PermissionDenied, {"actor": PARTNER}),
        (ValidationError, {"product": shop.other.sku}),  # not carried here
        (NotFound, {"product": "NO-SUCH-SKU"}),
        (ValidationError, {"product": ""}),
        (NotFound, {"stand_id": new_id()}),
        (NotFound, {"stand_id": "junk"}),
        (ValidationError, {"on_hand": "lots"}),
    ]
    for error, change in cases:
        kwargs: dict[str, object] = {
            "actor": REP,
            "stand_id": shop.stand_id,
            "product": shop.selling.id,
            "on_hand": 1,
        }
        kwargs.update(change)
        with pytest.raises(error) as exc:
            on_low_stock(
                session,
                kwargs["actor"],
                str(kwargs["stand_id"]),
                str(kwargs["product"]),
                on_hand=kwargs["on_hand"],
                now=NOW,
            )
        assert_readable(exc.value)
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- add_refill_line


def test_add_refill_line(session: Session, factory: SessionFactory, shop: Shop) -> None:
    req = refills.request_refill(session, REP, shop.stand_id, {shop.selling.id: 4}, now=NOW)
    watch = Watch(factory)
    result = refills.add_refill_line(
        session, REP, req.refill_id, shop.short.gtin, "3", now=NOW + timedelta(minutes=1)
    )
    assert result.status == RefillStatus.REQUESTED
    assert [(line.product_id, line.requested, line.unit_price) for line in result.lines] == [
        (shop.selling.id, 4, shop.selling.list_price),
        (shop.short.id, 3, shop.short.list_price),
    ]
    assert result.total == 4 * shop.selling.list_price + 3 * shop.short.list_price
    (op,) = watch.ops()
    assert op.op_type == "refill.add_line"
    assert op.entity_id == req.refill_id
    assert op.payload["item"]["line_no"] == 2
    assert op.payload["item"]["requested_qty"] == 3
    with reading(factory) as s:
        ev = s.scalars(
            select(StandRefillEvent)
            .where(StandRefillEvent.refill_id == req.refill_id)
            .order_by(StandRefillEvent.occurred_at.desc())
        ).first()
        assert ev is not None
        assert ev.id == op.payload["event_id"]
        assert (ev.action, ev.from_status, ev.to_status) == (
            RefillAction.REQUEST,
            RefillStatus.REQUESTED,
            RefillStatus.REQUESTED,
        )
    # The new line goes through the rest of the lifecycle like the others.
    approved = refills.approve_refill(session, MANAGER, req.refill_id, now=NOW)
    assert {line.product_id: line.approved for line in approved.lines} == {
        shop.selling.id: 4,
        shop.short.id: 3,
    }


def test_add_refill_line_refusals(session: Session, factory: SessionFactory, shop: Shop) -> None:
    req = refills.request_refill(session, REP, shop.stand_id, {shop.selling.id: 4}, now=NOW)
    rid = req.refill_id
    watch = Watch(factory)
    for error, call in [
        (PermissionDenied, lambda: refills.add_refill_line(session, PARTNER, rid, shop.full.id, 1)),
        (ValidationError, lambda: refills.add_refill_line(session, REP, rid, shop.other.id, 1)),
        (ValidationError, lambda: refills.add_refill_line(session, REP, rid, shop.selling.sku, 1)),
        (ValidationError, lambda: refills.add_refill_line(session, REP, rid, shop.full.id, 0)),
        (ValidationError, lambda: refills.add_refill_line(session, REP, rid, shop.full.id, "x")),
        (NotFound, lambda: refills.add_refill_line(session, REP, rid, "NO-SUCH", 1)),
        (NotFound, lambda: refills.add_refill_line(session, REP, new_id(), shop.full.id, 1)),
    ]:
        with pytest.raises(error) as exc:
            call()
        assert_readable(exc.value)
    watch.assert_nothing_saved()
    refills.approve_refill(session, MANAGER, rid, now=NOW)
    with pytest.raises(InvalidTransition) as exc:
        refills.add_refill_line(session, REP, rid, shop.full.id, 1)
    assert "approved" in str(exc.value)
    assert_readable(exc.value)


def test_a_transition_reads_the_refill_afresh(
    session: Session, factory: SessionFactory, shop: Shop
) -> None:
    """A refill the session already holds is read again under the row lock, so a stale
    copy in a long-lived session cannot let a second transition through."""
    req = refills.request_refill(session, REP, shop.stand_id, {shop.selling.id: 4}, now=NOW)
    with session.begin():
        held = session.get_one(StandRefillOrder, req.refill_id)
    with factory() as other:
        refills.reject_refill(other, MANAGER, req.refill_id, "No")
    assert held.status == RefillStatus.REQUESTED  # stale in this session
    with pytest.raises(InvalidTransition):
        refills.approve_refill(session, MANAGER, req.refill_id)
    with session.begin():
        assert held.status == RefillStatus.REJECTED
