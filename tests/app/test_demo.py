"""The demo generator: complete, deterministic, and true to the program's rules."""

from __future__ import annotations

import itertools
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import func, select, text

import app.demo as demo
from app.db import SessionFactory, open_db
from app.demo import DemoSummary, generate_demo
from app.demo_catalog import PRODUCTS, is_valid_gtin13
from app.errors import DomainError, ValidationError
from app.ids import id_from_parts
from app.models import (
    ChangeLog,
    InventoryMovement,
    LoyaltyTier,
    Package,
    Payout,
    StandInventory,
    StandLocation,
    StandLoyaltyLedger,
    StandOrder,
    StandPartner,
)
from app.rules import TIER_WINDOW_DAYS, commission, round_money

END = date(2025, 3, 15)  # the window crosses the new year and Christmas
BERLIN = ZoneInfo("Europe/Berlin")
AS_OF = datetime.combine(END, time(0), BERLIN).astimezone(UTC)
COMPARED_TABLES = (
    "stand_partner",
    "stand_location",
    "stand_inventory",
    "stand_order",
    "stand_order_item",
    "inventory_movement",
    "stand_refill_order",
    "stand_refill_event",
    "stand_loyalty_ledger",
    "stand_inventory_snapshot_line",
    "payout",
)


def _open(path: Path) -> SessionFactory:
    return open_db(f"sqlite:///{path}")


def _rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def made(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SessionFactory, Path, DemoSummary]]:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    factory = _open(path)
    summary = generate_demo(factory, stands=20, days=150, seed=11, end=END)
    yield factory, path, summary
    factory.kw["bind"].dispose()


def _q(factory: SessionFactory, sql: str) -> list[Any]:
    with factory() as session, session.begin():
        return list(session.execute(text(sql)).all())


def test_every_kind_of_record_is_made(made: tuple[SessionFactory, Path, DemoSummary]) -> None:
    factory, _, summary = made
    assert all(n > 0 for n in summary.rows().values()), summary.rows()
    assert summary.stands == 20
    assert summary.last_day == END - timedelta(days=1)
    with factory() as session, session.begin():
        for table, n in summary.rows().items():
            assert session.scalar(text(f"SELECT count(*) FROM {table}")) == n, table
    kinds = {k for (k,) in _q(factory, "SELECT DISTINCT kind FROM inventory_movement")}
    assert kinds == {
        "sale",
        "sale_void",
        "refill_delivery",
        "refill_correction",
        "count_adjustment",
    }
    ledger = {k for (k,) in _q(factory, "SELECT DISTINCT kind FROM stand_loyalty_ledger")}
    assert {"earn", "activation", "bonus", "redeem", "adjust"} <= ledger
    assert {k for (k,) in _q(factory, "SELECT DISTINCT kind FROM stand_order")} == {"sale", "void"}
    methods = {k for (k,) in _q(factory, "SELECT DISTINCT payment_method FROM stand_order")}
    assert methods == {"cash", "qr", "card"}
    assert {k for (k,) in _q(factory, "SELECT DISTINCT status FROM payout")} >= {"paid"}
    assert _q(factory, "SELECT count(*) FROM change_log") == [(0,)]


