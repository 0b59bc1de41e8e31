"""Applying the coach's ops (insight decisions, expansion candidates) from their payloads.

The program: two active kiosks with 40 days of counts and sales (enough for the coach to find
slow movers, an under-faced product and overdue counts, and for expansion to score), and
three partners in onboarding whose planned stands are partner leads: one already a
candidate and gone live (its acceptance is derived in the scenario), one not yet a
candidate. The database is copied after that; the scenario runs the coach, decides
insights (one through a refill request) and adds and decides candidates. Replaying its ops
onto the copy must give the same synced rows: the insight rows the coach made during the
scenario are not in the copy, so the writers insert them from the ops.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.coach import agent, expansion
from app.db import SessionFactory
from app.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import (
    AIInsight,
    CandidateStatus,
    ExpansionCandidate,
    InsightStatus,
    LocalDevice,
    Product,
    Severity,
    StandAIInsight,
)
from app.reference import seed_reference_data
from app.services import loyalty, onboarding, refills, sales
from app.services.apply import SPECS, Op, all_specs
from app.services.inventory import record_count
from app.services.sales import SaleLine
from tests.app.apply.replay import diff, open_copy, ops_of, replay, snapshot
from tests.conftest import MANAGER, REP

FAMILY = (
    "insight.acknowledge",
    "insight.dismiss",
    "insight.done",
    "expansion.candidate_add",
    "expansion.candidate_status",
)
# request_refill(insight_id=...) also writes refill.request (the refill family's op).
REFILL_TABLES = ("stand_refill_order", "stand_refill_order_item", "stand_refill_event")

CSV = (
    "name;lat;lon;type;city;footfall\n"
    "Bahnhof Ost;52,5101;13,4345;kiosk;Berlin;3500\n"
    "Uni Mensa;52,4560;13,2900;cafe;Berlin;\n"
)


@dataclass(frozen=True)
class Program:
    now: datetime
    stands: tuple[str, ...]
    partners: tuple[str, ...]
    products: tuple[str, ...]
    #: Partner leads: gone live (already a candidate), and not yet a candidate (two).
    live_stand: str
    live_partner: str
    lead_stand: str
    lead_partner: str
    other_lead_stand: str
    #: Device sequence number of the last op before the scenario.
    seq: int
    base: Path


def _stand_input(name: str, products: list[str], lat: float, lon: float) -> onboarding.StandInput:
    return onboarding.StandInput(
        name=name,
        address="Hauptstr. 1",
        city="Berlin",
        location_type="kiosk",
        capacity_units=250,
        latitude=lat,
        longitude=lon,
        assigned_rep=REP.user,
        products=products,
    )


def _onboard(
    s: Session, name: str, pids: list[str], lat: float, lon: float, at: datetime
) -> onboarding.PartnerOnboarded:
    r = onboarding.onboard_partner(
        s,
        REP,
        onboarding.PartnerInput(name=f"{name} GmbH", contact_name="Eva", package_code="growth"),
        _stand_input(name, pids, lat, lon),
        now=at,
    )
    assert r.stand is not None
    return r


def _last_seq(factory: SessionFactory) -> int:
    with factory() as s, s.begin():
        return s.scalar(select(LocalDevice.last_seq)) or 0


def _products(factory: SessionFactory) -> list[str]:
    with factory() as s, s.begin():
        seed_reference_data(s)
        out = []
        for i in range(5):
            product = Product(
                sku=f"SKU-{i:03d}",
                gtin=None,
                name=f"Product {i:02d}",
                category="snacks",
                list_price=Decimal("1.50") + i,
                unit_cost=Decimal("0.90") + i,
                pack_size=1,
            )
            s.add(product)
            s.flush()
            out.append(product.id)
        return out


def build_program(factory: SessionFactory, base: Path) -> Program:
    now = utcnow().replace(microsecond=0)
    opened = now - timedelta(days=40)
    pids = _products(factory)
    stands, partners = [], []
    with factory() as s:
        for i, name in enumerate(("Kiosk Nord", "Kiosk Süd")):
            r = _onboard(s, name, pids, 52.52 + i / 100, 13.40, opened)
            assert r.stand is not None
            loyalty.activate_partner(s, REP, r.partner_id, now=opened)
            stands.append(r.stand.stand_id)
            partners.append(r.partner_id)
        for sid in stands:
            record_count(
                s, REP, sid, dict.fromkeys(pids, 12), counted_at=opened + timedelta(hours=1)
            )
        for d in range(1, 39):
            for i, sid in enumerate(stands):
                lines = [SaleLine(pids[0], 1)] if d < 12 or i else []
                if d % 3 == 0:
                    lines.append(SaleLine(pids[1], 1))
                if lines:
                    sales.record_sale(
                        s, REP, sid, lines, "cash", occurred_at=opened + timedelta(days=d, hours=5)
                    )
        live = _onboard(s, "Späti Live", pids[:3], 52.50, 13.30, now - timedelta(days=3))
        expansion.candidates_from_partner_leads(s, None, now=now - timedelta(days=2))
        loyalty.activate_partner(s, REP, live.partner_id, now=now - timedelta(days=1))
        lead = _onboard(s, "Späti Neu", pids[:3], 52.48, 13.35, now - timedelta(hours=5))
        other = _onboard(s, "Späti West", pids[:3], 52.47, 13.25, now - timedelta(hours=4))
    assert live.stand is not None
    assert lead.stand is not None
    assert other.stand is not None
    return Program(
        now=now,
        stands=tuple(stands),
        partners=tuple(partners),
        products=tuple(pids),
        live_stand=live.stand.stand_id,
        live_partner=live.partner_id,
        lead_stand=lead.stand.stand_id,
        lead_partner=lead.partner_id,
        other_lead_stand=other.stand.stand_id,
        seq=_last_seq(factory),
        base=snapshot(factory, base),
    )


@dataclass(frozen=True)
class Done:
    """What the scenario decided, by dedup key / candidate id."""

    ack_then_dismissed: str
    dismissed: str
    ack_then_done: str
    done: str
    refilled: str
    manual: str
    csv: tuple[str, ...]
    lead: str
    other_lead: str
    live: str


def _insights(factory: SessionFactory) -> dict[str, StandAIInsight]:
    with factory() as s, s.begin():
        return {r.dedup_key: r for r in s.scalars(select(StandAIInsight))}


def run_scenario(factory: SessionFactory, p: Program) -> Done:
    with factory() as s:
        run = agent.run_coach(s, now=p.now)
    assert run.created >= 6
    rows = sorted(_insights(factory).values(), key=lambda r: r.dedup_key)
    with_product = [r for r in rows if r.product_id is not None]
    without = [r for r in rows if r.product_id is None]
    a, b, c, e = with_product[:4]
    (d,) = without[:1]
    with factory() as s:
        agent.acknowledge_insight(s, REP, a.id)
        agent.dismiss_insight(s, REP, a.id, "Seasonal; it will pick up.")
        agent.dismiss_insight(s, MANAGER, b.id, "Not for this stand.")
        agent.acknowledge_insight(s, REP, c.id)
        agent.mark_insight_done(s, REP, c.id, "Moved to the front")
        agent.mark_insight_done(s, REP, d.id)
        refills.request_refill(s, REP, e.stand_id, {p.products[2]: 6}, insight_id=e.id)

        manual = expansion.add_candidate(
            s,
            REP,
            expansion.CandidateInput(
                name="Markthalle",
                latitude="52.5003",
                longitude="13.4210",
                location_type="Supermarket",
                address="Eisenbahnstr. 42",
                city="Berlin",
                postal_code="10997",
                attributes={"Footfall": "1200", "area": 35.5},
                notes="  Corner spot  ",
            ),
        )
        imported = expansion.import_candidates_csv(s, REP, CSV)
        # Reads the leads (adds two, accepts the one gone live, no actor) and scores.
        expansion.score_candidates(s, now=p.now)
        lead = expansion.lead_candidate_id(p.lead_stand)
        other = expansion.lead_candidate_id(p.other_lead_stand)
        expansion.set_candidate_status(
            s, MANAGER, manual.id, "accepted", reason="Opened as Nord", stand_id=p.stands[0]
        )
        expansion.set_candidate_status(
            s, MANAGER, imported.candidate_ids[0], "Rejected", reason="Too close to Süd"
        )
        expansion.set_candidate_status(s, MANAGER, lead, "rejected")
    return Done(
        ack_then_dismissed=a.dedup_key,
        dismissed=b.dedup_key,
        ack_then_done=c.dedup_key,
        done=d.dedup_key,
        refilled=e.dedup_key,
        manual=manual.id,
        csv=imported.candidate_ids,
        lead=lead,
        other_lead=other,
        live=expansion.lead_candidate_id(p.live_stand),
    )


def scenario_ops(factory: SessionFactory, p: Program) -> tuple[list[Op], tuple[str, ...]]:
    """The scenario's ops that can be written (every op of this family, and the refill
    request once its family is registered), and the tables to leave out of the diff."""
    ops = ops_of(factory, p.seq)
    known = all_specs()
    skipped = {o.op_type for o in ops} - known.keys()
    assert skipped <= {"refill.request"}
    return [o for o in ops if o.op_type in known], REFILL_TABLES if skipped else ()


def _diff(a: SessionFactory, b: SessionFactory, ignore: tuple[str, ...]) -> list[str]:
    return [line for line in diff(a, b, limit=1000) if not line.startswith(ignore)]


@dataclass(frozen=True)
class World:
    program: Program
    done: Done
    #: The device's database after the scenario.
    source: Path


@pytest.fixture(scope="module")
def world(migrated_template: Path, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The program, copied (``base``), then the scenario run: built once for the module."""
    folder = tmp_path_factory.mktemp("apply_coach")
    source = folder / "source.db"
    shutil.copyfile(migrated_template, source)
    sm = open_copy(source)
    try:
        program = build_program(sm, folder / "base.db")
        done = run_scenario(sm, program)
    finally:
        sm.kw["bind"].dispose()
    return World(program, done, source)


