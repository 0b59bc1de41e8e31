"""Random sequences of actions against one real SQLite database per example (hypothesis).

Each example starts from a copy of a small migrated database (two active partners, one stand
each) and applies up to ``STEPS`` random actions: sales (oversold or not), voids, counts,
write-offs and returns, refill requests and random lifecycle steps (valid or not), discrepancy
resolutions, redemptions (sometimes beyond the balance), adjustments, expiry and the passing
of time. After every step:

- stock: for every stand x SKU, the cached on-hand equals the sum of its movements
  (``verify_on_hand`` and an independent SQL sum), and equals a model kept by the test;
- loyalty: each partner's balance is the sum of their ledger; a redemption never leaves it
  negative and is refused exactly when it exceeds the balance;
- change log: device_seq is exactly 1..N, and N is the number of ops the successful actions
  were expected to write (op types included);
- a refused action (DomainError) changes nothing at all;
- facts never change: every row of the fact tables seen before is still there, identical.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.db import open_db
from app.errors import DomainError, InvalidTransition, LimitExceeded, PermissionDenied
from app.models import (
    Base,
    ChangeLog,
    DiscrepancyStatus,
    LocalDevice,
    MovementKind,
    Product,
    RefillAction,
    RefillDiscrepancy,
    StandInventory,
    StandLocation,
    StandPartner,
    StandRefillOrder,
    StandRefillOrderItem,
)
from app.reference import seed_reference_data
from app.rules import local_date
from app.services import inventory, loyalty, refills, sales
from app.services.base import Actor
from tests.conftest import ADMIN, MANAGER, OTHER_REP, PARTNER, REP, make_stand

MAX_EXAMPLES = 50
STEPS = 25
FACT_TABLES = (
    "inventory_movement",
    "stand_order",
    "stand_order_item",
    "stand_loyalty_ledger",
    "stand_refill_event",
)
ACTORS = (REP, OTHER_REP, MANAGER, PARTNER, ADMIN)
PRODUCTS = [  # sku, pack size, list price
    ("PT-1", 1, "2.50"),
    ("PT-2", 6, "1.20"),
    ("PT-3", 12, "0.80"),
    ("PT-4", 1, "7.90"),
    ("PT-5", 6, "3.35"),
    ("PT-6", 1, "12.00"),
]


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with two active partners, one stand each (4 SKUs per stand)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    factory = open_db(f"sqlite:///{path}")
    with factory() as s, s.begin():
        seed_reference_data(s)
        for sku, pack, price in PRODUCTS:
            s.add(
                Product(
                    sku=sku,
                    name=f"Product {sku}",
                    category="snacks",
                    list_price=Decimal(price),
                    unit_cost=Decimal("0.50"),
                    min_price=Decimal("0.10"),
                    max_price=Decimal("50"),
                    pack_size=pack,
                )
            )
    with factory() as s:
        make_stand(s, name="Kiosk Nord", products=["PT-1", "PT-2", "PT-3", "PT-4"])
        make_stand(s, name="Kiosk Süd", products=["PT-1", "PT-4", "PT-5", "PT-6"])
    factory.kw["bind"].dispose()
    return path


def copy_db(src: Path, dst: Path) -> None:
    with closing(sqlite3.connect(src)) as a, closing(sqlite3.connect(dst)) as b:
        a.backup(b)


# ------------------------------------------------------------------ reading the database


Dump = dict[str, dict[Any, tuple[Any, ...]]]


TABLES = [t.name for t in Base.metadata.sorted_tables]


def dump(conn: sqlite3.Connection, tables: list[str] | tuple[str, ...] = ()) -> Dump:
    """Every row of every table (or of ``tables``) by primary key, as stored. Read on a plain
    sqlite3 connection in autocommit mode: each SELECT sees the last committed state."""
    out: Dump = {}
    for name in tables or TABLES:
        pk = [c.name for c in Base.metadata.tables[name].primary_key.columns]
        cur = conn.execute(f'SELECT * FROM "{name}"')
        cols = [d[0] for d in cur.description]
        idx = [cols.index(c) for c in pk]
        out[name] = {tuple(r[i] for i in idx): tuple(r) for r in cur}
    return out


def ledger_sums(s: Session) -> dict[tuple[str, str], int]:
    rows = s.execute(
        text(
            "SELECT stand_id, product_id, SUM(quantity) FROM inventory_movement "
            "GROUP BY stand_id, product_id"
        )
    ).all()
    return {(a, b): int(q) for a, b, q in rows}


@dataclass
class SaleRec:
    order_id: str
    stand_id: str
    lines: dict[str, int]
    voided: bool = False


@dataclass
class Model:
    on_hand: dict[tuple[str, str], int] = field(default_factory=dict)
    expected_ops: int = 0
    sales: list[SaleRec] = field(default_factory=list)
    refills: list[str] = field(default_factory=list)
    discrepancies: list[str] = field(default_factory=list)


class StandMachine(RuleBasedStateMachine):
    #: How often each action succeeded or was refused, over all examples of a run.
    stats: ClassVar[Counter[str]] = Counter()

    def __init__(self, template: Path) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory(prefix="stand-prop-")
        path = Path(self._tmp.name) / "stand.db"
        copy_db(template, path)
        self.factory = open_db(f"sqlite:///{path}")
        self.raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.clock = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        self.model = Model()
        with self.factory() as s, s.begin():
            self.stands = list(s.scalars(select(StandLocation.id).order_by(StandLocation.name)))
            self.partners = list(s.scalars(select(StandPartner.id).order_by(StandPartner.name)))
            self.products = {
                sid: list(
                    s.scalars(
                        select(StandInventory.product_id)
                        .where(StandInventory.stand_id == sid)
                        .order_by(StandInventory.product_id)
                    )
                )
                for sid in self.stands
            }
            self.all_products = sorted({p for ps in self.products.values() for p in ps})
            for sid, pids in self.products.items():
                for pid in pids:
                    self.model.on_hand[(sid, pid)] = inventory.on_hand(s, sid, pid)
            self.model.expected_ops = s.scalar(select(LocalDevice.last_seq)) or 0
        self.facts = dump(self.raw, FACT_TABLES)

    def teardown(self) -> None:
        self.raw.close()
        self.factory.kw["bind"].dispose()
        self._tmp.cleanup()

    # -------------------------------------------------------------- the one way to act

    def act(
        self,
        label: str,
        fn: Callable[[Session], Any],
        op_types: Callable[[Any], list[str]] | list[str],
        *,
        must_fail: type[DomainError] | None = None,
        may_fail: bool = True,
    ) -> Any:
        """Run one action in its own session. On success, check the ops it wrote; on a
        DomainError, check that nothing at all changed. Returns the result or the error."""
        before = dump(self.raw)
        seq_before = self.model.expected_ops
        error: DomainError | None = None
        try:
            with self.factory() as s:
                result = fn(s)
        except DomainError as exc:
            error = exc
        if error is not None:
            self.stats[f"{label}: refused ({type(error).__name__})"] += 1
            assert dump(self.raw) == before, f"refused action changed data: {error}"
            if must_fail is not None:
                assert isinstance(error, must_fail), (must_fail, error)
            assert may_fail or must_fail is not None, f"a valid action was refused: {error}"
            return error
        self.stats[f"{label}: ok"] += 1
        assert must_fail is None, f"expected {must_fail.__name__}, the action succeeded"
        expected = op_types(result) if callable(op_types) else op_types
        with self.factory() as s, s.begin():
            new = list(
                s.scalars(
                    select(ChangeLog.op_type)
                    .where(ChangeLog.device_seq > seq_before)
                    .order_by(ChangeLog.device_seq)
                )
            )
        assert new == expected, (new, expected)
        self.model.expected_ops += len(expected)
        return result

    def at(self) -> datetime:
        return self.clock

    # -------------------------------------------------------------- rules: time

    @rule(days=st.sampled_from([0, 1, 3, 30, 200, 400]), hours=st.integers(0, 23))
    def advance(self, days: int, hours: int) -> None:
        self.clock += timedelta(days=days, hours=hours)

    # -------------------------------------------------------------- rules: sales

    @rule(
        stand=st.integers(0, 1),
        lines=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 15)), min_size=1, max_size=4),
        method=st.sampled_from(["cash", "qr", "card"]),
    )
    def sell(self, stand: int, lines: list[tuple[int, int]], method: str) -> None:
        sid = self.stands[stand]
        sale_lines = [sales.SaleLine(self.products[sid][i], q) for i, q in lines]
        valid = all(q > 0 for _, q in lines)
        res = self.act(
            "sale",
            lambda s: sales.record_sale(s, REP, sid, sale_lines, method, occurred_at=self.at()),
            ["sale.record"],
            must_fail=None if valid else DomainError,
            may_fail=False,
        )
        if isinstance(res, DomainError):
            return
        qty: dict[str, int] = {}
        for i, q in lines:
            pid = self.products[sid][i]
            qty[pid] = qty.get(pid, 0) + q
        for pid, q in qty.items():
            expected_before = self.model.on_hand[(sid, pid)]
            self.model.on_hand[(sid, pid)] -= q
            assert res.stock_after[pid] == self.model.on_hand[(sid, pid)]
            assert (pid in {o.product_id for o in res.oversold}) == (q > expected_before)
        self.model.sales.append(SaleRec(res.order_id, sid, qty))

    @precondition(lambda self: self.model.sales)
    @rule(i=st.integers(0, 10_000))
    def void(self, i: int) -> None:
        rec = self.model.sales[i % len(self.model.sales)]
        res = self.act(
            "void",
            lambda s: sales.void_sale(
                s, REP, rec.order_id, reason="Mistake", occurred_at=self.at()
            ),
            ["sale.void"],
            must_fail=InvalidTransition if rec.voided else None,
            may_fail=False,
        )
        if isinstance(res, DomainError):
            return
        rec.voided = True
        for pid, q in rec.lines.items():
            self.model.on_hand[(rec.stand_id, pid)] += q

    # -------------------------------------------------------------- rules: stock

    @rule(
        stand=st.integers(0, 1),
        counts=st.dictionaries(st.integers(0, 3), st.integers(0, 40), min_size=1, max_size=4),
    )
    def count(self, stand: int, counts: dict[int, int]) -> None:
        sid = self.stands[stand]
        by_pid = {self.products[sid][i]: c for i, c in counts.items()}
        self.act(
            "count",
            lambda s: inventory.record_count(s, REP, sid, by_pid, counted_at=self.at()),
            ["count.record"],
            may_fail=False,
        )
        for pid, c in by_pid.items():
            self.model.on_hand[(sid, pid)] = c

    @rule(
        stand=st.integers(0, 1),
        product=st.integers(0, 3),
        qty=st.integers(0, 8),
        kind=st.sampled_from([MovementKind.WRITE_OFF, MovementKind.RETURN]),
    )
    def stock_change(self, stand: int, product: int, qty: int, kind: MovementKind) -> None:
        sid, pid = self.stands[stand], self.products[self.stands[stand]][product]
        res = self.act(
            "stock change",
            lambda s: inventory.record_stock_change(
                s, REP, sid, pid, qty, kind, occurred_at=self.at()
            ),
            [f"stock.{kind.value}"],
            must_fail=DomainError if qty == 0 else None,
            may_fail=False,
        )
        if not isinstance(res, DomainError):
            self.model.on_hand[(sid, pid)] += -qty if kind == MovementKind.WRITE_OFF else qty

    # -------------------------------------------------------------- rules: refills

    @rule(
        stand=st.integers(0, 1),
        quantities=st.none()
        | st.dictionaries(st.integers(0, 3), st.integers(0, 30), min_size=1, max_size=4),
        requester=st.sampled_from([REP, MANAGER]),
        reuse=st.integers(0, 10_000),
        repeat=st.booleans(),
    )
    def request_refill(
        self,
        stand: int,
        quantities: dict[int, int] | None,
        requester: Actor,
        reuse: int,
        repeat: bool,
    ) -> None:
        if repeat and self.model.refills:
            rid = self.model.refills[reuse % len(self.model.refills)]
            with self.factory() as s, s.begin():
                sid = s.get_one(StandRefillOrder, rid).stand_id
            before = dump(self.raw)
            res = self.act(
                "request again",
                lambda s: refills.request_refill(
                    s, requester, sid, {self.products[sid][0]: 1}, refill_id=rid, now=self.at()
                ),
                [],
                may_fail=False,
            )
            assert res.duplicate
            assert dump(self.raw) == before
            return
        sid = self.stands[stand]
        qty = (
            None
            if quantities is None
            else {self.products[sid][i]: q for i, q in quantities.items()}
        )
        if qty is None:
            with self.factory() as s:
                nothing = not refills.suggest_refill(s, sid)
        else:
            nothing = not any(qty.values())
        res = self.act(
            "request",
            lambda s: refills.request_refill(s, requester, sid, qty, now=self.at()),
            ["refill.request"],
            must_fail=DomainError if nothing else None,
            may_fail=False,
        )
        if not isinstance(res, DomainError):
            assert not res.duplicate
            self.model.refills.append(res.refill_id)

    @precondition(lambda self: self.model.refills)
    @rule(
        i=st.integers(0, 10_000),
        action=st.sampled_from(list(refills.TRANSITIONS)),
        actor=st.sampled_from(ACTORS),
        variant=st.integers(0, 3),
        delta=st.integers(-3, 3),
        day_offset=st.integers(-1, 4),
        reason=st.sampled_from(["", "Budget freeze"]),
    )
    def refill_step(
        self,
        i: int,
        action: RefillAction,
        actor: Actor,
        variant: int,
        delta: int,
        day_offset: int,
        reason: str,
    ) -> None:
        """Any action by anyone on any refill: mostly refused, and then nothing changes."""
        rid = self.model.refills[i % len(self.model.refills)]
        self._refill_step(rid, action, actor, variant, delta, day_offset, reason, False)

    @precondition(lambda self: self.model.refills)
    @rule(
        i=st.integers(0, 10_000),
        steps=st.lists(st.tuples(st.integers(0, 3), st.integers(-3, 3)), min_size=1, max_size=5),
    )
    def follow_lifecycle(self, i: int, steps: list[tuple[int, int]]) -> None:
        """Move one refill along its lifecycle (allowed actions by allowed people), with partial
        quantities and differences on receipt; every invariant is checked after each step."""
        with self.factory() as s, s.begin():
            open_ids = list(
                s.scalars(
                    select(StandRefillOrder.id)
                    .where(StandRefillOrder.status.in_(refills.OPEN_STATES))
                    .order_by(StandRefillOrder.id)
                )
            )
        if not open_ids:
            return
        rid = open_ids[i % len(open_ids)]
        for variant, delta in steps:
            if not self._refill_step(rid, RefillAction.APPROVE, REP, variant, delta, 1, "B", True):
                return
            self.check_all()

    def _refill_step(
        self,
        rid: str,
        action: RefillAction,
        actor: Actor,
        variant: int,
        delta: int,
        day_offset: int,
        reason: str,
        follow_lifecycle: bool,
    ) -> bool:
        """One refill action; returns whether it was taken (False: refused or nothing to do)."""
        with self.factory() as s, s.begin():
            refill = s.get_one(StandRefillOrder, rid)
            status, requester, sid = refill.status, refill.requested_by, refill.stand_id
            lines = list(
                s.scalars(
                    select(StandRefillOrderItem)
                    .where(StandRefillOrderItem.refill_id == rid)
                    .order_by(StandRefillOrderItem.line_no)
                )
            )
        if follow_lifecycle:
            # Take an action the lifecycle allows, by someone allowed to take it: forward
            # mostly, now and then an exit (reject, cancel).
            moves = [
                (a, who)
                for who in ACTORS
                for a in refills.allowed_actions(status, who.role)
                if not (
                    a == RefillAction.CANCEL and who.role.value == "rep" and who.user != requester
                )
            ]
            forward = [m for m in moves if m[0] not in (RefillAction.REJECT, RefillAction.CANCEL)]
            if forward and not (variant == 3 and delta == 3):
                moves = forward
            if not moves:
                return False
            action, actor = moves[(variant * 7 + delta + 3) % len(moves)]
            variant, day_offset, reason = variant % 2, abs(day_offset), "Budget freeze"
        first = lines[0]
        on_refill = {ln.product_id for ln in lines}
        not_on_refill = next(p for p in self.all_products if p not in on_refill)
        transition = refills.TRANSITIONS[action]
        must_fail: type[DomainError] | None = None
        if actor.role not in transition.roles:
            must_fail = PermissionDenied
        elif status not in transition.from_states:
            must_fail = InvalidTransition
        elif (
            action == RefillAction.CANCEL and actor.role.value == "rep" and actor.user != requester
        ):
            must_fail = PermissionDenied
        at = self.at()
        call: Callable[[Session], Any]
        if action == RefillAction.APPROVE:
            qty: dict[str, object] | None = [
                None,
                {first.product_id: first.requested_qty // 2},
                {ln.product_id: 0 for ln in lines},
                {not_on_refill: 1},
            ][variant]
            if variant >= 2:
                must_fail = must_fail or DomainError
            call = partial(
                refills.approve_refill, actor=actor, refill_id=rid, quantities=qty, now=at
            )
        elif action == RefillAction.SCHEDULE:
            # Days are the stand's (the program's time zone), as the service checks them.
            day = local_date(at) + timedelta(days=day_offset)
            dealer = "" if variant == 3 else "Nordgross"
            if day_offset < 0 or variant == 3:
                must_fail = must_fail or DomainError
            call = partial(
                refills.schedule_refill,
                actor=actor,
                refill_id=rid,
                scheduled_for=day,
                dealer=dealer,
                now=at,
            )
        elif action == RefillAction.DELIVER:
            approved = first.approved_qty or 0
            qty = [
                None,
                {first.product_id: approved // 2},
                {first.product_id: approved + 1},
                {ln.product_id: 0 for ln in lines},
            ][variant]
            if variant >= 2:
                must_fail = must_fail or DomainError
            call = partial(
                refills.deliver_refill, actor=actor, refill_id=rid, quantities=qty, now=at
            )
        elif action == RefillAction.CONFIRM:
            got = max(0, (first.delivered_qty or 0) + delta)
            qty = [None, {first.product_id: got}, {first.product_id: got}, {not_on_refill: 1}]
            if variant == 3:
                must_fail = must_fail or DomainError
            call = partial(
                refills.confirm_refill, actor=actor, refill_id=rid, received=qty[variant], now=at
            )
        else:
            fn = refills.reject_refill if action == RefillAction.REJECT else refills.cancel_refill
            if not reason:
                must_fail = must_fail or DomainError
            call = partial(fn, actor=actor, refill_id=rid, reason=reason, now=at)

        res = self.act(
            f"refill {action.value}", call, [f"refill.{action.value}"], must_fail=must_fail
        )
        if isinstance(res, DomainError):
            with self.factory() as s, s.begin():
                assert s.get_one(StandRefillOrder, rid).status == status
            return False
        assert action in refills.allowed_actions(status, actor.role)
        assert res.status == transition.to_state
        if action == RefillAction.DELIVER:
            for ln in res.lines:
                self.model.on_hand[(sid, ln.product_id)] += ln.delivered or 0
        if action == RefillAction.CONFIRM:
            self.model.discrepancies.extend(res.discrepancies)
            assert len(res.discrepancies) == sum(ln.received != ln.delivered for ln in res.lines)
        return True

    @precondition(lambda self: self.model.discrepancies)
    @rule(
        i=st.integers(0, 10_000), accept=st.booleans(), actor=st.sampled_from([MANAGER, ADMIN, REP])
    )
    def resolve(self, i: int, accept: bool, actor: Actor) -> None:
        did = self.model.discrepancies[i % len(self.model.discrepancies)]
        with self.factory() as s, s.begin():
            d = s.get_one(RefillDiscrepancy, did)
            status, key, diff = (
                d.status,
                (d.stand_id, d.product_id),
                d.received_qty - d.delivered_qty,
            )
        must_fail: type[DomainError] | None = None
        if actor is REP:
            must_fail = PermissionDenied
        elif status != DiscrepancyStatus.OPEN:
            must_fail = InvalidTransition
        res = self.act(
            "resolve",
            lambda s: refills.resolve_discrepancy(
                s, actor, did, accept_received=accept, now=self.at()
            ),
            ["refill.resolve_discrepancy"],
            must_fail=must_fail,
            may_fail=False,
        )
        if not isinstance(res, DomainError) and accept:
            self.model.on_hand[key] += diff

    # -------------------------------------------------------------- rules: loyalty

    def balance(self, partner_id: str) -> int:
        with self.factory() as s, s.begin():
            return int(
                s.execute(
                    text(
                        "SELECT COALESCE(SUM(points), 0) FROM stand_loyalty_ledger "
                        "WHERE partner_id = :p"
                    ),
                    {"p": partner_id},
                ).scalar_one()
            )

    @rule(partner=st.integers(0, 1), points=st.integers(1, 700))
    def redeem(self, partner: int, points: int) -> None:
        pid = self.partners[partner]
        before = self.balance(pid)
        res = self.act(
            "redeem",
            lambda s: loyalty.redeem_points(s, REP, pid, points, now=self.at()),
            ["loyalty.redeem"],
            must_fail=LimitExceeded if points > before else None,
            may_fail=False,
        )
        if not isinstance(res, DomainError):
            assert res.balance == before - points == self.balance(pid)
            assert self.balance(pid) >= 0

    @rule(partner=st.integers(0, 1), points=st.integers(-300, 300), bonus=st.booleans())
    def adjust(self, partner: int, points: int, bonus: bool) -> None:
        pid = self.partners[partner]
        kind = "bonus" if bonus else "adjust"
        self.act(
            "adjust",
            lambda s: loyalty.adjust_points(
                s, MANAGER, pid, points, note="Correction", bonus=bonus, now=self.at()
            ),
            [f"loyalty.{kind}"],
            must_fail=DomainError if points == 0 or (bonus and points < 0) else None,
            may_fail=False,
        )

    @rule(partner=st.none() | st.integers(0, 1))
    def expire(self, partner: int | None) -> None:
        pid = None if partner is None else self.partners[partner]
        before = {p: self.balance(p) for p in self.partners}
        res = self.act(
            "expire",
            lambda s: loyalty.expire_points(s, MANAGER, partner_id=pid, now=self.at()),
            lambda r: ["loyalty.expire"] * len(r),
            may_fail=False,
        )
        for r in res:
            self.stats["expire: points expired"] += 1
            assert r.points < 0
            # Expiry takes points the partner has, never more.
            assert self.balance(r.partner_id) >= min(0, before[r.partner_id]), (
                before[r.partner_id],
                r.points,
            )
        # Running it again at the same moment finds nothing left.
        self.act(
            "expire again",
            lambda s: loyalty.expire_points(s, MANAGER, partner_id=pid, now=self.at()),
            [],
            may_fail=False,
        )

    # -------------------------------------------------------------- invariants

    def check_all(self) -> None:
        self.stock_is_the_sum_of_movements()
        self.loyalty_balance_is_the_sum_of_the_ledger()
        self.change_log_has_no_gaps()
        self.facts_never_change()

    @invariant()
    def stock_is_the_sum_of_movements(self) -> None:
        with self.factory() as s, s.begin():
            assert inventory.verify_on_hand(s) == []
            cached = {
                (r.stand_id, r.product_id): r.on_hand for r in s.scalars(select(StandInventory))
            }
            sums = ledger_sums(s)
        assert set(sums) <= set(cached)
        for key, value in cached.items():
            assert value == sums.get(key, 0), key
        assert cached == self.model.on_hand

    @invariant()
    def loyalty_balance_is_the_sum_of_the_ledger(self) -> None:
        for pid in self.partners:
            with self.factory() as s:
                assert loyalty.balance(s, pid) == self.balance(pid)

    @invariant()
    def change_log_has_no_gaps(self) -> None:
        with self.factory() as s, s.begin():
            seqs = list(s.scalars(select(ChangeLog.device_seq).order_by(ChangeLog.device_seq)))
            last = s.scalar(select(LocalDevice.last_seq))
            devices = s.scalar(text("SELECT count(DISTINCT device_id) FROM change_log"))
        assert seqs == list(range(1, len(seqs) + 1))
        assert last == len(seqs) == self.model.expected_ops
        assert devices == 1

    @invariant()
    def facts_never_change(self) -> None:
        now = dump(self.raw, FACT_TABLES)
        for table, rows in self.facts.items():
            for pk, row in rows.items():
                assert now[table].get(pk) == row, (table, pk)
        self.facts = now


def test_random_action_sequences_keep_the_invariants(template_db: Path) -> None:
    StandMachine.stats = Counter()
    run_state_machine_as_test(
        lambda: StandMachine(template_db),
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # The run did real work, not only refusals. (Which rules run is random, swarm-style; the
    # scripted tours below make sure every path is taken on every run.)
    stats = StandMachine.stats
    print("\n".join(f"{n:5d}  {k}" for k, n in sorted(stats.items())))
    for needed in ("sale: ok", "count: ok", "stock change: ok", "request: ok"):
        assert stats[needed] > 0, needed
    assert sum(n for k, n in stats.items() if k.endswith(": ok")) > 10 * MAX_EXAMPLES


@pytest.fixture
def machine(template_db: Path) -> Iterator[StandMachine]:
    m = StandMachine(template_db)
    m.check_all()
    yield m
    m.teardown()


def test_scripted_tour_of_every_action(machine: StandMachine) -> None:
    """Every rule of the machine, valid and refused, with the invariants after each step."""
    m = machine
    steps: list[Callable[[], object]] = [
        lambda: m.count(0, {0: 10, 1: 3, 2: 0, 3: 5}),
        lambda: m.sell(0, [(0, 4), (1, 5)], "cash"),  # product 1 oversold
        lambda: m.sell(1, [(2, 1), (2, 2)], "qr"),  # the same product twice
        lambda: m.sell(0, [(0, 0)], "card"),  # refused: zero
        lambda: m.void(0),
        lambda: m.void(0),  # refused: already voided
        lambda: m.stock_change(0, 2, 3, MovementKind.RETURN),
        lambda: m.stock_change(0, 2, 1, MovementKind.WRITE_OFF),
        lambda: m.stock_change(0, 2, 0, MovementKind.WRITE_OFF),  # refused
        lambda: m.request_refill(0, {0: 6, 1: 12, 3: 0}, REP, 0, False),
        lambda: m.request_refill(0, {0: 0}, REP, 0, False),  # refused: nothing asked
        lambda: m.request_refill(1, None, MANAGER, 0, False),  # suggested quantities
        lambda: m.request_refill(0, None, REP, 0, True),  # same refill id again: duplicate
        lambda: m.refill_step(0, RefillAction.APPROVE, REP, 0, 0, 1, "x"),  # refused: role
        lambda: m.refill_step(0, RefillAction.DELIVER, ADMIN, 0, 0, 1, "x"),  # refused: state
        lambda: m.refill_step(0, RefillAction.APPROVE, MANAGER, 2, 0, 1, "x"),  # all zeros
        lambda: m.refill_step(0, RefillAction.APPROVE, MANAGER, 3, 0, 1, "x"),  # not on it
        lambda: m.refill_step(0, RefillAction.APPROVE, MANAGER, 1, 0, 1, "x"),  # partial
        lambda: m.refill_step(0, RefillAction.SCHEDULE, MANAGER, 0, 0, -1, "x"),  # past
        lambda: m.refill_step(0, RefillAction.SCHEDULE, MANAGER, 3, 0, 1, "x"),  # no dealer
        lambda: m.refill_step(0, RefillAction.SCHEDULE, MANAGER, 0, 0, 0, "x"),
        lambda: m.refill_step(0, RefillAction.CANCEL, OTHER_REP, 0, 0, 0, "Mine?"),  # not own
        lambda: m.refill_step(0, RefillAction.DELIVER, REP, 2, 0, 0, "x"),  # more than approved
        lambda: m.refill_step(0, RefillAction.DELIVER, REP, 3, 0, 0, "x"),  # nothing
        lambda: m.refill_step(0, RefillAction.DELIVER, REP, 1, 0, 0, "x"),  # partial
        lambda: m.refill_step(0, RefillAction.CONFIRM, PARTNER, 3, 0, 0, "x"),  # not on it
        lambda: m.refill_step(0, RefillAction.CONFIRM, PARTNER, 1, -2, 0, "x"),  # short
        lambda: m.resolve(0, True, REP),  # refused: role
        lambda: m.resolve(0, True, MANAGER),
        lambda: m.resolve(0, False, MANAGER),  # refused: already resolved
        lambda: m.refill_step(1, RefillAction.REJECT, MANAGER, 0, 0, 0, ""),  # no reason
        lambda: m.refill_step(1, RefillAction.REJECT, MANAGER, 0, 0, 0, "Budget"),
        lambda: m.request_refill(1, {0: 2}, REP, 0, False),
        lambda: m.follow_lifecycle(0, [(0, 3), (0, 0), (0, 0), (0, 2), (0, 0)]),
        lambda: m.resolve(1, False, ADMIN),
        lambda: m.redeem(0, 10_000),  # refused: beyond the balance
        lambda: m.redeem(0, 100),
        lambda: m.adjust(1, 0, False),  # refused: zero
        lambda: m.adjust(1, -20, True),  # refused: negative bonus
        lambda: m.adjust(1, 75, True),
        lambda: m.adjust(1, -30, False),
        lambda: m.expire(None),  # nothing old enough yet
        lambda: m.advance(400, 0),
        lambda: m.expire(1),
        lambda: m.expire(None),
    ]
    for n, step in enumerate(steps):
        step()
        try:
            m.check_all()
        except AssertionError as exc:
            raise AssertionError(f"after step {n}: {exc}") from exc
    stats = m.stats
    for needed in (
        "refill approve: ok",
        "refill schedule: ok",
        "refill deliver: ok",
        "refill confirm: ok",
        "refill reject: ok",
        "resolve: ok",
        "void: ok",
        "redeem: refused (LimitExceeded)",
        "expire: points expired",
        "refill approve: refused (PermissionDenied)",
        "request again: ok",
    ):
        assert stats[needed] > 0, needed


def test_expiry_never_takes_more_points_than_the_partner_has(machine: StandMachine) -> None:
    """A void after a redemption leaves a reversal no open lot can absorb; points earned
    later must still not expire beyond the balance (the partner would go below zero)."""
    m = machine
    partner = m.partners[0]
    m.sell(0, [(3, 2)], "cash")
    earned_first = m.balance(partner) - 250
    assert earned_first > 0
    m.redeem(0, m.balance(partner))  # spend everything
    m.void(0)  # the first sale's points are taken back: the balance is now negative
    assert m.balance(partner) == -earned_first
    m.advance(30, 0)
    m.sell(0, [(3, 4)], "cash")
    held = m.balance(partner)
    assert held > 0
    m.advance(400, 0)
    m.expire(0)  # asserts that the balance stays >= min(0, what the partner held)
    assert m.balance(partner) >= 0, held
    m.check_all()


def test_template_is_usable(template_db: Path) -> None:
    """The starting point of every example: two active partners with activation points."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "copy.db"
        copy_db(template_db, path)
        factory = open_db(f"sqlite:///{path}")
        try:
            with factory() as s, s.begin():
                partners = list(s.scalars(select(StandPartner.id)))
                assert len(partners) == 2
                for pid in partners:
                    assert loyalty.balance(s, pid) == 250
                assert inventory.verify_on_hand(s) == []
                assert s.scalar(select(LocalDevice.last_seq)) == 6
        finally:
            factory.kw["bind"].dispose()
