"""The change log (outbox): one op per fact, in device order with no gaps, on a real SQLite file.

What sync relies on: each mutation writes exactly its op types, in order; each payload is JSON
that names the client ids of the facts the action created; device_seq counts 1, 2, 3... with
no hole after a rolled-back action and no repeat between concurrent writers.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db import SessionFactory, read_sessionmaker
from app.errors import DomainError, LimitExceeded, ValidationError
from app.ids import is_valid_id, new_id
from app.models import (
    Base,
    ChangeLog,
    InventoryMovement,
    LocalDevice,
    MovementKind,
    OpStatus,
    RefillStatus,
    StandLoyaltyLedger,
    StandOrder,
    StandRefillOrder,
    SyncState,
)
from app.services import inventory, loyalty, onboarding, payouts, refills, sales
from app.services.base import SCHEMA_VERSION, Actor
from tests.conftest import (
    ADMIN,
    MANAGER,
    OTHER_REP,
    PARTNER,
    REP,
    CatalogProduct,
    StandFixture,
)

# Tables whose rows are facts or records that sync must be able to recreate with the same id.
ID_CARRYING_TABLES = (
    "stand_partner",
    "stand_location",
    "inventory_movement",
    "stand_inventory_snapshot",
    "stand_inventory_snapshot_line",
    "stand_order",
    "stand_order_item",
    "stand_loyalty_ledger",
    "stand_refill_order",
    "stand_refill_order_item",
    "stand_refill_event",
    "refill_discrepancy",
    "payout",
)


# ------------------------------------------------------------------ helpers


def all_ops(factory: SessionFactory) -> list[ChangeLog]:
    with factory() as s, s.begin():
        return list(s.scalars(select(ChangeLog).order_by(ChangeLog.device_seq)))


def last_seq(factory: SessionFactory) -> int:
    with factory() as s, s.begin():
        return s.scalar(select(LocalDevice.last_seq)) or 0


def pks(factory: SessionFactory, tables: tuple[str, ...] | None = None) -> dict[str, set[str]]:
    out = {}
    with factory() as s, s.begin():
        for table in Base.metadata.sorted_tables:
            if tables is not None and table.name not in tables:
                continue
            if len(table.primary_key.columns) != 1:
                continue  # composite keys (idempotency records) carry no record id
            (col,) = table.primary_key.columns
            out[table.name] = set(s.scalars(select(col)))
    return out


def row_counts(factory: SessionFactory) -> dict[str, int]:
    with factory() as s, s.begin():
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
        }


def strings_in(value: Any) -> set[str]:
    """Every string in a JSON value, dict keys included."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set(value) | {s for v in value.values() for s in strings_in(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings_in(v)}
    return set()


def assert_log_well_formed(factory: SessionFactory) -> list[ChangeLog]:
    log = all_ops(factory)
    with factory() as s, s.begin():
        device = s.scalars(select(LocalDevice)).one()
    assert [o.device_seq for o in log] == list(range(1, len(log) + 1))
    assert device.last_seq == len(log)
    for o in log:
        assert o.device_id == device.id
        assert o.schema_version == SCHEMA_VERSION
        assert o.status == OpStatus.PENDING
        assert o.server_seq is None
        assert o.acknowledged_at is None
        assert is_valid_id(o.op_id)
        assert is_valid_id(o.entity_id), o.op_type
        assert isinstance(json.loads(o.payload), dict)
        assert o.created_at.tzinfo is not None
    assert len({o.op_id for o in log}) == len(log)
    return log


# ------------------------------------------------------------------ one scenario, every mutation


@dataclass
class Step:
    label: str
    run: Callable[[Session, dict[str, Any]], object]
    expected: list[str]
    ordered: bool = True


def _stand_input(name: str, products: list[str] | None = None) -> onboarding.StandInput:
    return onboarding.StandInput(
        name=name,
        address="Hauptstr. 5",
        city="Hamburg",
        location_type="cafe",
        capacity_units=120,
        products=products,
    )


