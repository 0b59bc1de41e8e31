"""From the values app/ services return to the contract's response models.

Kept apart from the routes so the mapping is read in one place, and so a field added to a
service result does not reach the wire until someone adds it to the contract here.
"""

from __future__ import annotations

from app.coach.agent import InsightView, StandOutlook
from app.coach.expansion import CandidateScore
from app.kpi.model import KpiReport, RevenueSeries
from app.models import Role, StandOrder, StandStatus
from app.services import stand_api
from app.services.onboarding import StandCreated as CreatedResult
from app.services.queries import RefillRow, StandRow
from app.services.refills import RefillResult, allowed_actions
from app.services.sales import SaleResult
from sync import protocol as p


def stand_summary(row: StandRow) -> p.StandSummary:
    return p.StandSummary.model_validate(row, from_attributes=True)


def insight(view: InsightView) -> p.InsightOut:
    return p.InsightOut(
        id=view.id,
        stand_id=view.stand_id,
        product_id=view.product_id,
        sku=view.sku,
        kind=view.kind,
        severity=view.severity.value,
        status=view.status.value,
        message=view.message,
        action=view.action,
        evidence=view.evidence,
        model_version=view.model_version,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def refill_summary(row: RefillRow) -> p.RefillSummary:
    return p.RefillSummary.model_validate(row, from_attributes=True)


def _sales(days: int, summary: stand_api.SalesSummary) -> p.SalesSummary:
    return p.SalesSummary(
        days=days,
        orders=summary.orders,
        units=summary.units,
        revenue=summary.revenue,
        points_earned=summary.points_earned,
    )


def stand_details(d: stand_api.StandDetails, partner_region: str | None) -> p.StandDetails:
    detail = d.detail
    return p.StandDetails(
        stand=stand_summary(detail.stand),
        address=detail.address,
        postal_code=detail.postal_code,
        latitude=detail.latitude,
        longitude=detail.longitude,
        capacity_units=detail.capacity_units,
        timezone=detail.timezone,
        payment_reference=detail.payment_reference,
        partner=p.PartnerInfo(
            id=detail.stand.partner_id, name=detail.stand.partner_name, region=partner_region
        ),
        package=p.PackageInfo(code=detail.package_code, name=detail.package_name),
        tier=p.TierInfo(code=detail.tier_code, name=detail.tier_name),
        loyalty_balance=detail.loyalty_balance,
        inventory=[p.InventoryLine.model_validate(i, from_attributes=True) for i in d.inventory],
        open_refills=[refill_summary(r) for r in d.open_refills],
        sales_7d=_sales(7, d.sales_7d),
        sales_28d=_sales(28, d.sales_28d),
        insights=[insight(i) for i in d.insights],
    )


def stand_created(
    result: CreatedResult, *, partner_created: bool, status: StandStatus, duplicate: bool
) -> p.StandCreated:
    return p.StandCreated(
        stand_id=result.stand_id,
        partner_id=result.partner_id,
        partner_created=partner_created,
        name=result.name,
        status=status,
        payment_reference=result.payment_reference,
        qr_payload=result.qr_payload,
        product_ids=list(result.product_ids),
        duplicate=duplicate,
    )


def refill(result: RefillResult, role: Role) -> p.RefillOut:
    return p.RefillOut(
        refill_id=result.refill_id,
        stand_id=result.stand_id,
        status=result.status,
        total=result.total,
        lines=[p.RefillLineOut.model_validate(line, from_attributes=True) for line in result.lines],
        discrepancies=list(result.discrepancies),
        duplicate=result.duplicate,
        allowed_actions=allowed_actions(result.status, role),
    )


def sale(result: SaleResult, order: StandOrder) -> p.SaleRecorded:
    return p.SaleRecorded(
        order=p.OrderOut(
            id=order.id,
            stand_id=order.stand_id,
            total=order.total,
            payment_method=order.payment_method,
            occurred_at=order.occurred_at,
            points_earned=order.points_earned,
        ),
        points_earned=result.points_earned,
        stock_after=dict(result.stock_after),
        oversold=[p.OversoldLine.model_validate(o, from_attributes=True) for o in result.oversold],
        duplicate=result.duplicate,
    )


def performance(
    stand_id: str, period: str, report: KpiReport, revenue: RevenueSeries
) -> p.PerformanceOut:
    return p.PerformanceOut(
        stand_id=stand_id,
        period=period,
        start=report.start,
        end=report.end,
        prior_start=report.prior_start,
        prior_end=report.prior_end,
        currency=report.currency,
        kpis=[
            p.KpiOut(
                key=k.key,
                label=k.label,
                unit=k.unit.value,
                value=k.value,
                prior=k.prior,
                change=None if k.change is None else round(k.change, 4),
                higher_is_better=k.higher_is_better,
                formula=k.formula,
            )
            for k in report.kpis
        ],
        revenue_by_day=[
            p.DayRevenue(day=day, revenue=rev, prior=prior)
            for day, rev, prior in zip(revenue.days, revenue.revenue, revenue.prior, strict=True)
        ],
        computed_at=report.computed_at,
    )


def forecast(outlook: StandOutlook) -> p.StandForecast:
    return p.StandForecast(
        stand_id=outlook.stand_id,
        stand_name=outlook.stand_name,
        today=outlook.today,
        next_visit=outlook.next_visit,
        days_to_visit=outlook.days_to_visit,
        service=outlook.service,
        model_version=outlook.model_version,
        skus=[
            p.SkuForecast(
                product_id=s.product_id,
                sku=s.sku,
                name=s.name,
                on_hand=s.on_hand,
                on_order=s.on_order,
                forecast=[round(x, 4) for x in s.forecast],
                days_of_cover=None if s.days_of_cover is None else round(s.days_of_cover, 2),
                stockout_risk=round(min(max(s.stockout_risk, 0.0), 1.0), 4),
                expected_before_visit=round(s.expected_before_visit, 3),
                demand_class=s.demand_class,
                method=s.method,
                recommended_quantity=s.recommendation.quantity,
                reason=s.recommendation.message,
            )
            for s in outlook.skus
        ],
        quantities=dict(outlook.quantities),
        refill_units=outlook.refill_units,
        refill_value=outlook.refill_value,
    )


HIDDEN_STAND = "a stand outside your scope"


def candidate_score(score: CandidateScore, visible: set[str]) -> p.CandidateScoreOut:
    """``visible``: the stand ids the caller may see; other analogues are named only as
    :data:`HIDDEN_STAND`, in the list and in the message."""
    message = score.message
    if score.analogues and score.analogues[0].stand_id not in visible:
        message = message.replace(f"like {score.analogues[0].name}", f"like {HIDDEN_STAND}", 1)
    return p.CandidateScoreOut(
        candidate_id=score.candidate_id,
        name=score.name,
        location_type=score.location_type,
        score=score.score,
        expected_low=score.expected_low,
        expected_mid=score.expected_mid,
        expected_high=score.expected_high,
        cannibalisation=round(score.cannibalisation, 4),
        fit=round(score.fit, 4),
        reference_stands=score.reference_stands,
        analogues=[
            p.Analogue(
                stand_id=a.stand_id if a.stand_id in visible else None,
                name=a.name if a.stand_id in visible else HIDDEN_STAND.capitalize(),
                revenue_per_day=a.revenue_per_day,
                distance_km=None if a.distance_km is None else round(a.distance_km, 3),
                weight=round(a.weight, 4),
            )
            for a in score.analogues
        ],
        message=message,
        currency=score.currency,
    )
