"""The bulk writer of plain facts (app/services/apply/bulk.py) against the per-op path.

The same pushed batch — a rep's offline days (sales, write-offs, counts, refill requests)
with bad ops mixed in: reused ids, an unknown or uncarried product, a stand out of the rep's
territory,
quantities out of range, a missing actor, a malformed payload, a resubmitted sale — is
applied to two copies of the server, once with bulk apply and once op by op. Both must give
the same answers (status, reason code, reason, field), the same received ops, the same feed
rows and the same synced tables. On a device, a pulled page applied by ``apply_page`` (bulk)
must equal the same ops written one by one.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, delete, event, insert, select, text, update

from app import db
from app.db import SessionFactory, open_db
from app.ids import new_id
from app.models import (
    ApiUser,
    ChangeLog,
    LocalDevice,
    Product,
    Role,
    StandInventory,
    StandOrder,
    SyncReceivedOp,
    SyncReview,
)
from app.services import apply, feed, inventory, loyalty, sales, sync_device, sync_server
from app.services.apply import bulk as bulk_apply
from app.services.base import SCHEMA_VERSION
from app.services.scope import AccessScope
from app.services.users import Principal
from tests.app.apply.replay import diff, ops_of, replay
from tests.sync.procs import record_offline_days
from tests.sync.world import REP_ANNA, World


def _mismatches(factory: SessionFactory) -> list[inventory.Mismatch]:
    with factory() as s:
        return inventory.verify_on_hand(s)


def _copy(src: Path, dest: Path) -> SessionFactory:
    shutil.copyfile(src, dest)
    return open_db(f"sqlite:///{dest}", migrate=False)


def _device(src: Path, dest: Path) -> SessionFactory:
    factory = _copy(src, dest)
    with factory() as s, s.begin():
        head = feed.head(s)
        s.execute(delete(ChangeLog))
        s.execute(update(LocalDevice).values(id=new_id(), last_seq=0, name=dest.stem))
        sync_device.state(s).cursor = head
    return factory


def _offline(
    world_template: tuple[Path, World],
    tmp_path: Path,
    *,
    days: int,
    ops: int,
    seed: int,
    stands: tuple[str, ...] = ("North Kiosk A", "North Kiosk B"),
    mix: tuple[tuple[str, float], ...] | None = None,
) -> SessionFactory:
    """A device of rep.anna that recorded ``ops`` ops offline over ``days`` days."""
    path, world = world_template
    device = _device(path, tmp_path / "device.db")
    record_offline_days(
        device,
        REP_ANNA,
        [world.stand[name] for name in stands],
        days=days,
        ops=ops,
        start=world.built_at - timedelta(days=days + 1),
        seed=seed,
        **({"mix": mix} if mix else {}),
    )
    return device


def _server(src: Path, dest: Path) -> tuple[SessionFactory, Principal]:
    factory = _copy(src, dest)
    server = feed.feed_sessionmaker(factory.kw["bind"])
    with server() as s, s.begin():
        user = s.scalars(select(ApiUser).where(ApiUser.username == "rep.anna")).one()
        principal = Principal(user.id, "rep.anna", Role.REP, None, "rep.anna", None)
    return server, principal


def _sale(ops: list[apply.Op]) -> apply.Op:
    return next(o for o in ops if o.op_type == "sale.record" and len(o.payload["items"]) >= 2)


def _changed(op: apply.Op, change: Callable[[dict[str, Any]], object]) -> apply.Op:
    """``op`` with ``change`` applied to a copy of its payload."""
    p = copy.deepcopy(dict(op.payload))
    change(p)
    return replace(op, payload=p)


def _fresh_sale(op: apply.Op, **order: Any) -> apply.Op:
    """``op``'s sale with new ids throughout (and ``order`` fields replaced)."""
    p = copy.deepcopy(dict(op.payload))
    p["order"] = {**p["order"], "id": new_id(), **order}
    for item in p["items"]:
        item["id"], item["movement_id"] = new_id(), new_id()
    if p.get("loyalty_entry_id"):
        p["loyalty_entry_id"] = new_id()
    return replace(op, op_id=new_id(), entity_id=p["order"]["id"], payload=p)


