"""Op writers of the partners family: partners and their stands, loyalty points, the catalog
and commission payouts (docs/sync-design.md §1.3).

Facts (``partner.onboard``, ``stand.create``, ``loyalty.redeem/adjust/bonus``, ``product.add``)
are stored as recorded, with the payload's ids. Transitions (``partner.activate``,
``payout.schedule``, ``payout.paid``) set the payload's target state; their ``check`` runs the
services' from-state guards. ``product.update`` is descriptive: only the field groups the op
changed are applied, and an overwritten value goes to ``sync_field_history``. Tiers, points
expiry and payouts are computed on the server from every device's data, so a device may not
push them; their writers replay the server's own ops on devices.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from app.clock import utcnow
from app.errors import Conflict, ValidationError
from app.ids import new_id
from app.models import (
    LocationType,
    LoyaltyKind,
    Package,
    PartnerStatus,
    Payout,
    PayoutStatus,
    Product,
    Role,
    StandInventory,
    StandLocation,
    StandLoyaltyLedger,
    StandPartner,
    StandStatus,
    SyncFieldHistory,
    SyncReview,
)
from app.rules import payment_reference, qr_payload
from app.services import catalog, loyalty, onboarding, payouts
from app.services.apply import Checker, Op, OpClass, dec, opt_dec, spec, ts
from app.services.base import MANAGERS, STAFF, client_id, get_or_404, to_int, to_json, to_money

# --------------------------------------------------------------------------- shared helpers


def _require(op: Op, roles: Iterable[Role], action: str) -> None:
    """The op type's role rule, with the services' text ("A rep may not ...")."""
    actor = op.as_actor()
    if actor is not None:
        actor.require(tuple(roles), action)


def _partner_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    return None, str(op.payload["partner_id"])


def _no_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    return None, None


def _server_derived(what: str) -> Checker:
    """The check of an op type only the server computes: a device's op is always refused."""

    def check(session: Session, op: Op) -> Mapping[str, Any] | None:
        raise ValidationError(
            f"{what} computed on the server from every device's data; run it while online."
        )

    return check


def _ledger_fact_exists(session: Session, p: Mapping[str, Any], kind: LoyaltyKind) -> bool:
    """Whether the payload's ledger entry is already stored (same content: the op is a no-op);
    an entry id already used for something else is a conflict."""
    eid = client_id(p["entry_id"], "entry_id")
    entry = session.get(StandLoyaltyLedger, eid)
    if entry is None:
        return False
    same = (
        entry.partner_id == p["partner_id"]
        and entry.kind == kind
        and entry.points == p["points"]
        and entry.occurred_at == ts(p["at"])
        and entry.note == p.get("note")
    )
    if not same:
        raise Conflict(f"A ledger entry with id {eid} already exists.", field="entry_id")
    return True


def _add_ledger_entry(session: Session, op: Op, kind: LoyaltyKind, note: str | None) -> None:
    p = op.payload
    if session.get(StandLoyaltyLedger, p["entry_id"]) is not None:
        return
    loyalty.add_entry(
        session,
        partner_id=p["partner_id"],
        kind=kind,
        points=int(p["points"]),
        occurred_at=ts(p["at"]),
        actor=op.as_actor(),
        note=note,
        entry_id=p["entry_id"],
    )
    session.flush()


def _points(value: object) -> int:
    return to_int(value, "points", "Points")


# --------------------------------------------------------------------------- partner.onboard

_PARTNER_FIELDS = (
    "name",
    "contact_name",
    "email",
    "phone",
    "region",
    "payout_method",
    "payout_account",
    "notes",
)


def _check_onboard(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, STAFF, "onboard partners")
    p = op.payload["partner"]
    package = onboarding.package_by_code(session, p["package"])
    onboarding.tier_by_code(session, p["tier"])
    pid = client_id(p["id"], "partner_id")
    existing = session.get(StandPartner, pid)
    if existing is not None:
        # The tier and the status move on after onboarding; what was recorded does not.
        recorded = {f: p.get(f) for f in _PARTNER_FIELDS} | {"notes": p.get("notes") or ""}
        same = existing.package_id == package.id and all(
            getattr(existing, f) == value for f, value in recorded.items()
        )
        if not same:
            raise Conflict(f"A partner with id {pid} already exists.", field="partner_id")
    return None


def _onboard_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    return None, str(op.payload["partner"]["id"])