def _open(path: Path, tmp_path: Path, name: str) -> Iterator[SessionFactory]:
    dest = tmp_path / f"{name}.db"
    shutil.copyfile(path, dest)
    sm = open_copy(dest)
    try:
        yield sm
    finally:
        sm.kw["bind"].dispose()


@pytest.fixture
def source(world: World, tmp_path: Path) -> Iterator[SessionFactory]:
    """The device after the scenario (a fresh copy per test)."""
    yield from _open(world.source, tmp_path, "source")


@pytest.fixture
def target(world: World, tmp_path: Path) -> Iterator[SessionFactory]:
    """A copy of the device's database before the scenario."""
    yield from _open(world.program.base, tmp_path, "target")


@pytest.fixture
def server(world: World, tmp_path: Path) -> Iterator[SessionFactory]:
    """The server: another copy from before the scenario, where things then differ."""
    yield from _open(world.program.base, tmp_path, "server")


def op_of(ops: list[Op], op_type: str, *, key: str | None = None, entity: str | None = None) -> Op:
    for o in ops:
        if o.op_type != op_type:
            continue
        if key is not None and o.payload.get("dedup_key") != key:
            continue
        if entity is not None and o.entity_id != entity:
            continue
        return o
    raise AssertionError(f"no {op_type} op for {key or entity}")