def _uncarried(*servers: SessionFactory) -> str:
    """A product in the catalogue that no stand carries (added to each of ``servers``)."""
    pid = new_id()
    for server in servers:
        with server() as s, s.begin():
            row = s.execute(select(Product.__table__).limit(1)).mappings().one()
            s.execute(
                insert(Product.__table__).values(
                    {**row, "id": pid, "sku": "UNCARRIED-1", "gtin": None, "name": "Uncarried"}
                )
            )
    return pid


def _bad_ops(
    ops: list[apply.Op],
    world: World,
    server: SessionFactory,
    device: SessionFactory,
    uncarried: str,
) -> tuple[list[apply.Op], set[str]]:
    """Ops each path must treat alike, and the ids of those that apply; the others are
    refused, with the per-op path's reason."""
    sale = _sale(ops)
    write_off = next(o for o in ops if o.op_type == "stock.write_off")
    with server() as s, s.begin():
        old_order = s.scalars(select(StandOrder.id).limit(1)).one()
        cafe_product = s.scalars(
            select(StandInventory.product_id).where(
                StandInventory.stand_id == world.stand["North Cafe"]
            )
        ).first()
    with device() as s, s.begin():
        any_product = s.scalars(select(Product.id).limit(1)).one()
    out: list[apply.Op] = []

    def edit(base: apply.Op, change: Any) -> None:
        op = _fresh_sale(base) if base.op_type == "sale.record" else base
        if base.op_type != "sale.record":
            p = copy.deepcopy(dict(base.payload))
            p["movement_id"] = new_id()
            op = replace(base, op_id=new_id(), entity_id=p["movement_id"], payload=p)
        out.append(_changed(op, change))

    edit(sale, lambda p: p["order"].update(id=old_order))  # an order id used for another sale
    edit(sale, lambda p: p["items"][1].update(id=p["items"][0]["id"]))  # item id twice in one op
    edit(
        sale,
        lambda p: p["items"][1].update(movement_id=p["items"][0]["movement_id"]),
    )
    early = next(o for o in ops[:5] if o.op_type in ("sale.record", "stock.write_off"))
    taken = (
        early.payload["items"][0]["movement_id"]
        if early.op_type == "sale.record"
        else early.payload["movement_id"]
    )
    edit(sale, lambda p: p["items"][0].update(movement_id=taken))  # an earlier op's movement id
    edit(
        sale,
        lambda p: (
            p["order"].update(stand_id=world.stand["North Cafe"], partner_id=world.partner["N2"]),
            [i.update(product_id=cafe_product) for i in p["items"]],
        ),
    )  # not in rep.anna's territory
    edit(sale, lambda p: p["items"][0].update(product_id=new_id()))  # no such product
    edit(sale, lambda p: p["order"].update(stand_id=new_id()))  # no such stand
    edit(sale, lambda p: p["order"].update(partner_id=new_id()))  # no such partner
    edit(sale, lambda p: p["items"][0].update(quantity=0))
    edit(sale, lambda p: p["items"][0].update(quantity="many"))
    edit(sale, lambda p: p["items"][0].update(quantity=True))
    edit(sale, lambda p: p.update(items=[]))
    edit(sale, lambda p: p.pop("items"))  # malformed
    edit(sale, lambda p: p["order"].update(total="lots"))  # malformed
    edit(write_off, lambda p: p.update(quantity=3))  # a write-off must take stock away
    edit(write_off, lambda p: p.update(product_id=any_product, stand_id=new_id()))
    edit(write_off, lambda p: p.update(kind="return"))  # kind does not match the op type
    # The same sale again under a new op id: identical content, so it applies (as nothing).
    out.append(replace(sale, op_id=new_id()))
    applies = {out[-1].op_id}
    # A sale by nobody.
    out.append(replace(_fresh_sale(sale), actor=None))
    # A loyalty entry id an earlier op used.
    out.append(
        _changed(
            _fresh_sale(sale),
            lambda p: p.update(loyalty_entry_id=sale.payload["loyalty_entry_id"]),
        )
    )
    # A count whose adjustment movement reuses the id of a sale's movement earlier in the
    # batch (the count is refused), and a sale reusing a count's movement id (the sale is).
    count = next(
        o
        for o in ops
        if o.op_type == "count.record" and any(x.get("movement_id") for x in o.payload["lines"])
    )
    first = _fresh_sale(sale)
    out += [first, _fresh_count(count, first.payload["items"][0]["movement_id"])]
    second = _fresh_count(count)
    moved = next(x["movement_id"] for x in second.payload["lines"] if x.get("movement_id"))
    later = _changed(_fresh_sale(sale), lambda p: p["items"][0].update(movement_id=moved))
    out += [second, later]
    applies |= {first.op_id, second.op_id}
    request = next(o for o in ops if o.op_type == "refill.request")
    out += _bad_refills(request, world, cafe_product, uncarried)
    # The same request again under a new op id: identical, so it applies (as nothing).
    out.append(replace(request, op_id=new_id()))
    applies.add(out[-1].op_id)
    return out, applies


