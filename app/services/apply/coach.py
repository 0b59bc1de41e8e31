"""Applying the coach's ops: a person's decision on a stand insight, and expansion candidates.

Insight decisions (``insight.acknowledge``, ``insight.dismiss``, ``insight.done``)
    Insight rows are made by each device's own coach run, so their ids differ between
    devices: a decision names its insight by ``dedup_key`` (unique per insight). The
    receiver sets the status on its own row for that key; when its coach has not made that
    row (yet), the row is inserted from the content the op carries (``insight``), with the
    op's ``insight_id`` when that id is free. The server guards the from-state against its
    own row; a row it does not have is inserted, not refused.

Expansion candidates (``expansion.candidate_add``, ``expansion.candidate_status``)
    A candidate is a fact with its client id. A partner-lead candidate has an id derived
    from its planned stand (:func:`app.coach.expansion.lead_candidate_id`), so two devices
    reading the same lead make the same op: the second is a no-op. A status change is a
    transition guarded as :func:`app.coach.expansion.set_candidate_status` guards it; a
    derived one (no actor: a lead went live or went away) that finds the candidate already
    in its status changes nothing. Closing the candidate's coach insight (an ``AIInsight``,
    which never travels) is a side effect on whatever insight the receiver has.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.coach import agent, expansion
from app.errors import Conflict, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import (
    CandidateSource,
    CandidateStatus,
    ExpansionCandidate,
    InsightStatus,
    LocationType,
    Product,
    Severity,
    StandAIInsight,
    StandLocation,
    StandPartner,
)
from app.services.apply import Op, OpClass, opt_ts, spec, ts
from app.services.base import STAFF, Actor, get_or_404, optional_text

# --------------------------------------------------------------------------- insights


def _insight_status(op: Op) -> InsightStatus:
    """The status the decision sets; it must be the one its op type names."""
    try:
        to = InsightStatus(str(op.payload.get("to")))
    except ValueError:
        to = InsightStatus.NEW
    if to == InsightStatus.NEW or agent.op_type_of(to) != op.op_type:
        raise ValidationError(
            f"A {op.op_type} change cannot set an insight to {op.payload.get('to')!r}.",
            field="to",
        )
    return to


def _insight_by_key(
    session: Session, dedup_key: str, *, for_update: bool = False
) -> StandAIInsight | None:
    # ``dedup_key`` is unique over all stand insights: the same key is the same insight
    # (looked up by key alone, so a row the receiver keeps on another stand of the partner
    # is found, not inserted a second time against the unique key).
    q = select(StandAIInsight).where(StandAIInsight.dedup_key == dedup_key)
    if for_update:
        q = q.with_for_update(key_share=True)
    return session.scalars(q).first()


def _person(op: Op, action: str) -> Actor:
    actor = op.as_actor()
    if actor is None:
        raise PermissionDenied(f"Only a signed-in person may {action}.")
    return actor


def _check_insight(session: Session, op: Op) -> Mapping[str, Any] | None:
    p = op.payload
    to = _insight_status(op)
    agent.require_decider(_person(op, "decide on coach insights"), to)
    agent.decision_reason(to, p.get("reason"))
    get_or_404(session, StandLocation, str(p.get("stand_id") or ""), "stand")
    row = _insight_by_key(session, str(p.get("dedup_key") or ""), for_update=True)
    if row is not None:
        agent.check_decision(InsightStatus(row.status), to)
        return None
    # Not on the server: the op must describe the insight, so it can be inserted.
    content = p.get("insight")
    if not isinstance(content, Mapping) or not p.get("dedup_key") or not p.get("kind"):
        raise ValidationError(
            "This insight is not on the server and the change does not describe it.",
            field="insight",
        )
    product_id = content.get("product_id")
    if product_id is not None:
        get_or_404(session, Product, str(product_id), "product")
    return None


def _insight_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    stand_id = op.payload.get("stand_id")
    if not stand_id:
        return None, None
    partner_id = session.scalar(
        select(StandLocation.partner_id).where(StandLocation.id == stand_id)
    )
    return str(stand_id), partner_id


def _write_insight(session: Session, op: Op) -> None:
    p = op.payload
    to = InsightStatus(p["to"])
    at = ts(p["at"])
    row = _insight_by_key(session, p["dedup_key"])
    if row is None:
        content = p.get("insight")
        if not isinstance(content, Mapping):
            return  # nothing to attach the decision to (a payload without the content)
        insight_id = p.get("insight_id")
        if not insight_id or session.get(StandAIInsight, insight_id) is not None:
            insight_id = new_id()
        row = StandAIInsight(
            id=insight_id,
            stand_id=p["stand_id"],
            product_id=content.get("product_id"),
            kind=p["kind"],
            severity=Severity(content["severity"]),
            message=content["message"],
            action=content.get("action") or "{}",
            evidence=content.get("evidence") or "{}",
            model_version=content["model_version"],
            dedup_key=p["dedup_key"],
            created_at=opt_ts(content.get("created_at")) or at,
        )
        session.add(row)
    row.status = to
    row.status_reason = p.get("reason")
    row.updated_at = at
    session.flush()


_INSIGHT_SUMMARY = "A person's decision on a coach insight, applied to the insight's dedup key"

spec(
    "insight.acknowledge",
    OpClass.TRANSITION,
    check=_check_insight,
    scope=_insight_scope,
    summary=f"{_INSIGHT_SUMMARY}: acknowledged (seen, still open).",
)(_write_insight)
spec(
    "insight.dismiss",
    OpClass.TRANSITION,
    check=_check_insight,
    scope=_insight_scope,
    summary=f"{_INSIGHT_SUMMARY}: dismissed, with a reason.",
)(_write_insight)
spec(
    "insight.done",
    OpClass.TRANSITION,
    check=_check_insight,
    scope=_insight_scope,
    summary=f"{_INSIGHT_SUMMARY}: done (acted upon, e.g. a refill requested from it).",
)(_write_insight)


# --------------------------------------------------------------------------- candidates


def _values(c: Mapping[str, Any]) -> dict[str, Any]:
    """The candidate's columns from a payload's ``candidate``, typed as stored."""
    return {
        "name": c["name"],
        "address": c.get("address"),
        "city": c.get("city"),
        "postal_code": c.get("postal_code"),
        "country": c.get("country") or "DE",
        "latitude": float(c["latitude"]),
        "longitude": float(c["longitude"]),
        "location_type": LocationType(c["location_type"]),
        "attributes": dict(c.get("attributes") or {}),
        "notes": c.get("notes") or "",
    }


def _same_number(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9)


def _same_candidate(row: ExpansionCandidate, c: Mapping[str, Any]) -> bool:
    v = _values(c)
    stored = json.loads(row.attributes or "{}")
    return (
        row.source == CandidateSource(c["source"])
        and row.partner_id == c.get("partner_id")
        and row.stand_id == c.get("stand_id")
        and row.name == v["name"]
        and row.address == v["address"]
        and row.city == v["city"]
        and row.postal_code == v["postal_code"]
        and row.country == v["country"]
        and _same_number(row.latitude, v["latitude"])
        and _same_number(row.longitude, v["longitude"])
        and row.location_type == v["location_type"]
        and stored == v["attributes"]
        and row.notes == v["notes"]
    )


def _check_candidate_add(session: Session, op: Op) -> Mapping[str, Any] | None:
    c = op.payload.get("candidate")
    if not isinstance(c, Mapping) or not c.get("id"):
        raise ValidationError("The change does not describe a candidate.", field="candidate")
    try:
        source = CandidateSource(str(c.get("source")))
    except ValueError:
        raise ValidationError(
            f"Unknown candidate source {c.get('source')!r}.", field="candidate.source"
        ) from None
    actor = op.as_actor()
    if actor is not None:
        actor.require(STAFF, "add expansion candidates")
    elif source != CandidateSource.PARTNER_LEAD:
        raise PermissionDenied("Only a signed-in person may add expansion candidates.")
    cid = str(c["id"])
    existing = session.get(ExpansionCandidate, cid)
    if existing is not None:
        if _same_candidate(existing, c):
            return None  # the same fact again (a partner lead read on two devices)
        raise Conflict(
            f"Candidate id {cid} is already used by another record.", field="candidate_id"
        )
    if c.get("partner_id") is not None:
        get_or_404(session, StandPartner, str(c["partner_id"]), "partner")
    if c.get("stand_id") is not None:
        get_or_404(session, StandLocation, str(c["stand_id"]), "stand")
        other = session.scalar(
            select(ExpansionCandidate.id).where(ExpansionCandidate.stand_id == c["stand_id"])
        )
        if other is not None:
            raise ValidationError(
                f"That stand already belongs to candidate {other}.", field="stand_id"
            )
    if source != CandidateSource.PARTNER_LEAD:
        # A place a person entered (or imported): checked as on the device, and refused
        # when another device already made it a candidate.
        expansion.check_place_free(session, expansion.validate_values(c))
    return None


def _candidate_add_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    c = op.payload.get("candidate") or {}
    return c.get("stand_id") or None, c.get("partner_id") or None


@spec(
    "expansion.candidate_add",
    OpClass.FACT,
    check=_check_candidate_add,
    scope=_candidate_add_scope,
    summary="A candidate place for a new stand (entered, imported, or from a partner lead).",
)
def _write_candidate_add(session: Session, op: Op) -> None:
    c = op.payload["candidate"]
    if session.get(ExpansionCandidate, c["id"]) is not None:
        return
    expansion.new_candidate_row(
        session,
        op.actor,
        _values(c),
        candidate_id=c["id"],
        source=CandidateSource(c["source"]),
        at=ts(op.payload["at"]),
        partner_id=c.get("partner_id"),
        stand_id=c.get("stand_id"),
    )


def _check_candidate_status(session: Session, op: Op) -> Mapping[str, Any] | None:
    p = op.payload
    actor = op.as_actor()
    if actor is not None:
        expansion.require_decider(actor)
    candidate = get_or_404(
        session, ExpansionCandidate, str(p.get("candidate_id") or ""), "candidate", for_update=True
    )
    new = expansion.parse_decision(p.get("status"))
    if actor is None and candidate.status == new:
        return None  # derived (a lead went live or away), and already so here: no-op
    link = p.get("stand_id")
    expansion.check_decision(
        session, candidate, new, link if link is not None and link != candidate.stand_id else None
    )
    optional_text(p.get("reason"), "reason", "Reason", max_len=500)
    return None


def _candidate_status_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    candidate = session.get(ExpansionCandidate, op.payload.get("candidate_id") or "")
    if candidate is None:
        return op.payload.get("stand_id") or None, None
    return candidate.stand_id or op.payload.get("stand_id") or None, candidate.partner_id or None


@spec(
    "expansion.candidate_status",
    OpClass.TRANSITION,
    check=_check_candidate_status,
    scope=_candidate_status_scope,
    summary="A candidate accepted (perhaps linked to its new stand) or rejected.",
)
def _write_candidate_status(session: Session, op: Op) -> None:
    p = op.payload
    candidate = get_or_404(session, ExpansionCandidate, p["candidate_id"], "candidate")
    status = CandidateStatus(p["status"])
    if op.actor is None and candidate.status == status:
        return  # derived, and already so here (see the check)
    expansion.apply_status(
        session, candidate, status, p.get("reason"), ts(p["at"]), stand_id=p.get("stand_id")
    )
