"""The partners family of op writers: partners and stands, loyalty, the catalog, payouts.

A device runs a scenario through the real services; its ops replayed onto a copy of its
database from before the scenario recreate every row (replay equivalence), twice over
(idempotence). The server's checks are exercised by applying a device's real op on another
copy of the database where something else happened first.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from app.clock import utcnow
from app.db import SessionFactory, open_db
from app.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from app.models import (
    LocalDevice,
    LoyaltyKind,
    Package,
    PartnerStatus,
    Payout,
    PayoutStatus,
    Product,
    StandLocation,
    StandLoyaltyLedger,
    StandPartner,
    StandStatus,
    SyncFieldHistory,
    SyncReview,
)
from app.reference import seed_reference_data
from app.rules import payment_reference
from app.services import apply, inventory, loyalty, onboarding, payouts, sales
from app.services import catalog as products
from app.services.apply import OpClass
from tests.app.apply.replay import diff, ops_of, replay, snapshot
from tests.app.apply.replay import open_copy as _open_copy
from tests.conftest import ADMIN, MANAGER, REP, make_stand

FAMILY = {
    "partner.onboard": OpClass.FACT,
    "stand.create": OpClass.FACT,
    "partner.activate": OpClass.TRANSITION,
    "partner.tier_change": OpClass.SERVER_DERIVED,
    "loyalty.redeem": OpClass.FACT,
    "loyalty.adjust": OpClass.FACT,
    "loyalty.bonus": OpClass.FACT,
    "loyalty.expire": OpClass.SERVER_DERIVED,
    "product.add": OpClass.FACT,
    "product.update": OpClass.DESCRIPTIVE,
    "payout.compute": OpClass.SERVER_DERIVED,
    "payout.schedule": OpClass.TRANSITION,
    "payout.paid": OpClass.TRANSITION,
}

JAN = datetime(2025, 1, 15, 11, 0, tzinfo=UTC)
FEB = datetime(2025, 2, 10, 9, 30, tzinfo=UTC)


@dataclass
class World:
    """A device after the scenario, the copy of its database from before it, and its ops."""

    device: SessionFactory
    base: Path
    tmp: Path
    ops: list[apply.Op]
    ids: dict[str, str]
    opened: list[SessionFactory]

    def op(self, op_type: str, entity_id: str | None = None, nth: int = 0) -> apply.Op:
        found = [
            o
            for o in self.ops
            if o.op_type == op_type and (entity_id is None or o.entity_id == entity_id)
        ]
        return found[nth]

    def copy(self, name: str) -> SessionFactory:
        path = self.tmp / f"{name}-{len(self.opened)}.db"
        path.write_bytes(self.base.read_bytes())
        factory = _open_copy(path)
        self.opened.append(factory)
        return factory

    def server(
        self, name: str, before: apply.Op | None = None, skip: tuple[str, ...] = ()
    ) -> SessionFactory:
        """A copy of the base with the device's ops written up to ``before`` (excluded),
        leaving out the op ids in ``skip`` (ops the server never applied)."""
        srv = self.copy(name)
        prefix = []
        for o in self.ops:
            if before is not None and o.op_id == before.op_id:
                break
            if o.op_id not in skip:
                prefix.append(o)
        replay(prefix, srv)
        return srv


def stand_input(name: str, products: list[str] | None = None) -> onboarding.StandInput:
    return onboarding.StandInput(
        name=name,
        address="Hauptstr. 5",
        city="Hamburg",
        location_type="cafe",
        capacity_units=120,
        postal_code="20095",
        latitude=53.55,
        longitude=9.99,
        assigned_rep=REP.user,
        products=products,
    )


def partner_input(name: str, package: str) -> onboarding.PartnerInput:
    return onboarding.PartnerInput(
        name=name,
        contact_name="Eva Schulz",
        package_code=package,
        email="eva@example.com",
        phone="+49 40 123456",
        region="Nord",
        payout_method="sepa",
        payout_account="DE02120300000000202051",
        notes="Met at the fair",
    )


@pytest.fixture(scope="module")
def world(migrated_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Built once for the module (the checks only read the device and copy the base)."""
    tmp = tmp_path_factory.mktemp("partners")
    shutil.copyfile(migrated_template, tmp / "device.db")
    factory = open_db(f"sqlite:///{tmp / 'device.db'}", migrate=False)
    ids: dict[str, str] = {}
    with factory() as s, s.begin():
        seed_reference_data(s)
        skus = []
        for i in range(9):
            product = Product(
                sku=f"SKU-{i:03d}",
                name=f"Product {i:02d}",
                category=("snacks", "drinks", "care")[i % 3],
                list_price=Decimal("2.00") + i,
                unit_cost=Decimal("1.00") + i,
                min_price=Decimal("1.00"),
                max_price=Decimal("40.00"),
            )
            s.add(product)
            s.flush()
            skus.append(product.id)
    # Before the snapshot: a Pro partner with sales in January and February 2025 (sales are
    # another family's ops), so the scenario has payouts to compute.
    with factory() as s:
        pro = make_stand(s, "pro", name="Kiosk Pro")
        for when in (JAN, FEB):
            sales.record_sale(
                s,
                ADMIN,
                pro.stand_id,
                [sales.SaleLine(pro.product_ids[0], 3)],
                "cash",
                occurred_at=when,
            )
        with s.begin():
            seq0 = s.scalar(select(LocalDevice.last_seq)) or 0
    ids["pro"] = pro.partner_id
    base = snapshot(factory, tmp / "base.db")
    day = (utcnow() + timedelta(days=3)).date()
    future = utcnow() + timedelta(days=800)
    with factory() as s:
        a = onboarding.onboard_partner(
            s, REP, partner_input("Café Alpha", "growth"), stand_input("Alpha 1", skus)
        )
        assert a.stand is not None
        ids["a"], ids["a1"] = a.partner_id, a.stand.stand_id
        ids["b"] = onboarding.onboard_partner(
            s, REP, partner_input("Bäckerei Beta", "starter")
        ).partner_id
        ids["b1"] = onboarding.add_stand(s, REP, ids["b"], stand_input("Beta 1", skus[:3])).stand_id
        loyalty.activate_partner(s, REP, ids["a"])
        # Added once the partner is active: live at once.
        ids["a2"] = onboarding.add_stand(s, REP, ids["a"], stand_input("Alpha 2")).stand_id
        loyalty.activate_partner(s, MANAGER, ids["b"])
        loyalty.redeem_points(s, REP, ids["a"], 200, note="Display kit")
        loyalty.adjust_points(s, MANAGER, ids["a"], -7, note="Typo fix")
        loyalty.adjust_points(s, MANAGER, ids["b"], 2000, note="Launch", bonus=True)
        assert loyalty.reevaluate_tiers(s, MANAGER)  # Beta: bronze -> silver
        ids["p"] = products.add_product(
            s,
            MANAGER,
            sku="SKU-NEW",
            gtin="4006381333931",
            name="Trail Mix",
            category="snacks",
            list_price="3.00",
            unit_cost="1.20",
            min_price="2.00",
            max_price="6.00",
            pack_size=6,
        ).id
        products.update_product(s, MANAGER, ids["p"], list_price="4.50")
        products.update_product(s, MANAGER, ids["p"], unit_cost="1.60")
        products.update_product(s, MANAGER, ids["p"], active=False)
        products.update_product(s, MANAGER, ids["p"], active=True)
        products.update_product(s, MANAGER, ids["p"])  # nothing changed
        products.update_product(
            s, MANAGER, ids["p"], min_price="5.00", max_price="9.00", list_price="7.00"
        )
        (jan,) = payouts.compute_payouts(s, MANAGER, date(2025, 1, 1), date(2025, 1, 31))
        (feb,) = payouts.compute_payouts(s, MANAGER, date(2025, 2, 1), date(2025, 2, 28))
        ids["jan"], ids["feb"] = jan.payout_id, feb.payout_id
        payouts.schedule_payout(s, MANAGER, jan.payout_id, day)
        payouts.mark_payout_paid(s, MANAGER, jan.payout_id, "TX-9")
        payouts.schedule_payout(s, MANAGER, feb.payout_id, day)
        assert len(loyalty.expire_points(s, MANAGER, now=future)) == 3
        assert loyalty.reevaluate_tiers(s, MANAGER, now=future)  # Beta: back to bronze
    ops = ops_of(factory, seq0)
    assert {o.op_type for o in ops} == set(FAMILY)
    w = World(factory, base, tmp, ops, ids, [])
    yield w
    for f in [*w.opened, factory]:
        f.kw["bind"].dispose()