def _fresh_refill(op: apply.Op, **fields: Any) -> apply.Op:
    """``op``'s refill request with new ids throughout (and ``fields`` replaced)."""
    p = copy.deepcopy(dict(op.payload))
    p.update({"refill_id": new_id(), "event_id": new_id(), **fields})
    for line in p["items"]:
        line["id"] = new_id()
    return replace(op, op_id=new_id(), entity_id=p["refill_id"], payload=p)


def _bad_refills(
    request: apply.Op, world: World, cafe_product: str | None, uncarried: str
) -> list[apply.Op]:
    """Variants of ``request`` the per-op path refuses (each with its reason)."""
    p = request.payload
    line = p["items"][0]
    out = [
        _fresh_refill(request, refill_id=p["refill_id"], note="other"),  # refill id reused
        _fresh_refill(request, event_id=p["event_id"]),  # event id reused
        _changed(_fresh_refill(request), lambda q: q["items"][0].update(id=line["id"])),
        _fresh_refill(request, items=[]),
        _changed(_fresh_refill(request), lambda q: q["items"][0].update(requested_qty=0)),
        _changed(_fresh_refill(request), lambda q: q["items"][0].update(requested_qty="x")),
        _changed(_fresh_refill(request), lambda q: q["items"][0].update(product_id=new_id())),
        _changed(_fresh_refill(request), lambda q: q["items"][0].update(product_id=uncarried)),
        _fresh_refill(request, stand_id=new_id()),
        _changed(  # not in rep.anna's territory
            _fresh_refill(request, stand_id=world.stand["North Cafe"]),
            lambda q: q.update(items=[{**q["items"][0], "product_id": cafe_product}]),
        ),
        replace(_fresh_refill(request), actor=None),
        _changed(_fresh_refill(request), lambda q: q.pop("at")),  # malformed
    ]
    twice = _fresh_refill(request)  # a product listed twice
    out.append(
        _changed(
            twice, lambda q: q["items"].append({**q["items"][0], "id": new_id(), "line_no": 2})
        )
    )
    return out


def _fresh_count(op: apply.Op, movement_id: str | None = None) -> apply.Op:
    """``op``'s count with new ids (the first moving line's movement id ``movement_id``)."""
    p = copy.deepcopy(dict(op.payload))
    p["snapshot_id"] = new_id()
    first = True
    for line in p["lines"]:
        line["id"] = new_id()
        if line.get("movement_id"):
            line["movement_id"] = movement_id if first and movement_id else new_id()
            first = False
    return replace(op, op_id=new_id(), entity_id=p["snapshot_id"], payload=p)


def _batch(ops: list[apply.Op], bad: list[apply.Op], seed: int) -> list[apply.Op]:
    """The good ops with the bad ones spread among them, renumbered 1..n."""
    mixed = list(ops)
    step = max(1, len(ops) // (len(bad) + 1))
    for n, op in enumerate(bad):
        mixed.insert(min(len(mixed), (n + 1) * step + n + seed % 3), op)
    return [replace(op, device_seq=n) for n, op in enumerate(mixed, start=1)]


class Statements:
    """Counts the SQL statements an engine runs (executemany counts once)."""

    def __init__(self, engine: Engine) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args: Any) -> None:
        self.n += 1


def _push(
    server: SessionFactory, principal: Principal, device_id: str, ops: list[apply.Op], bulk: bool
) -> list[tuple[Any, ...]]:
    answers = []
    for start in range(0, len(ops), sync_server.MAX_PUSH_OPS):
        chunk = [
            sync_server.PushedOp(op, SCHEMA_VERSION)
            for op in ops[start : start + sync_server.MAX_PUSH_OPS]
        ]
        with server() as s, s.begin():
            result = sync_server.push(s, principal, device_id, chunk, bulk_apply=bulk)
        for a in result.answers:
            r = a.received
            answers.append((a.op_id, a.status, r.status, r.reason_code, r.reason, r.field))
    return answers