def _partner_input(name: str) -> onboarding.PartnerInput:
    return onboarding.PartnerInput(name=name, contact_name="Eva Schulz", package_code="growth")


def scenario(catalog: list[CatalogProduct]) -> list[Step]:
    skus = [c.id for c in catalog[:6]]
    past = datetime(2025, 1, 15, 11, 0, tzinfo=UTC)
    future = utcnow() + timedelta(days=400)

    def onboard_a(s: Session, c: dict[str, Any]) -> object:
        r = onboarding.onboard_partner(
            s, REP, _partner_input("Café Alpha"), _stand_input("Alpha", skus)
        )
        assert r.stand is not None
        c["a"], c["stand_a"] = r.partner_id, r.stand.stand_id
        return r

    def onboard_b(s: Session, c: dict[str, Any]) -> object:
        r = onboarding.onboard_partner(s, REP, _partner_input("Bäckerei Beta"))
        c["b"] = r.partner_id
        return r

    def add_stand_b(s: Session, c: dict[str, Any]) -> object:
        r = onboarding.add_stand(s, REP, c["b"], _stand_input("Beta", skus[:3]))
        c["stand_b"] = r.stand_id
        return r

    def sale(s: Session, c: dict[str, Any]) -> object:
        c["order"] = new_id()
        return sales.record_sale(
            s,
            REP,
            c["stand_a"],
            [sales.SaleLine(skus[0], 2), sales.SaleLine(skus[1], 1)],
            "card",
            order_id=c["order"],
        )

    def sale_again(s: Session, c: dict[str, Any]) -> object:
        r = sales.record_sale(
            s, REP, c["stand_a"], [sales.SaleLine(skus[0], 2)], "card", order_id=c["order"]
        )
        assert r.duplicate
        return r

    def refill_to_confirm(s: Session, c: dict[str, Any]) -> object:
        r = refills.request_refill(s, REP, c["stand_a"], {skus[0]: 6, skus[2]: 4})
        c["refill"] = r.refill_id
        return r

    def confirm_short(s: Session, c: dict[str, Any]) -> object:
        r = refills.confirm_refill(s, PARTNER, c["refill"], {skus[0]: 5})
        (c["disc"],) = r.discrepancies
        return r

    def compute(s: Session, c: dict[str, Any]) -> object:
        (r,) = payouts.compute_payouts(s, MANAGER, date(2025, 1, 1), date(2025, 1, 31))
        c["payout"] = r.payout_id
        return r

    def failing(
        fn: Callable[[Session, dict[str, Any]], object],
    ) -> Callable[[Session, dict[str, Any]], object]:
        def run(s: Session, c: dict[str, Any]) -> object:
            with pytest.raises(DomainError):
                fn(s, c)
            return None

        return run

    day = (utcnow() + timedelta(days=3)).date()
    return [
        Step("onboard with stand", onboard_a, ["partner.onboard", "stand.create"]),
        Step("onboard without stand", onboard_b, ["partner.onboard"]),
        Step("add stand", add_stand_b, ["stand.create"]),
        Step(
            "activate A",
            lambda s, c: loyalty.activate_partner(s, REP, c["a"]),
            ["partner.activate"],
        ),
        Step(
            "activate B",
            lambda s, c: loyalty.activate_partner(s, REP, c["b"]),
            ["partner.activate"],
        ),
        Step(
            "count",
            lambda s, c: inventory.record_count(
                s, REP, c["stand_a"], {skus[0]: 20, skus[1]: 5, skus[2]: 0}
            ),
            ["count.record"],
        ),
        Step(
            "set levels",
            lambda s, c: inventory.set_levels(s, MANAGER, c["stand_a"], skus[0], par_level=12),
            ["inventory.set_levels"],
        ),
        Step("sale", sale, ["sale.record"]),
        Step("same sale again", sale_again, []),
        Step(
            "void",
            lambda s, c: sales.void_sale(s, REP, c["order"], reason="Wrong item"),
            ["sale.void"],
        ),
        Step(
            "oversell",
            lambda s, c: sales.record_sale(
                s, REP, c["stand_a"], [sales.SaleLine(skus[3], 3)], "qr"
            ),
            ["sale.record"],
        ),
        Step(
            "write-off",
            lambda s, c: inventory.record_stock_change(
                s, REP, c["stand_a"], skus[0], 2, MovementKind.WRITE_OFF, note="Broken"
            ),
            ["stock.write_off"],
        ),
        Step(
            "return",
            lambda s, c: inventory.record_stock_change(
                s, REP, c["stand_a"], skus[0], 1, MovementKind.RETURN
            ),
            ["stock.return"],
        ),
        Step("redeem", lambda s, c: loyalty.redeem_points(s, REP, c["a"], 50), ["loyalty.redeem"]),
        Step(
            "redeem beyond balance",
            failing(lambda s, c: loyalty.redeem_points(s, REP, c["a"], 10**6)),
            [],
        ),
        Step(
            "adjust",
            lambda s, c: loyalty.adjust_points(s, MANAGER, c["a"], -7, note="Typo fix"),
            ["loyalty.adjust"],
        ),
        Step(
            "bonus",
            lambda s, c: loyalty.adjust_points(s, MANAGER, c["b"], 2000, note="Launch", bonus=True),
            ["loyalty.bonus"],
        ),
        Step("tiers", lambda s, c: loyalty.reevaluate_tiers(s, MANAGER), ["partner.tier_change"]),
        Step("tiers again", lambda s, c: loyalty.reevaluate_tiers(s, MANAGER), []),
        Step("refill request", refill_to_confirm, ["refill.request"]),
        Step(
            "refill approve",
            lambda s, c: refills.approve_refill(s, MANAGER, c["refill"]),
            ["refill.approve"],
        ),
        Step(
            "refill schedule",
            lambda s, c: refills.schedule_refill(s, MANAGER, c["refill"], day, "Nordgross"),
            ["refill.schedule"],
        ),
        Step(
            "confirm before delivery",
            failing(lambda s, c: refills.confirm_refill(s, PARTNER, c["refill"])),
            [],
        ),
        Step(
            "refill deliver",
            lambda s, c: refills.deliver_refill(s, REP, c["refill"]),
            ["refill.deliver"],
        ),
        Step("refill confirm", confirm_short, ["refill.confirm"]),
        Step(
            "resolve",
            lambda s, c: refills.resolve_discrepancy(s, MANAGER, c["disc"], accept_received=True),
            ["refill.resolve_discrepancy"],
        ),
        Step(
            "refill reject",
            lambda s, c: refills.reject_refill(
                s,
                MANAGER,
                refills.request_refill(s, REP, c["stand_b"], {skus[1]: 2}).refill_id,
                "Too early",
            ),
            ["refill.request", "refill.reject"],
        ),
        Step(
            "refill cancel",
            lambda s, c: refills.cancel_refill(
                s,
                REP,
                refills.request_refill(s, REP, c["stand_b"], {skus[1]: 2}).refill_id,
                "Duplicate",
            ),
            ["refill.request", "refill.cancel"],
        ),
        Step(
            "past sale",
            lambda s, c: sales.record_sale(
                s, ADMIN, c["stand_a"], [sales.SaleLine(skus[0], 1)], "cash", occurred_at=past
            ),
            ["sale.record"],
        ),
        Step("compute payouts", compute, ["payout.compute"]),
        Step(
            "compute payouts again",
            lambda s, c: payouts.compute_payouts(s, MANAGER, date(2025, 1, 1), date(2025, 1, 31)),
            [],
        ),
        Step(
            "schedule payout",
            lambda s, c: payouts.schedule_payout(s, MANAGER, c["payout"], day),
            ["payout.schedule"],
        ),
        Step(
            "pay payout",
            lambda s, c: payouts.mark_payout_paid(s, MANAGER, c["payout"], "TX-1"),
            ["payout.paid"],
        ),
        Step(
            "expire",
            lambda s, c: loyalty.expire_points(s, MANAGER, now=future),
            ["loyalty.expire", "loyalty.expire"],
            ordered=False,
        ),
        Step("expire again", lambda s, c: loyalty.expire_points(s, MANAGER, now=future), []),
        Step(
            "reads",
            lambda s, c: (
                loyalty.balance(s, c["a"]),
                inventory.verify_on_hand(s),
                loyalty.tier_status(s, c["b"]),
                refills.suggest_refill(s, c["stand_a"]),
                loyalty.ledger(s, c["a"]),
            ),
            [],
        ),
    ]