def check(srv: SessionFactory, op: apply.Op) -> Mapping[str, Any] | None:
    """The server's check of ``op``, then its write (of the amended payload), committed."""
    spec = apply.get_spec(op.op_type)
    with srv() as s, s.begin():
        amended = spec.check(s, op)
        spec.write(s, op if amended is None else replace(op, payload=amended))
    return amended


def refused(srv: SessionFactory, op: apply.Op, error: type[DomainError], message: str) -> None:
    with pytest.raises(error) as info:
        check(srv, op)
    assert type(info.value) is error
    assert info.value.message == message


def with_payload(op: apply.Op, **changes: Any) -> apply.Op:
    return replace(op, payload={**op.payload, **changes})


# ------------------------------------------------------------------ registry, replay, scope


def test_every_op_type_of_the_family_is_registered_with_its_class() -> None:
    specs = apply.all_specs()
    for op_type, op_class in FAMILY.items():
        assert specs[op_type].op_class == op_class, op_type
        assert specs[op_type].summary


def test_replaying_the_log_recreates_every_row_and_replaying_it_again_changes_nothing(
    world: World,
) -> None:
    target = world.copy("target")
    replay(world.ops, target)
    assert diff(world.device, target) == []
    replay(world.ops, target)
    assert diff(world.device, target) == []
    with world.device() as s, s.begin():
        balances = {p: loyalty.points_balance(s, world.ids[p]) for p in ("a", "b", "pro")}
    with target() as s, s.begin():
        assert inventory.verify_on_hand(s) == []
        assert {p: loyalty.points_balance(s, world.ids[p]) for p in balances} == balances
        assert s.scalars(select(SyncReview)).all() == []
        assert s.scalars(select(SyncFieldHistory)).all() == []


