"""Who may see what: the stands, refills and partners within a caller's scope.

An :class:`AccessScope` is the reading side of an authenticated caller: an admin sees the
whole program, a manager the stands of the partners in their region, a rep the stands
assigned to their territory (``StandLocation.assigned_rep``), a partner only their own
stands. The desktop and the command line act for the whole program
(:meth:`AccessScope.everything`).

Scopes fail closed: a manager without a region, a rep without a territory or a partner
without a partner id sees nothing at all, never everything. A record out of scope is
reported exactly like a missing one (:class:`~app.errors.NotFound`), so a caller cannot
probe for the existence of records it may not see.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, false, select, true
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.ids import is_valid_id
from app.models import Role, StandLocation, StandPartner, StandRefillOrder
from app.services.base import transactional


def _given(value: str | None) -> str | None:
    """The scope value, or None when it is missing or blank (which must see nothing)."""
    if value is None:
        return None
    text = value.strip()
    return text or None


@dataclass(frozen=True)
class AccessScope:
    """The part of the program a caller may see (see the module docstring)."""

    role: Role
    #: A manager's region (``StandPartner.region``).
    region: str | None = None
    #: A rep's territory: the ``assigned_rep`` of the stands they look after.
    territory: str | None = None
    #: A partner's own ``StandPartner.id``.
    partner_id: str | None = None

    @classmethod
    def everything(cls) -> AccessScope:
        """The admin view: the whole program (the desktop and the command line)."""
        return cls(Role.ADMIN)

    @property
    def unrestricted(self) -> bool:
        return self.role == Role.ADMIN

    def stand_clause(self) -> ColumnElement[bool] | None:
        """A WHERE clause over :class:`StandLocation` keeping the stands in scope, or None
        when nothing is restricted (admin). Needs no join: a manager's region is matched
        through a subquery on the partners."""
        if self.role == Role.ADMIN:
            return None
        if self.role == Role.MANAGER:
            region = _given(self.region)
            if region is None:
                return false()
            return StandLocation.partner_id.in_(
                select(StandPartner.id).where(StandPartner.region == region)
            )
        if self.role == Role.REP:
            territory = _given(self.territory)
            if territory is None:
                return false()
            return StandLocation.assigned_rep == territory
        if self.role == Role.PARTNER:
            partner_id = _given(self.partner_id)
            if partner_id is None:
                return false()
            return StandLocation.partner_id == partner_id
        return false()

    def partner_clause(self) -> ColumnElement[bool] | None:
        """A WHERE clause over :class:`StandPartner` keeping the partners in scope (None:
        every partner): a manager's are those of the region, a rep's those with at least
        one stand in the territory, a partner only itself."""
        if self.role == Role.ADMIN:
            return None
        if self.role == Role.MANAGER:
            region = _given(self.region)
            return false() if region is None else StandPartner.region == region
        if self.role == Role.REP:
            territory = _given(self.territory)
            if territory is None:
                return false()
            return exists().where(
                StandLocation.partner_id == StandPartner.id,
                StandLocation.assigned_rep == territory,
            )
        if self.role == Role.PARTNER:
            partner_id = _given(self.partner_id)
            return false() if partner_id is None else StandPartner.id == partner_id
        return false()

    def sees_stand(self, session: Session, stand_id: str) -> bool:
        """Whether the stand exists and is in scope."""
        return _sees_stand(session, self, stand_id)


@transactional
def _sees_stand(session: Session, access: AccessScope, stand_id: str) -> bool:
    if not is_valid_id(stand_id):
        return False
    clause = access.stand_clause()
    found = session.scalar(
        select(StandLocation.id).where(
            StandLocation.id == stand_id, true() if clause is None else clause
        )
    )
    return found is not None


def _not_found(label: str, record_id: str) -> NotFound:
    return NotFound(f"No {label} with id {record_id!r}.", field=f"{label}_id")


@transactional
def visible_stand(session: Session, access: AccessScope, stand_id: str) -> StandLocation:
    """The stand, when it exists and is in scope; NotFound otherwise (the same answer for
    both, so existence is not revealed)."""
    if not is_valid_id(stand_id):
        raise _not_found("stand", stand_id)
    clause = access.stand_clause()
    stand = session.scalars(
        select(StandLocation).where(
            StandLocation.id == stand_id, true() if clause is None else clause
        )
    ).first()
    if stand is None:
        raise _not_found("stand", stand_id)
    return stand


@transactional
def visible_refill(session: Session, access: AccessScope, refill_id: str) -> StandRefillOrder:
    """The refill, when it exists and its stand is in scope; NotFound otherwise."""
    if not is_valid_id(refill_id):
        raise _not_found("refill", refill_id)
    clause = access.stand_clause()
    stmt = select(StandRefillOrder).where(StandRefillOrder.id == refill_id)
    if clause is not None:
        stmt = stmt.join(StandLocation, StandLocation.id == StandRefillOrder.stand_id).where(clause)
    refill = session.scalars(stmt).first()
    if refill is None:
        raise _not_found("refill", refill_id)
    return refill


@transactional
def visible_partner(session: Session, access: AccessScope, partner_id: str) -> StandPartner:
    """The partner, when it exists and is in scope (see :meth:`AccessScope.partner_clause`);
    NotFound otherwise."""
    if not is_valid_id(partner_id):
        raise _not_found("partner", partner_id)
    clause = access.partner_clause()
    partner = session.scalars(
        select(StandPartner).where(
            StandPartner.id == partner_id, true() if clause is None else clause
        )
    ).first()
    if partner is None:
        raise _not_found("partner", partner_id)
    return partner