def test_every_mutation_writes_its_ops_with_the_ids_of_its_facts(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct]
) -> None:
    ctx: dict[str, Any] = {}
    problems: list[str] = []
    for step in scenario(catalog):
        before_ops = len(all_ops(factory))
        before_ids = pks(factory, ID_CARRYING_TABLES)
        try:
            step.run(session, ctx)
        except Exception as exc:  # keep going: report every broken step at once
            problems.append(f"{step.label}: raised {exc!r}")
        new_ops = all_ops(factory)[before_ops:]
        types = [o.op_type for o in new_ops]
        if (types if step.ordered else sorted(types)) != step.expected:
            problems.append(f"{step.label}: wrote {types}, expected {step.expected}")
        carried: set[str] = set()
        for o in new_ops:
            payload = json.loads(o.payload)
            carried |= strings_in(payload) | {o.entity_id}
            if o.entity_id not in strings_in(payload):
                problems.append(f"{step.label}: {o.op_type} payload does not name its entity")
        after_ids = pks(factory, ID_CARRYING_TABLES)
        for table, ids in after_ids.items():
            for missing in sorted((ids - before_ids[table]) - carried):
                problems.append(f"{step.label}: new {table} row {missing} is not in any op payload")
    # Every id a payload names exists in the database.
    everything = set().union(*pks(factory).values())
    for o in all_ops(factory):
        for value in strings_in(json.loads(o.payload)):
            if is_valid_id(value) and value not in everything:
                problems.append(f"{o.op_type} #{o.device_seq} names unknown id {value}")
    assert not problems, "\n".join(problems)
    assert_log_well_formed(factory)


