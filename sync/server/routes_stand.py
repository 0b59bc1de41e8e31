"""The stand program's endpoints under ``/api/v1/stand``.

Each route: authenticate (401), check the caller's role for the endpoint (403), check that
the records named are within the caller's scope (404 otherwise, the same answer as for a
record that does not exist, so ids cannot be probed), then call one app/ service in one
transaction and map its result to the contract in :mod:`sync.server.convert`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.coach import agent, expansion
from app.errors import Conflict, DomainError, PermissionDenied, ValidationError
from app.kpi.engine import stand_performance
from app.kpi.period import parse_period
from app.models import (
    LocationType,
    OrderKind,
    RefillAction,
    Role,
    StandInventory,
    StandLocation,
    StandOrder,
    StandOrderItem,
    StandPartner,
    StandRefillOrder,
    StandStatus,
)
from app.services import automation, onboarding, queries, refills, sales, stand_api
from app.services.refills import TRANSITIONS
from app.services.scope import visible_partner, visible_refill, visible_stand
from sync import protocol as p
from sync.server import convert
from sync.server.auth import allow, server_of
from sync.server.context import Caller, Outcome, Server, claim, idempotent_write
from sync.server.problems import problem_responses

ALL = (Role.ADMIN, Role.MANAGER, Role.REP, Role.PARTNER)
STAFF = (Role.ADMIN, Role.MANAGER, Role.REP)
MANAGERS = (Role.ADMIN, Role.MANAGER)

#: Who may call which endpoint (before scope). The refill steps take theirs from the
#: lifecycle in app.services.refills, so the server and the desktop cannot disagree.
ENDPOINT_ROLES: dict[str, tuple[Role, ...]] = {
    "list": ALL,
    "details": ALL,
    "performance": ALL,
    "create": STAFF,
    "refill": STAFF,
    "sales-record": STAFF,
    "ai/refill-forecast": STAFF,
    "ai/performance-insights": STAFF,
    "ai/location-expansion": MANAGERS,
    "automation/on-low-stock": MANAGERS,
    **{f"refill/{a.value}": TRANSITIONS[RefillAction(a.value)].roles for a in p.RefillStep},
}

router = APIRouter(prefix="/stand")

READ = problem_responses(401, 403, 404, 422)
WRITE = problem_responses(401, 403, 404, 409, 413, 422, 503)

ServerDep = Annotated[Server, Depends(server_of)]
#: Query text without control characters (PostgreSQL cannot hold NUL in text).
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def _roles_text(endpoint: str) -> str:
    return "Roles: " + ", ".join(r.value for r in ENDPOINT_ROLES[endpoint]) + "."


def _dump(model: p.Out) -> dict[str, Any]:
    return model.model_dump(mode="json")


# --------------------------------------------------------------------------- field names

_NUMBERED = re.compile(r"^(\w+)\[(\d+)\](.*)$")


@contextmanager
def _fields(rename: Callable[[str], str | None]) -> Iterator[None]:
    """Name a refused field the way the request names it: the services speak to people
    ("lines[2].quantity", the second line), the contract in dotted, zero-based paths
    ("lines.1.quantity")."""
    try:
        yield
    except DomainError as exc:
        if exc.field:
            renamed = rename(exc.field)
            if renamed is not None:
                exc.field = renamed
        raise


def _one_based(field: str) -> str | None:
    m = _NUMBERED.match(field)
    return f"{m[1]}.{int(m[2]) - 1}{m[3]}" if m else None


def _zero_based(field: str) -> str | None:
    m = _NUMBERED.match(field)
    return f"{m[1]}.{m[2]}{m[3]}" if m else None


def _quantity_field(prefix: str) -> Callable[[str], str | None]:
    def rename(field: str) -> str | None:
        kind, _, ref = field.partition(":")
        return f"{prefix}.{ref}" if kind == "qty" and ref else None

    return rename


# --------------------------------------------------------------------------- list


def _filter_hash(filters: dict[str, Any]) -> str:
    canonical = json.dumps(filters, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(name: str, stand_id: str, filters: dict[str, Any]) -> str:
    raw = json.dumps({"n": name, "i": stand_id, "f": _filter_hash(filters)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, filters: dict[str, Any]) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        name, stand_id, digest = data["n"], data["i"], data["f"]
        if not all(isinstance(v, str) for v in (name, stand_id, digest)):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(
            "The cursor is not one this server gave out; start again without it.",
            field="cursor",
        ) from None
    if digest != _filter_hash(filters):
        raise ValidationError(
            "The cursor belongs to a list with other filters; start again without it.",
            field="cursor",
        )
    return name, stand_id


@router.get(
    "/list",
    response_model=p.StandPage,
    responses=READ,
    summary="List the stands the caller may see",
    description="Paged by an opaque cursor, sorted by name. " + _roles_text("list"),
)
def list_stands(
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["list"]))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400, pattern=_PRINTABLE)] = None,
    status: StandStatus | None = None,
    partner_id: Annotated[str | None, Query(max_length=36, pattern=_PRINTABLE)] = None,
    rep: Annotated[str | None, Query(max_length=60, pattern=_PRINTABLE)] = None,
    location_type: LocationType | None = None,
    q: Annotated[
        str | None, Query(max_length=100, pattern=_PRINTABLE, description="Text search")
    ] = None,
    needs_attention: bool | None = None,
) -> p.StandPage:
    filters = {
        "status": status,
        "partner_id": partner_id,
        "rep": rep,
        "location_type": location_type,
        "q": q,
        "needs_attention": needs_attention,
    }
    after = decode_cursor(cursor, filters) if cursor else None

    def read(session: Session) -> list[queries.StandRow]:
        return queries.list_stands(
            session,
            search=q,
            status=status,
            partner_id=partner_id,
            rep=rep,
            location_type=location_type,
            needs_attention=needs_attention,
            access=caller.access,
            after=after,
            limit=limit + 1,
        )

    rows = server.read(read)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].name, rows[-1].id, filters) if more else None
    return p.StandPage(
        items=[convert.stand_summary(r) for r in rows], next_cursor=next_cursor, limit=limit
    )


# --------------------------------------------------------------------------- create


def _stand_input(body: p.StandIn, caller: Caller) -> onboarding.StandInput:
    principal = caller.principal
    rep = body.assigned_rep
    if principal.role == Role.REP:
        if rep is not None and rep != principal.territory:
            raise PermissionDenied("A rep may only create stands in their own territory.")
        rep = principal.territory
    return onboarding.StandInput(
        name=body.name,
        address=body.address,
        city=body.city,
        location_type=body.location_type.value,
        capacity_units=body.capacity_units,
        postal_code=body.postal_code,
        country=body.country,
        latitude=body.latitude,
        longitude=body.longitude,
        assigned_rep=rep,
        timezone=body.timezone,
        products=body.products,
    )


def _existing_stand(session: Session, caller: Caller, body: p.CreateStandRequest) -> Outcome | None:
    """A repeat of a create made with client ids answers with the first result: by
    ``stand_id``, or by ``partner.id`` when a partner was onboarded with a stand of this
    name. The same id with other details is a conflict."""
    stand = session.get(StandLocation, body.stand_id) if body.stand_id else None
    if stand is None and body.partner is not None and body.partner.id is not None:
        partner = session.get(StandPartner, body.partner.id)
        if partner is None:
            return None
        if partner.name != body.partner.name:
            raise Conflict(f"A partner with id {partner.id} already exists with other details.")
        stand = session.scalars(
            select(StandLocation).where(
                StandLocation.partner_id == partner.id, StandLocation.name == body.stand.name
            )
        ).first()
        if stand is None:
            raise Conflict(
                f"A partner with id {partner.id} already exists; add the stand with "
                "partner_id instead."
            )
    if stand is None:
        return None
    visible_stand(session, caller.access, stand.id)
    if body.partner_id is not None:
        same_partner = body.partner_id == stand.partner_id
    else:
        assert body.partner is not None
        partner = session.get_one(StandPartner, stand.partner_id)
        same_partner = body.partner.id in (None, partner.id) and body.partner.name == partner.name
    if not same_partner or stand.name != body.stand.name:
        raise Conflict(f"A stand with id {stand.id} already exists with other details.")
    products = tuple(
        session.scalars(
            select(StandInventory.product_id)
            .where(StandInventory.stand_id == stand.id)
            .order_by(StandInventory.product_id)
        )
    )
    result = onboarding.StandCreated(
        stand.id, stand.partner_id, stand.name, stand.payment_reference, stand.qr_payload, products
    )
    return Outcome(
        200,
        _dump(
            convert.stand_created(
                result,
                partner_created=body.partner is not None,
                status=stand.status,
                duplicate=True,
            )
        ),
    )


@router.post(
    "/create",
    response_model=p.StandCreated,
    status_code=201,
    responses={200: {"description": "A repeat: the stand made by the first request."}, **WRITE},
    summary="Create a stand, or onboard a partner with a first stand",
    description="Within the partner's package limits. Idempotent on `stand_id` / "
    "`partner.id` or an `Idempotency-Key` header. " + _roles_text("create"),
)
def create_stand(
    request: Request,
    body: p.CreateStandRequest,
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["create"]))],
) -> JSONResponse:
    principal = caller.principal
    stand_in = _stand_input(body.stand, caller)

    def work(session: Session) -> Outcome:
        claim(session, body.stand_id, body.partner.id if body.partner else None)
        repeat = _existing_stand(session, caller, body)
        if repeat is not None:
            return repeat
        actor = principal.actor
        if body.partner_id is not None:
            visible_partner(session, caller.access, body.partner_id)
            created = onboarding.add_stand(
                session, actor, body.partner_id, stand_in, stand_id=body.stand_id
            )
            partner_created = False
        else:
            assert body.partner is not None
            partner = body.partner
            region = partner.region
            if principal.role == Role.MANAGER:
                if region is not None and region != principal.region:
                    raise PermissionDenied("A manager may only onboard partners in their region.")
                region = principal.region
            onboarded = onboarding.onboard_partner(
                session,
                actor,
                onboarding.PartnerInput(
                    name=partner.name,
                    contact_name=partner.contact_name,
                    package_code=partner.package_code,
                    email=partner.email,
                    phone=partner.phone,
                    region=region,
                    payout_method=partner.payout_method,
                    payout_account=partner.payout_account,
                    notes=partner.notes,
                ),
                stand_in,
                partner_id=partner.id,
                stand_id=body.stand_id,
            )
            assert onboarded.stand is not None
            created = onboarded.stand
            partner_created = True
        status = session.get_one(StandLocation, created.stand_id).status
        return Outcome(
            201,
            _dump(
                convert.stand_created(
                    created, partner_created=partner_created, status=status, duplicate=False
                )
            ),
        )

    return idempotent_write(server, request, caller, body.model_dump(mode="json"), work)


# --------------------------------------------------------------------------- details


@router.get(
    "/{stand_id}/details",
    response_model=p.StandDetails,
    responses=READ,
    summary="One stand: partner, package, tier, stock, refills, sales and insights",
    description=_roles_text("details"),
)
def stand_details(
    stand_id: p.Id,
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["details"]))],
) -> p.StandDetails:
    def read(session: Session) -> p.StandDetails:
        stand = visible_stand(session, caller.access, stand_id)
        details = stand_api.stand_details(session, stand.id, access=caller.access)
        region = session.get_one(StandPartner, stand.partner_id).region
        return convert.stand_details(details, region)

    return server.read(read)


# --------------------------------------------------------------------------- refills


@router.post(
    "/refill",
    response_model=p.RefillOut,
    status_code=201,
    responses={200: {"description": "A repeat: the refill made by the first request."}, **WRITE},
    summary="Request a refill for a stand",
    description="Idempotent on `refill_id` or an `Idempotency-Key` header. "
    + _roles_text("refill"),
)
def request_refill(
    request: Request,
    body: p.RefillRequest,
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["refill"]))],
) -> JSONResponse:
    principal = caller.principal

    def work(session: Session) -> Outcome:
        visible_stand(session, caller.access, body.stand_id)
        quantities: dict[str, object] | None = None
        if body.lines is not None:
            units: dict[str, int] = {}
            for line in body.lines:
                units[line.product] = units.get(line.product, 0) + line.quantity
            quantities = dict(units)
        _same_refill_or_conflict(session, body)
        line_of = {line.product: n for n, line in enumerate(body.lines or ())}

        def rename(field: str) -> str | None:
            kind, _, ref = field.partition(":")
            if kind in ("qty", "price") and ref in line_of:
                return f"lines.{line_of[ref]}.product"
            return None

        with _fields(rename):
            result = refills.request_refill(
                session,
                principal.actor,
                body.stand_id,
                quantities,
                note=body.note,
                refill_id=body.refill_id,
                insight_id=body.insight_id,
            )
        status = 200 if result.duplicate else 201
        return Outcome(status, _dump(convert.refill(result, principal.role)))

    return idempotent_write(server, request, caller, body.model_dump(mode="json"), work)


def _same_refill_or_conflict(session: Session, body: p.RefillRequest) -> None:
    """A repeated ``refill_id`` must repeat the request (its stand, and its lines when
    given); another request under a used id is a conflict (409)."""
    if body.refill_id is None:
        return
    refill = session.get(StandRefillOrder, body.refill_id)
    if refill is None:
        return
    same = refill.stand_id == body.stand_id
    if same and body.lines is not None:
        asked = _units_by_product(session, [(line.product, line.quantity) for line in body.lines])
        same = asked == {i.product_id: i.requested_qty for i in refill.items}
    if not same:
        raise Conflict(
            f"Refill id {refill.id} is already used for another request; a new request "
            "needs a new id.",
            field="refill_id",
        )


def _step_route(
    step: p.RefillStep,
    body_model: type[p.Model],
    call: Callable[[Session, Any, str, Any], refills.RefillResult],
    summary: str,
    quantities_field: str = "quantities",
) -> None:
    endpoint = f"refill/{step.value}"

    def handler(
        request: Request,
        refill_id: p.Id,
        body: Any,
        server: Server,
        caller: Caller,
    ) -> JSONResponse:
        principal = caller.principal

        def work(session: Session) -> Outcome:
            refill = visible_refill(session, caller.access, refill_id)
            with _fields(_quantity_field(quantities_field)):
                result = call(session, principal.actor, refill.id, body)
            return Outcome(200, _dump(convert.refill(result, principal.role)))

        return idempotent_write(server, request, caller, body.model_dump(mode="json"), work)

    def route(
        request: Request, refill_id: str, body: Any, server: Server, caller: Caller
    ) -> JSONResponse:
        return handler(request, refill_id, body, server, caller)

    # FastAPI reads the body model and the dependencies from the annotations; this module
    # postpones annotations (strings), so give this generated route the real objects.
    route.__annotations__ = {
        "request": Request,
        "refill_id": p.Id,
        "body": body_model,
        "server": ServerDep,
        "caller": Annotated[Caller, Depends(allow(*ENDPOINT_ROLES[endpoint]))],
        "return": JSONResponse,
    }
    route.__name__ = f"refill_{step.value}"
    router.add_api_route(
        f"/refill/{{refill_id}}/{step.value}",
        route,
        methods=["POST"],
        response_model=p.RefillOut,
        responses=WRITE,
        summary=summary,
        description="With the same guards as the app: who may take the step and from which "
        "state (409 otherwise). " + _roles_text(endpoint),
    )


def _qty(mapping: dict[str, int] | None) -> dict[str, object] | None:
    return None if mapping is None else dict(mapping)


_step_route(
    p.RefillStep.APPROVE,
    p.ApproveBody,
    lambda s, actor, rid, b: refills.approve_refill(s, actor, rid, _qty(b.quantities)),
    "Approve a requested refill (as asked or with other quantities)",
)
_step_route(
    p.RefillStep.SCHEDULE,
    p.ScheduleBody,
    lambda s, actor, rid, b: refills.schedule_refill(s, actor, rid, b.scheduled_for, b.dealer),
    "Schedule an approved refill for a day and a dealer",
)
_step_route(
    p.RefillStep.DELIVER,
    p.DeliverBody,
    lambda s, actor, rid, b: refills.deliver_refill(
        s, actor, rid, _qty(b.quantities), more_to_come=b.more_to_come
    ),
    "Record a delivery (all or part) and put it on the stand's stock",
)
_step_route(
    p.RefillStep.CONFIRM,
    p.ConfirmBody,
    lambda s, actor, rid, b: refills.confirm_refill(s, actor, rid, _qty(b.received)),
    "Confirm what was received; a difference opens a discrepancy",
    quantities_field="received",
)
_step_route(
    p.RefillStep.REJECT,
    p.ReasonBody,
    lambda s, actor, rid, b: refills.reject_refill(s, actor, rid, b.reason),
    "Reject a requested or approved refill",
)
_step_route(
    p.RefillStep.CANCEL,
    p.ReasonBody,
    lambda s, actor, rid, b: refills.cancel_refill(s, actor, rid, b.reason),
    "Cancel an open refill before anything was delivered",
)


# --------------------------------------------------------------------------- sales


def _units_by_product(session: Session, refs: list[tuple[str, int]]) -> dict[str, int] | None:
    """Units per product id of ``refs`` (product reference, units); None when a
    reference names no product."""
    out: dict[str, int] = {}
    for ref, units in refs:
        try:
            product = onboarding.resolve_product(session, ref)
        except DomainError:
            return None
        out[product.id] = out.get(product.id, 0) + units
    return out


def _same_sale_or_conflict(session: Session, body: p.SaleRequest) -> None:
    """A repeated ``order_id`` must repeat the sale; another sale under a used id is a
    conflict (409), never silently dropped."""
    order = session.get(StandOrder, body.order_id)
    if order is None:
        return
    asked = _units_by_product(session, [(line.product, line.quantity) for line in body.lines])
    recorded: dict[str, int] = {}
    for item in session.scalars(select(StandOrderItem).where(StandOrderItem.order_id == order.id)):
        recorded[item.product_id] = recorded.get(item.product_id, 0) + item.quantity
    if (
        order.kind != OrderKind.SALE
        or order.stand_id != body.stand_id
        or order.payment_method != body.payment_method
        or asked != recorded
    ):
        raise Conflict(
            f"Order id {order.id} is already used for another sale; a new sale needs a new id.",
            field="order_id",
        )


@router.post(
    "/sales-record",
    response_model=p.SaleRecorded,
    status_code=201,
    responses={200: {"description": "A repeat: the sale recorded by the first request."}, **WRITE},
    summary="Record a sale at a stand",
    description="Idempotent on `order_id`: a repeat answers with the first result and "
    "changes nothing. " + _roles_text("sales-record"),
)
def record_sale(
    request: Request,
    body: p.SaleRequest,
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["sales-record"]))],
) -> JSONResponse:
    principal = caller.principal

    def work(session: Session) -> Outcome:
        visible_stand(session, caller.access, body.stand_id)
        _same_sale_or_conflict(session, body)
        with _fields(_one_based):
            result = sales.record_sale(
                session,
                principal.actor,
                body.stand_id,
                [
                    sales.SaleLine(line.product, line.quantity, line.unit_price)
                    for line in body.lines
                ],
                body.payment_method.value,
                occurred_at=body.occurred_at,
                order_id=body.order_id,
            )
        order = session.get_one(StandOrder, result.order_id)
        status = 200 if result.duplicate else 201
        return Outcome(status, _dump(convert.sale(result, order)))

    return idempotent_write(server, request, caller, body.model_dump(mode="json"), work)


# --------------------------------------------------------------------------- performance


@router.get(
    "/performance/{stand_id}",
    response_model=p.PerformanceOut,
    responses=READ,
    summary="The stand's KPIs over a period, with the prior period",
    description="`period`: `28d`, `90d`, `365d` (any number of days) or `from,to` dates. "
    + _roles_text("performance"),
)
def performance(
    stand_id: p.Id,
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["performance"]))],
    period: Annotated[
        str,
        Query(
            max_length=40,
            pattern=r"^\s*(\d{1,4}\s*d|\d{4}-\d{2}-\d{2}\s*(,|\.\.)\s*\d{4}-\d{2}-\d{2})\s*$",
            examples=["28d", "2026-10-01,2026-10-31"],
        ),
    ] = "28d",
) -> p.PerformanceOut:
    def read(session: Session) -> p.PerformanceOut:
        stand = visible_stand(session, caller.access, stand_id)
        now = utcnow()
        span = parse_period(period, now=now, tz=stand.timezone)
        result = stand_performance(session, stand.id, span, now=now)
        return convert.performance(stand.id, period.strip(), result.report, result.revenue)

    return server.read(read)


# --------------------------------------------------------------------------- the coach


def _visible_all(session: Session, caller: Caller, stand_ids: list[str]) -> list[str]:
    seen: list[str] = []
    for sid in dict.fromkeys(stand_ids):
        visible_stand(session, caller.access, sid)
        seen.append(sid)
    return seen


@router.post(
    "/ai/refill-forecast",
    response_model=p.RefillForecastOut,
    responses=READ | problem_responses(413),
    summary="The coach's demand forecast and recommended refill per stand",
    description="Reads only. " + _roles_text("ai/refill-forecast"),
)
def refill_forecast(
    body: p.StandsRequest,
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["ai/refill-forecast"]))],
) -> p.RefillForecastOut:
    if len(body.stand_ids) > 50:
        raise ValidationError("Ask for at most 50 stands per forecast.", field="stand_ids")

    def read(session: Session) -> p.RefillForecastOut:
        ids = _visible_all(session, caller, list(body.stand_ids))
        return p.RefillForecastOut(
            stands=[convert.forecast(agent.stand_outlook(session, sid)) for sid in ids]
        )

    return server.read(read)


@router.post(
    "/ai/performance-insights",
    response_model=p.PerformanceInsightsOut,
    responses=WRITE,
    summary="The coach's insights for a set of stands",
    description="Runs the coach over the stands first (stores and updates their insights) "
    "unless `refresh` is false. " + _roles_text("ai/performance-insights"),
)
def performance_insights(
    body: p.PerformanceInsightsRequest,
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["ai/performance-insights"]))],
) -> p.PerformanceInsightsOut:
    def work(session: Session) -> p.PerformanceInsightsOut:
        ids = _visible_all(session, caller, list(body.stand_ids))
        if body.refresh:
            agent.run_coach(session, stand_ids=ids)
        views = [v for sid in ids for v in agent.list_insights(session, stand_id=sid)]
        return p.PerformanceInsightsOut(
            model_version=agent.model_version(), insights=[convert.insight(v) for v in views]
        )

    return server.write(work) if body.refresh else server.read(work)


@router.post(
    "/ai/location-expansion",
    response_model=p.LocationExpansionOut,
    responses=WRITE,
    summary="Score candidate locations for new stands against the best existing stands",
    description="Each candidate is kept (or found again at the same place) and scored; the "
    "answer follows the order of the request. " + _roles_text("ai/location-expansion"),
)
def location_expansion(
    body: p.LocationExpansionRequest,
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["ai/location-expansion"]))],
) -> p.LocationExpansionOut:
    candidates = [
        expansion.CandidateInput(
            name=c.name,
            latitude=c.latitude,
            longitude=c.longitude,
            location_type=c.location_type.value,
            address=c.address,
            city=c.city,
            postal_code=c.postal_code,
            country=c.country,
            attributes=dict(c.attributes),
        )
        for c in body.candidates
    ]

    def work(session: Session) -> p.LocationExpansionOut:
        with _fields(_zero_based):
            scores = expansion.score_locations(session, caller.principal.actor, candidates)
        # Scores compare with the best stands of the whole program; a manager is not shown
        # which stands outside their region those are.
        ids = {a.stand_id for score in scores for a in score.analogues}
        clause = caller.access.stand_clause()
        visible = ids
        if clause is not None and ids:
            visible = set(
                session.scalars(select(StandLocation.id).where(StandLocation.id.in_(ids), clause))
            )
        return p.LocationExpansionOut(
            candidates=[convert.candidate_score(s, visible) for s in scores]
        )

    return server.write(work)


# --------------------------------------------------------------------------- automation


@router.post(
    "/automation/on-low-stock",
    response_model=p.LowStockOut,
    responses=WRITE,
    summary="The automation engine reports a stand x SKU as low",
    description="Creates a refill request with the coach's quantity unless the stand has "
    "an open refill: then the product is added to it (while still requested) or the open "
    "refill is returned as it is. Never a new request per call. "
    + _roles_text("automation/on-low-stock"),
)
def on_low_stock(
    request: Request,
    body: p.LowStockRequest,
    server: ServerDep,
    caller: Annotated[Caller, Depends(allow(*ENDPOINT_ROLES["automation/on-low-stock"]))],
) -> JSONResponse:
    principal = caller.principal

    def work(session: Session) -> Outcome:
        visible_stand(session, caller.access, body.stand_id)
        result = automation.on_low_stock(
            session, principal.actor, body.stand_id, body.product, on_hand=body.on_hand
        )
        out = p.LowStockOut(
            outcome=result.outcome,
            quantity=result.quantity,
            reason=result.reason,
            refill=convert.refill(result.refill, principal.role),
        )
        return Outcome(200, _dump(out))

    return idempotent_write(server, request, caller, body.model_dump(mode="json"), work)


__all__ = ["ENDPOINT_ROLES", "router"]