def _feed(server: SessionFactory) -> list[tuple[Any, ...]]:
    with server() as s, s.begin():
        rows = s.execute(
            select(
                ChangeLog.device_seq,
                ChangeLog.op_id,
                ChangeLog.op_type,
                ChangeLog.payload,
                ChangeLog.amended,
                ChangeLog.scope_stand_id,
                ChangeLog.scope_partner_id,
                ChangeLog.origin_device_id,
                ChangeLog.actor_role,
            ).order_by(ChangeLog.device_seq)
        )
        return [tuple(r) for r in rows]


def _reviews(server: SessionFactory) -> list[tuple[Any, ...]]:
    with server() as s, s.begin():
        rows = s.execute(
            select(
                SyncReview.kind,
                SyncReview.stand_id,
                SyncReview.product_id,
                SyncReview.partner_id,
                SyncReview.refs,
                SyncReview.status,
            )
        )
        return sorted(tuple(r) for r in rows)


def _received(server: SessionFactory) -> list[tuple[Any, ...]]:
    with server() as s, s.begin():
        rows = s.execute(
            select(
                SyncReceivedOp.op_id,
                SyncReceivedOp.device_seq,
                SyncReceivedOp.server_seq,
                SyncReceivedOp.status,
                SyncReceivedOp.reason_code,
                SyncReceivedOp.amended,
                SyncReceivedOp.payload,
            ).order_by(SyncReceivedOp.device_seq)
        )
        return [tuple(r) for r in rows]


@pytest.mark.parametrize("seed", [3, 11])
def test_bulk_and_per_op_push_agree(
    world_template: tuple[Path, World], tmp_path: Path, seed: int
) -> None:
    path, world = world_template
    device = _offline(world_template, tmp_path, days=3, ops=160, seed=seed)
    # Ops that read what the batch's earlier sales wrote: points redeemed down to the
    # balance those sales earned (the server opens a review when a redemption overdraws),
    # and a void of one of them.
    sold = [o.entity_id for o in ops_of(device) if o.op_type == "sale.record"][-1]
    with device() as s:
        balance = loyalty.balance(s, world.partner["N1"])
    with device() as s:
        loyalty.redeem_points(s, REP_ANNA, world.partner["N1"], balance)
    with device() as s:
        sales.void_sale(s, REP_ANNA, sold, reason="wrong item")
    good = ops_of(device)
    assert {o.op_type for o in good} >= {
        "sale.record",
        "stock.write_off",
        "count.record",
        "sale.void",
        "loyalty.redeem",
    }
    one, principal = _server(path, tmp_path / "bulk.db")
    other, _ = _server(path, tmp_path / "per_op.db")
    bad, applies = _bad_ops(good, world, one, device, _uncarried(one, other))
    ops = _batch(good, bad, seed)
    device_id = new_id()

    bulk_statements = Statements(one.kw["bind"])
    per_op_statements = Statements(other.kw["bind"])
    a = _push(one, principal, device_id, ops, bulk=True)
    b = _push(other, principal, device_id, ops, bulk=False)

    assert a == b
    by_id = {x[0]: x for x in a}
    for op in bad:
        assert by_id[op.op_id][2] == ("applied" if op.op_id in applies else "rejected"), (
            bad.index(op),
            by_id[op.op_id],
        )
    for op in good:  # the rep's own ops all apply, the void and the redemption included
        assert by_id[op.op_id][2] == "applied", by_id[op.op_id]
    assert _received(one) == _received(other)
    # A received op keeps the payload as sent when it was rejected or amended (a count reads
    # them back); one applied as sent keeps none: its feed row holds the same text.
    sent = {op.op_id: dict(op.payload) for op in ops}
    kept = {"rejected": 0, "amended": 0, "as sent": 0}
    for op_id, _seq, _server_seq, status, _code, amended, payload in _received(one):
        if status == "rejected" or amended:
            assert payload is not None, op_id
            assert json.loads(payload) == sent[op_id], op_id
            kept["rejected" if status == "rejected" else "amended"] += 1
        else:
            assert payload is None, op_id
            kept["as sent"] += 1
    assert kept["rejected"], kept
    assert kept["as sent"], kept
    assert _feed(one) == _feed(other)
    assert _reviews(one) == _reviews(other)
    assert diff(one, other) == []
    for server in (one, other):
        assert _mismatches(server) == []
    # The bulk path really ran: far fewer statements for the same result.
    assert bulk_statements.n * 2 < per_op_statements.n, (bulk_statements.n, per_op_statements.n)

    # A replay of the batch is answered "duplicate" throughout, by both paths, with no effect.
    before = _feed(one)
    again = _push(one, principal, device_id, ops[:50], bulk=True)
    assert {x[1] for x in again} == {"duplicate"}
    assert _feed(one) == before