@spec(
    "partner.onboard",
    OpClass.FACT,
    check=_check_onboard,
    scope=_onboard_scope,
    summary="A partner signed up (status onboarding, with its package and entry tier).",
)
def write_partner_onboard(session: Session, op: Op) -> None:
    p = op.payload["partner"]
    if session.get(StandPartner, p["id"]) is not None:
        return
    at = ts(op.payload["at"])
    session.add(
        StandPartner(
            id=p["id"],
            package_id=onboarding.package_by_code(session, p["package"]).id,
            loyalty_tier_id=onboarding.tier_by_code(session, p["tier"]).id,
            status=PartnerStatus.ONBOARDING,
            created_at=at,
            updated_at=at,
            **{f: p.get(f) for f in _PARTNER_FIELDS if f != "notes"},
            notes=p.get("notes") or "",
        )
    )
    session.flush()


# --------------------------------------------------------------------------- stand.create

_STAND_FIELDS = (
    "partner_id",
    "payment_reference",
    "name",
    "address",
    "city",
    "postal_code",
    "country",
    "latitude",
    "longitude",
    "location_type",
    "capacity_units",
    "assigned_rep",
    "timezone",
)


def _stand_input(st: Mapping[str, Any]) -> onboarding.StandInput:
    return onboarding.StandInput(
        name=st["name"],
        address=st["address"],
        city=st["city"],
        location_type=st["location_type"],
        capacity_units=st["capacity_units"],
        postal_code=st.get("postal_code"),
        country=st.get("country") or "",
        latitude=st.get("latitude"),
        longitude=st.get("longitude"),
        assigned_rep=st.get("assigned_rep"),
        timezone=st.get("timezone") or onboarding.DEFAULT_TIMEZONE,
    )


def _check_stand(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, STAFF, "add stands")
    st = op.payload["stand"]
    sid = client_id(st["id"], "stand_id")
    existing = session.get(StandLocation, sid)
    if existing is not None:
        # The status moves on (activation); what was recorded does not.
        if any(getattr(existing, f) != st.get(f) for f in _STAND_FIELDS):
            raise Conflict(f"A stand with id {sid} already exists.", field="stand_id")
        return None
    onboarding.validate_stand(_stand_input(st))
    # Locked, and the stands counted, as add_stand does.
    partner = onboarding.partner_for_new_stand(session, st["partner_id"])
    package = session.get_one(Package, partner.package_id)
    onboarding.check_stand_limit(session, partner, package)
    if st["payment_reference"] != payment_reference(sid):
        raise ValidationError(
            "The payment reference does not belong to this stand id.", field="payment_reference"
        )
    onboarding.check_reference_free(session, st["payment_reference"])
    for line in op.payload["inventory"]:
        # A product discontinued since is still a product: the stand was made with it.
        onboarding.resolve_product(session, line["product_id"], include_inactive=True)
        line_id = client_id(line["id"], "inventory")
        if session.get(StandInventory, line_id) is not None:
            raise Conflict(f"A stand inventory line with id {line_id} already exists.")
    # Another device may have activated the partner meanwhile: the stand is then live.
    status = onboarding.initial_stand_status(partner)
    if st["status"] != status.value:
        return {**op.payload, "stand": {**st, "status": status.value}}
    return None


def _stand_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    st = op.payload["stand"]
    return str(st["id"]), str(st["partner_id"])


@spec(
    "stand.create",
    OpClass.FACT,
    check=_check_stand,
    scope=_stand_scope,
    summary="A stand was added for a partner, with its assortment and par levels.",
)
def write_stand_create(session: Session, op: Op) -> None:
    st = op.payload["stand"]
    if session.get(StandLocation, st["id"]) is not None:
        return
    at = ts(op.payload["at"])
    session.add(
        StandLocation(
            id=st["id"],
            partner_id=st["partner_id"],
            name=st["name"],
            address=st["address"],
            city=st["city"],
            postal_code=st.get("postal_code"),
            country=st["country"],
            latitude=st.get("latitude"),
            longitude=st.get("longitude"),
            location_type=LocationType(st["location_type"]),
            assigned_rep=st.get("assigned_rep"),
            capacity_units=int(st["capacity_units"]),
            timezone=st["timezone"],
            payment_reference=st["payment_reference"],
            qr_payload=qr_payload(st["id"], st["payment_reference"]),
            status=StandStatus(st["status"]),
            created_at=at,
            updated_at=at,
        )
    )
    session.flush()  # the stand row before its inventory rows
    for line in op.payload["inventory"]:
        if session.get(StandInventory, line["id"]) is not None:
            continue
        session.add(
            StandInventory(
                id=line["id"],
                stand_id=st["id"],
                product_id=line["product_id"],
                par_level=int(line["par_level"]),
                reorder_point=int(line["reorder_point"]),
                capacity=int(line["capacity"]),
                on_hand=0,
                created_at=at,
                updated_at=at,
            )
        )
    session.flush()


