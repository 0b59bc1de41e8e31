"""Location expansion: candidate places for new stands, scored against the best existing ones.

Candidates come from three sources: entered by a person (:func:`add_candidate`), imported
from a CSV file (:func:`import_candidates_csv`, all or nothing), or partner leads
(:func:`candidates_from_partner_leads`: a partner signed up whose stand is planned but not
live yet; the planned stand's place becomes the candidate).

How a candidate is scored (:func:`score_candidates`, numpy only):

1. **Reference stands** are the active stands with at least ``MIN_HISTORY_DAYS`` days of
   history in the window. Their performance is **revenue per day** over the last
   ``WINDOW_DAYS`` complete local days (today is left out: it is not over), counted from the
   stand's first day when it is younger than the window. Revenue is the sum of order
   totals, voids negative, as in the KPI engine; it is read with one aggregate query per
   time zone.
2. **Features** of a stand or a candidate: its location type; how many open stands
   (active or paused) lie within ``DENSITY_KM``; the distance to the nearest open stand
   (``log(1 + km)``, capped at ``NEAREST_CAP_KM``); and the candidate's attributes
   (footfall, opening hours, area, competitors nearby...), which a stand has when a
   candidate is linked to it. Numeric features are standardised with the reference stands'
   mean and standard deviation (z-scores); a feature known for fewer than three reference
   stands, or the same for all of them, is left out and named in the evidence.
3. **Distance** in feature space: the Euclidean distance over the numeric features (a
   value the stand lacks counts as ``z² + 1``, the expected squared difference to a random
   reference stand, so a stand never looks closer for being less known), plus
   ``TYPE_WEIGHT`` standard deviations when the location types differ.
4. **Analogues** are the ``k`` nearest stands among the **best** reference stands: those at
   or above the median revenue per day of their own location type, and of the candidate's
   own type whenever there are any (only a type we have no stand of yet is compared across
   types, with the type penalty). Each is weighted by a Gaussian kernel of its distance
   relative to the nearest, ``exp(-(d² - d₀²) / 2h²)``, as wide as the nearest is far
   (``h = max(1, d₀)``); analogues with less than ``MIN_ANALOGUE_WEIGHT`` of the total
   weight are dropped (they do not justify anything).
5. **Expected revenue per day** is the analogues' weighted 25 %, 50 % and 75 % quantiles,
   less a **cannibalisation** share when open stands are within ``CANNIBAL_KM``: each such
   stand takes ``CANNIBAL_RATE × (1 − km / CANNIBAL_KM)``, at most ``CANNIBAL_MAX`` in all.
6. **Score** (0–100) = 100 × the share of reference stands that the expected median would
   beat × (0.5 + 0.5 × fit), where fit = ``exp(-d̄² / 8)`` from the analogues' weighted mean
   squared distance: a candidate like our best stands and unlike nothing we know scores
   high; one only loosely like any stand loses up to half.

Each score is stored as an :class:`~app.models.AIInsight` (scope ``expansion``, kind
``expansion_candidate``, dedup key ``expansion:<candidate id>``): scoring again updates it,
never adds a second, and never touches one a person dismissed or finished.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select, type_coerce
from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.ids import id_from_parts, new_id
from app.kpi.period import Period
from app.models import (
    AIInsight,
    CandidateSource,
    CandidateStatus,
    ExpansionCandidate,
    InsightStatus,
    LocationType,
    PartnerStatus,
    Severity,
    StandLocation,
    StandOrder,
    StandPartner,
    StandStatus,
)
from app.rules import local_date, round_money
from app.services.base import (
    MANAGERS,
    STAFF,
    Actor,
    get_or_404,
    optional_text,
    record_op,
    require_text,
    to_time,
    transactional,
    unused_id,
)
from app.types import Money

FloatArray = npt.NDArray[np.float64]

MODEL_VERSION = "expansion-1"
SCOPE = "expansion"
KIND = "expansion_candidate"
CURRENCY = "EUR"

WINDOW_DAYS = 90
MIN_HISTORY_DAYS = 14
DEFAULT_K = 5
DENSITY_KM = 2.0
NEAREST_CAP_KM = 20.0
TYPE_WEIGHT = 4.0
MIN_ANALOGUE_WEIGHT = 0.05
MIN_FEATURE_STANDS = 3
CANNIBAL_KM = 1.0
CANNIBAL_RATE = 0.3
CANNIBAL_MAX = 0.5
QUANTILES = (0.25, 0.5, 0.75)

#: Stands that occupy a place (for density, nearest stand and cannibalisation).
OPEN_STAND_STATES = (StandStatus.ACTIVE, StandStatus.PAUSED)
EARTH_RADIUS_KM = 6371.0088


# ------------------------------------------------------------------ attributes


@dataclass(frozen=True)
class AttributeDef:
    key: str
    label: str
    #: Compared on a log scale (counts and sizes whose spread grows with the level).
    log: bool


#: The attributes the coach knows by name; any other numeric attribute is compared as is.
ATTRIBUTES: dict[str, AttributeDef] = {
    a.key: a
    for a in (
        AttributeDef("footfall_per_day", "Footfall per day", True),
        AttributeDef("opening_hours_per_week", "Opening hours per week", False),
        AttributeDef("area_m2", "Area (m²)", True),
        AttributeDef("competitors_nearby", "Competitors nearby", False),
    )
}
_ATTRIBUTE_ALIASES = {
    "footfall": "footfall_per_day",
    "footfall_day": "footfall_per_day",
    "opening_hours": "opening_hours_per_week",
    "hours_per_week": "opening_hours_per_week",
    "area": "area_m2",
    "area_sqm": "area_m2",
    "area_m²": "area_m2",
    "competitors": "competitors_nearby",
}
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_ATTRIBUTES = 20


def attribute_key(name: str) -> str:
    """The stored key of an attribute name as a person writes it (``Footfall`` →
    ``footfall_per_day``); refused if it is not a plain identifier."""
    key = re.sub(r"[\s\-]+", "_", (name or "").strip().lower())
    key = _ATTRIBUTE_ALIASES.get(key, key)
    if not _KEY_RE.match(key):
        raise ValidationError(
            f"{name!r} is not an attribute name; use letters, digits and underscores, "
            "such as footfall_per_day.",
            field="attributes",
        )
    return key


def attribute_label(key: str) -> str:
    known = ATTRIBUTES.get(key)
    return known.label if known else key.replace("_", " ").capitalize()


def _number(value: object, field_name: str, label: str) -> float:
    """A finite number from a number or its text (a decimal comma is accepted)."""
    message = f"{label} must be a number, not {value!r}."
    if isinstance(value, bool):
        raise ValidationError(message, field=field_name)
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace("\u00a0", "").replace(" ", "")
        if "," in text and "." not in text:
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            raise ValidationError(message, field=field_name) from None
    else:
        raise ValidationError(message, field=field_name)
    if not math.isfinite(number):
        raise ValidationError(f"{label} must be a finite number.", field=field_name)
    return number


def clean_attributes(values: Mapping[str, object]) -> dict[str, float | int]:
    """Validated attributes: known names (or plain identifiers) with finite numbers; the
    named ones must not be negative. Empty values are left out."""
    out: dict[str, float | int] = {}
    for name, raw in values.items():
        key = attribute_key(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        label = attribute_label(key)
        number = _number(raw, f"attributes.{key}", label)
        if key in ATTRIBUTES and number < 0:
            raise ValidationError(f"{label} must not be negative.", field=f"attributes.{key}")
        if key in out:
            raise ValidationError(f"{label} is given twice.", field=f"attributes.{key}")
        out[key] = int(number) if number.is_integer() and abs(number) < 2**53 else number
    if len(out) > MAX_ATTRIBUTES:
        raise ValidationError(
            f"A candidate can have at most {MAX_ATTRIBUTES} attributes.", field="attributes"
        )
    return out


def _load_attributes(text: str | None) -> dict[str, float]:
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


# ------------------------------------------------------------------ candidates


@dataclass(frozen=True)
class CandidateInput:
    """A candidate place as a person enters it. Coordinates and numbers may be text."""

    name: str
    latitude: float | str | Decimal | None
    longitude: float | str | Decimal | None
    location_type: str
    address: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str = "DE"
    attributes: Mapping[str, object] = field(default_factory=dict)
    notes: str = ""


@dataclass(frozen=True)
class CandidateRow:
    """A stored candidate, with its latest score when the coach has scored it."""

    id: str
    name: str
    address: str | None
    city: str | None
    postal_code: str | None
    country: str
    latitude: float
    longitude: float
    location_type: str
    source: str
    partner_id: str | None
    stand_id: str | None
    attributes: dict[str, float]
    notes: str
    status: str
    status_reason: str | None
    created_by: str | None
    created_at: datetime
    score: int | None = None
    expected_low: Decimal | None = None
    expected_high: Decimal | None = None
    insight_status: str | None = None


def _row(c: ExpansionCandidate, insight: AIInsight | None = None) -> CandidateRow:
    score = low = high = None
    if insight is not None:
        evidence = json.loads(insight.evidence or "{}")
        score = evidence.get("score")
        expected = evidence.get("expected_per_day", {})
        low = Decimal(expected["low"]) if "low" in expected else None
        high = Decimal(expected["high"]) if "high" in expected else None
    return CandidateRow(
        id=c.id,
        name=c.name,
        address=c.address,
        city=c.city,
        postal_code=c.postal_code,
        country=c.country,
        latitude=c.latitude,
        longitude=c.longitude,
        location_type=c.location_type.value,
        source=c.source.value,
        partner_id=c.partner_id,
        stand_id=c.stand_id,
        attributes=_load_attributes(c.attributes),
        notes=c.notes,
        status=c.status.value,
        status_reason=c.status_reason,
        created_by=c.created_by,
        created_at=c.created_at,
        score=score,
        expected_low=low,
        expected_high=high,
        insight_status=insight.status.value if insight is not None else None,
    )


def _coordinate(value: object, field_name: str, label: str, limit: float) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(f"{label} is required.", field=field_name)
    number = _number(value, field_name, label)
    if not -limit <= number <= limit:
        raise ValidationError(
            f"{label} must be between {-limit:g} and {limit:g}.", field=field_name
        )
    return number


def _location_type(value: str | None) -> LocationType:
    text = (value or "").strip().lower().replace(" ", "_").replace("-", "_")
    if not text:
        raise ValidationError("Location type is required.", field="location_type")
    try:
        return LocationType(text)
    except ValueError:
        kinds = ", ".join(t.value for t in LocationType)
        raise ValidationError(
            f"Unknown location type {value!r}; choose one of: {kinds}.", field="location_type"
        ) from None


def _validate(candidate: CandidateInput) -> dict[str, Any]:
    """The columns of a candidate, or the first thing wrong with it (naming the field)."""
    name = require_text(candidate.name, "name", "Name")
    location_type = _location_type(candidate.location_type)
    latitude = _coordinate(candidate.latitude, "latitude", "Latitude", 90.0)
    longitude = _coordinate(candidate.longitude, "longitude", "Longitude", 180.0)
    country = (candidate.country or "DE").strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise ValidationError("Country must be a two-letter code such as DE.", field="country")
    return {
        "name": name,
        "address": optional_text(candidate.address, "address", "Address", max_len=200),
        "city": optional_text(candidate.city, "city", "City", max_len=80),
        "postal_code": optional_text(
            candidate.postal_code, "postal_code", "Postal code", max_len=16
        ),
        "country": country,
        "latitude": latitude,
        "longitude": longitude,
        "location_type": location_type,
        "attributes": clean_attributes(candidate.attributes),
        "notes": (candidate.notes or "").strip(),
    }


def validate_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a candidate given as stored (an op's payload), checked as
    :func:`add_candidate` checks a person's input."""
    return _validate(
        CandidateInput(
            name=values.get("name") or "",
            latitude=values.get("latitude"),
            longitude=values.get("longitude"),
            location_type=str(values.get("location_type") or ""),
            address=values.get("address"),
            city=values.get("city"),
            postal_code=values.get("postal_code"),
            country=values.get("country") or "DE",
            attributes=values.get("attributes") or {},
            notes=values.get("notes") or "",
        )
    )


