"""Partner loyalty: an append-only points ledger (earn, activation, bonus, redeem, expire,
adjust). The balance is always the sum of the ledger; see :mod:`app.rules` for how points
are earned, how tiers are held and how points expire (oldest first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.errors import LimitExceeded, ValidationError
from app.ids import new_id
from app.models import (
    LoyaltyKind,
    LoyaltyTier,
    Package,
    PartnerStatus,
    StandLocation,
    StandLoyaltyLedger,
    StandPartner,
    StandStatus,
)
from app.rules import POINTS_EXPIRE_AFTER_DAYS, TIER_WINDOW_DAYS
from app.services.base import (
    MANAGERS,
    STAFF,
    Actor,
    get_or_404,
    optional_text,
    record_op,
    to_int,
    to_time,
    transactional,
    unused_id,
)

EARNED_KINDS = (LoyaltyKind.EARN, LoyaltyKind.ACTIVATION, LoyaltyKind.BONUS)
MAX_POINTS = 10_000_000


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    kind: LoyaltyKind
    points: int
    occurred_at: datetime
    note: str | None
    ref_type: str | None
    ref_id: str | None


@dataclass(frozen=True)
class PointsResult:
    partner_id: str
    entry_id: str | None
    points: int
    balance: int


@dataclass(frozen=True)
class TierStatus:
    partner_id: str
    tier_code: str
    tier_name: str
    earned_in_window: int
    next_tier_code: str | None
    next_tier_name: str | None
    points_to_next: int | None


@dataclass(frozen=True)
class TierChange:
    partner_id: str
    old_tier: str
    new_tier: str


def add_entry(
    session: Session,
    *,
    partner_id: str,
    kind: LoyaltyKind,
    points: int,
    occurred_at: datetime,
    actor: Actor | None,
    ref_type: str | None = None,
    ref_id: str | None = None,
    note: str | None = None,
    entry_id: str | None = None,
) -> StandLoyaltyLedger:
    """Append one ledger entry (internal: callers validate and write the op)."""
    entry = StandLoyaltyLedger(
        id=entry_id or new_id(),
        partner_id=partner_id,
        kind=kind,
        points=points,
        occurred_at=occurred_at,
        ref_type=ref_type,
        ref_id=ref_id,
        actor=actor.user if actor else None,
        note=note,
    )
    session.add(entry)
    return entry


def points_balance(session: Session, partner_id: str) -> int:
    """The partner's balance inside the caller's transaction (pending writes included)."""
    session.flush()
    return int(
        session.scalar(
            select(func.coalesce(func.sum(StandLoyaltyLedger.points), 0)).where(
                StandLoyaltyLedger.partner_id == partner_id
            )
        )
        or 0
    )


@transactional
def balance(session: Session, partner_id: str) -> int:
    """The partner's points balance: the sum of their ledger."""
    get_or_404(session, StandPartner, partner_id, "partner")
    return points_balance(session, partner_id)


@transactional
def ledger(session: Session, partner_id: str, *, limit: int = 200) -> list[LedgerEntry]:
    """The newest ledger entries first."""
    get_or_404(session, StandPartner, partner_id, "partner")
    rows = session.scalars(
        select(StandLoyaltyLedger)
        .where(StandLoyaltyLedger.partner_id == partner_id)
        .order_by(StandLoyaltyLedger.occurred_at.desc(), StandLoyaltyLedger.id.desc())
        .limit(limit)
    )
    return [
        LedgerEntry(e.id, e.kind, e.points, e.occurred_at, e.note, e.ref_type, e.ref_id)
        for e in rows
    ]


def partner_to_activate(session: Session, partner_id: str) -> StandPartner:
    """The partner, if it can be activated now: only a partner in onboarding can."""
    partner = get_or_404(session, StandPartner, partner_id, "partner")
    if partner.status != PartnerStatus.ONBOARDING:
        raise ValidationError(
            f"{partner.name} is {partner.status.value}; only a partner in onboarding can be "
            "activated.",
            field="partner_id",
        )
    return partner


def planned_stands(session: Session, partner_id: str) -> list[StandLocation]:
    """The partner's planned stands: those an activation makes live."""
    return list(
        session.scalars(
            select(StandLocation).where(
                StandLocation.partner_id == partner_id, StandLocation.status == StandStatus.PLANNED
            )
        )
    )


def activation_note(package: Package) -> str:
    return f"Welcome to {package.name}"