def test_a_pulled_page_applies_in_bulk_as_op_by_op(
    world_template: tuple[Path, World], tmp_path: Path
) -> None:
    path, _world = world_template
    device = _offline(world_template, tmp_path, days=2, ops=120, seed=5)
    server, principal = _server(path, tmp_path / "server.db")
    ops = [replace(op, device_seq=n) for n, op in enumerate(ops_of(device), start=1)]
    with server() as s, s.begin():
        head = feed.head(s)
    _push(server, principal, new_id(), ops, bulk=True)
    with server() as s, s.begin():
        fed = list(
            s.scalars(
                select(ChangeLog).where(ChangeLog.device_seq > head).order_by(ChangeLog.device_seq)
            )
        )
        pulled = [
            sync_device.PulledOp(r.device_seq, apply.Op.from_row(r), r.origin_device_id, r.amended)
            for r in fed
        ]
        feed_ops = [apply.Op.from_row(r) for r in fed]
    assert len(pulled) == len(ops)

    in_bulk = _device(path, tmp_path / "in_bulk.db")
    one_by_one = _device(path, tmp_path / "one_by_one.db")
    statements = Statements(in_bulk.kw["bind"])
    with in_bulk() as s, s.begin():
        assert sync_device.apply_page(s, pulled, pulled[-1].seq)
    bulk_count = statements.n
    replay(feed_ops, one_by_one)

    assert diff(in_bulk, one_by_one) == []
    assert diff(in_bulk, server) == []
    assert _mismatches(in_bulk) == []
    assert bulk_count * 3 < len(pulled) * 10, bulk_count  # op by op takes > 10 statements each

    # The same page again (a lost commit retried) writes nothing.
    with in_bulk() as s, s.begin():
        assert sync_device.apply_page(s, pulled, pulled[-1].seq)
    assert diff(in_bulk, one_by_one) == []
    assert _mismatches(in_bulk) == []


def test_the_payload_json_is_stored_as_sent(
    world_template: tuple[Path, World], tmp_path: Path
) -> None:
    """A bulk-applied op's feed row keeps the payload the device sent; its received op keeps
    no second copy (applied as sent)."""
    path, _world = world_template
    device = _offline(
        world_template,
        tmp_path,
        days=1,
        ops=20,
        seed=1,
        stands=("North Kiosk A",),
        mix=(("sale", 1.0),),
    )
    server, principal = _server(path, tmp_path / "server.db")
    ops = [replace(op, device_seq=n) for n, op in enumerate(ops_of(device), start=1)]
    _push(server, principal, new_id(), ops, bulk=True)
    with server() as s, s.begin():
        rows = {r.op_id: r for r in s.scalars(select(ChangeLog))}
        received = {r.op_id: r for r in s.scalars(select(SyncReceivedOp))}
    for op in ops:
        assert json.loads(rows[op.op_id].payload) == dict(op.payload)
        assert received[op.op_id].payload is None
        assert received[op.op_id].server_seq == rows[op.op_id].device_seq

    # Migration 0010 going down gives each received op its payload back from its feed row.
    cfg = db.alembic_config()
    with server.kw["bind"].begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0009")
        restored = dict(conn.execute(text("SELECT op_id, payload FROM sync_received_op")).all())
    assert restored == {op.op_id: rows[op.op_id].payload for op in ops}