def test_sale_payload_names_items_movements_and_points(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = stand.product_ids[:2]
    res = sales.record_sale(
        session, REP, stand.stand_id, [sales.SaleLine(p0, 3), sales.SaleLine(p1, 1, "9.00")], "cash"
    )
    op = all_ops(factory)[-1]
    assert (op.op_type, op.entity_id, op.actor) == ("sale.record", res.order_id, REP.user)
    payload = json.loads(op.payload)
    assert payload["order"]["id"] == res.order_id
    assert payload["order"]["total"] == str(res.total)
    with factory() as s, s.begin():
        order = s.get_one(StandOrder, res.order_id)
        item_ids = {i.id for i in order.items}
        movement_ids = set(
            s.scalars(select(InventoryMovement.id).where(InventoryMovement.ref_id == res.order_id))
        )
        ledger_ids = set(
            s.scalars(
                select(StandLoyaltyLedger.id).where(StandLoyaltyLedger.ref_id == res.order_id)
            )
        )
    assert {i["id"] for i in payload["items"]} == item_ids
    assert len(item_ids) == 2
    assert {i["movement_id"] for i in payload["items"]} == movement_ids
    assert len(movement_ids) == 2
    assert {payload["loyalty_entry_id"]} == ledger_ids


# ------------------------------------------------------------------ envelope v2


def test_envelope_carries_role_and_what_the_writer_had_seen(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0 = stand.product_ids[0]
    # Nothing synced yet: base 0, and the oldest unanswered op is the first one.
    sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(p0, 1)], "cash")
    first = all_ops(factory)[-1]
    assert (first.actor, first.actor_role) == (REP.user, "rep")
    assert (first.base_seq, first.pending_from_seq) == (0, 1)
    assert first.amended is False
    assert first.attempts == 0
    # The server answered ops 1..4; the device had applied feed pages up to 57.
    with factory() as s, s.begin():
        for op in s.scalars(select(ChangeLog).where(ChangeLog.device_seq <= 4)):
            op.status = OpStatus.APPLIED
        s.add(SyncState(id=1, cursor=57))
    inventory.record_count(session, MANAGER, stand.stand_id, {p0: 3})
    count = all_ops(factory)[-1]
    assert (count.op_type, count.actor_role) == ("count.record", "manager")
    assert (count.base_seq, count.pending_from_seq) == (57, 5)
    # Everything answered: the op is its own oldest unanswered one.
    with factory() as s, s.begin():
        for op in s.scalars(select(ChangeLog)):
            op.status = OpStatus.APPLIED
    sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(p0, 1)], "cash")
    last = all_ops(factory)[-1]
    assert (last.base_seq, last.pending_from_seq) == (57, last.device_seq)