def test_scope_names_the_stand_and_partner_before_and_after_the_write(world: World) -> None:
    ids = world.ids
    stands = {ids["a1"]: ids["a"], ids["b1"]: ids["b"], ids["a2"]: ids["a"]}
    target = world.copy("scope")
    for op in world.ops:
        spec = apply.get_spec(op.op_type)
        with target() as s, s.begin():
            before = spec.scope(s, op)
            spec.write(s, op)
            after = spec.scope(s, op)
        assert before == after, op.op_type
        if op.op_type == "stand.create":
            assert before == (op.entity_id, stands[op.entity_id])
        elif op.op_type.startswith("product."):
            assert before == (None, None)
        elif op.op_type.startswith("payout."):
            assert before == (None, ids["pro"])
        elif op.op_type.startswith("loyalty."):
            assert before == (None, op.payload["partner_id"])
        else:
            assert before == (None, op.entity_id)
    assert {op.entity_id for op in world.ops if op.op_type == "partner.onboard"} == {
        ids["a"],
        ids["b"],
    }


# ------------------------------------------------------------------ partner.onboard


def test_onboard_unknown_package_is_refused(world: World) -> None:
    op = world.op("partner.onboard", world.ids["a"])
    bad = with_payload(op, partner={**op.payload["partner"], "package": "platinum"})
    refused(
        world.copy("srv"),
        bad,
        NotFound,
        "No package 'platinum'; choose one of: starter, growth, pro.",
    )


def test_onboard_same_id_other_partner_conflicts_same_content_is_a_no_op(world: World) -> None:
    op = world.op("partner.onboard", world.ids["a"])
    srv = world.copy("srv")
    with srv() as s:
        onboarding.onboard_partner(
            s, REP, partner_input("Someone Else", "growth"), partner_id=world.ids["a"]
        )
    refused(srv, op, Conflict, f"A partner with id {world.ids['a']} already exists.")

    same = world.server("same", before=op)
    assert check(same, op) is None
    assert check(same, op) is None  # stored once: the second is a no-op
    with same() as s, s.begin():
        partner = s.get_one(StandPartner, world.ids["a"])
        assert (partner.name, partner.status, partner.region) == (
            "Café Alpha",
            PartnerStatus.ONBOARDING,
            "Nord",
        )


# ------------------------------------------------------------------ stand.create


def test_stand_for_a_suspended_partner_is_refused(world: World) -> None:
    op = world.op("stand.create", world.ids["a2"])
    srv = world.server("srv", before=op)
    with srv() as s, s.begin():
        s.execute(
            update(StandPartner)
            .where(StandPartner.id == world.ids["a"])
            .values(status=PartnerStatus.SUSPENDED)
        )
    refused(srv, op, ValidationError, "Café Alpha is suspended; no stands can be added.")


