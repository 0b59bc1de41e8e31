"""What every service shares: the acting person, one-transaction units of work, the change
log writer and input validation with messages a person can act on."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.clock import ensure_utc, utcnow
from app.errors import NotFound, PermissionDenied, ValidationError
from app.ids import is_valid_id, new_id
from app.models import Base, ChangeLog, LocalDevice, OpStatus, Role, SyncState

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=Base)

#: ``Session.info`` flag of a server database's sessions (see :mod:`app.services.feed`).
FEED_FLAG = "server_feed"

#: Version of the op payload format written to the change log.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Actor:
    """Who performs an action, and in which role. Stamped on every fact."""

    user: str
    role: Role

    def __post_init__(self) -> None:
        if not self.user.strip():
            raise ValidationError("A user name is required.", field="user")

    def require(self, allowed: Iterable[Role], action: str) -> None:
        if self.role not in allowed:
            raise PermissionDenied(f"A {self.role.value} may not {action}.")


#: People in the field and in the office: reps, managers, admins (not partners).
STAFF = (Role.REP, Role.MANAGER, Role.ADMIN)
#: Managers and admins.
MANAGERS = (Role.MANAGER, Role.ADMIN)


def transactional(fn: Callable[Concatenate[Session, P], R]) -> Callable[Concatenate[Session, P], R]:
    """Run ``fn`` as one transaction: commit on success, roll back on any error.

    If the caller already began a transaction, ``fn`` runs inside it under a savepoint and
    the caller commits: that is how a sync batch applies many ops atomically, and a refused
    op inside the batch still saves nothing of its own (its device sequence number included).
    Sessions from :func:`app.db.open_db` never begin implicitly, so a forgotten read cannot
    swallow a write.
    """

    @functools.wraps(fn)
    def wrapper(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if session.in_transaction():
            with session.begin_nested():
                return fn(session, *args, **kwargs)
        with session.begin():
            return fn(session, *args, **kwargs)

    return wrapper


# --------------------------------------------------------------------------- change log


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return ensure_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if isinstance(value, frozenset | set) else list(value)
    raise TypeError(f"cannot encode {type(value).__name__} in an op payload")


def to_json(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, default=_json_default, sort_keys=True, separators=(",", ":"))


def record_op(
    session: Session,
    op_type: str,
    entity_id: str,
    payload: Mapping[str, Any],
    actor: Actor | None,
) -> ChangeLog:
    """Append one op to the change log, taking the next device sequence number.

    The envelope (schema v2) also carries the actor's role and what the writer had seen:
    ``base_seq`` (the feed cursor it had applied) and ``pending_from_seq`` (its oldest op the
    server had not answered yet). The server needs both to turn a count into an adjustment
    and to tell a concurrent edit from a later one.

    The counter row is updated in the caller's write transaction, which serialises writers
    (SQLite's write lock, PostgreSQL's row lock), so sequences have no gaps or repeats.
    """
    op = ChangeLog(
        op_id=new_id(),
        op_type=op_type,
        entity_id=entity_id,
        payload=to_json(payload),
        schema_version=SCHEMA_VERSION,
        actor=actor.user if actor else None,
        actor_role=actor.role.value if actor else None,
        base_seq=0,
        created_at=utcnow(),
    )
    if session.info.get(FEED_FLAG):
        # A server database: the op becomes a feed row, numbered at commit.
        from app.services import feed

        feed.buffer(session, op)
        return op
    row = session.execute(
        update(LocalDevice)
        .values(last_seq=LocalDevice.last_seq + 1)
        .returning(LocalDevice.id, LocalDevice.last_seq)
    ).one_or_none()
    if row is None:
        raise RuntimeError("this database has no device id; open it with app.db.open_db")
    op.device_id, op.device_seq = row
    # What the writer had seen: the feed cursor of its last applied pull page, and its oldest
    # own op still waiting for the server's answer (this one when none is).
    op.base_seq = session.scalar(select(SyncState.cursor).where(SyncState.id == 1)) or 0
    pending_from = session.scalar(
        select(func.min(ChangeLog.device_seq)).where(ChangeLog.status == OpStatus.PENDING)
    )
    op.pending_from_seq = pending_from if pending_from is not None else op.device_seq
    session.add(op)
    return op


def device_id(session: Session) -> str:
    value = session.scalar(select(LocalDevice.id))
    if value is None:
        raise RuntimeError("this database has no device id; open it with app.db.open_db")
    return str(value)


# --------------------------------------------------------------------------- validation


def get_or_404(
    session: Session, model: type[M], record_id: str, label: str, *, for_update: bool = False
) -> M:
    """Load ``model`` by id or raise a :class:`NotFound` naming the ``label``.

    ``for_update`` locks the row until the transaction ends, so concurrent writers of one
    record take turns and the second one sees what the first wrote. On PostgreSQL that is
    ``SELECT ... FOR NO KEY UPDATE``: it excludes the other writers of the row but, unlike
    ``FOR UPDATE``, not the inserts of rows that merely refer to it (a sale at a locked
    stand), which would only add waits and deadlocks. On SQLite ``BEGIN IMMEDIATE`` already
    serialises writers and the clause is left out. A row this session already holds is
    read afresh under the lock (a copy from an earlier transaction may be stale).
    """
    if not is_valid_id(record_id):
        raise NotFound(f"No {label} with id {record_id!r}.", field=f"{label}_id")
    obj = session.get(
        model,
        record_id,
        with_for_update={"key_share": True} if for_update else None,
        populate_existing=for_update,
    )
    if obj is None:
        raise NotFound(f"No {label} with id {record_id!r}.", field=f"{label}_id")
    return obj


def client_id(value: str | None, field_name: str = "id") -> str:
    """A client-supplied record id (kept forever) or a new one."""
    if value is None:
        return new_id()
    if not is_valid_id(value):
        raise ValidationError(f"{value!r} is not a valid record id.", field=field_name)
    return value


def unused_id(
    session: Session, model: type[Base], value: str | None, field_name: str, label: str
) -> str:
    """A client-supplied id for a new record (or a new id); an id already used is refused,
    so a replayed request can never create a second fact or crash on the primary key."""
    record_id = client_id(value, field_name)
    if value is not None and session.get(model, record_id) is not None:
        raise ValidationError(f"A {label} with id {record_id} already exists.", field=field_name)
    return record_id


def require_text(value: str | None, field_name: str, label: str, *, max_len: int = 120) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(f"{label} is required.", field=field_name)
    if len(text) > max_len:
        raise ValidationError(f"{label} is longer than {max_len} characters.", field=field_name)
    return text


def optional_text(
    value: str | None, field_name: str, label: str, *, max_len: int = 200
) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > max_len:
        raise ValidationError(f"{label} is longer than {max_len} characters.", field=field_name)
    return text


def to_int(
    value: object,
    field_name: str,
    label: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Parse a whole number (int or its text), refusing fractions, bools and junk."""
    if isinstance(value, bool):
        raise ValidationError(f"{label} must be a whole number.", field=field_name)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    elif isinstance(value, Decimal) and value == value.to_integral_value():
        number = int(value)
    else:
        raise ValidationError(f"{label} must be a whole number, not {value!r}.", field=field_name)
    if minimum is not None and number < minimum:
        raise ValidationError(f"{label} must be at least {minimum}.", field=field_name)
    if maximum is not None and number > maximum:
        raise ValidationError(f"{label} must be at most {maximum}.", field=field_name)
    return number