# --------------------------------------------------------------------------- partner.activate


def _check_activate(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, STAFF, "activate partners")
    p = op.payload
    partner = loyalty.partner_to_activate(session, p["partner_id"])
    package = session.get_one(Package, partner.package_id)
    # What the server knows: its planned stands of the partner and its package's bonus.
    stands = [s.id for s in loyalty.planned_stands(session, partner.id)]
    sent = list(p.get("stands") or [])
    points = package.activation_points
    entry_id = p.get("entry_id")
    if points > 0:
        if entry_id is None:
            entry_id = new_id()
        elif session.get(StandLoyaltyLedger, client_id(entry_id, "entry_id")) is not None:
            raise Conflict(f"A ledger entry with id {entry_id} already exists.", field="entry_id")
    else:
        entry_id = None
    as_applied = {
        **p,
        "stands": sent if set(sent) == set(stands) else stands,
        "points": points,
        "entry_id": entry_id,
    }
    return as_applied if as_applied != dict(p) else None


@spec(
    "partner.activate",
    OpClass.TRANSITION,
    check=_check_activate,
    scope=_partner_scope,
    summary="A partner went live: its planned stands became active; activation points.",
)
def write_partner_activate(session: Session, op: Op) -> None:
    p = op.payload
    partner = get_or_404(session, StandPartner, p["partner_id"], "partner")
    partner.status = PartnerStatus.ACTIVE
    for sid in p.get("stands") or []:
        # A stand outside this database's scope is not here; a paused or removed one stays so.
        stand = session.get(StandLocation, sid)
        if stand is not None and stand.status == StandStatus.PLANNED:
            stand.status = StandStatus.ACTIVE
    entry_id, points = p.get("entry_id"), int(p["points"])
    if entry_id and points > 0 and session.get(StandLoyaltyLedger, entry_id) is None:
        package = session.get_one(Package, partner.package_id)
        loyalty.add_entry(
            session,
            partner_id=partner.id,
            kind=LoyaltyKind.ACTIVATION,
            points=points,
            occurred_at=ts(p["at"]),
            actor=op.as_actor(),
            note=loyalty.activation_note(package),
            entry_id=entry_id,
        )
    session.flush()


# --------------------------------------------------------------------------- partner.tier_change


@spec(
    "partner.tier_change",
    OpClass.SERVER_DERIVED,
    check=_server_derived("Loyalty tiers are"),
    scope=_partner_scope,
    summary="The server moved a partner to the tier its trailing-window earnings hold.",
)
def write_tier_change(session: Session, op: Op) -> None:
    p = op.payload
    partner = get_or_404(session, StandPartner, p["partner_id"], "partner")
    partner.loyalty_tier_id = onboarding.tier_by_code(session, p["to"]).id
    session.flush()


# --------------------------------------------------------------------------- loyalty facts


def _check_redeem(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, STAFF, "redeem points")
    p = op.payload
    get_or_404(session, StandPartner, p["partner_id"], "partner")
    amount = loyalty.redeem_amount(-_points(p["points"]))
    if _ledger_fact_exists(session, p, LoyaltyKind.REDEEM):
        return None
    # No balance guard: the partner already had the benefit. Two offline redemptions that
    # overdraw the balance together go to a manager's review list instead.
    balance = loyalty.points_balance(session, p["partner_id"]) - amount
    if balance < 0:
        session.add(
            SyncReview(
                kind="loyalty_overdrawn",
                partner_id=p["partner_id"],
                refs=json.dumps({"entry_id": p["entry_id"], "balance": balance}, sort_keys=True),
            )
        )
    return None


@spec(
    "loyalty.redeem",
    OpClass.FACT,
    check=_check_redeem,
    scope=_partner_scope,
    summary="A partner spent points.",
)
def write_redeem(session: Session, op: Op) -> None:
    _add_ledger_entry(session, op, LoyaltyKind.REDEEM, op.payload.get("note"))


def _check_adjust(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, MANAGERS, "grant bonuses or adjust points")
    p = op.payload
    get_or_404(session, StandPartner, p["partner_id"], "partner")
    kind = LoyaltyKind.BONUS if op.op_type == "loyalty.bonus" else LoyaltyKind.ADJUST
    if p.get("kind") != kind.value:
        raise ValidationError(f"A {op.op_type} change must have kind {kind.value}.", field="kind")
    loyalty.validate_adjustment(p["points"], p.get("note"), bonus=kind == LoyaltyKind.BONUS)
    _ledger_fact_exists(session, p, kind)
    return None