def test_stand_beyond_the_package_limit_on_the_server_is_refused(world: World) -> None:
    op = world.op("stand.create", world.ids["b1"])
    srv = world.server("srv", before=op)
    with srv() as s:  # another device's stand for Beta arrived first
        onboarding.add_stand(s, REP, world.ids["b"], stand_input("Beta elsewhere"))
    refused(
        srv,
        op,
        LimitExceeded,
        "The Starter package allows 1 stand; Bäckerei Beta already has 1. "
        "Upgrade the package to add more.",
    )


def test_stand_whose_payment_reference_is_taken_is_refused(world: World) -> None:
    op = world.op("stand.create", world.ids["a1"])
    srv = world.server("srv", before=op)
    with srv() as s, s.begin():
        s.execute(
            update(StandLocation)
            .where(StandLocation.name == "Kiosk Pro")
            .values(payment_reference=payment_reference(world.ids["a1"]))
        )
    refused(
        srv,
        op,
        ValidationError,
        "This stand id gives a payment reference another stand already has; "
        "create the stand with a new id.",
    )


def test_stand_id_used_for_another_stand_conflicts(world: World) -> None:
    op = world.op("stand.create", world.ids["a1"])
    srv = world.server("srv", before=op)
    with srv() as s:
        onboarding.add_stand(
            s, REP, world.ids["a"], stand_input("Not Alpha"), stand_id=world.ids["a1"]
        )
    refused(srv, op, Conflict, f"A stand with id {world.ids['a1']} already exists.")


def test_stand_is_amended_to_active_when_the_partner_was_activated_on_the_server(
    world: World,
) -> None:
    op = world.op("stand.create", world.ids["a1"])
    assert op.payload["stand"]["status"] == "planned"
    srv = world.server("srv", before=op)
    with srv() as s:  # another device activated Alpha first
        loyalty.activate_partner(s, MANAGER, world.ids["a"])
    amended = check(srv, op)
    assert amended is not None
    assert amended["stand"] == {**op.payload["stand"], "status": "active"}
    assert amended["inventory"] == op.payload["inventory"]
    with srv() as s, s.begin():
        stand = s.get_one(StandLocation, world.ids["a1"])
        assert stand.status == StandStatus.ACTIVE
        assert stand.qr_payload.endswith(f"ref={payment_reference(world.ids['a1'])}")
    # Written again (the same fact in the feed): nothing changes.
    assert check(srv, op) is None


# ------------------------------------------------------------------ partner.activate


def test_activating_a_partner_already_active_on_the_server_is_refused(world: World) -> None:
    op = world.op("partner.activate", world.ids["a"])
    srv = world.server("srv", before=op)
    with srv() as s:
        loyalty.activate_partner(s, MANAGER, world.ids["a"])
    refused(
        srv,
        op,
        ValidationError,
        "Café Alpha is active; only a partner in onboarding can be activated.",
    )


def test_activation_is_amended_to_the_servers_stands_and_points(world: World) -> None:
    op = world.op("partner.activate", world.ids["a"])
    assert op.payload["stands"] == [world.ids["a1"]]
    assert op.payload["points"] == 250
    # The server never got stand A1 (its create was refused), but has one from elsewhere,
    # and its Growth package gives 300 activation points.
    srv = world.server("srv", before=op, skip=(world.op("stand.create", world.ids["a1"]).op_id,))
    with srv() as s:
        other = onboarding.add_stand(s, REP, world.ids["a"], stand_input("Alpha server")).stand_id
    with srv() as s, s.begin():
        s.execute(update(Package).where(Package.code == "growth").values(activation_points=300))
    amended = check(srv, op)
    assert amended == {**op.payload, "stands": [other], "points": 300}
    with srv() as s, s.begin():
        assert s.get_one(StandPartner, world.ids["a"]).status == PartnerStatus.ACTIVE
        assert s.get_one(StandLocation, other).status == StandStatus.ACTIVE
        entry = s.get_one(StandLoyaltyLedger, op.payload["entry_id"])
        assert (entry.kind, entry.points, entry.note) == (
            LoyaltyKind.ACTIVATION,
            300,
            "Welcome to Growth",
        )


def test_activation_without_points_on_the_server_drops_the_entry(world: World) -> None:
    op = world.op("partner.activate", world.ids["a"])
    srv = world.server("srv", before=op)
    with srv() as s, s.begin():
        s.execute(update(Package).where(Package.code == "growth").values(activation_points=0))
    assert check(srv, op) == {**op.payload, "entry_id": None, "points": 0}
    with srv() as s, s.begin():
        assert s.get(StandLoyaltyLedger, op.payload["entry_id"]) is None
        assert s.get_one(StandLocation, world.ids["a1"]).status == StandStatus.ACTIVE