def _place_key(name: str, latitude: float, longitude: float) -> tuple[str, float, float]:
    """Two candidates are the same place when name and coordinates (to ~1 m) agree."""
    return (name.casefold(), round(latitude, 5), round(longitude, 5))


def _existing_places(session: Session) -> dict[tuple[str, float, float], str]:
    rows = session.execute(
        select(
            ExpansionCandidate.id,
            ExpansionCandidate.name,
            ExpansionCandidate.latitude,
            ExpansionCandidate.longitude,
        ).where(ExpansionCandidate.status == CandidateStatus.OPEN)
    )
    return {_place_key(n, la, lo): cid for cid, n, la, lo in rows}


def new_candidate_row(
    session: Session,
    created_by: str | None,
    values: Mapping[str, Any],
    *,
    candidate_id: str,
    source: CandidateSource,
    at: datetime,
    partner_id: str | None = None,
    stand_id: str | None = None,
) -> ExpansionCandidate:
    """Insert an open candidate with these columns (no change-log op: :func:`_insert` logs
    it; applying a synced ``expansion.candidate_add`` does not)."""
    attributes = values["attributes"]
    row = ExpansionCandidate(
        id=candidate_id,
        name=values["name"],
        address=values["address"],
        city=values["city"],
        postal_code=values["postal_code"],
        country=values["country"],
        latitude=values["latitude"],
        longitude=values["longitude"],
        location_type=values["location_type"],
        source=source,
        partner_id=partner_id,
        stand_id=stand_id,
        attributes=json.dumps(attributes, sort_keys=True),
        notes=values["notes"],
        status=CandidateStatus.OPEN,
        created_by=created_by,
        created_at=at,
        updated_at=at,
    )
    session.add(row)
    session.flush()
    return row