@pytest.mark.parametrize("refused_first", [False, True])
def test_counts_apply_in_bulk_when_applied_as_sent(
    world_template: tuple[Path, World], tmp_path: Path, refused_first: bool
) -> None:
    """A rep's clean days: counts that the server applies as sent are written in bulk with
    the sales; one that another device's count overlaps (a review) or whose window holds a
    refused op (an amended adjustment) goes the per-op way. Both paths agree."""
    path, world = world_template
    device = _offline(world_template, tmp_path, days=3, ops=150, seed=4)
    good = [replace(op, device_seq=n) for n, op in enumerate(ops_of(device), start=2)]
    counts = [o for o in good if o.op_type == "count.record"]
    assert len(counts) >= 4
    # Another device's count of the first counted stand arrives first: it overlaps.
    other = _fresh_count(counts[0])
    other = replace(other, device_id=new_id(), device_seq=1, base_seq=0)
    sale = _sale(good)
    # The device's op #1, pushed before the rest: a sale of the same products at the same
    # stand that the server refuses (its order id is another sale's: the counts after it
    # must correct for its stock, so the server amends them), or one it applies.
    first = replace(_fresh_sale(sale), device_seq=1)
    if refused_first:
        with device() as s, s.begin():
            used = s.scalars(select(StandOrder.id).limit(1)).one()
        first = _changed(first, lambda p: p["order"].update(id=used))
    device_id = good[0].device_id or ""

    results = []
    for name, bulk in (("plan.db", True), ("bulk.db", True), ("per_op.db", False)):
        server, principal = _server(path, tmp_path / name)
        _push(server, principal, other.device_id or "", [other], bulk=bulk)
        refused = _push(server, principal, device_id, [first], bulk=bulk)[0][2] == "rejected"
        assert refused == refused_first
        if name == "plan.db":
            # What the push will take in bulk, as it plans it.
            with server() as s, s.begin():
                planned = bulk_apply.plan(
                    s,
                    good,
                    [o.op_type in bulk_apply.PLANNED_TYPES for o in good],
                    AccessScope(Role.REP, territory="rep.anna"),
                    Role.REP,
                    world.built_at,
                )
            taken = {good[n].op_id for n in planned.pieces}
            continue
        results.append((server, _push(server, principal, device_id, good, bulk=bulk)))
    (one, a), (two, b) = results
    assert a == b
    assert _received(one) == _received(two)
    assert _feed(one) == _feed(two)
    assert _reviews(one) == _reviews(two)
    assert _reviews(one), "the overlapping count opens a review"
    assert diff(one, two) == []
    with one() as s, s.begin():
        counted = {
            (r.stand_id, r.product_id): r.last_counted_at for r in s.scalars(select(StandInventory))
        }
    with two() as s, s.begin():
        for r in s.scalars(select(StandInventory)):
            assert counted[(r.stand_id, r.product_id)] == r.last_counted_at
    for server in (one, two):
        assert _mismatches(server) == []
    taken_counts = {o.op_id for o in counts} & taken
    # The rep's refill requests are all plain: every one is written in bulk.
    requests = {o.op_id for o in good if o.op_type == "refill.request"}
    assert requests
    assert requests <= taken
    first_stand = counts[0].payload["stand_id"]
    if refused_first:
        # Every count's window holds the refused sale: counts go the per-op way, and those
        # of its stand are amended.
        assert taken_counts == set()
        # The first count of the refused sale's stand and products absorbs it (later ones
        # correct for that amended count in turn).
        amended = {x[0] for x in _received(one) if x[5]}
        sold = {i["product_id"] for i in first.payload["items"]}
        absorbing = next(
            o
            for o in counts
            if o.payload["stand_id"] == first.payload["order"]["stand_id"]
            and sold & {x["product_id"] for x in o.payload["lines"]}
        )
        assert absorbing.op_id in amended
    else:
        # The overlapped counts go the per-op way (a review), and so do the later counts of
        # that stand (the overlapped one is amended); the other stand's are written in bulk.
        overlapped = {
            o.op_id
            for o in counts
            if o.payload["stand_id"] == first_stand
            and {x["product_id"] for x in o.payload["lines"]}
            & {x["product_id"] for x in other.payload["lines"]}
        }
        assert counts[0].op_id in overlapped
        elsewhere = {o.op_id for o in counts if o.payload["stand_id"] != first_stand}
        assert elsewhere
        assert taken_counts == elsewhere
        by_id = {x[0]: x for x in a}
        assert all(by_id[i][2] == "applied" for i in taken_counts)