def _write_adjust(session: Session, op: Op) -> None:
    _add_ledger_entry(session, op, LoyaltyKind(op.payload["kind"]), op.payload.get("note"))


spec(
    "loyalty.adjust",
    OpClass.FACT,
    check=_check_adjust,
    scope=_partner_scope,
    summary="A manager corrected a partner's points.",
)(_write_adjust)
spec(
    "loyalty.bonus",
    OpClass.FACT,
    check=_check_adjust,
    scope=_partner_scope,
    summary="A manager granted a partner bonus points.",
)(_write_adjust)


@spec(
    "loyalty.expire",
    OpClass.SERVER_DERIVED,
    check=_server_derived("Points expiry is"),
    scope=_partner_scope,
    summary="The server expired a partner's points older than the expiry age.",
)
def write_expire(session: Session, op: Op) -> None:
    p = op.payload
    age = ts(p["at"]) - ts(p["cutoff"])
    _add_ledger_entry(session, op, LoyaltyKind.EXPIRE, loyalty.expiry_note(age.days))


# --------------------------------------------------------------------------- product.add

# What a product is: the columns no service changes after it was added.
_PRODUCT_IDENTITY = ("sku", "gtin", "name", "category", "pack_size")


def _check_product_add(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, MANAGERS, "change the catalog")
    p = op.payload["product"]
    pid = client_id(p["id"], "product_id")
    existing = session.get(Product, pid)
    if existing is not None:
        if any(getattr(existing, f) != p.get(f) for f in _PRODUCT_IDENTITY):
            raise Conflict(f"A product with id {pid} already exists.", field="product_id")
        return None
    catalog.validate_new_product(
        session,
        sku=p["sku"],
        name=p["name"],
        category=p["category"],
        list_price=p["list_price"],
        unit_cost=p["unit_cost"],
        gtin=p.get("gtin"),
        min_price=p.get("min_price"),
        max_price=p.get("max_price"),
        pack_size=p.get("pack_size", 1),
    )
    return None


@spec(
    "product.add",
    OpClass.FACT,
    check=_check_product_add,
    scope=_no_scope,
    summary="A product was added to the catalog.",
)
def write_product_add(session: Session, op: Op) -> None:
    p = op.payload["product"]
    if session.get(Product, p["id"]) is not None:
        return
    session.add(Product(id=p["id"], **{f: _product_value(f, p.get(f)) for f in _PRODUCT_COLUMNS}))
    session.flush()


# --------------------------------------------------------------------------- product.update

_MONEY_FIELDS = {
    "list_price": "List price",
    "unit_cost": "Unit cost",
    "min_price": "Minimum price",
    "max_price": "Maximum price",
}
_PRODUCT_COLUMNS = (*_PRODUCT_IDENTITY, *_MONEY_FIELDS, "active")
# Fields that change together: the guardrails constrain the prices as one value.
PRODUCT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("prices", ("list_price", "min_price", "max_price")),
    ("unit_cost", ("unit_cost",)),
    ("active", ("active",)),
)


def _product_value(field: str, value: Any) -> Any:
    """A product field from a payload, typed as the column holds it."""
    if field in _MONEY_FIELDS:
        return opt_dec(value)
    if field == "active":
        return bool(value)
    if field == "pack_size":
        return int(value)
    return value


def product_groups(op: Op) -> list[tuple[str, tuple[str, ...]]]:
    """The field groups of ``product.update`` that the op changed (after ≠ before). A field
    the payload carries outside the known groups is a group of its own."""
    before, after = op.payload["before"], op.payload["after"]
    known = {f for _, fields in PRODUCT_GROUPS for f in fields}
    others = sorted((set(before) | set(after)) - known - {"id"})
    groups = [*PRODUCT_GROUPS, *((f, (f,)) for f in others)]
    return [
        (name, fields)
        for name, fields in groups
        if any(_product_value(f, before.get(f)) != _product_value(f, after.get(f)) for f in fields)
    ]