# ------------------------------------------------------------------ server-derived


@pytest.mark.parametrize(
    ("op_type", "message"),
    [
        ("partner.tier_change", "Loyalty tiers are"),
        ("loyalty.expire", "Points expiry is"),
        ("payout.compute", "Payouts are"),
    ],
)
def test_server_derived_ops_pushed_by_a_device_are_always_refused(
    world: World, op_type: str, message: str
) -> None:
    op = world.op(op_type)
    srv = world.server("srv", before=op)
    refused(
        srv,
        op,
        ValidationError,
        f"{message} computed on the server from every device's data; run it while online.",
    )


def test_payout_compute_refreshes_a_draft_but_never_a_scheduled_payout(world: World) -> None:
    op = world.op("payout.compute", world.ids["jan"])
    target = world.server("target", before=op)
    spec = apply.get_spec("payout.compute")
    with target() as s, s.begin():
        spec.write(s, op)
        spec.write(s, with_payload(op, amount="99.0000", order_count=7))
    with target() as s, s.begin():
        payout = s.get_one(Payout, world.ids["jan"])
        assert (payout.amount, payout.order_count, payout.status) == (
            Decimal("99.0000"),
            7,
            PayoutStatus.DRAFT,
        )
        payout.status = PayoutStatus.SCHEDULED
    with target() as s, s.begin():
        spec.write(s, op)
        assert s.get_one(Payout, world.ids["jan"]).amount == Decimal("99.0000")


# ------------------------------------------------------------------ loyalty facts


def test_redeem_overdrawing_on_the_server_is_applied_and_opens_a_review(world: World) -> None:
    op = world.op("loyalty.redeem")
    assert op.payload["points"] == -200
    srv = world.server("srv", before=op)
    assert check(world.server("plain", before=op), op) is None  # 250 - 200: no review
    with srv() as s:  # another device redeemed 100 of Alpha's 250 first
        loyalty.redeem_points(s, REP, world.ids["a"], 100)
    assert check(srv, op) is None
    with srv() as s, s.begin():
        (review,) = s.scalars(select(SyncReview)).all()
        assert (review.kind, review.partner_id, review.status) == (
            "loyalty_overdrawn",
            world.ids["a"],
            "open",
        )
        assert json.loads(review.refs) == {"entry_id": op.entity_id, "balance": -50}
        assert loyalty.points_balance(s, world.ids["a"]) == -50
    assert check(srv, op) is None  # the same fact again: no second entry, no second review
    with srv() as s, s.begin():
        assert len(s.scalars(select(SyncReview)).all()) == 1
        assert loyalty.points_balance(s, world.ids["a"]) == -50


def test_redeem_for_a_partner_the_server_does_not_know_is_refused(world: World) -> None:
    op = world.op("loyalty.redeem")
    refused(world.copy("srv"), op, NotFound, f"No partner with id {world.ids['a']!r}.")


@pytest.mark.parametrize("op_type", ["loyalty.adjust", "loyalty.bonus"])
def test_adjust_and_bonus_need_a_manager_on_the_server(world: World, op_type: str) -> None:
    op = world.op(op_type)
    srv = world.server("srv", before=op)
    refused(
        srv,
        replace(op, actor_role="rep"),
        PermissionDenied,
        "A rep may not grant bonuses or adjust points.",
    )
    assert check(srv, op) is None


def test_an_entry_id_used_for_another_entry_conflicts(world: World) -> None:
    op = world.op("loyalty.bonus")
    srv = world.server("srv", before=op)
    with srv() as s, s.begin():
        apply.get_spec("loyalty.bonus").write(s, with_payload(op, points=5))
    refused(srv, op, Conflict, f"A ledger entry with id {op.entity_id} already exists.")


# ------------------------------------------------------------------ catalog


def test_product_with_a_sku_the_server_has_is_refused(world: World) -> None:
    op = world.op("product.add")
    srv = world.copy("srv")
    with srv() as s:
        products.add_product(
            s,
            MANAGER,
            sku="SKU-NEW",
            name="Other mix",
            category="snacks",
            list_price="2.00",
            unit_cost="1.00",
        )
    refused(srv, op, ValidationError, "A product with this SKU or barcode exists (SKU-NEW).")