# ------------------------------------------------------------------ sequence numbers


def test_device_seq_counts_every_op_from_one(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    # The stand fixture wrote partner.onboard, stand.create and partner.activate.
    assert [o.op_type for o in all_ops(factory)] == [
        "partner.onboard",
        "stand.create",
        "partner.activate",
    ]
    for _ in range(5):
        sales.record_sale(
            session, REP, stand.stand_id, [sales.SaleLine(stand.product_ids[0], 1)], "cash"
        )
    log = assert_log_well_formed(factory)
    assert len(log) == 8
    assert last_seq(factory) == 8


def test_failed_action_mid_way_leaves_no_gap(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct], stand: StandFixture
) -> None:
    seq = last_seq(factory)
    counts = row_counts(factory)
    # The partner op is written (taking a sequence number) before the stand fails validation.
    bad_stand = onboarding.StandInput(
        name="Nowhere", address="x", city="y", location_type="spaceship", capacity_units=10
    )
    with pytest.raises(ValidationError):
        onboarding.onboard_partner(session, REP, _partner_input("Gamma"), bad_stand)
    assert last_seq(factory) == seq
    assert row_counts(factory) == counts
    # A sale whose second line is bad, after the first line was processed.
    with pytest.raises(ValidationError):
        sales.record_sale(
            session,
            REP,
            stand.stand_id,
            [sales.SaleLine(stand.product_ids[0], 1), sales.SaleLine(stand.product_ids[1], 0)],
            "cash",
        )
    assert row_counts(factory) == counts
    res = sales.record_sale(
        session, REP, stand.stand_id, [sales.SaleLine(stand.product_ids[0], 1)], "cash"
    )
    log = assert_log_well_formed(factory)
    assert (log[-1].device_seq, log[-1].entity_id) == (seq + 1, res.order_id)


def test_concurrent_writers_get_distinct_consecutive_seqs(
    factory: SessionFactory, stand: StandFixture
) -> None:
    per_thread, threads = 50, 2
    pid = stand.product_ids[0]
    with factory() as s:
        inventory.record_count(s, REP, stand.stand_id, {pid: 500})
    start = last_seq(factory)
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    orders: list[str] = []
    lock = threading.Lock()

    def work(actor: Actor) -> None:
        try:
            with factory() as s:
                barrier.wait()
                for _ in range(per_thread):
                    r = sales.record_sale(
                        s, actor, stand.stand_id, [sales.SaleLine(pid, 1)], "cash"
                    )
                    with lock:
                        orders.append(r.order_id)
                    time.sleep(0.001)  # let the other writer in between
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(a,)) for a in (REP, OTHER_REP)[:threads]]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in pool)
    assert errors == []
    log = assert_log_well_formed(factory)
    new = log[start:]
    assert len(new) == per_thread * threads
    assert [o.device_seq for o in new] == list(range(start + 1, start + 1 + len(new)))
    assert all(o.op_type == "sale.record" for o in new)
    assert sorted(o.entity_id for o in new) == sorted(orders)
    writers = [o.actor for o in new]
    assert sorted(set(writers)) == sorted({REP.user, OTHER_REP.user})
    switches = sum(a != b for a, b in itertools.pairwise(writers))
    print(f"writers alternated {switches} times")
    with factory() as s, s.begin():
        assert inventory.on_hand(s, stand.stand_id, pid) == 500 - per_thread * threads
        assert inventory.verify_on_hand(s) == []