def _insert(
    session: Session,
    actor: Actor | None,
    values: Mapping[str, Any],
    *,
    candidate_id: str,
    source: CandidateSource,
    at: datetime,
    partner_id: str | None = None,
    stand_id: str | None = None,
) -> ExpansionCandidate:
    row = new_candidate_row(
        session,
        actor.user if actor else None,
        values,
        candidate_id=candidate_id,
        source=source,
        at=at,
        partner_id=partner_id,
        stand_id=stand_id,
    )
    record_op(
        session,
        "expansion.candidate_add",
        candidate_id,
        {
            "candidate": {
                "id": candidate_id,
                "source": source,
                "partner_id": partner_id,
                "stand_id": stand_id,
                **values,
            },
            "at": at,
        },
        actor,
    )
    return row


def check_place_free(session: Session, values: Mapping[str, Any]) -> None:
    """Refuse a candidate at the place (name and coordinates) of an open candidate."""
    same = _existing_places(session).get(
        _place_key(values["name"], values["latitude"], values["longitude"])
    )
    if same is not None:
        raise ValidationError(
            f"{values['name']} at these coordinates is already a candidate ({same}).",
            field="name",
        )


@transactional
def add_candidate(
    session: Session,
    actor: Actor,
    candidate: CandidateInput,
    *,
    candidate_id: str | None = None,
    now: datetime | None = None,
) -> CandidateRow:
    """Add a candidate place entered by a person (name, type and coordinates required).

    The same name at the same coordinates as an open candidate is refused as a duplicate."""
    actor.require(STAFF, "add expansion candidates")
    at = to_time(now)
    values = _validate(candidate)
    cid = unused_id(session, ExpansionCandidate, candidate_id, "candidate_id", "candidate")
    check_place_free(session, values)
    return _row(
        _insert(session, actor, values, candidate_id=cid, source=CandidateSource.MANUAL, at=at)
    )


# ------------------------------------------------------------------ CSV import

#: Columns a candidate file must have (after the aliases below).
REQUIRED_COLUMNS = ("name", "latitude", "longitude", "location_type")
#: Other columns that are fields of the candidate; every further column is an attribute.
FIELD_COLUMNS = ("address", "city", "postal_code", "country", "notes")
_COLUMN_ALIASES = {
    "lat": "latitude",
    "lon": "longitude",
    "lng": "longitude",
    "long": "longitude",
    "type": "location_type",
    "zip": "postal_code",
    "postcode": "postal_code",
}
MAX_IMPORT_ROWS = 10_000


@dataclass(frozen=True)
class RowError:
    """What is wrong with one row of a candidate file: ``line`` is where the row starts,
    counted from 1 as a text editor does (the header is line 1)."""

    line: int
    field: str | None
    message: str


@dataclass(frozen=True)
class ImportResult:
    candidate_ids: tuple[str, ...]
    rows: int


class CandidateImportError(ValidationError):
    """A candidate file with bad rows: nothing was imported; ``errors`` lists every row."""

    def __init__(self, message: str, errors: Sequence[RowError]) -> None:
        super().__init__(message, field="file")
        self.errors = tuple(errors)


def _read_source(source: Path | str) -> tuple[str, str]:
    """The CSV text and a name for messages. A Path is read (UTF-8, with or without a
    byte-order mark, or Windows-1252 as Excel writes it); a str is the CSV text itself."""
    if isinstance(source, str):
        return source.removeprefix("\ufeff"), "the file"
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ValidationError(
            f"Cannot read {source}: {exc.strerror or exc}.", field="file"
        ) from None
    try:
        return data.decode("utf-8-sig"), source.name
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), source.name