@transactional
def activate_partner(
    session: Session,
    actor: Actor,
    partner_id: str,
    *,
    now: datetime | None = None,
    entry_id: str | None = None,
) -> PointsResult:
    """Make an onboarding partner active: their planned stands go live and they receive the
    package's activation points, once."""
    actor.require(STAFF, "activate partners")
    partner = partner_to_activate(session, partner_id)
    at = to_time(now)
    package = session.get_one(Package, partner.package_id)
    partner.status = PartnerStatus.ACTIVE
    stand_ids = []
    for stand in planned_stands(session, partner_id):
        stand.status = StandStatus.ACTIVE
        stand_ids.append(stand.id)
    eid = None
    if package.activation_points > 0:
        eid = unused_id(session, StandLoyaltyLedger, entry_id, "entry_id", "ledger entry")
        add_entry(
            session,
            partner_id=partner_id,
            kind=LoyaltyKind.ACTIVATION,
            points=package.activation_points,
            occurred_at=at,
            actor=actor,
            note=activation_note(package),
            entry_id=eid,
        )
    session.flush()
    record_op(
        session,
        "partner.activate",
        partner_id,
        {
            "partner_id": partner_id,
            "stands": stand_ids,
            "entry_id": eid,
            "points": package.activation_points,
            "at": at,
        },
        actor,
    )
    return PointsResult(
        partner_id, eid, package.activation_points, points_balance(session, partner_id)
    )


def redeem_amount(points: object) -> int:
    """The points to redeem (a positive whole number), checked."""
    return to_int(points, "points", "Points to redeem", minimum=1, maximum=MAX_POINTS)


@transactional
def redeem_points(
    session: Session,
    actor: Actor,
    partner_id: str,
    points: object,
    *,
    note: str | None = None,
    now: datetime | None = None,
    entry_id: str | None = None,
) -> PointsResult:
    """Spend points. A redemption can never take the balance below zero."""
    actor.require(STAFF, "redeem points")
    partner = get_or_404(session, StandPartner, partner_id, "partner")
    amount = redeem_amount(points)
    current = points_balance(session, partner_id)
    if amount > current:
        raise LimitExceeded(
            f"{partner.name} has {current} points; {amount} cannot be redeemed.", field="points"
        )
    at = to_time(now)
    eid = unused_id(session, StandLoyaltyLedger, entry_id, "entry_id", "ledger entry")
    text = optional_text(note, "note", "Note", max_len=500)
    add_entry(
        session,
        partner_id=partner_id,
        kind=LoyaltyKind.REDEEM,
        points=-amount,
        occurred_at=at,
        actor=actor,
        note=text,
        entry_id=eid,
    )
    record_op(
        session,
        "loyalty.redeem",
        eid,
        {"entry_id": eid, "partner_id": partner_id, "points": -amount, "at": at, "note": text},
        actor,
    )
    return PointsResult(partner_id, eid, -amount, current - amount)


def validate_adjustment(points: object, note: str | None, *, bonus: bool) -> tuple[int, str]:
    """The points and reason of a manager's adjustment or bonus, checked."""
    amount = to_int(points, "points", "Points", minimum=-MAX_POINTS, maximum=MAX_POINTS)
    if amount == 0:
        raise ValidationError("Points must not be zero.", field="points")
    if bonus and amount < 0:
        raise ValidationError("A bonus must be positive.", field="points")
    text = optional_text(note, "note", "Reason", max_len=500)
    if not text:
        raise ValidationError("Give a reason for the adjustment.", field="note")
    return amount, text


@transactional
def adjust_points(
    session: Session,
    actor: Actor,
    partner_id: str,
    points: object,
    *,
    note: str,
    bonus: bool = False,
    now: datetime | None = None,
    entry_id: str | None = None,
) -> PointsResult:
    """A manager's bonus (positive) or correction (either sign), with a reason."""
    actor.require(MANAGERS, "grant bonuses or adjust points")
    get_or_404(session, StandPartner, partner_id, "partner")
    amount, text = validate_adjustment(points, note, bonus=bonus)
    at = to_time(now)
    eid = unused_id(session, StandLoyaltyLedger, entry_id, "entry_id", "ledger entry")
    kind = LoyaltyKind.BONUS if bonus else LoyaltyKind.ADJUST
    add_entry(
        session,
        partner_id=partner_id,
        kind=kind,
        points=amount,
        occurred_at=at,
        actor=actor,
        note=text,
        entry_id=eid,
    )
    record_op(
        session,
        f"loyalty.{kind.value}",
        eid,
        {
            "entry_id": eid,
            "partner_id": partner_id,
            "points": amount,
            "kind": kind,
            "at": at,
            "note": text,
        },
        actor,
    )
    return PointsResult(partner_id, eid, amount, points_balance(session, partner_id))


def expiry_note(max_age_days: int) -> str:
    return f"Points older than {max_age_days} days"


def expirable_points(entries: list[tuple[datetime, int]], cutoff: datetime) -> int:
    """Points to expire: what remains of lots older than ``cutoff`` after FIFO consumption.

    ``entries`` are (time, signed points) in time order. Each positive entry is a lot;
    negative entries consume the oldest open lots first. A negative larger than all open
    lots (a void reversal after a redemption, say) leaves a debt that the next lots pay off
    first, so expiry can never take more than the balance.
    """
    times: list[datetime] = []
    remaining: list[int] = []
    debt = 0
    for when, pts in entries:
        if pts > 0:
            paid = min(debt, pts)
            debt -= paid
            times.append(when)
            remaining.append(pts - paid)
            continue
        need = -pts
        for i, left in enumerate(remaining):
            if need == 0:
                break
            take = min(left, need)
            remaining[i] = left - take
            need -= take
        debt += need
    old = sum(left for when, left in zip(times, remaining, strict=True) if when < cutoff)
    balance = sum(remaining) - debt
    return max(0, min(old, balance))