def apply_checked(sm: SessionFactory, op: Op) -> object:
    """Check and write ``op`` as the server does (one transaction); returns check's answer."""
    spec = SPECS[op.op_type]
    with sm() as s, s.begin():
        answer = spec.check(s, op)
        spec.write(s, op)
    return answer


# ------------------------------------------------------------------ replay equivalence


def test_replaying_the_scenario_recreates_every_decision_and_candidate(
    source: SessionFactory, world: World, target: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, ignore = scenario_ops(source, program)
    types = [o.op_type for o in ops]
    assert set(FAMILY) <= set(types)
    assert types.count("insight.done") == 3  # one of them from the refill request
    derived = [o for o in ops if o.op_type == "expansion.candidate_status" and o.actor is None]
    assert [o.entity_id for o in derived] == [done.live]

    replay(ops, target)
    assert _diff(source, target, ignore) == []
    # The inserted insights keep the device's ids (free on the target).
    source_rows, target_rows = _insights(source), _insights(target)
    for key in (done.dismissed, done.done, done.refilled):
        assert target_rows[key].id == source_rows[key].id
        assert target_rows[key].created_at == source_rows[key].created_at
    assert target_rows[done.refilled].status == InsightStatus.DONE
    assert target_rows[done.refilled].status_reason == "Refill requested"
    assert target_rows[done.ack_then_dismissed].status == InsightStatus.DISMISSED
    # Undecided insights stay each device's own: none is made on the target.
    assert len(target_rows) == 5

    # Idempotent: the same ops again change nothing.
    replay(ops, target)
    assert _diff(source, target, ignore) == []
    with target() as s, s.begin():
        assert s.get_one(ExpansionCandidate, done.manual).stand_id == program.stands[0]
        assert s.get_one(ExpansionCandidate, done.live).status == CandidateStatus.ACCEPTED
        assert s.get_one(ExpansionCandidate, done.live).status_reason == "The stand went live."


def test_a_receiver_whose_coach_made_the_insights_keeps_its_rows(
    source: SessionFactory, world: World, target: SessionFactory
) -> None:
    program, done = world.program, world.done
    with target() as s:
        agent.run_coach(s, now=program.now)  # the same insights, under the target's own ids
    own = {k: r.id for k, r in _insights(target).items()}
    ops, ignore = scenario_ops(source, program)
    replay(ops, target)
    assert _diff(source, target, ignore) == []
    after = _insights(target)
    assert {k: r.id for k, r in after.items()} == own
    assert after[done.done].id != _insights(source)[done.done].id


def test_an_insight_id_taken_on_the_receiver_gets_a_new_id(
    source: SessionFactory, world: World, target: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    op = op_of(ops, "insight.dismiss", key=done.dismissed)
    with target() as s, s.begin():
        s.add(
            StandAIInsight(
                id=op.payload["insight_id"],
                stand_id=program.stands[1],
                kind="count_overdue",
                severity=Severity.INFO,
                message="another insight",
                model_version="test",
                dedup_key="another",
            )
        )
    replay([op], target)
    row = _insights(target)[done.dismissed]
    assert row.id != op.payload["insight_id"]
    assert (row.status, row.status_reason) == (InsightStatus.DISMISSED, "Not for this stand.")
    assert row.message == op.payload["insight"]["message"]


def test_candidate_status_closes_the_receivers_own_insight(
    source: SessionFactory, world: World, target: SessionFactory
) -> None:
    program, done = world.program, world.done
    with source() as s, s.begin():
        closed = {
            i.dedup_key: i.status
            for i in s.scalars(select(AIInsight).where(AIInsight.scope == expansion.SCOPE))
        }
    assert closed[expansion.dedup_key(done.manual)] == InsightStatus.DONE
    assert closed[expansion.dedup_key(done.csv[0])] == InsightStatus.DISMISSED
    ops, _ = scenario_ops(source, program)
    adds = [o for o in ops if o.op_type == "expansion.candidate_add"]
    replay(adds, target)
    with target() as s:
        expansion.score_candidates(s, now=program.now, include_partner_leads=False)
    replay([o for o in ops if o.op_type == "expansion.candidate_status"], target)
    with target() as s, s.begin():
        mine = {
            i.dedup_key: (i.status, i.status_reason)
            for i in s.scalars(select(AIInsight).where(AIInsight.scope == expansion.SCOPE))
        }
    assert mine[expansion.dedup_key(done.manual)] == (InsightStatus.DONE, "Opened as Nord")
    assert mine[expansion.dedup_key(done.csv[0])] == (InsightStatus.DISMISSED, "Too close to Süd")
    assert mine[expansion.dedup_key(done.csv[1])][0] == InsightStatus.NEW


# ------------------------------------------------------------------ check: insights


def test_a_decision_on_an_insight_closed_on_the_server_is_refused(
    source: SessionFactory, world: World, server: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    with server() as s:
        agent.run_coach(s, now=program.now)
    rows = _insights(server)
    with server() as s:
        agent.dismiss_insight(s, MANAGER, rows[done.done].id, "No")
        agent.acknowledge_insight(s, MANAGER, rows[done.ack_then_done].id)
    with pytest.raises(InvalidTransition) as err:
        apply_checked(server, op_of(ops, "insight.done", key=done.done))
    assert err.value.message == "This insight is already dismissed; it cannot be done now."
    assert err.value.field == "status"
    with pytest.raises(InvalidTransition) as err:
        apply_checked(server, op_of(ops, "insight.acknowledge", key=done.ack_then_done))
    assert (
        err.value.message == "This insight is already acknowledged; it cannot be acknowledged now."
    )
    # Done from acknowledged is fine, and the server's own row (its id) is the one set.
    assert apply_checked(server, op_of(ops, "insight.done", key=done.ack_then_done)) is None
    row = _insights(server)[done.ack_then_done]
    assert row.id == rows[done.ack_then_done].id
    assert (row.status, row.status_reason) == (InsightStatus.DONE, "Moved to the front")


def test_a_decision_on_an_insight_the_server_lacks_inserts_it(
    source: SessionFactory, world: World, server: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    op = op_of(ops, "insight.done", key=done.refilled)
    assert apply_checked(server, op) is None
    row = _insights(server)[done.refilled]
    device = _insights(source)[done.refilled]
    assert row.id == device.id
    for col in ("stand_id", "product_id", "kind", "severity", "message", "action", "evidence"):
        assert getattr(row, col) == getattr(device, col), col
    assert (row.status, row.status_reason) == (InsightStatus.DONE, "Refill requested")


def test_insight_decisions_need_staff_and_a_known_stand(
    source: SessionFactory, world: World, server: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    op = op_of(ops, "insight.done", key=done.done)
    with pytest.raises(PermissionDenied) as err:
        apply_checked(server, replace(op, actor_role="partner"))
    assert err.value.message == "A partner may not complete coach insights."
    dismiss = op_of(ops, "insight.dismiss", key=done.dismissed)
    with pytest.raises(PermissionDenied, match=r"^A partner may not dismiss coach insights\.$"):
        apply_checked(server, replace(dismiss, actor_role="partner"))
    with pytest.raises(ValidationError) as verr:
        apply_checked(server, replace(dismiss, payload={**dismiss.payload, "reason": " "}))
    assert verr.value.message == "A reason for dismissing is required."
    missing = new_id()
    with pytest.raises(NotFound) as nerr:
        apply_checked(server, replace(op, payload={**op.payload, "stand_id": missing}))
    assert nerr.value.message == f"No stand with id {missing!r}."
    with pytest.raises(ValidationError, match="does not describe it"):
        apply_checked(server, replace(op, payload={**op.payload, "insight": None}))
    with pytest.raises(ValidationError, match="cannot set an insight to 'dismissed'"):
        apply_checked(server, replace(op, payload={**op.payload, "to": "dismissed"}))
    assert done.done not in _insights(server)


def test_insight_scope_is_the_stand_and_its_partner(
    source: SessionFactory, world: World, server: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    op = op_of(ops, "insight.done", key=done.refilled)
    stand = op.payload["stand_id"]
    partner = program.partners[program.stands.index(stand)]
    spec = SPECS[op.op_type]
    with server() as s, s.begin():
        assert spec.scope(s, op) == (stand, partner)  # before the write: no row yet
        spec.write(s, op)
        assert spec.scope(s, op) == (stand, partner)


# ------------------------------------------------------------------ check: candidates


def test_a_candidate_at_a_place_another_device_added_is_refused(
    source: SessionFactory, world: World, server: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    with server() as s:
        theirs = expansion.add_candidate(
            s,
            MANAGER,
            expansion.CandidateInput(
                name="markthalle", latitude=52.5003, longitude=13.421, location_type="kiosk"
            ),
        )
    op = op_of(ops, "expansion.candidate_add", entity=done.manual)
    with pytest.raises(ValidationError) as err:
        apply_checked(server, op)
    assert (
        err.value.message
        == f"Markthalle at these coordinates is already a candidate ({theirs.id})."
    )
    assert err.value.field == "name"
    with pytest.raises(PermissionDenied, match=r"^A partner may not add expansion candidates\.$"):
        apply_checked(server, replace(op, actor_role="partner"))
    bad = {**op.payload["candidate"], "latitude": 123}
    with pytest.raises(ValidationError, match=r"^Latitude must be between -90 and 90\.$"):
        apply_checked(server, replace(op, payload={**op.payload, "candidate": bad}))


def test_a_partner_lead_read_on_two_devices_is_one_candidate(
    source: SessionFactory, world: World, server: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    with server() as s:
        expansion.candidates_from_partner_leads(s, None, now=program.now - timedelta(hours=1))
    with server() as s, s.begin():
        before = s.get_one(ExpansionCandidate, done.lead)
        stamp = (before.created_at, before.updated_at)
    op = op_of(ops, "expansion.candidate_add", entity=done.lead)
    assert op.actor is None
    assert apply_checked(server, op) is None
    with server() as s, s.begin():
        after = s.get_one(ExpansionCandidate, done.lead)
        assert (after.created_at, after.updated_at) == stamp
    # The derived acceptance of the lead gone live: the server already accepted it itself.
    live = op_of(ops, "expansion.candidate_status", entity=done.live)
    assert live.actor is None
    with server() as s, s.begin():
        row = s.get_one(ExpansionCandidate, done.live)
        assert row.status == CandidateStatus.ACCEPTED
        decided = (row.status_reason, row.updated_at)
    assert apply_checked(server, live) is None
    with server() as s, s.begin():
        row = s.get_one(ExpansionCandidate, done.live)
        assert (row.status_reason, row.updated_at) == decided


def test_the_same_candidate_id_for_another_place_is_a_conflict(
    source: SessionFactory, world: World, server: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    with server() as s:
        expansion.add_candidate(
            s,
            REP,
            expansion.CandidateInput(
                name="Elsewhere", latitude=50.0, longitude=8.0, location_type="kiosk"
            ),
            candidate_id=done.csv[1],
        )
    op = op_of(ops, "expansion.candidate_add", entity=done.csv[1])
    with pytest.raises(Conflict) as err:
        apply_checked(server, op)
    assert err.value.message == f"Candidate id {done.csv[1]} is already used by another record."
    # The same candidate again (a resent op under a new op id) is fine.
    replay([op_of(ops, "expansion.candidate_add", entity=done.csv[0])], server)
    assert apply_checked(server, op_of(ops, "expansion.candidate_add", entity=done.csv[0])) is None


def test_a_candidate_decision_needs_a_manager_and_an_open_candidate(
    source: SessionFactory, world: World, server: SessionFactory
) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    replay([o for o in ops if o.op_type == "expansion.candidate_add"], server)
    op = op_of(ops, "expansion.candidate_status", entity=done.manual)
    with pytest.raises(PermissionDenied) as perr:
        apply_checked(server, replace(op, actor_role="rep"))
    assert perr.value.message == "A rep may not decide on expansion candidates."
    with server() as s:
        expansion.set_candidate_status(s, MANAGER, done.manual, "rejected")
    with pytest.raises(ValidationError) as err:
        apply_checked(server, op)
    assert err.value.message == "Markthalle is already rejected."
    assert err.value.field == "status"
    # A derived op finding the candidate decided otherwise is refused the same way.
    live = op_of(ops, "expansion.candidate_status", entity=done.live)
    with server() as s:
        expansion.set_candidate_status(s, MANAGER, done.live, "rejected")
    with pytest.raises(ValidationError, match=r"^Späti Live is already rejected\.$"):
        apply_checked(server, live)
    # The stand it links is taken on the server.
    other = op_of(ops, "expansion.candidate_status", entity=done.csv[0])
    linked = replace(
        other, payload={**other.payload, "status": "accepted", "stand_id": program.stands[0]}
    )
    with server() as s:
        expansion.set_candidate_status(
            s, MANAGER, done.csv[1], "accepted", stand_id=program.stands[0]
        )
    with pytest.raises(ValidationError) as err:
        apply_checked(server, linked)
    assert err.value.message == f"That stand already belongs to candidate {done.csv[1]}."
    missing = new_id()
    with pytest.raises(NotFound, match="No candidate with id"):
        apply_checked(server, replace(op, payload={**op.payload, "candidate_id": missing}))


def test_candidate_scope(source: SessionFactory, world: World, server: SessionFactory) -> None:
    program, done = world.program, world.done
    ops, _ = scenario_ops(source, program)
    with server() as s, s.begin():
        for o in ops:
            if o.op_type != "expansion.candidate_add":
                continue
            spec = SPECS[o.op_type]
            before = spec.scope(s, o)
            spec.write(s, o)
            assert spec.scope(s, o) == before
            if o.entity_id == done.lead:
                assert before == (program.lead_stand, program.lead_partner)
            elif o.entity_id == done.manual:
                assert before == (None, None)
        for o in ops:
            if o.op_type != "expansion.candidate_status":
                continue
            spec = SPECS[o.op_type]
            before = spec.scope(s, o)
            spec.write(s, o)
            assert spec.scope(s, o) == before
            if o.entity_id == done.manual:
                assert before == (program.stands[0], None)
            elif o.entity_id == done.lead:
                assert before == (program.lead_stand, program.lead_partner)
            elif o.entity_id == done.live:
                assert before == (program.live_stand, program.live_partner)