# ------------------------------------------------------------------ composing service calls


def test_outer_transaction_commits_all_calls_together(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0 = stand.product_ids[0]
    seq = last_seq(factory)
    with session.begin():
        a = sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(p0, 1)], "cash")
        b = sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(p0, 2)], "card")
        r = loyalty.redeem_points(session, REP, stand.partner_id, 10)
        # Not visible to another connection before the outer commit.
        assert last_seq(read_sessionmaker(factory)) == seq
    log = assert_log_well_formed(factory)
    assert [(o.device_seq, o.op_type, o.entity_id) for o in log[seq:]] == [
        (seq + 1, "sale.record", a.order_id),
        (seq + 2, "sale.record", b.order_id),
        (seq + 3, "loyalty.redeem", r.entry_id),
    ]


@pytest.mark.parametrize("failure", ["domain", "caller"])
def test_outer_transaction_rolls_back_all_calls_together(
    factory: SessionFactory, session: Session, stand: StandFixture, failure: str
) -> None:
    p0 = stand.product_ids[0]
    seq = last_seq(factory)
    counts = row_counts(factory)
    expected_exc: type[Exception] = LimitExceeded if failure == "domain" else RuntimeError

    def compose() -> None:
        with session.begin():
            sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(p0, 1)], "cash")
            refills.request_refill(session, REP, stand.stand_id, {p0: 6})
            if failure == "domain":
                loyalty.redeem_points(session, REP, stand.partner_id, 10**6)
            else:
                raise RuntimeError("the caller changed its mind")

    with pytest.raises(expected_exc):
        compose()
    assert last_seq(factory) == seq
    assert row_counts(factory) == counts
    with factory() as s, s.begin():
        assert inventory.on_hand(s, stand.stand_id, p0) == 0
    res = sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(p0, 1)], "cash")
    log = assert_log_well_formed(factory)
    assert (log[-1].device_seq, log[-1].entity_id) == (seq + 1, res.order_id)


def test_refused_call_inside_outer_transaction_saves_nothing_of_its_own(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    """A DomainError means "refused and nothing was saved" (app/errors.py), also when the call
    joined an outer transaction whose owner carries on, as a sync batch does when it answers
    one op "rejected" and applies the rest."""
    p0 = stand.product_ids[0]
    rid = refills.request_refill(session, REP, stand.stand_id, {p0: 6}).refill_id
    seq = last_seq(factory)
    counts = row_counts(factory)
    bad_stand = onboarding.StandInput(
        name="Nowhere", address="x", city="y", location_type="spaceship", capacity_units=10
    )
    with session.begin():
        a = sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(p0, 1)], "cash")
        with pytest.raises(ValidationError):  # fails after changing the refill's lines
            refills.approve_refill(session, MANAGER, rid, {p0: 0})
        with pytest.raises(ValidationError):  # fails after writing the partner and its op
            onboarding.onboard_partner(session, REP, _partner_input("Gamma"), bad_stand)
        b = sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(p0, 1)], "cash")
    log = assert_log_well_formed(factory)
    assert [(o.device_seq, o.op_type, o.entity_id) for o in log[seq:]] == [
        (seq + 1, "sale.record", a.order_id),
        (seq + 2, "sale.record", b.order_id),
    ]
    after = row_counts(factory)
    assert after["stand_partner"] == counts["stand_partner"]
    assert after["stand_order"] == counts["stand_order"] + 2
    with factory() as s, s.begin():
        refill = s.get_one(StandRefillOrder, rid)
        assert refill.status == RefillStatus.REQUESTED
        assert [i.approved_qty for i in refill.items] == [None]