def to_money(value: object, field_name: str, label: str, *, allow_zero: bool = True) -> Decimal:
    """Parse an amount of money: Decimal, int or text like "12.50"; never a float."""
    if isinstance(value, float | bool):
        raise ValidationError(
            f"{label} must be given as a decimal, not {value!r}.", field=field_name
        )
    try:
        if isinstance(value, str):
            amount = Decimal(value.strip())
        elif isinstance(value, Decimal | int):
            amount = Decimal(value)
        else:
            raise TypeError(type(value).__name__)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError(
            f"{label} must be an amount like 12.50, not {value!r}.", field=field_name
        ) from None
    if not amount.is_finite():
        raise ValidationError(f"{label} must be a finite amount.", field=field_name)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ValidationError(
            f"{label} must be {'at least' if allow_zero else 'more than'} 0.", field=field_name
        )
    if amount != amount.quantize(Decimal("0.0001")):
        raise ValidationError(f"{label} has more than 4 decimal places.", field=field_name)
    if amount >= Decimal("1e12"):
        raise ValidationError(f"{label} is too large.", field=field_name)
    return amount.quantize(Decimal("0.0001"))


def to_time(value: datetime | None, field_name: str = "occurred_at") -> datetime:
    """An occurrence time: now if not given; a naive time is refused (ambiguous)."""
    if value is None:
        return utcnow()
    if not isinstance(value, datetime):
        raise ValidationError("The time must be a date and time.", field=field_name)
    if value.tzinfo is None:
        raise ValidationError("The time must include a time zone.", field=field_name)
    return ensure_utc(value)