def test_same_seed_same_rows_other_seed_other_rows(tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.db" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (3, 3, 4), strict=True):
        factory = _open(path)
        generate_demo(factory, stands=8, days=60, seed=seed, end=END)
        factory.kw["bind"].dispose()
    for table in COMPARED_TABLES:
        assert _rows(paths[0], table) == _rows(paths[1], table), table
    assert _rows(paths[0], "stand_order") != _rows(paths[2], "stand_order")
    assert _rows(paths[0], "stand_partner") != _rows(paths[2], "stand_partner")


def test_on_hand_is_the_sum_of_movements_and_never_negative(
    made: tuple[SessionFactory, Path, DemoSummary],
) -> None:
    factory, path, _ = made
    mismatches = _q(
        factory,
        """
        SELECT i.stand_id, i.product_id, i.on_hand, coalesce(sum(m.quantity), 0)
        FROM stand_inventory i LEFT JOIN inventory_movement m
          ON m.stand_id = i.stand_id AND m.product_id = i.product_id
        GROUP BY i.id HAVING i.on_hand != coalesce(sum(m.quantity), 0)""",
    )
    assert mismatches == []
    assert _q(factory, "SELECT count(*) FROM stand_inventory WHERE on_hand < 0") == [(0,)]
    orphans = _q(
        factory,
        """
        SELECT count(*) FROM inventory_movement m LEFT JOIN stand_inventory i
          ON m.stand_id = i.stand_id AND m.product_id = i.product_id WHERE i.id IS NULL""",
    )
    assert orphans == [(0,)]
    # The running stock, in time order, never dips below zero either.
    with closing(sqlite3.connect(path)) as conn:
        running: dict[tuple[str, str], int] = defaultdict(int)
        for stand, product, qty in conn.execute(
            "SELECT stand_id, product_id, quantity FROM inventory_movement ORDER BY occurred_at, id"
        ):
            running[stand, product] += qty
            assert running[stand, product] >= 0


def test_counts_record_shrink_and_stamp_last_counted(
    made: tuple[SessionFactory, Path, DemoSummary],
) -> None:
    factory, _, _ = made
    bad = _q(
        factory,
        """
        SELECT count(*) FROM stand_inventory_snapshot_line
        WHERE variance != counted_qty - expected_qty OR counted_qty < 0
           OR (variance != 0) != (adjustment_movement_id IS NOT NULL)""",
    )
    assert bad == [(0,)]
    (shrink,) = _q(factory, "SELECT sum(variance) FROM stand_inventory_snapshot_line")[0]
    assert shrink < 0
    adjusted = _q(
        factory,
        """
        SELECT count(*) FROM stand_inventory_snapshot_line l
        JOIN inventory_movement m ON m.id = l.adjustment_movement_id
        WHERE m.kind = 'count_adjustment' AND m.quantity = l.variance""",
    )
    assert adjusted == _q(
        factory, "SELECT count(*) FROM stand_inventory_snapshot_line WHERE variance != 0"
    )
    with factory() as session, session.begin():
        counted = session.scalar(
            select(func.count())
            .select_from(StandInventory)
            .where(StandInventory.last_counted_at.is_not(None))
        )
    assert counted


def test_orders_add_up(made: tuple[SessionFactory, Path, DemoSummary]) -> None:
    factory, _, _ = made
    with factory() as session, session.begin():
        orders = {o.id: o for o in session.scalars(select(StandOrder))}
        for order in orders.values():
            assert order.items, order.id
            assert order.total == sum((i.line_total for i in order.items), Decimal(0))
            for item in order.items:
                assert item.line_total == round_money(item.quantity * item.unit_price)
                assert item.unit_price > 0
                assert item.unit_cost > 0
            assert order.occurred_at < AS_OF
            if order.kind == "void":
                sale = orders[order.voided_order_id or ""]
                assert order.total == -sale.total
                assert order.points_earned == -sale.points_earned
                assert order.occurred_at > sale.occurred_at
                assert [(i.product_id, -i.quantity) for i in order.items] == [
                    (i.product_id, i.quantity) for i in sale.items
                ]
            else:
                assert order.total > 0
                assert all(i.quantity > 0 for i in order.items)
        # Each line is one movement, referring to its order.
        moved = session.execute(
            select(InventoryMovement.ref_id, func.sum(InventoryMovement.quantity))
            .where(InventoryMovement.kind.in_(("sale", "sale_void")))
            .group_by(InventoryMovement.ref_id)
        ).all()
        assert dict(moved) == {o.id: -sum(i.quantity for i in o.items) for o in orders.values()}


def test_loyalty_balances_points_and_tiers(
    made: tuple[SessionFactory, Path, DemoSummary],
) -> None:
    factory, path, _ = made
    with factory() as session, session.begin():
        tiers = list(session.scalars(select(LoyaltyTier).order_by(LoyaltyTier.rank)))
        for partner in session.scalars(select(StandPartner)):
            entries = list(
                session.scalars(
                    select(StandLoyaltyLedger)
                    .where(StandLoyaltyLedger.partner_id == partner.id)
                    .order_by(StandLoyaltyLedger.occurred_at, StandLoyaltyLedger.id)
                )
            )
            balance = 0
            for e in entries:
                balance += e.points
                assert balance >= 0, partner.name
                assert e.occurred_at < AS_OF
            earned = sum(
                e.points
                for e in entries
                if (
                    e.kind in ("earn", "activation", "bonus")
                    or (e.kind == "adjust" and e.ref_type == "stand_order")
                )
                and e.occurred_at > AS_OF - timedelta(days=TIER_WINDOW_DAYS)
            )
            held = tiers[0]
            for tier in tiers:
                if earned >= tier.threshold_points:
                    held = tier
            assert partner.loyalty_tier_id == held.id, partner.name
            activations = [e for e in entries if e.kind == "activation"]
            package = session.get_one(Package, partner.package_id)
            if partner.status == "onboarding":
                assert activations == []
            else:
                assert [e.points for e in activations] == [package.activation_points]
        # An earn entry per sale with points, an adjust entry reversing each void.
        earn = dict(
            session.execute(
                select(StandLoyaltyLedger.ref_id, StandLoyaltyLedger.points).where(
                    StandLoyaltyLedger.ref_id.is_not(None)
                )
            ).all()
        )
        for order in session.scalars(select(StandOrder)):
            assert earn.get(order.id, 0) == order.points_earned
    assert (
        len({t for (t,) in _q(factory, "SELECT DISTINCT loyalty_tier_id FROM stand_partner")}) >= 2
    )
    assert path.exists()


def test_package_limits_and_levels(made: tuple[SessionFactory, Path, DemoSummary]) -> None:
    factory, _, _ = made
    over = _q(
        factory,
        """
        SELECT p.id FROM stand_partner p JOIN package k ON k.id = p.package_id
        JOIN stand_location s ON s.partner_id = p.id
        GROUP BY p.id HAVING count(*) > max(k.max_stands)""",
    )
    assert over == []
    slots = _q(
        factory,
        """
        SELECT s.id FROM stand_location s JOIN stand_partner p ON p.id = s.partner_id
        JOIN package k ON k.id = p.package_id JOIN stand_inventory i ON i.stand_id = s.id
        GROUP BY s.id HAVING count(*) > max(k.sku_slots)""",
    )
    assert slots == []
    packages = {
        c
        for (c,) in _q(
            factory,
            """
        SELECT DISTINCT k.code FROM stand_partner p JOIN package k ON k.id = p.package_id""",
        )
    }
    assert len(packages) >= 2
    levels = _q(
        factory,
        "SELECT count(*) FROM stand_inventory "
        "WHERE NOT (0 < reorder_point AND reorder_point <= par_level "
        "AND par_level <= capacity)",
    )
    assert levels == [(0,)]
    with factory() as session, session.begin():
        for stand in session.scalars(select(StandLocation)):
            assert stand.payment_reference in stand.qr_payload
            assert stand.id in stand.qr_payload
            assert stand.timezone == "Europe/Berlin"
            assert 47 < (stand.latitude or 0) < 55
            assert 5 < (stand.longitude or 0) < 15


def test_refills_cover_their_lifecycle(made: tuple[SessionFactory, Path, DemoSummary]) -> None:
    factory, _, _ = made
    states = {s for (s,) in _q(factory, "SELECT DISTINCT status FROM stand_refill_order")}
    assert "confirmed" in states
    assert states & {"requested", "approved", "scheduled", "delivered"}
    assert states & {"rejected", "cancelled"}
    events: dict[str, list[tuple[str | None, str, str]]] = defaultdict(list)
    for refill_id, from_s, to_s, at in _q(
        factory,
        """
            SELECT refill_id, from_status, to_status, occurred_at FROM stand_refill_event
            ORDER BY refill_id, occurred_at""",
    ):
        events[refill_id].append((from_s, to_s, at))
    for (
        refill_id,
        status,
        requested_at,
        approved_at,
        scheduled_at,
        delivered_at,
        confirmed_at,
    ) in _q(
        factory,
        """SELECT id, status, requested_at, approved_at, scheduled_at,
                              delivered_at, confirmed_at FROM stand_refill_order""",
    ):
        chain = events[refill_id]
        assert chain[0][0] is None
        assert chain[-1][1] == status
        assert all(a[1] == b[0] for a, b in itertools.pairwise(chain))
        stamps = [
            t
            for t in (requested_at, approved_at, scheduled_at, delivered_at, confirmed_at)
            if t is not None
        ]
        assert stamps == sorted(stamps)
    # Delivered units are on the stock as refill movements; lead times are 1-4 days.
    bad = _q(
        factory,
        """
        SELECT count(*) FROM stand_refill_order r WHERE r.delivered_at IS NOT NULL AND
          (SELECT coalesce(sum(quantity), 0) FROM inventory_movement m
           WHERE m.ref_id = r.id AND m.kind = 'refill_delivery') !=
          (SELECT sum(delivered_qty) FROM stand_refill_order_item i WHERE i.refill_id = r.id)""",
    )
    assert bad == [(0,)]
    leads = _q(
        factory,
        """
        SELECT min(julianday(delivered_at) - julianday(requested_at)),
               max(julianday(delivered_at) - julianday(requested_at))
        FROM stand_refill_order WHERE delivered_at IS NOT NULL""",
    )[0]
    assert leads[0] > 0.5
    assert leads[1] < 4.0


def test_payouts_follow_the_commission_rule(
    made: tuple[SessionFactory, Path, DemoSummary],
) -> None:
    factory, _, _ = made
    with factory() as session, session.begin():
        orders = session.execute(
            select(StandOrder.partner_id, StandOrder.occurred_at, StandOrder.total, StandOrder.kind)
        ).all()
        by_month: dict[tuple[str, date], list[Any]] = defaultdict(list)
        for partner_id, at, total, kind in orders:
            local = at.astimezone(BERLIN).date()
            by_month[partner_id, local.replace(day=1)].append((total, kind))
        payouts = list(session.scalars(select(Payout)))
        assert payouts
        for payout in payouts:
            assert payout.period_end < END
            assert payout.amount == commission(payout.sales_total, payout.commission_rate)
            month = by_month[payout.partner_id, payout.period_start]
            assert payout.sales_total == sum((t for t, _ in month), Decimal(0))
            assert payout.order_count == sum(1 if k == "sale" else -1 for _, k in month)
            partner = session.get_one(StandPartner, payout.partner_id)
            assert (
                payout.commission_rate
                == session.get_one(Package, partner.package_id).commission_rate
            )
            if payout.status == "paid":
                assert payout.paid_at is not None
                assert payout.paid_at < AS_OF


def test_refuses_a_database_with_stands(made: tuple[SessionFactory, Path, DemoSummary]) -> None:
    factory, _, summary = made
    with pytest.raises(DomainError, match="already has 20 stands"):
        generate_demo(factory, stands=2, days=30, seed=1, end=END)
    assert _q(factory, "SELECT count(*) FROM stand_order") == [(summary.orders,)]


def test_rejects_silly_sizes(tmp_path: Path) -> None:
    factory = _open(tmp_path / "x.db")
    with pytest.raises(ValidationError):
        generate_demo(factory, stands=0)
    with pytest.raises(ValidationError):
        generate_demo(factory, stands=3, days=3)
    factory.kw["bind"].dispose()


def test_reports_progress(tmp_path: Path) -> None:
    factory = _open(tmp_path / "p.db")
    seen: list[tuple[str, float]] = []
    generate_demo(factory, stands=3, days=30, end=END, progress=lambda p, f: seen.append((p, f)))
    factory.kw["bind"].dispose()
    assert next(p for p, _ in seen) == "catalog"
    assert seen[-1] == ("finish", 1.0)
    assert {"simulate", "write"} <= {p for p, _ in seen}
    assert all(0.0 <= f <= 1.0 for _, f in seen)


def test_core_path_stores_exactly_what_the_sqlite_fast_path_stores(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast, core = tmp_path / "fast.db", tmp_path / "core.db"
    factory = _open(fast)
    generate_demo(factory, stands=5, days=45, seed=5, end=END)
    factory.kw["bind"].dispose()
    monkeypatch.setattr(demo, "_use_fast_path", lambda _name: False)
    factory = _open(core)
    generate_demo(factory, stands=5, days=45, seed=5, end=END)
    factory.kw["bind"].dispose()
    for table in (
        *COMPARED_TABLES,
        "stand_inventory_snapshot",
        "refill_discrepancy",
        "stand_refill_order_item",
        "product",
        "package",
        "loyalty_tier",
    ):
        assert _rows(fast, table) == _rows(core, table), table


def test_vectorised_ids_are_id_from_parts() -> None:
    rng = np.random.default_rng(0)
    ms = rng.integers(0, 2**48, size=2_000, dtype=np.int64)
    a = rng.integers(0, 1 << 12, size=2_000, dtype=np.int64)
    b = rng.integers(0, 1 << 62, size=2_000, dtype=np.int64)
    made = demo._uuid7_strings(ms, a, b)
    assert made == [
        id_from_parts(int(m), int(x) << 62 | int(y)) for m, x, y in zip(ms, a, b, strict=True)
    ]


def test_sqlite_times_are_what_the_column_type_stores() -> None:
    from sqlalchemy.dialects import sqlite

    from app.types import UTCDateTime

    dialect = sqlite.dialect()
    process = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    ms = np.array([0, 1_700_000_000_123, 1_719_792_000_999, 4_102_444_800_000], dtype=np.int64)
    expected = [
        process(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(m))) for m in ms
    ]
    assert demo._sqlite_times(ms) == expected


def test_catalog_is_sane() -> None:
    skus = [p.sku for p in PRODUCTS]
    assert len(skus) == len(set(skus))
    assert 35 <= len(PRODUCTS) <= 45
    assert len({p.category for p in PRODUCTS}) >= 6
    for p in PRODUCTS:
        assert is_valid_gtin13(p.gtin), p.sku
        assert Decimal("0.30") <= p.margin <= Decimal("0.60"), p.sku
        assert p.unit_cost < p.min_price <= p.list_price <= p.max_price, p.sku
        assert p.pack_size >= 1
    assert len({p.gtin for p in PRODUCTS}) == len(PRODUCTS)


def test_reference_rows_made_by_the_demo_have_fixed_ids(
    made: tuple[SessionFactory, Path, DemoSummary],
    tmp_path: Path,
) -> None:
    factory, _, _ = made
    other = _open(tmp_path / "other.db")
    generate_demo(other, stands=2, days=20, seed=99, end=END)
    for model in (Package, LoyaltyTier):
        with factory() as s1, s1.begin(), other() as s2, s2.begin():
            ids1 = set(s1.scalars(select(model.id)))
            ids2 = set(s2.scalars(select(model.id)))
            assert ids1 == ids2
    other.kw["bind"].dispose()


def test_writes_no_change_log(made: tuple[SessionFactory, Path, DemoSummary]) -> None:
    factory, _, _ = made
    with factory() as session, session.begin():
        assert session.scalar(select(func.count()).select_from(ChangeLog)) == 0


@pytest.fixture
def pg_factory(pg_server_url: str) -> Iterator[SessionFactory]:
    factory = open_db(pg_server_url)
    yield factory
    engine = factory.kw["bind"]
    with engine.begin() as conn:  # leave an empty database for the next test
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def test_on_postgresql_through_core(pg_factory: SessionFactory, tmp_path: Path) -> None:
    summary = generate_demo(pg_factory, stands=5, days=45, seed=5, end=END)
    lite = _open(tmp_path / "lite.db")
    assert generate_demo(lite, stands=5, days=45, seed=5, end=END).rows() == summary.rows()
    with pg_factory() as pg, pg.begin(), lite() as sq, sq.begin():
        for model in (StandOrder, InventoryMovement, StandLoyaltyLedger, StandInventory, Payout):
            table = model.__table__
            pg_rows = pg.execute(select(table).order_by(table.c.id)).all()
            sq_rows = sq.execute(select(table).order_by(table.c.id)).all()
            assert pg_rows == sq_rows, model.__name__
    lite.kw["bind"].dispose()


def test_points_expire_oldest_first_after_a_year(tmp_path: Path) -> None:
    factory = _open(tmp_path / "long.db")
    generate_demo(factory, stands=6, days=500, seed=3, end=END)
    with factory() as session, session.begin():
        rows = session.execute(
            select(
                StandLoyaltyLedger.partner_id,
                StandLoyaltyLedger.occurred_at,
                StandLoyaltyLedger.points,
                StandLoyaltyLedger.kind,
            ).order_by(StandLoyaltyLedger.occurred_at, StandLoyaltyLedger.id)
        ).all()
    factory.kw["bind"].dispose()
    lots: dict[str, list[list[Any]]] = defaultdict(list)  # per partner: [time, points left]
    expired = 0
    for partner, at, points, kind in rows:
        if points > 0:
            lots[partner].append([at, points])
            continue
        if kind == "expire":
            # Exactly what is left of the lots older than a year (see app.rules).
            due = sum(left for when, left in lots[partner] if when < at - timedelta(days=365))
            assert -points == due
            expired += 1
        need = -points
        for lot in lots[partner]:
            take = min(lot[1], need)
            lot[1] -= take
            need -= take
        assert need == 0  # never more than the balance
    assert expired > 0


def test_agrees_with_the_services(tmp_path: Path) -> None:
    """The services, asked about the demo's history, find nothing to correct."""
    from app.models import Role
    from app.services import inventory, loyalty, payouts
    from app.services.base import Actor

    factory = _open(tmp_path / "svc.db")
    generate_demo(factory, stands=8, days=100, seed=2, end=END)
    manager = Actor("mgr.check", Role.MANAGER)
    with factory() as session, session.begin():
        assert inventory.verify_on_hand(session) == []
        for partner in session.scalars(select(StandPartner)):
            status = loyalty.tier_status(session, partner.id, now=AS_OF)
            tier = session.get_one(LoyaltyTier, partner.loyalty_tier_id)
            assert status.tier_code == tier.code
        periods = set(session.execute(select(Payout.period_start, Payout.period_end)).all())
        assert periods
        for start, end in sorted(periods):
            for result in payouts.compute_payouts(session, manager, start, end, now=AS_OF):
                assert not result.created, result
                assert not result.updated, result
        assert session.scalar(select(func.count()).select_from(ChangeLog)) == 0
    factory.kw["bind"].dispose()


def test_an_aborted_run_leaves_no_history(tmp_path: Path) -> None:
    factory = _open(tmp_path / "abort.db")

    def cancel(phase: str, fraction: float) -> None:
        if phase == "write" and fraction > 0.5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_demo(factory, stands=4, days=30, end=END, progress=cancel)
    with factory() as session, session.begin():
        for model in (StandPartner, StandLocation, StandOrder, InventoryMovement):
            assert session.scalar(select(func.count()).select_from(model)) == 0
    assert generate_demo(factory, stands=4, days=30, end=END).stands == 4
    factory.kw["bind"].dispose()


def test_sales_only_while_a_stand_is_live(made: tuple[SessionFactory, Path, DemoSummary]) -> None:
    factory, _, _ = made
    early = _q(
        factory,
        """
        SELECT count(*) FROM stand_order o JOIN stand_loyalty_ledger a
          ON a.partner_id = o.partner_id AND a.kind = 'activation'
        WHERE o.occurred_at <= a.occurred_at""",
    )
    assert early == [(0,)]
    unactivated = _q(
        factory,
        """
        SELECT count(*) FROM stand_order o JOIN stand_partner p ON p.id = o.partner_id
        WHERE p.status = 'onboarding'""",
    )
    assert unactivated == [(0,)]
    late = _q(
        factory,
        """
        SELECT count(*) FROM stand_order o JOIN stand_location s ON s.id = o.stand_id
        WHERE s.status = 'paused' AND o.occurred_at >= s.updated_at""",
    )
    assert late == [(0,)]
    statuses = {s for (s,) in _q(factory, "SELECT DISTINCT status FROM stand_location")}
    assert {"active", "planned"} <= statuses