@transactional
def expire_points(
    session: Session,
    actor: Actor,
    *,
    partner_id: str | None = None,
    now: datetime | None = None,
    max_age_days: int = POINTS_EXPIRE_AFTER_DAYS,
) -> list[PointsResult]:
    """Expire points older than ``max_age_days``, oldest first, for one partner or all.

    Idempotent: a second run on the same day finds nothing left to expire.
    """
    actor.require(MANAGERS, "expire points")
    at = to_time(now)
    cutoff = at - timedelta(days=to_int(max_age_days, "max_age_days", "Expiry age", minimum=1))
    ids = [partner_id] if partner_id else list(session.scalars(select(StandPartner.id)))
    if partner_id:
        get_or_404(session, StandPartner, partner_id, "partner")
    results = []
    for pid in ids:
        rows = session.execute(
            select(StandLoyaltyLedger.occurred_at, StandLoyaltyLedger.points)
            .where(StandLoyaltyLedger.partner_id == pid)
            .order_by(StandLoyaltyLedger.occurred_at, StandLoyaltyLedger.id)
        ).all()
        amount = expirable_points([(r[0], r[1]) for r in rows], cutoff)
        if amount <= 0:
            continue
        eid = new_id()
        add_entry(
            session,
            partner_id=pid,
            kind=LoyaltyKind.EXPIRE,
            points=-amount,
            occurred_at=at,
            actor=actor,
            note=expiry_note(max_age_days),
            entry_id=eid,
        )
        record_op(
            session,
            "loyalty.expire",
            eid,
            {"entry_id": eid, "partner_id": pid, "points": -amount, "at": at, "cutoff": cutoff},
            actor,
        )
        results.append(PointsResult(pid, eid, -amount, points_balance(session, pid)))
    return results


def _earned_in_window(session: Session, partner_id: str, at: datetime) -> int:
    since = at - timedelta(days=TIER_WINDOW_DAYS)
    return int(
        session.scalar(
            select(func.coalesce(func.sum(StandLoyaltyLedger.points), 0)).where(
                StandLoyaltyLedger.partner_id == partner_id,
                or_(
                    StandLoyaltyLedger.kind.in_(EARNED_KINDS),
                    # a voided sale takes back what it earned
                    (StandLoyaltyLedger.kind == LoyaltyKind.ADJUST)
                    & (StandLoyaltyLedger.ref_type == "stand_order"),
                ),
                StandLoyaltyLedger.occurred_at > since,
                StandLoyaltyLedger.occurred_at <= at,
            )
        )
        or 0
    )


def tier_for_points(tiers: list[LoyaltyTier], earned: int) -> LoyaltyTier:
    """The highest tier whose threshold ``earned`` reaches (tiers sorted by rank)."""
    held = tiers[0]
    for tier in tiers:
        if earned >= tier.threshold_points:
            held = tier
    return held


@transactional
def tier_status(session: Session, partner_id: str, *, now: datetime | None = None) -> TierStatus:
    """The partner's tier, points earned in the window, and what the next tier needs."""
    partner = get_or_404(session, StandPartner, partner_id, "partner")
    at = to_time(now)
    tiers = list(session.scalars(select(LoyaltyTier).order_by(LoyaltyTier.rank)))
    current = session.get_one(LoyaltyTier, partner.loyalty_tier_id)
    earned = _earned_in_window(session, partner_id, at)
    nxt = next((t for t in tiers if t.rank > current.rank), None)
    return TierStatus(
        partner_id,
        current.code,
        current.name,
        earned,
        nxt.code if nxt else None,
        nxt.name if nxt else None,
        max(0, nxt.threshold_points - earned) if nxt else None,
    )


@transactional
def reevaluate_tiers(
    session: Session,
    actor: Actor,
    *,
    partner_id: str | None = None,
    now: datetime | None = None,
) -> list[TierChange]:
    """Move partners to the tier their trailing-window earnings hold (up or down)."""
    actor.require(MANAGERS, "re-evaluate loyalty tiers")
    at = to_time(now)
    tiers = list(session.scalars(select(LoyaltyTier).order_by(LoyaltyTier.rank)))
    if not tiers:
        raise ValidationError("No loyalty tiers are set up.")
    by_id = {t.id: t for t in tiers}
    query = select(StandPartner).where(StandPartner.status != PartnerStatus.ENDED)
    if partner_id:
        get_or_404(session, StandPartner, partner_id, "partner")
        query = query.where(StandPartner.id == partner_id)
    changes = []
    for partner in session.scalars(query):
        target = tier_for_points(tiers, _earned_in_window(session, partner.id, at))
        if target.id == partner.loyalty_tier_id:
            continue
        old = by_id[partner.loyalty_tier_id]
        partner.loyalty_tier_id = target.id
        record_op(
            session,
            "partner.tier_change",
            partner.id,
            {"partner_id": partner.id, "from": old.code, "to": target.code, "at": at},
            actor,
        )
        changes.append(TierChange(partner.id, old.code, target.code))
    session.flush()
    return changes