def _column(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return _COLUMN_ALIASES.get(key, key)


@transactional
def import_candidates_csv(
    session: Session, actor: Actor, source: Path | str, *, now: datetime | None = None
) -> ImportResult:
    """Import candidates from CSV: **all or nothing**.

    The header names the columns (any order, any case): ``name``, ``latitude``,
    ``longitude`` and ``location_type`` are required (``lat``, ``lon``/``lng`` and ``type``
    are accepted too); ``address``, ``city``, ``postal_code``, ``country`` and ``notes`` are
    optional fields; every other column is a numeric attribute (``footfall_per_day``,
    ``opening_hours_per_week``, ``area_m2``, ``competitors_nearby``...), empty where unknown.
    Commas, semicolons or tabs separate the columns; a decimal comma is accepted.

    Every row is checked first. If any row is wrong (or repeats another row or an open
    candidate), :class:`CandidateImportError` lists each bad row with its line number and
    nothing is saved; otherwise every row becomes a candidate (source ``csv``).
    """
    actor.require(STAFF, "import expansion candidates")
    at = to_time(now)
    text, label = _read_source(source)
    if not text.strip():
        raise ValidationError(f"{label} is empty.", field="file")
    first_line = text.lstrip().splitlines()[0]
    try:
        dialect: Any = csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header: list[str] | None = None
    errors: list[RowError] = []
    good: list[tuple[int, dict[str, Any]]] = []
    seen: dict[tuple[str, float, float], int] = {}
    existing = _existing_places(session)
    previous_end = 0
    for raw in reader:
        line = previous_end + 1  # where the row starts (a quoted cell may span lines)
        previous_end = reader.line_num
        if not any(cell.strip() for cell in raw):
            continue
        if header is None:
            header = [_column(h) for h in raw]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                need = ", ".join(REQUIRED_COLUMNS)
                raise ValidationError(
                    f"{label} has no {' or '.join(missing)} column; the first line must name "
                    f"the columns, at least {need}.",
                    field="file",
                )
            repeated = sorted({h for h in header if h and header.count(h) > 1})
            if repeated:
                raise ValidationError(
                    f"{label} names the column {repeated[0]} twice.", field="file"
                )
            continue
        if len(good) + len(errors) >= MAX_IMPORT_ROWS:
            raise ValidationError(
                f"{label} has more than {MAX_IMPORT_ROWS} rows; split it into smaller files.",
                field="file",
            )
        if len(raw) > len(header):
            errors.append(
                RowError(line, None, f"The row has {len(raw)} cells; the header has {len(header)}.")
            )
            continue
        cells = dict(zip(header, (c.strip() for c in raw), strict=False))
        attributes = {
            k: v for k, v in cells.items() if k and k not in REQUIRED_COLUMNS + FIELD_COLUMNS
        }
        try:
            values = _validate(
                CandidateInput(
                    name=cells.get("name", ""),
                    latitude=cells.get("latitude"),
                    longitude=cells.get("longitude"),
                    location_type=cells.get("location_type", ""),
                    address=cells.get("address"),
                    city=cells.get("city"),
                    postal_code=cells.get("postal_code"),
                    country=cells.get("country") or "DE",
                    attributes=attributes,
                    notes=cells.get("notes", ""),
                )
            )
        except ValidationError as exc:
            errors.append(RowError(line, exc.field, exc.message))
            continue
        key = _place_key(values["name"], values["latitude"], values["longitude"])
        if key in seen:
            errors.append(
                RowError(
                    line, "name", f"The same place as line {seen[key]} (name and coordinates)."
                )
            )
            continue
        if key in existing:
            errors.append(
                RowError(
                    line,
                    "name",
                    f"{values['name']} at these coordinates is already a candidate "
                    f"({existing[key]}).",
                )
            )
            continue
        seen[key] = line
        good.append((line, values))
    if header is None:
        raise ValidationError(f"{label} is empty.", field="file")
    if errors:
        total = len(errors) + len(good)
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CandidateImportError(
            f"{len(errors)} of {total} rows in {label} have errors, so nothing was imported; "
            f"line {first.line}: {first.message.rstrip('.')}{more}.",
            errors,
        )
    if not good:
        raise ValidationError(f"{label} has no candidate rows below its header.", field="file")
    ids = []
    for _line, values in good:
        row = _insert(
            session,
            actor,
            values,
            candidate_id=unused_id(session, ExpansionCandidate, None, "candidate_id", "candidate"),
            source=CandidateSource.CSV,
            at=at,
        )
        ids.append(row.id)
    return ImportResult(tuple(ids), len(good))


# ------------------------------------------------------------------ partner leads

#: Partners whose planned stands are leads: signed up, not live yet.
LEAD_PARTNER_STATES = (PartnerStatus.LEAD, PartnerStatus.ONBOARDING)


def lead_candidate_id(stand_id: str) -> str:
    """The candidate id for a planned stand: the same on every device (a UUIDv7 with the
    stand id's time and bits from its hash), so two devices that read the same leads make
    one candidate, not two."""
    digest = int.from_bytes(hashlib.sha256(f"expansion-lead:{stand_id}".encode()).digest()[:10])
    try:
        ms = int(stand_id.replace("-", "")[:12], 16)
    except ValueError:
        ms = 0
    return id_from_parts(ms, digest)


def _close_insight(session: Session, candidate_id: str, status: InsightStatus, reason: str) -> None:
    insight = session.scalars(
        select(AIInsight).where(AIInsight.dedup_key == dedup_key(candidate_id))
    ).first()
    if insight is not None and insight.status in (InsightStatus.NEW, InsightStatus.ACKNOWLEDGED):
        insight.status = status
        insight.status_reason = reason


def apply_status(
    session: Session,
    candidate: ExpansionCandidate,
    status: CandidateStatus,
    reason: str | None,
    at: datetime,
    *,
    stand_id: str | None = None,
) -> None:
    """Set a candidate's status (and its stand, when given) and close its coach insight
    (no change-log op: :func:`_set_status` logs it; applying a synced
    ``expansion.candidate_status`` does not)."""
    candidate.status = status
    candidate.status_reason = reason
    if stand_id is not None:
        candidate.stand_id = stand_id
    candidate.updated_at = at
    _close_insight(
        session,
        candidate.id,
        InsightStatus.DONE if status == CandidateStatus.ACCEPTED else InsightStatus.DISMISSED,
        reason or f"Candidate {status.value}.",
    )
    session.flush()


def _set_status(
    session: Session,
    actor: Actor | None,
    candidate: ExpansionCandidate,
    status: CandidateStatus,
    reason: str | None,
    at: datetime,
    *,
    stand_id: str | None = None,
) -> None:
    apply_status(session, candidate, status, reason, at, stand_id=stand_id)
    record_op(
        session,
        "expansion.candidate_status",
        candidate.id,
        {
            "candidate_id": candidate.id,
            "status": status,
            "reason": reason,
            "stand_id": candidate.stand_id,
            "at": at,
        },
        actor,
    )


@transactional
def candidates_from_partner_leads(
    session: Session, actor: Actor | None = None, *, now: datetime | None = None
) -> list[CandidateRow]:
    """Keep the partner-lead candidates current; return the ones made now.

    A partner lead is a planned stand (with coordinates) of a partner in lead or onboarding
    status: a place someone has agreed to, not live yet — exactly what expansion should
    weigh. Partners in lead status without a stand have no place yet and are skipped. Each
    planned stand becomes one candidate (source ``partner_lead``, linked to the partner and
    the stand). When the stand goes live the candidate is accepted; when the stand is
    removed or the partner leaves, it is rejected (and its insight closed either way).
    """
    at = to_time(now)
    made = []
    known = set(
        session.scalars(
            select(ExpansionCandidate.stand_id).where(ExpansionCandidate.stand_id.is_not(None))
        )
    )
    leads = session.execute(
        select(StandLocation)
        .join(StandPartner, StandPartner.id == StandLocation.partner_id)
        .where(
            StandLocation.status == StandStatus.PLANNED,
            StandPartner.status.in_(LEAD_PARTNER_STATES),
            StandLocation.latitude.is_not(None),
            StandLocation.longitude.is_not(None),
        )
        .order_by(StandLocation.created_at, StandLocation.id)
    ).scalars()
    for stand in leads:
        if stand.id in known:
            continue
        cid = lead_candidate_id(stand.id)
        if session.get(ExpansionCandidate, cid) is not None:
            continue
        values: dict[str, Any] = {
            "name": stand.name,
            "address": stand.address,
            "city": stand.city,
            "postal_code": stand.postal_code,
            "country": stand.country,
            "latitude": stand.latitude,
            "longitude": stand.longitude,
            "location_type": stand.location_type,
            "attributes": {},
            "notes": "",
        }
        row = _insert(
            session,
            actor,
            values,
            candidate_id=cid,
            source=CandidateSource.PARTNER_LEAD,
            at=at,
            partner_id=stand.partner_id,
            stand_id=stand.id,
        )
        made.append(_row(row))
    # Leads that went live, or went away.
    open_leads = session.execute(
        select(ExpansionCandidate, StandLocation.status, StandPartner.status)
        .join(StandLocation, StandLocation.id == ExpansionCandidate.stand_id)
        .join(StandPartner, StandPartner.id == StandLocation.partner_id)
        .where(
            ExpansionCandidate.source == CandidateSource.PARTNER_LEAD,
            ExpansionCandidate.status == CandidateStatus.OPEN,
        )
    ).all()
    for candidate, stand_status, partner_status in open_leads:
        if stand_status in OPEN_STAND_STATES:
            _set_status(
                session, actor, candidate, CandidateStatus.ACCEPTED, "The stand went live.", at
            )
        elif stand_status == StandStatus.REMOVED or partner_status == PartnerStatus.ENDED:
            _set_status(
                session,
                actor,
                candidate,
                CandidateStatus.REJECTED,
                "The partner lead did not go ahead.",
                at,
            )
    return made


# ------------------------------------------------------------------ status and lists


@transactional
def set_candidate_status(
    session: Session,
    actor: Actor,
    candidate_id: str,
    status: str,
    *,
    reason: str | None = None,
    stand_id: str | None = None,
    now: datetime | None = None,
) -> CandidateRow:
    """Accept or reject an open candidate (managers). Accepting may name the stand opened
    for it, whose attributes are then the candidate's in later scoring. Its coach insight is
    closed (done when accepted, dismissed when rejected)."""
    require_decider(actor)
    at = to_time(now)
    candidate = get_or_404(session, ExpansionCandidate, candidate_id, "candidate")
    new = parse_decision(status)
    check_decision(session, candidate, new, stand_id)
    text = optional_text(reason, "reason", "Reason", max_len=500)
    _set_status(session, actor, candidate, new, text, at, stand_id=stand_id)
    return _row(candidate, _insight_of(session, candidate.id))


def require_decider(actor: Actor) -> None:
    """Only managers accept or reject candidates."""
    actor.require(MANAGERS, "decide on expansion candidates")


def parse_decision(status: str | None) -> CandidateStatus:
    """The status a candidate is set to: accepted or rejected."""
    try:
        new = CandidateStatus((status or "").strip().lower())
    except ValueError:
        raise ValidationError(
            f"Unknown candidate status {status!r}; use accepted or rejected.", field="status"
        ) from None
    if new == CandidateStatus.OPEN:
        raise ValidationError("A candidate can be accepted or rejected.", field="status")
    return new


def check_decision(
    session: Session, candidate: ExpansionCandidate, new: CandidateStatus, stand_id: str | None
) -> None:
    """The guards of a decision: only an open candidate is decided, and a stand it is linked
    to (``stand_id``, when given) exists, belongs to no other candidate, and is linked only
    when the candidate is accepted."""
    if candidate.status != CandidateStatus.OPEN:
        raise ValidationError(
            f"{candidate.name} is already {candidate.status.value}.", field="status"
        )
    if stand_id is not None:
        if new != CandidateStatus.ACCEPTED:
            raise ValidationError(
                "Only an accepted candidate is linked to a stand.", field="stand_id"
            )
        get_or_404(session, StandLocation, stand_id, "stand")
        other = session.scalar(
            select(ExpansionCandidate.id).where(ExpansionCandidate.stand_id == stand_id)
        )
        if other is not None and other != candidate.id:
            raise ValidationError(
                f"That stand already belongs to candidate {other}.", field="stand_id"
            )


def _insight_of(session: Session, candidate_id: str) -> AIInsight | None:
    return session.scalars(
        select(AIInsight).where(AIInsight.dedup_key == dedup_key(candidate_id))
    ).first()


@transactional
def list_candidates(session: Session, *, status: str | None = "open") -> list[CandidateRow]:
    """Candidates (open ones by default; ``None`` or ``"all"`` for every one), best scored
    first, then newest; each with its latest score if it has one."""
    q = select(ExpansionCandidate)
    if status not in (None, "all"):
        try:
            wanted = CandidateStatus(str(status).strip().lower())
        except ValueError:
            raise ValidationError(
                f"Unknown candidate status {status!r}; use open, accepted, rejected or all.",
                field="status",
            ) from None
        q = q.where(ExpansionCandidate.status == wanted)
    candidates = list(session.scalars(q))
    insights = {
        i.dedup_key: i
        for i in session.scalars(
            select(AIInsight).where(AIInsight.scope == SCOPE, AIInsight.kind == KIND)
        )
    }
    rows = [_row(c, insights.get(dedup_key(c.id))) for c in candidates]
    rows.sort(key=lambda r: r.created_at, reverse=True)
    rows.sort(key=lambda r: -1 if r.score is None else r.score, reverse=True)
    return rows


# ------------------------------------------------------------------ scoring: results


@dataclass(frozen=True)
class Analogue:
    """An existing stand that the candidate resembles, and how much it counts."""

    stand_id: str
    name: str
    location_type: str
    city: str
    revenue_per_day: Decimal
    feature_distance: float  # in standard deviations (see the module docstring)
    distance_km: float | None  # on the ground, when both have coordinates
    weight: float  # share of the expected range, 0..1


@dataclass(frozen=True)
class NearbyStand:
    """An open stand within ``CANNIBAL_KM`` of the candidate, and the share it takes."""

    stand_id: str
    name: str
    distance_km: float
    share: float


@dataclass(frozen=True)
class CandidateScore:
    candidate_id: str
    name: str
    location_type: str
    city: str | None
    latitude: float
    longitude: float
    score: int  # 0..100
    #: Expected revenue per day after cannibalisation: 25 %, 50 % and 75 % quantiles.
    expected_low: Decimal
    expected_mid: Decimal
    expected_high: Decimal
    #: The same before cannibalisation (what the analogues earn).
    gross_low: Decimal
    gross_high: Decimal
    cannibalisation: float  # share taken by nearby stands, 0..CANNIBAL_MAX
    revenue_percentile: float  # share of reference stands the expected median beats
    fit: float  # 0..1, how close the analogues are in feature space
    analogues: tuple[Analogue, ...]
    nearby: tuple[NearbyStand, ...]
    features: dict[str, float | None]
    unused_attributes: tuple[str, ...]
    reference_stands: int
    message: str
    insight_id: str
    insight_status: str
    currency: str = CURRENCY


def dedup_key(candidate_id: str) -> str:
    return f"expansion:{candidate_id}"


@transactional
def stored_scores(session: Session) -> dict[str, CandidateScore]:
    """The latest score of every scored candidate, as stored with its insight (the
    analogues and nearby stands included), so a screen shows them without scoring again."""
    out: dict[str, CandidateScore] = {}
    insights = session.scalars(
        select(AIInsight).where(AIInsight.scope == SCOPE, AIInsight.kind == KIND)
    )
    for insight in insights:
        e = json.loads(insight.evidence or "{}")
        c = session.get(ExpansionCandidate, e.get("candidate_id", ""))
        if c is None or "expected_per_day" not in e:
            continue
        expected, gross = e["expected_per_day"], e.get("gross_per_day", {})
        cannibal = e.get("cannibalisation", {})
        out[c.id] = CandidateScore(
            candidate_id=c.id,
            name=c.name,
            location_type=c.location_type.value,
            city=c.city,
            latitude=c.latitude,
            longitude=c.longitude,
            score=int(e.get("score", 0)),
            expected_low=Decimal(expected["low"]),
            expected_mid=Decimal(expected["mid"]),
            expected_high=Decimal(expected["high"]),
            gross_low=Decimal(gross.get("low", expected["low"])),
            gross_high=Decimal(gross.get("high", expected["high"])),
            cannibalisation=float(cannibal.get("share", 0.0)),
            revenue_percentile=float(e.get("revenue_percentile", 0.0)),
            fit=float(e.get("fit", 0.0)),
            analogues=tuple(
                Analogue(**{**a, "revenue_per_day": Decimal(a["revenue_per_day"])})
                for a in e.get("analogues", ())
            ),
            nearby=tuple(NearbyStand(**n) for n in cannibal.get("stands", ())),
            features=dict(e.get("features", {})),
            unused_attributes=tuple(e.get("unused_attributes", ())),
            reference_stands=int(e.get("reference", {}).get("stands", 0)),
            message=insight.message,
            insight_id=insight.id,
            insight_status=insight.status.value,
            currency=str(e.get("currency", CURRENCY)),
        )
    return out


# ------------------------------------------------------------------ scoring: data


def haversine_km(
    lat1: FloatArray | float,
    lon1: FloatArray | float,
    lat2: FloatArray | float,
    lon2: FloatArray | float,
) -> FloatArray:
    """Great-circle distance in km (broadcasting; NaN where a coordinate is unknown)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


@dataclass
class _Stands:
    """The open stands, as parallel arrays (index = position in ``ids``)."""

    ids: list[str]
    names: list[str]
    cities: list[str]
    types: list[str]
    lat: FloatArray
    lon: FloatArray
    #: Revenue per day over the window, NaN for stands that are not reference stands.
    revenue: FloatArray
    days: npt.NDArray[np.int64]
    attributes: list[dict[str, float]]
    density: FloatArray
    nearest: FloatArray
    window: dict[str, tuple[str, str]]  # time zone -> (first day, last day)

    @property
    def reference(self) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = ~np.isnan(self.revenue)
        return out


def _neighbourhood(dist: FloatArray, known: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """Per row of a (places × open stands) distance matrix in km (NaN where unknown): how
    many open stands lie within ``DENSITY_KM``, and ``log1p`` of the km to the nearest one
    (capped at ``NEAREST_CAP_KM``, which is also the value when there is none). Rows whose
    place is unknown (``~known``) get NaN for both."""
    filled = np.nan_to_num(dist, nan=np.inf)
    density = (filled <= DENSITY_KM).sum(axis=1).astype(float)
    nearest = filled.min(axis=1) if filled.shape[1] else np.full(filled.shape[0], np.inf)
    nearest = np.log1p(np.minimum(nearest, NEAREST_CAP_KM))
    density[~known] = np.nan
    nearest[~known] = np.nan
    return density, nearest


def _load_stands(session: Session, at: datetime) -> _Stands:
    rows = session.execute(
        select(
            StandLocation.id,
            StandLocation.name,
            StandLocation.city,
            StandLocation.location_type,
            StandLocation.latitude,
            StandLocation.longitude,
            StandLocation.status,
            StandLocation.timezone,
            StandLocation.created_at,
        )
        .where(StandLocation.status.in_(OPEN_STAND_STATES))
        .order_by(StandLocation.id)
    ).all()
    n = len(rows)
    index = {r.id: i for i, r in enumerate(rows)}
    revenue = np.full(n, np.nan)
    days = np.zeros(n, dtype=np.int64)
    by_zone: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_zone[r.timezone].append(i)
    window: dict[str, tuple[str, str]] = {}
    for tz, members in by_zone.items():
        end = local_date(at, tz) - timedelta(days=1)
        period = Period(end - timedelta(days=WINDOW_DAYS - 1), end)
        window[tz] = (period.start.isoformat(), period.end.isoformat())
        lo, hi = period.utc_bounds(tz)
        sums = {
            sid: (total, first)
            for sid, total, first in session.execute(
                select(
                    StandOrder.stand_id,
                    type_coerce(func.sum(StandOrder.total), Money()),
                    func.min(StandOrder.occurred_at),
                )
                .join(StandLocation, StandLocation.id == StandOrder.stand_id)
                .where(
                    StandLocation.timezone == tz,
                    StandLocation.status.in_(OPEN_STAND_STATES),
                    StandOrder.occurred_at >= lo,
                    StandOrder.occurred_at < hi,
                )
                .group_by(StandOrder.stand_id)
            )
        }
        for i in members:
            r = rows[i]
            total, first = sums.get(r.id, (Decimal(0), None))
            start = local_date(r.created_at, tz)
            if first is not None:  # imported history may predate the stand's record
                start = min(start, local_date(first, tz))
            live = (period.end - max(period.start, start)).days + 1
            days[i] = max(live, 0)
            if r.status == StandStatus.ACTIVE and live >= MIN_HISTORY_DAYS:
                revenue[i] = float(total or 0) / live
    attributes: list[dict[str, float]] = [{} for _ in rows]
    for sid, text in session.execute(
        select(ExpansionCandidate.stand_id, ExpansionCandidate.attributes).where(
            ExpansionCandidate.stand_id.is_not(None)
        )
    ):
        if sid in index:
            attributes[index[sid]] = _load_attributes(text)
    lat = np.array([np.nan if r.latitude is None else r.latitude for r in rows], dtype=float)
    lon = np.array([np.nan if r.longitude is None else r.longitude for r in rows], dtype=float)
    dist = haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    np.fill_diagonal(dist, np.nan)  # a stand is not its own neighbour
    density, nearest = _neighbourhood(dist, ~(np.isnan(lat) | np.isnan(lon)))
    return _Stands(
        ids=[r.id for r in rows],
        names=[r.name for r in rows],
        cities=[r.city for r in rows],
        types=[r.location_type.value for r in rows],
        lat=lat,
        lon=lon,
        revenue=revenue,
        days=days,
        attributes=attributes,
        density=density,
        nearest=nearest,
        window=window,
    )


# ------------------------------------------------------------------ scoring: the method


def _feature(values: Iterable[float | None], log: bool) -> FloatArray:
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    if log:
        with np.errstate(invalid="ignore"):
            arr = np.log1p(np.maximum(arr, 0.0))
    return arr


def weighted_quantiles(values: FloatArray, weights: FloatArray, qs: Sequence[float]) -> FloatArray:
    """Quantiles of a weighted sample: each value sits at the middle of its weight on the
    cumulative scale, linear in between (one value gives itself)."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = (np.cumsum(w) - w / 2) / w.sum()
    out: FloatArray = np.interp(np.asarray(qs, dtype=float), cum, v)
    return out


def _best(stands: _Stands) -> npt.NDArray[np.bool_]:
    """Reference stands at or above the median revenue per day of their location type."""
    ref = stands.reference
    best = np.zeros(len(stands.ids), dtype=bool)
    types = np.array(stands.types, dtype=object)
    for t in set(types[ref]):
        members = ref & (types == t)
        median = float(np.median(stands.revenue[members]))
        best |= members & (stands.revenue >= median - 1e-9)
    return best


@dataclass(frozen=True)
class _Scored:
    score: CandidateScore
    evidence: dict[str, Any]


def _money(value: float) -> Decimal:
    return round_money(Decimal(repr(max(value, 0.0))))


def _euros(value: Decimal) -> str:
    return f"€{value:.0f}" if value >= 10 else f"€{value:.2f}"


def _type_label(location_type: str) -> str:
    return location_type.replace("_", " ").capitalize()


def _message(
    c: ExpansionCandidate, low: Decimal, high: Decimal, analogues: Sequence[Analogue], share: float
) -> str:
    label = _type_label(c.location_type.value)
    who = c.name if label.casefold() in c.name.casefold() else f"{label} at {c.name}"
    rng = _euros(low) if _euros(low) == _euros(high) else f"{_euros(low)}–{_euros(high)[1:]}"
    text = f"{who}: expected {rng}/day, like {analogues[0].name}"
    others = len(analogues) - 1
    if others:
        text += f" and {others} other{'s' if others != 1 else ''}"
    if share > 0:
        text += f"; {share:.0%} less for stands within {CANNIBAL_KM:g} km"
    return text


def _score_one(
    c: ExpansionCandidate, stands: _Stands, best: npt.NDArray[np.bool_], k: int
) -> _Scored | None:
    ref = stands.reference
    n_ref = int(ref.sum())
    pool = np.flatnonzero(best)
    if n_ref == 0 or pool.size == 0:
        return None
    all_types = np.array(stands.types, dtype=object)
    same_type = pool[all_types[pool] == c.location_type.value]
    if same_type.size:
        pool = same_type  # a kiosk is compared with the best kiosks when there are any
    open_mask = np.array([sid != c.stand_id for sid in stands.ids], dtype=bool)
    dist_km = haversine_km(c.latitude, c.longitude, stands.lat, stands.lon)
    dist_open = np.where(open_mask, dist_km, np.nan)
    c_density, c_nearest = _neighbourhood(dist_open[None, :], np.ones(1, dtype=bool))
    attrs = _load_attributes(c.attributes)

    # Numeric features: name -> (candidate value, stands' values), on the comparison scale.
    raw: dict[str, tuple[float, FloatArray]] = {
        "stands_within_2km": (float(c_density[0]), stands.density),
        "nearest_stand_log_km": (float(c_nearest[0]), stands.nearest),
    }
    unused: list[str] = []
    for key in sorted(attrs):
        log = ATTRIBUTES[key].log if key in ATTRIBUTES else False
        theirs = _feature((a.get(key) for a in stands.attributes), log)
        mine = float(_feature([attrs[key]], log)[0])
        raw[key] = (mine, theirs)
    names: list[str] = []
    zc: list[float] = []
    zs: list[FloatArray] = []
    for name, (mine, theirs) in raw.items():
        known = ref & ~np.isnan(theirs)
        if known.sum() < MIN_FEATURE_STANDS or math.isnan(mine):
            if name in attrs:
                unused.append(name)
            continue
        mean = float(theirs[known].mean())
        sd = float(theirs[known].std())
        if sd <= 1e-12:
            if name in attrs:
                unused.append(name)
            continue
        names.append(name)
        zc.append((mine - mean) / sd)
        zs.append((theirs - mean) / sd)
    if names:
        zmat = np.stack(zs, axis=1)[pool]  # (pool, features)
        z = np.array(zc)[None, :]
        # A value the stand does not have counts as far as a random reference stand's
        # would be on average (E[(z - Z)²] = z² + 1 for standardised Z), so not knowing
        # never makes a stand look closer.
        diff2 = np.where(np.isnan(zmat), z**2 + 1, (zmat - z) ** 2)
        numeric = diff2.sum(axis=1)
    else:
        numeric = np.zeros(pool.size)
    mismatch = (all_types[pool] != c.location_type.value).astype(float)
    d2 = numeric + (TYPE_WEIGHT**2) * mismatch
    order = np.argsort(d2, kind="stable")[:k]
    d2k = d2[order]
    # The kernel is as wide as the nearest analogue is far (at least 1 sd): the less alike
    # even the nearest stand is, the more stands share the estimate.
    h2 = max(1.0, float(d2k.min()))
    w = np.exp(-(d2k - d2k.min()) / (2 * h2))
    w /= w.sum()
    keep = w >= MIN_ANALOGUE_WEIGHT
    keep[0] = True
    order, d2k, w = order[keep], d2k[keep], w[keep]
    w /= w.sum()
    idx = pool[order]
    rev = stands.revenue[idx]
    low, mid, high = (float(x) for x in weighted_quantiles(rev, w, QUANTILES))

    nearby: list[NearbyStand] = []
    share = 0.0
    for j in np.flatnonzero(open_mask & (np.nan_to_num(dist_km, nan=np.inf) <= CANNIBAL_KM)):
        km = float(dist_km[j])
        part = CANNIBAL_RATE * (1 - km / CANNIBAL_KM)
        share += part
        nearby.append(NearbyStand(stands.ids[j], stands.names[j], round(km, 3), round(part, 4)))
    nearby.sort(key=lambda s: s.distance_km)
    share = min(share, CANNIBAL_MAX)
    keep_share = 1 - share
    net_low, net_mid, net_high = low * keep_share, mid * keep_share, high * keep_share

    ref_rev = stands.revenue[ref]
    percentile = float(
        ((ref_rev < net_mid).sum() + 0.5 * np.isclose(ref_rev, net_mid).sum()) / n_ref
    )
    mean_d2 = float((w * d2k).sum())
    fit = math.exp(-mean_d2 / 8)
    score = round(100 * min(max(percentile, 0.0), 1.0) * (0.5 + 0.5 * fit))

    analogues = tuple(
        Analogue(
            stand_id=stands.ids[i],
            name=stands.names[i],
            location_type=stands.types[i],
            city=stands.cities[i],
            revenue_per_day=_money(float(stands.revenue[i])),
            feature_distance=round(math.sqrt(float(dd)), 3),
            distance_km=None if math.isnan(dist_km[i]) else round(float(dist_km[i]), 3),
            weight=round(float(ww), 4),
        )
        for i, dd, ww in zip(idx.tolist(), d2k.tolist(), w.tolist(), strict=True)
    )
    features: dict[str, float | None] = {
        "stands_within_2km": float(c_density[0]),
        "nearest_stand_km": None
        if math.isnan(c_nearest[0])
        else round(math.expm1(float(c_nearest[0])), 3),
        **{k2: float(v) for k2, v in sorted(attrs.items())},
    }
    e_low, e_mid, e_high = _money(net_low), _money(net_mid), _money(net_high)
    message = _message(c, e_low, e_high, analogues, share)
    evidence: dict[str, Any] = {
        "candidate_id": c.id,
        "score": score,
        "currency": CURRENCY,
        "expected_per_day": {"low": str(e_low), "mid": str(e_mid), "high": str(e_high)},
        "gross_per_day": {
            "low": str(_money(low)),
            "mid": str(_money(mid)),
            "high": str(_money(high)),
        },
        "quantiles": list(QUANTILES),
        "cannibalisation": {
            "share": round(share, 4),
            "radius_km": CANNIBAL_KM,
            "stands": [vars(s) for s in nearby],
        },
        "revenue_percentile": round(percentile, 4),
        "fit": round(fit, 4),
        "analogues": [{**vars(a), "revenue_per_day": str(a.revenue_per_day)} for a in analogues],
        "features": features,
        "features_compared": names,
        "unused_attributes": unused,
        "reference": {
            "stands": n_ref,
            "best_stands": int(best.sum()),
            "compared_with": int(pool.size),
            "same_type_only": bool(same_type.size),
            "window_days": WINDOW_DAYS,
            "windows": {tz: list(v) for tz, v in sorted(stands.window.items())},
            "k": k,
            "type_weight": TYPE_WEIGHT,
        },
    }
    return _Scored(
        CandidateScore(
            candidate_id=c.id,
            name=c.name,
            location_type=c.location_type.value,
            city=c.city,
            latitude=c.latitude,
            longitude=c.longitude,
            score=score,
            expected_low=e_low,
            expected_mid=e_mid,
            expected_high=e_high,
            gross_low=_money(low),
            gross_high=_money(high),
            cannibalisation=round(share, 4),
            revenue_percentile=round(percentile, 4),
            fit=round(fit, 4),
            analogues=analogues,
            nearby=tuple(nearby),
            features=features,
            unused_attributes=tuple(unused),
            reference_stands=n_ref,
            message=message,
            insight_id="",
            insight_status="",
        ),
        evidence,
    )


def _upsert_insight(
    session: Session, candidate_id: str, message: str, evidence: Mapping[str, Any], at: datetime
) -> AIInsight:
    """Write the candidate's insight: new, or updated in place while it is new or
    acknowledged; one a person dismissed or finished is left exactly as it is."""
    key = dedup_key(candidate_id)
    action = json.dumps({"type": "open_stand", "candidate_id": candidate_id}, sort_keys=True)
    evidence_text = json.dumps(evidence, sort_keys=True, ensure_ascii=False)
    insight = session.scalars(select(AIInsight).where(AIInsight.dedup_key == key)).first()
    if insight is None:
        insight = AIInsight(
            scope=SCOPE,
            kind=KIND,
            severity=Severity.INFO,
            message=message,
            action=action,
            evidence=evidence_text,
            model_version=MODEL_VERSION,
            dedup_key=key,
            status=InsightStatus.NEW,
            created_at=at,
            updated_at=at,
        )
        session.add(insight)
        session.flush()
        return insight
    if insight.status in (InsightStatus.DISMISSED, InsightStatus.DONE):
        return insight
    changed = (
        insight.message != message
        or insight.evidence != evidence_text
        or insight.action != action
        or insight.model_version != MODEL_VERSION
    )
    if changed:
        insight.message = message
        insight.evidence = evidence_text
        insight.action = action
        insight.severity = Severity.INFO
        insight.model_version = MODEL_VERSION
        insight.updated_at = at
    return insight


@transactional
def score_candidates(
    session: Session,
    *,
    now: datetime | None = None,
    k: int = DEFAULT_K,
    include_partner_leads: bool = True,
) -> list[CandidateScore]:
    """Score every open candidate against the best existing stands (see the module
    docstring), store each as an insight, and return them best first.

    Partner leads are brought up to date first (``include_partner_leads``). Nothing is
    scored while no stand has ``MIN_HISTORY_DAYS`` days of sales history."""
    _check_k(k)
    at = to_time(now)
    if include_partner_leads:
        candidates_from_partner_leads(session, None, now=at)
    candidates = list(
        session.scalars(
            select(ExpansionCandidate)
            .where(ExpansionCandidate.status == CandidateStatus.OPEN)
            .order_by(ExpansionCandidate.created_at, ExpansionCandidate.id)
        )
    )
    out = _score_and_store(session, candidates, at, k)
    out.sort(key=lambda s: (-s.score, -s.expected_mid, s.name))
    return out


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
        raise ValidationError("k must be a whole number from 1 to 50.", field="k")


def _score_and_store(
    session: Session, candidates: Sequence[ExpansionCandidate], at: datetime, k: int
) -> list[CandidateScore]:
    """Score ``candidates`` (in their order) and store each score as its insight. None is
    scored while no stand has ``MIN_HISTORY_DAYS`` days of sales history."""
    if not candidates:
        return []
    stands = _load_stands(session, at)
    best = _best(stands)
    out: list[CandidateScore] = []
    for c in candidates:
        scored = _score_one(c, stands, best, k)
        if scored is None:
            continue
        insight = _upsert_insight(session, c.id, scored.score.message, scored.evidence, at)
        out.append(
            replace(scored.score, insight_id=insight.id, insight_status=insight.status.value)
        )
    session.flush()
    return out


#: Candidates :func:`score_locations` takes in one call.
MAX_SCORE_LOCATIONS = 100


@transactional
def score_locations(
    session: Session,
    actor: Actor,
    candidates: Sequence[CandidateInput],
    *,
    now: datetime | None = None,
    k: int = DEFAULT_K,
) -> list[CandidateScore]:
    """Score the given places (the location-expansion endpoint): each is added as a
    candidate, or the open candidate already at that place (same name and coordinates) is
    reused as it is, and exactly these are scored and stored like :func:`score_candidates`
    does, returned in the order given (a place given twice is answered twice).

    At most ``MAX_SCORE_LOCATIONS`` places per call; the first invalid one refuses the
    whole call, naming its position. Nothing is scored while no stand has
    ``MIN_HISTORY_DAYS`` days of sales history (the list is then empty; the candidates
    are kept)."""
    actor.require(MANAGERS, "score expansion locations")
    _check_k(k)
    if len(candidates) > MAX_SCORE_LOCATIONS:
        raise ValidationError(
            f"At most {MAX_SCORE_LOCATIONS} locations can be scored at once; "
            f"{len(candidates)} were given.",
            field="candidates",
        )
    at = to_time(now)
    places = _existing_places(session)
    rows: list[ExpansionCandidate] = []
    for n, candidate in enumerate(candidates, start=1):
        try:
            values = _validate(candidate)
        except ValidationError as exc:
            where = f"candidates[{n - 1}]"
            raise ValidationError(
                f"Location {n}: {exc.message}",
                field=f"{where}.{exc.field}" if exc.field else where,
            ) from None
        key = _place_key(values["name"], values["latitude"], values["longitude"])
        same = places.get(key)
        if same is not None:
            rows.append(session.get_one(ExpansionCandidate, same))
            continue
        cid = new_id()
        rows.append(
            _insert(session, actor, values, candidate_id=cid, source=CandidateSource.MANUAL, at=at)
        )
        places[key] = cid
    scored = _score_and_store(session, list(dict.fromkeys(rows)), at, k)
    scores = {s.candidate_id: s for s in scored}
    return [scores[r.id] for r in rows if r.id in scores]