def test_product_update_breaking_a_guardrail_after_the_merge_is_refused(world: World) -> None:
    # The three prices are one group, so a device's own (valid) change always merges into a
    # valid row; only a malformed op can break a guardrail.
    op = world.op("product.update", world.ids["p"], nth=0)  # list price 3.00 -> 4.50
    bad = with_payload(op, after={**op.payload["after"], "list_price": "1.50"})
    srv = world.server("srv", before=op)
    refused(srv, bad, ValidationError, "The list price is below the minimum price.")
    bad = with_payload(op, after={**op.payload["after"], "list_price": "abc"})
    refused(srv, bad, ValidationError, "List price must be an amount like 12.50, not 'abc'.")


def _history(srv: SessionFactory) -> list[tuple[str, dict[str, Any], dict[str, Any], bool]]:
    with srv() as s, s.begin():
        rows = s.scalars(select(SyncFieldHistory).order_by(SyncFieldHistory.field_group))
        return [
            (h.field_group, json.loads(h.old_value), json.loads(h.new_value), h.concurrent)
            for h in rows
        ]


def test_product_update_applies_only_its_groups_and_keeps_what_it_overwrote(
    world: World,
) -> None:
    op = world.op("product.update", world.ids["p"], nth=1)  # unit cost 1.20 -> 1.60
    srv = world.server("srv", before=op)
    with srv() as s:  # another manager changed the cost and stopped selling it meanwhile
        products.update_product(s, MANAGER, world.ids["p"], unit_cost="1.40", active=False)
    assert check(srv, op) is None
    with srv() as s, s.begin():
        product = s.get_one(Product, world.ids["p"])
        assert (product.unit_cost, product.active, product.list_price) == (
            Decimal("1.60"),
            False,  # not this op's group: the server's value stays
            Decimal("4.50"),
        )
    ((group, old, new, concurrent),) = _history(srv)
    assert (group, Decimal(old["unit_cost"]), Decimal(new["unit_cost"]), concurrent) == (
        "unit_cost",
        Decimal("1.40"),
        Decimal("1.60"),
        True,
    )
    with srv() as s, s.begin():
        row = s.scalars(select(SyncFieldHistory)).one()
        assert (row.entity_type, row.entity_id, row.op_id, row.actor) == (
            "product",
            world.ids["p"],
            op.op_id,
            MANAGER.user,
        )


def test_product_update_the_writer_had_seen_is_kept_as_not_concurrent(world: World) -> None:
    op = world.op("product.update", world.ids["p"], nth=0)
    srv = world.server("srv", before=op)
    assert check(srv, op) is None
    ((group, old, new, concurrent),) = _history(srv)
    assert group == "prices"
    assert not concurrent
    assert Decimal(old["list_price"]) == Decimal("3.00")
    assert Decimal(new["list_price"]) == Decimal("4.50")
    assert Decimal(new["min_price"]) == Decimal("2.00")


def test_product_update_without_changes_writes_nothing(world: World) -> None:
    op = world.op("product.update", world.ids["p"], nth=4)
    assert op.payload["before"] == op.payload["after"]
    srv = world.server("srv", before=op)
    with srv() as s:
        products.update_product(s, MANAGER, world.ids["p"], list_price="5.00")
    assert check(srv, op) is None
    assert _history(srv) == []
    with srv() as s, s.begin():
        assert s.get_one(Product, world.ids["p"]).list_price == Decimal("5.00")


# ------------------------------------------------------------------ payouts


def test_scheduling_a_payout_already_paid_is_refused(world: World) -> None:
    op = world.op("payout.schedule", world.ids["jan"])
    srv = world.server("srv", before=op)
    day = (utcnow() + timedelta(days=5)).date()
    with srv() as s:
        payouts.schedule_payout(s, MANAGER, world.ids["jan"], day)
        payouts.mark_payout_paid(s, MANAGER, world.ids["jan"], "TX-server")
    refused(srv, op, InvalidTransition, "This payout is paid; only a draft can be scheduled.")


def test_paying_a_payout_the_server_has_as_draft_is_refused(world: World) -> None:
    op = world.op("payout.paid", world.ids["jan"])
    srv = world.server(
        "srv", before=op, skip=(world.op("payout.schedule", world.ids["jan"]).op_id,)
    )
    refused(
        srv, op, InvalidTransition, "This payout is draft; only a scheduled payout can be paid."
    )
    schedule = world.op("payout.schedule", world.ids["jan"])
    assert check(srv, schedule) is None
    assert check(srv, op) is None
    with srv() as s, s.begin():
        payout = s.get_one(Payout, world.ids["jan"])
        assert (payout.status, payout.payment_reference) == (PayoutStatus.PAID, "TX-9")