def _check_product_update(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, MANAGERS, "change the catalog")
    before, after = op.payload["before"], op.payload["after"]
    product = get_or_404(session, Product, after["id"], "product", for_update=True)
    for values in (before, after):  # amounts as the service parses them (a malformed op)
        for f, label in _MONEY_FIELDS.items():
            if values.get(f) is not None or f in ("list_price", "unit_cost"):
                to_money(values.get(f), f, label)
    changed = product_groups(op)
    # The row as it will be, in memory: the server's values, the op's changed groups on top.
    merged = {f: getattr(product, f) for f in ("list_price", "min_price", "max_price")}
    for _, fields in changed:
        merged.update({f: _product_value(f, after.get(f)) for f in fields})
    catalog._guardrails(merged["list_price"], merged["min_price"], merged["max_price"])
    at = op.created_at or utcnow()
    for name, fields in changed:
        current = {f: getattr(product, f, None) for f in fields}
        seen = {f: _product_value(f, before.get(f)) for f in fields}
        new = {f: _product_value(f, after.get(f)) for f in fields}
        if current == new:
            continue  # nothing is overwritten
        session.add(
            SyncFieldHistory(
                entity_type="product",
                entity_id=product.id,
                field_group=name,
                old_value=to_json(current),
                new_value=to_json(new),
                op_id=op.op_id,
                concurrent=current != seen,
                actor=op.actor,
                at=at,
            )
        )
    return None


@spec(
    "product.update",
    OpClass.DESCRIPTIVE,
    check=_check_product_update,
    scope=_no_scope,
    summary="A product's prices, guardrails, cost or whether it is sold changed.",
)
def write_product_update(session: Session, op: Op) -> None:
    after = op.payload["after"]
    product = get_or_404(session, Product, after["id"], "product")
    columns = Product.__table__.columns
    for _, fields in product_groups(op):
        for f in fields:
            if f in columns and f != "id":
                setattr(product, f, _product_value(f, after.get(f)))
    session.flush()


# --------------------------------------------------------------------------- payouts


def _payout_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    partner_id = op.payload.get("partner_id")
    if partner_id is None:
        payout = session.get(Payout, op.payload["payout_id"])
        partner_id = payout.partner_id if payout is not None else None
    return None, partner_id


@spec(
    "payout.compute",
    OpClass.SERVER_DERIVED,
    check=_server_derived("Payouts are"),
    scope=_payout_scope,
    summary="The server computed a partner's draft payout for a period (or refreshed it).",
)
def write_payout_compute(session: Session, op: Op) -> None:
    p = op.payload
    at = ts(p["at"])
    figures = {
        "sales_total": dec(p["sales_total"]),
        "order_count": int(p["order_count"]),
        "commission_rate": dec(p["commission_rate"]),
        "amount": dec(p["amount"]),
    }
    payout = session.get(Payout, p["payout_id"])
    if payout is None:
        session.add(
            Payout(
                id=p["payout_id"],
                partner_id=p["partner_id"],
                period_start=date.fromisoformat(p["period_start"]),
                period_end=date.fromisoformat(p["period_end"]),
                status=PayoutStatus.DRAFT,
                created_at=at,
                updated_at=at,
                **figures,
            )
        )
    elif payout.status == PayoutStatus.DRAFT:
        # A draft is brought up to date; a scheduled or paid payout is never recomputed.
        for name, value in figures.items():
            setattr(payout, name, value)
        payout.updated_at = at
    session.flush()


def _check_schedule(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, MANAGERS, "schedule payouts")
    p = op.payload
    payout = get_or_404(session, Payout, p["payout_id"], "payout", for_update=True)
    payouts.check_schedule(payout, date.fromisoformat(p["scheduled_for"]), ts(p["at"]))
    return None


@spec(
    "payout.schedule",
    OpClass.TRANSITION,
    check=_check_schedule,
    scope=_payout_scope,
    summary="A draft payout was scheduled for a payment date.",
)
def write_payout_schedule(session: Session, op: Op) -> None:
    p = op.payload
    payout = get_or_404(session, Payout, p["payout_id"], "payout")
    payout.status = PayoutStatus.SCHEDULED
    payout.scheduled_for = date.fromisoformat(p["scheduled_for"])
    payout.updated_at = ts(p["at"])
    session.flush()


def _check_paid(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, MANAGERS, "mark payouts as paid")
    payout = get_or_404(session, Payout, op.payload["payout_id"], "payout", for_update=True)
    payouts.check_payable(payout)
    return None


@spec(
    "payout.paid",
    OpClass.TRANSITION,
    check=_check_paid,
    scope=_payout_scope,
    summary="A scheduled payout was paid.",
)
def write_payout_paid(session: Session, op: Op) -> None:
    p = op.payload
    payout = get_or_404(session, Payout, p["payout_id"], "payout")
    paid_at = ts(p["paid_at"])
    payout.status = PayoutStatus.PAID
    payout.paid_at = paid_at
    payout.payment_reference = p.get("reference")
    payout.updated_at = paid_at
    session.flush()
