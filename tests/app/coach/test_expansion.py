"""Location expansion: candidates (entered, CSV, partner leads), scoring against the best
existing stands, the insights it keeps, the table's migration, and ``standctl expansion``.

The scoring tests run on a hand-built program made through the real services with explicit
times: six stands, opened 30 days before ``NOW``, each selling a fixed number of one €10
product every day, so each stand's revenue per day is known exactly:

=====================  ========  ==============  =======
stand                  type      place           €/day
=====================  ========  ==============  =======
Kiosk am Markt         kiosk     Mitte            60
Kiosk Hauptbahnhof     kiosk     Moabit           50
Kiosk Vorort           kiosk     Spandau          20
Apotheke Mitte         pharmacy  Mitte            30
Apotheke Nord          pharmacy  Pankow           20
Apotheke Süd           pharmacy  Neukölln         10
=====================  ========  ==============  =======

The best of each type (at or above the type's median) are the two top kiosks and the two
top pharmacies.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import cli
from app.cli_expansion import add_commands
from app.coach import expansion
from app.coach.expansion import CandidateImportError, CandidateInput
from app.db import SessionFactory, open_db
from app.errors import NotFound, PermissionDenied, ValidationError
from app.ids import is_valid_id
from app.models import (
    AIInsight,
    CandidateSource,
    ExpansionCandidate,
    InsightStatus,
    Product,
    StandLocation,
    StandStatus,
)
from app.reference import seed_reference_data
from app.services import loyalty, onboarding, sales
from app.services.sales import SaleLine
from tests.conftest import MANAGER, PARTNER, REP, CatalogProduct
from tests.helpers import Watch, assert_readable, reading

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
OPENED = NOW - timedelta(days=30)
#: catalog[17] costs 1.50 + 17 / 2 = 10.00.
TEN_EURO = 17

STANDS = (
    ("Kiosk am Markt", "kiosk", 52.5200, 13.4000, 6),
    ("Kiosk Hauptbahnhof", "kiosk", 52.5250, 13.3690, 5),
    ("Kiosk Vorort", "kiosk", 52.5360, 13.2000, 2),
    ("Apotheke Mitte", "pharmacy", 52.5150, 13.4200, 3),
    ("Apotheke Nord", "pharmacy", 52.5700, 13.4100, 2),
    ("Apotheke Süd", "pharmacy", 52.4800, 13.4400, 1),
)


def open_stand(
    session: Session,
    product_id: str,
    name: str,
    kind: str,
    lat: float,
    lon: float,
    units_per_day: int,
    *,
    opened: datetime = OPENED,
    days: int = 30,
) -> str:
    """A live stand opened at ``opened`` that sells ``units_per_day`` €10 units at noon
    (Berlin) on each of its first ``days`` days."""
    result = onboarding.onboard_partner(
        session,
        REP,
        onboarding.PartnerInput(name=f"{name} GmbH", contact_name="Eva", package_code="growth"),
        onboarding.StandInput(
            name=name,
            address="Hauptstr. 1",
            city="Berlin",
            location_type=kind,
            capacity_units=200,
            latitude=lat,
            longitude=lon,
            products=[product_id],
        ),
        now=opened,
    )
    loyalty.activate_partner(session, REP, result.partner_id, now=opened)
    assert result.stand is not None
    sid = result.stand.stand_id
    for d in range(days):
        sales.record_sale(
            session,
            REP,
            sid,
            [SaleLine(product_id, units_per_day)],
            "cash",
            occurred_at=opened + timedelta(days=d, hours=2),
        )
    return sid


@pytest.fixture
def program(factory: SessionFactory, catalog: list[CatalogProduct]) -> dict[str, str]:
    """The six stands of the module docstring: name -> stand id."""
    assert catalog[TEN_EURO].list_price == Decimal("10.00")
    with factory() as s:
        return {
            name: open_stand(s, catalog[TEN_EURO].id, name, kind, lat, lon, units)
            for name, kind, lat, lon, units in STANDS
        }


def kiosk(name: str, lat: float, lon: float, **attributes: object) -> CandidateInput:
    return CandidateInput(
        name=name,
        latitude=lat,
        longitude=lon,
        location_type="kiosk",
        city="Berlin",
        attributes=attributes,
    )


def add(session: Session, candidate: CandidateInput) -> str:
    return expansion.add_candidate(session, REP, candidate, now=NOW).id


def insights(factory: SessionFactory) -> list[AIInsight]:
    with reading(factory) as s:
        rows = list(s.scalars(select(AIInsight).order_by(AIInsight.created_at, AIInsight.id)))
        s.expunge_all()
    return rows


def by_id(scores: list[expansion.CandidateScore], cid: str) -> expansion.CandidateScore:
    return next(s for s in scores if s.candidate_id == cid)


# --------------------------------------------------------------------------- adding


def test_add_candidate_stores_a_validated_candidate_and_one_op(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct]
) -> None:
    watch = Watch(factory)
    row = expansion.add_candidate(
        session,
        REP,
        CandidateInput(
            name="  Kiosk Alexanderplatz ",
            latitude="52,5219",
            longitude=Decimal("13.4132"),
            location_type="Kiosk",
            address="Alexanderplatz 1",
            city="Berlin",
            postal_code="10178",
            country="de",
            attributes={"Footfall": "1200", "opening hours": 84, "area_m2": "12.5"},
            notes="next to the tram stop",
        ),
        now=NOW,
    )
    assert is_valid_id(row.id)
    assert (row.name, row.location_type, row.source, row.status) == (
        "Kiosk Alexanderplatz",
        "kiosk",
        "manual",
        "open",
    )
    assert (row.latitude, row.longitude, row.country) == (52.5219, 13.4132, "DE")
    assert row.attributes == {
        "footfall_per_day": 1200,
        "opening_hours_per_week": 84,
        "area_m2": 12.5,
    }
    assert row.created_by == REP.user
    assert watch.added() == {"expansion_candidate": 1, "change_log": 1}
    [op] = watch.ops()
    assert op.op_type == "expansion.candidate_add"
    assert op.entity_id == row.id
    assert op.payload["candidate"]["attributes"]["footfall_per_day"] == 1200
    assert op.payload["candidate"]["location_type"] == "kiosk"
    with reading(factory) as s:
        stored = s.get_one(ExpansionCandidate, row.id)
        assert json.loads(stored.attributes) == row.attributes
        assert stored.source == CandidateSource.MANUAL


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"name": "  "}, "name", "Name is required."),
        ({"latitude": None}, "latitude", "Latitude is required."),
        ({"latitude": 95}, "latitude", "Latitude must be between -90 and 90."),
        ({"longitude": "east"}, "longitude", "Longitude must be a number, not 'east'."),
        ({"longitude": -180.5}, "longitude", "Longitude must be between -180 and 180."),
        ({"latitude": float("nan")}, "latitude", "Latitude must be a finite number."),
        ({"location_type": "spaceship"}, "location_type", "Unknown location type 'spaceship'"),
        ({"location_type": ""}, "location_type", "Location type is required."),
        ({"country": "Germany"}, "country", "two-letter code"),
        (
            {"attributes": {"footfall": -5}},
            "attributes.footfall_per_day",
            "Footfall per day must not be negative.",
        ),
        (
            {"attributes": {"area_m2": "big"}},
            "attributes.area_m2",
            "Area (m²) must be a number, not 'big'.",
        ),
        ({"attributes": {"bad key!": 1}}, "attributes", "is not an attribute name"),
    ],
)
def test_add_candidate_refuses_bad_input_naming_the_field(
    factory: SessionFactory,
    session: Session,
    catalog: list[CatalogProduct],
    changes: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    base: dict[str, Any] = {
        "name": "Kiosk Alexanderplatz",
        "latitude": 52.52,
        "longitude": 13.41,
        "location_type": "kiosk",
    }
    watch = Watch(factory)
    with pytest.raises(ValidationError) as exc:
        expansion.add_candidate(session, REP, CandidateInput(**{**base, **changes}), now=NOW)
    assert exc.value.field == field
    assert fragment in exc.value.message
    assert_readable(exc.value)
    watch.assert_nothing_saved()


def test_add_candidate_refuses_partners_and_the_same_place_twice(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct]
) -> None:
    with pytest.raises(PermissionDenied):
        expansion.add_candidate(session, PARTNER, kiosk("Kiosk X", 52.5, 13.4), now=NOW)
    first = add(session, kiosk("Kiosk X", 52.5, 13.4))
    watch = Watch(factory)
    with pytest.raises(ValidationError) as exc:
        add(session, kiosk("kiosk x", 52.500001, 13.4))
    assert first in exc.value.message
    assert exc.value.field == "name"
    watch.assert_nothing_saved()
    add(session, kiosk("Kiosk X", 52.51, 13.4))  # another place of the same name is fine


# --------------------------------------------------------------------------- CSV import

GOOD_CSV = (
    "\ufeffName;Address;City;Lat;Lon;Type;Footfall per day;competitors_nearby\r\n"
    "Kiosk Alexanderplatz;Alexanderplatz 1;Berlin;52,5219;13,4132;kiosk;1200;2\r\n"
    "Apotheke am Ring;Ring 5;Berlin;52,5000;13,3300;Pharmacy;;0\r\n"
    "\r\n"
    'Café "Zur Ecke";"Ecke 1; Hof";Potsdam;52,3906;13,0645;cafe;800;\r\n'
)


def test_csv_import_of_a_good_file(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct]
) -> None:
    watch = Watch(factory)
    result = expansion.import_candidates_csv(session, REP, GOOD_CSV, now=NOW)
    assert result.rows == 3
    assert watch.added() == {"expansion_candidate": 3, "change_log": 3}
    assert [o.op_type for o in watch.ops()] == ["expansion.candidate_add"] * 3
    rows = {r.name: r for r in expansion.list_candidates(session)}
    assert set(rows) == {"Kiosk Alexanderplatz", "Apotheke am Ring", 'Café "Zur Ecke"'}
    alex = rows["Kiosk Alexanderplatz"]
    assert (alex.latitude, alex.longitude, alex.location_type, alex.source) == (
        52.5219,
        13.4132,
        "kiosk",
        "csv",
    )
    assert alex.attributes == {"footfall_per_day": 1200, "competitors_nearby": 2}
    assert rows["Apotheke am Ring"].attributes == {"competitors_nearby": 0}
    cafe = rows['Café "Zur Ecke"']
    assert (cafe.address, cafe.city, cafe.attributes) == (
        "Ecke 1; Hof",
        "Potsdam",
        {"footfall_per_day": 800},
    )
    assert set(result.candidate_ids) == {r.id for r in rows.values()}


def test_csv_import_reads_a_file(
    tmp_path: Path, session: Session, catalog: list[CatalogProduct]
) -> None:
    path = tmp_path / "candidates.csv"
    path.write_text(
        "name,latitude,longitude,location_type\nKiosk A,52.5,13.4,kiosk\n", encoding="utf-8"
    )
    assert expansion.import_candidates_csv(session, REP, path, now=NOW).rows == 1
    with pytest.raises(ValidationError) as exc:
        expansion.import_candidates_csv(session, REP, tmp_path / "missing.csv", now=NOW)
    assert exc.value.field == "file"
    assert "Cannot read" in exc.value.message
    assert_readable(exc.value)


def test_csv_import_with_a_bad_row_reports_every_line_and_imports_nothing(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct]
) -> None:
    add(session, kiosk("Kiosk Schon Da", 52.45, 13.45))
    text_ = (
        "name,address,city,latitude,longitude,location_type,footfall\n"  # line 1
        "Kiosk A,Str. 1,Berlin,52.50,13.40,kiosk,1000\n"  # 2: good
        "Kiosk B,Str. 2,Berlin,95.00,13.40,kiosk,1000\n"  # 3: latitude
        "\n"  # 4: blank, skipped
        "Kiosk C,Str. 3,Berlin,52.51,13.41,spaceship,1000\n"  # 5: type
        "Kiosk D,Str. 4,Berlin,52.52,13.42,kiosk,lots\n"  # 6: attribute
        "Kiosk A,Str. 1,Berlin,52.50,13.40,kiosk,900\n"  # 7: same as line 2
        ",Str. 5,Berlin,52.53,13.43,kiosk,\n"  # 8: name
        "Kiosk Schon Da,,,52.45,13.45,kiosk,\n"  # 9: already a candidate
        "Kiosk E,Str. 6,Berlin,52.54,13.44,kiosk,1,extra\n"  # 10: too many cells
        "Kiosk F,Str. 7,Berlin,52.55,13.45,kiosk,\n"  # 11: good
    )
    watch = Watch(factory)
    with pytest.raises(CandidateImportError) as exc:
        expansion.import_candidates_csv(session, REP, text_, now=NOW)
    watch.assert_nothing_saved()
    errors = [(e.line, e.field) for e in exc.value.errors]
    assert errors == [
        (3, "latitude"),
        (5, "location_type"),
        (6, "attributes.footfall_per_day"),
        (7, "name"),
        (8, "name"),
        (9, "name"),
        (10, None),
    ]
    messages = {e.line: e.message for e in exc.value.errors}
    assert messages[3] == "Latitude must be between -90 and 90."
    assert messages[7] == "The same place as line 2 (name and coordinates)."
    assert messages[8] == "Name is required."
    assert "already a candidate" in messages[9]
    assert exc.value.message.startswith(
        "7 of 9 rows in the file have errors, so nothing was imported; line 3: Latitude"
    )
    assert "(and 6 more)" in exc.value.message
    assert exc.value.field == "file"
    assert_readable(exc.value)
    assert isinstance(exc.value, ValidationError)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("name,latitude,longitude\nA,1,2\n", "has no location_type column"),
        ("name,lat,lon,type\n", "has no candidate rows"),
        ("name,lat,latitude,lon,type\nA,1,1,2,kiosk\n", "names the column latitude twice"),
    ],
)
def test_csv_import_refuses_a_file_it_cannot_read(
    factory: SessionFactory,
    session: Session,
    catalog: list[CatalogProduct],
    content: str,
    fragment: str,
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as exc:
        expansion.import_candidates_csv(session, REP, content, now=NOW)
    assert fragment in exc.value.message
    assert exc.value.field == "file"
    assert_readable(exc.value)
    watch.assert_nothing_saved()


def test_importing_the_same_file_twice_is_refused(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    expansion.import_candidates_csv(session, REP, GOOD_CSV, now=NOW)
    with pytest.raises(CandidateImportError) as exc:
        expansion.import_candidates_csv(session, REP, GOOD_CSV, now=NOW)
    assert [e.line for e in exc.value.errors] == [2, 3, 5]
    assert len(expansion.list_candidates(session)) == 3


# --------------------------------------------------------------------------- scoring


def test_a_kiosk_near_the_best_kiosks_is_expected_to_earn_like_them(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    # 1.1 km north of Kiosk am Markt: no stand within 1 km.
    cid = add(session, kiosk("Rosenthaler Platz", 52.5299, 13.4015))
    [score] = expansion.score_candidates(session, now=NOW)
    assert score.candidate_id == cid
    names = {a.name for a in score.analogues}
    assert names == {"Kiosk am Markt", "Kiosk Hauptbahnhof"}
    revenue = {a.name: a.revenue_per_day for a in score.analogues}
    assert revenue == {"Kiosk am Markt": Decimal("60.00"), "Kiosk Hauptbahnhof": Decimal("50.00")}
    assert {a.stand_id for a in score.analogues} == {
        program["Kiosk am Markt"],
        program["Kiosk Hauptbahnhof"],
    }
    assert Decimal(50) <= score.expected_low <= score.expected_mid <= score.expected_high
    assert score.expected_high <= Decimal(60)
    assert score.expected_high > score.expected_low
    assert score.cannibalisation == 0
    assert score.nearby == ()
    assert (score.gross_low, score.gross_high) == (score.expected_low, score.expected_high)
    assert sum(a.weight for a in score.analogues) == pytest.approx(1, abs=1e-3)
    for a in score.analogues:
        assert a.distance_km is not None
        assert 1.0 < a.distance_km < 4.0
        assert a.feature_distance < expansion.TYPE_WEIGHT
    # It would beat four or five of the six stands, and fits them well.
    assert 0.66 <= score.revenue_percentile <= 0.84
    assert 60 <= score.score <= 84
    assert score.reference_stands == 6
    assert score.message.startswith("Kiosk at Rosenthaler Platz: expected €5")
    assert score.message.endswith("/day, like Kiosk am Markt and 1 other") or (
        score.message.endswith("/day, like Kiosk Hauptbahnhof and 1 other")
    )

    [insight] = insights(factory)
    assert (insight.scope, insight.kind, insight.severity.value, insight.status) == (
        "expansion",
        "expansion_candidate",
        "info",
        InsightStatus.NEW,
    )
    assert insight.id == score.insight_id
    assert insight.dedup_key == f"expansion:{cid}"
    assert insight.message == score.message
    assert insight.model_version == expansion.MODEL_VERSION
    assert json.loads(insight.action) == {"type": "open_stand", "candidate_id": cid}
    evidence = json.loads(insight.evidence)
    assert evidence["expected_per_day"] == {
        "low": str(score.expected_low),
        "mid": str(score.expected_mid),
        "high": str(score.expected_high),
    }
    assert {a["stand_id"] for a in evidence["analogues"]} == {a.stand_id for a in score.analogues}
    assert evidence["reference"]["stands"] == 6
    assert evidence["reference"]["best_stands"] == 4
    assert evidence["reference"]["compared_with"] == 2  # the two best kiosks
    assert evidence["reference"]["same_type_only"] is True
    assert evidence["reference"]["windows"] == {"Europe/Berlin": ["2026-03-03", "2026-05-31"]}
    assert evidence["features_compared"] == ["stands_within_2km", "nearest_stand_log_km"]
    # The list shows the stored score.
    [row] = expansion.list_candidates(session)
    assert (row.score, row.expected_low, row.expected_high) == (
        score.score,
        score.expected_low,
        score.expected_high,
    )


def test_stored_scores_give_back_what_scoring_found(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    add(session, kiosk("Rosenthaler Platz", 52.5299, 13.4015))
    add(session, kiosk("Markt Ecke", 52.5205, 13.4005))  # 100 m from a stand: nearby stands
    scored = {s.candidate_id: s for s in expansion.score_candidates(session, now=NOW)}
    with factory() as s, s.begin():
        stored = expansion.stored_scores(s)
    assert set(stored) == set(scored)
    for cid, fresh in scored.items():
        back = stored[cid]
        assert back.analogues == fresh.analogues
        assert back.nearby == fresh.nearby
        assert (back.expected_low, back.expected_mid, back.expected_high) == (
            fresh.expected_low,
            fresh.expected_mid,
            fresh.expected_high,
        )
        assert (back.score, back.cannibalisation, back.message) == (
            fresh.score,
            fresh.cannibalisation,
            fresh.message,
        )
    assert any(s.nearby for s in stored.values())


def test_a_pharmacy_is_compared_with_the_best_pharmacies(
    session: Session, program: dict[str, str]
) -> None:
    kiosk_id = add(session, kiosk("Rosenthaler Platz", 52.5299, 13.4015))
    cid = add(
        session,
        CandidateInput("Apotheke Prenzlauer Berg", 52.5450, 13.4400, "pharmacy", city="Berlin"),
    )
    scores = expansion.score_candidates(session, now=NOW)
    assert [s.candidate_id for s in scores] == [kiosk_id, cid]  # best first
    score = by_id(scores, cid)
    assert {a.name for a in score.analogues} == {"Apotheke Mitte", "Apotheke Nord"}
    assert Decimal(20) <= score.expected_low <= score.expected_high <= Decimal(30)
    assert score.score < by_id(scores, kiosk_id).score
    assert score.message.startswith("Pharmacy at Apotheke Prenzlauer Berg: expected €2")


def test_a_candidate_100_m_from_a_stand_is_cannibalised(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    far = add(session, kiosk("Rosenthaler Platz", 52.5299, 13.4015))
    near = add(session, kiosk("Markt Nord", 52.5209, 13.4000))  # 100 m north of the Markt
    scores = expansion.score_candidates(session, now=NOW)
    s = by_id(scores, near)
    [nearby] = s.nearby
    assert nearby.stand_id == program["Kiosk am Markt"]
    assert nearby.distance_km == pytest.approx(0.100, abs=0.002)
    expected_share = expansion.CANNIBAL_RATE * (1 - nearby.distance_km)
    assert s.cannibalisation == pytest.approx(expected_share, abs=1e-3)
    assert 0.25 < s.cannibalisation < 0.29
    keep = Decimal(str(1 - s.cannibalisation))
    assert s.expected_low == pytest.approx(s.gross_low * keep, abs=Decimal("0.02"))
    assert s.expected_high == pytest.approx(s.gross_high * keep, abs=Decimal("0.02"))
    assert s.expected_high < s.gross_high
    assert "27% less for stands within 1 km" in s.message
    assert s.score < by_id(scores, far).score
    evidence = json.loads(by_insight(factory, near).evidence)
    assert evidence["cannibalisation"]["stands"][0]["stand_id"] == program["Kiosk am Markt"]
    assert evidence["cannibalisation"]["share"] == pytest.approx(s.cannibalisation)


def by_insight(factory: SessionFactory, candidate_id: str) -> AIInsight:
    return next(i for i in insights(factory) if i.dedup_key == f"expansion:{candidate_id}")


def test_young_stands_and_voids(
    factory: SessionFactory,
    session: Session,
    program: dict[str, str],
    catalog: list[CatalogProduct],
) -> None:
    """A stand with less than two weeks of history is no reference (but is a neighbour);
    revenue per day counts voids and only the stand's own days."""
    young = open_stand(
        session,
        catalog[TEN_EURO].id,
        "Kiosk Neu",
        "kiosk",
        52.5300,
        13.4300,
        50,
        opened=NOW - timedelta(days=10),
        days=10,
    )
    # Void one of the Markt's sales: 30 x 60 - 60 over 30 days = 58.00 per day.
    with reading(factory) as s:
        order_id = s.scalar(
            text("SELECT id FROM stand_order WHERE stand_id = :s LIMIT 1"),
            {"s": program["Kiosk am Markt"]},
        )
    sales.void_sale(
        session, REP, order_id, reason="wrong product", occurred_at=NOW - timedelta(days=1)
    )
    cid = add(session, kiosk("Neu Nord", 52.5305, 13.4300))  # 55 m from Kiosk Neu
    [score] = expansion.score_candidates(session, now=NOW)
    assert score.candidate_id == cid
    assert young not in {a.stand_id for a in score.analogues}
    assert score.reference_stands == 6
    assert [n.stand_id for n in score.nearby] == [young]
    revenue = {a.name: a.revenue_per_day for a in score.analogues}
    assert revenue.get("Kiosk am Markt") == Decimal("58.00")


def test_a_paused_stand_is_a_neighbour_but_not_a_reference(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    with factory() as s, s.begin():
        s.execute(
            update(StandLocation)
            .where(StandLocation.id == program["Kiosk am Markt"])
            .values(status=StandStatus.PAUSED)
        )
    near = add(session, kiosk("Markt Nord", 52.5209, 13.4000))
    [score] = expansion.score_candidates(session, now=NOW)
    assert score.candidate_id == near
    assert score.reference_stands == 5
    assert "Kiosk am Markt" not in {a.name for a in score.analogues}
    assert [n.stand_id for n in score.nearby] == [program["Kiosk am Markt"]]


def test_attributes_are_compared_where_stands_have_them(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    """Stands get attributes from the candidates accepted for them; a candidate's attribute
    that fewer than three reference stands know is named as not compared."""
    footfall = {
        "Kiosk am Markt": 3000,
        "Kiosk Hauptbahnhof": 2500,
        "Kiosk Vorort": 600,
        "Apotheke Mitte": 1500,
    }
    for name, value in footfall.items():
        c = add(session, CandidateInput(name, 0, 0, "kiosk", attributes={"footfall": value}))
        expansion.set_candidate_status(
            session, MANAGER, c, "accepted", stand_id=program[name], now=NOW
        )
    # Two candidates at the same place, one busy and one quiet.
    busy = add(session, kiosk("Busy", 52.60, 13.30, footfall=2800, area_m2=20))
    quiet = add(session, kiosk("Quiet", 52.60, 13.30, footfall=700))
    scores = expansion.score_candidates(session, now=NOW)
    b, q = by_id(scores, busy), by_id(scores, quiet)
    assert b.unused_attributes == ("area_m2",)  # no stand knows its area
    assert q.unused_attributes == ()
    ev = json.loads(by_insight(factory, busy).evidence)
    assert ev["features_compared"] == [
        "stands_within_2km",
        "nearest_stand_log_km",
        "footfall_per_day",
    ]
    assert ev["features"]["footfall_per_day"] == 2800
    assert ev["unused_attributes"] == ["area_m2"]
    # Footfall moves them apart: the busy one is nearer the busy Markt in feature space.
    to_markt = {
        s.candidate_id: next(a for a in s.analogues if a.name == "Kiosk am Markt").feature_distance
        for s in (b, q)
    }
    assert to_markt[busy] < to_markt[quiet]
    assert b.fit > q.fit


def test_nothing_is_scored_without_history_or_candidates(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct]
) -> None:
    assert expansion.score_candidates(session, now=NOW) == []
    add(session, kiosk("Lonely", 52.5, 13.4))
    open_stand(
        session,
        catalog[TEN_EURO].id,
        "Kiosk Neu",
        "kiosk",
        52.6,
        13.5,
        5,
        days=5,
        opened=NOW - timedelta(days=5),
    )
    assert expansion.score_candidates(session, now=NOW) == []
    assert insights(factory) == []
    with pytest.raises(ValidationError) as exc:
        expansion.score_candidates(session, now=NOW, k=0)
    assert exc.value.field == "k"


# --------------------------------------------------------------------------- insights


def test_rescoring_updates_never_duplicates_and_never_reopens(
    factory: SessionFactory,
    session: Session,
    program: dict[str, str],
    catalog: list[CatalogProduct],
) -> None:
    a = add(session, kiosk("Rosenthaler Platz", 52.5299, 13.4015))
    b = add(session, kiosk("Markt Nord", 52.5209, 13.4000))
    expansion.score_candidates(session, now=NOW)
    first = {i.dedup_key: i for i in insights(factory)}
    assert len(first) == 2
    # Scoring again with nothing changed changes nothing.
    expansion.score_candidates(session, now=NOW)
    again = {i.dedup_key: i for i in insights(factory)}
    assert {k: (i.id, i.updated_at, i.evidence) for k, i in again.items()} == {
        k: (i.id, i.updated_at, i.evidence) for k, i in first.items()
    }
    # A person acknowledges one and dismisses the other.
    with factory() as s, s.begin():
        s.execute(
            update(AIInsight)
            .where(AIInsight.dedup_key == f"expansion:{a}")
            .values(status=InsightStatus.ACKNOWLEDGED)
        )
        s.execute(
            update(AIInsight)
            .where(AIInsight.dedup_key == f"expansion:{b}")
            .values(status=InsightStatus.DISMISSED, status_reason="rent too high")
        )
    decided = {i.dedup_key: i for i in insights(factory)}
    # A week later the Hauptbahnhof sold much more.
    later = NOW + timedelta(days=7)
    for d in range(7):
        sales.record_sale(
            session,
            REP,
            program["Kiosk Hauptbahnhof"],
            [SaleLine(catalog[TEN_EURO].id, 30)],
            "cash",
            occurred_at=NOW + timedelta(days=d, hours=2),
        )
    scores = expansion.score_candidates(session, now=later)
    now_ = {i.dedup_key: i for i in insights(factory)}
    assert len(now_) == 2
    ka, kb = f"expansion:{a}", f"expansion:{b}"
    assert now_[ka].id == first[ka].id
    assert now_[ka].status == InsightStatus.ACKNOWLEDGED  # kept, but the numbers are new
    assert now_[ka].evidence != first[ka].evidence
    assert now_[ka].updated_at == later
    assert now_[ka].message == by_id(scores, a).message
    assert now_[kb].status == InsightStatus.DISMISSED  # left exactly as the person left it
    assert (now_[kb].evidence, now_[kb].updated_at, now_[kb].status_reason) == (
        first[kb].evidence,
        decided[kb].updated_at,
        "rent too high",
    )
    assert by_id(scores, b).insight_status == "dismissed"
    with reading(factory) as s:
        assert s.scalar(select(func.count()).select_from(AIInsight)) == 2


def test_accepting_or_rejecting_closes_the_insight(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    a = add(session, kiosk("Rosenthaler Platz", 52.5299, 13.4015))
    b = add(session, kiosk("Markt Nord", 52.5209, 13.4000))
    expansion.score_candidates(session, now=NOW)
    with pytest.raises(PermissionDenied):
        expansion.set_candidate_status(session, REP, a, "accepted", now=NOW)
    with pytest.raises(NotFound):
        expansion.set_candidate_status(session, MANAGER, "nope", "accepted", now=NOW)
    with pytest.raises(ValidationError) as exc:
        expansion.set_candidate_status(session, MANAGER, a, "maybe", now=NOW)
    assert exc.value.field == "status"
    watch = Watch(factory)
    row = expansion.set_candidate_status(
        session, MANAGER, a, "accepted", stand_id=program["Kiosk Vorort"], now=NOW
    )
    assert (row.status, row.stand_id, row.insight_status) == (
        "accepted",
        program["Kiosk Vorort"],
        "done",
    )
    assert [o.op_type for o in watch.ops()] == ["expansion.candidate_status"]
    row = expansion.set_candidate_status(
        session, MANAGER, b, "rejected", reason="too close to the Markt", now=NOW
    )
    assert (row.status, row.status_reason, row.insight_status) == (
        "rejected",
        "too close to the Markt",
        "dismissed",
    )
    with pytest.raises(ValidationError) as exc:
        expansion.set_candidate_status(session, MANAGER, b, "accepted", now=NOW)
    assert "already rejected" in exc.value.message
    # Decided candidates are not scored again, and their insights stay closed.
    assert expansion.score_candidates(session, now=NOW) == []
    assert {i.status for i in insights(factory)} == {InsightStatus.DONE, InsightStatus.DISMISSED}
    assert [r.id for r in expansion.list_candidates(session)] == []
    assert {r.id for r in expansion.list_candidates(session, status="all")} == {a, b}


# --------------------------------------------------------------------------- partner leads


def test_partner_leads_become_candidates_once_and_close_when_the_stand_goes_live(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    lead = onboarding.onboard_partner(
        session,
        REP,
        onboarding.PartnerInput(name="Kiosk Lead GmbH", contact_name="Lea", package_code="growth"),
        onboarding.StandInput(
            name="Kiosk Lead",
            address="Torstr. 1",
            city="Berlin",
            location_type="kiosk",
            capacity_units=100,
            latitude=52.5299,
            longitude=13.4015,
        ),
        now=NOW,
    )
    assert lead.stand is not None
    no_place = onboarding.onboard_partner(
        session,
        REP,
        onboarding.PartnerInput(name="Nowhere GmbH", contact_name="N", package_code="growth"),
        onboarding.StandInput(
            name="Somewhere", address="?", city="Berlin", location_type="cafe", capacity_units=50
        ),
        now=NOW,
    )
    assert no_place.stand is not None
    made = expansion.candidates_from_partner_leads(session, now=NOW)
    [c] = made
    assert (c.source, c.partner_id, c.stand_id, c.name, c.location_type) == (
        "partner_lead",
        lead.partner_id,
        lead.stand.stand_id,
        "Kiosk Lead",
        "kiosk",
    )
    assert c.id == expansion.lead_candidate_id(lead.stand.stand_id)  # the same on every device
    assert is_valid_id(c.id)
    assert expansion.candidates_from_partner_leads(session, now=NOW) == []
    # Scoring brings leads in too; the planned stand is not its own neighbour.
    [score] = expansion.score_candidates(session, now=NOW)
    assert score.candidate_id == c.id
    assert score.nearby == ()
    assert {a.name for a in score.analogues} == {"Kiosk am Markt", "Kiosk Hauptbahnhof"}
    # The partner is activated: the stand is live, the lead accepted, its insight done.
    loyalty.activate_partner(session, REP, lead.partner_id, now=NOW)
    assert expansion.score_candidates(session, now=NOW) == []
    [row] = expansion.list_candidates(session, status="all")
    assert (row.status, row.status_reason, row.insight_status) == (
        "accepted",
        "The stand went live.",
        "done",
    )


# --------------------------------------------------------------------------- the method


def test_weighted_quantiles() -> None:
    v = np.array([60.0, 50.0])
    w = np.array([0.5, 0.5])
    assert expansion.weighted_quantiles(v, w, (0.25, 0.5, 0.75)).tolist() == [50, 55, 60]
    assert expansion.weighted_quantiles(
        np.array([7.0]), np.array([1.0]), (0.25, 0.75)
    ).tolist() == [7, 7]
    # A heavier value pulls the quantiles towards itself.
    q = expansion.weighted_quantiles(np.array([10.0, 20.0]), np.array([0.9, 0.1]), (0.5,))
    assert 10 < q[0] < 15


def test_haversine_km() -> None:
    # One hundredth of a degree of latitude is 1.11 km anywhere.
    assert float(expansion.haversine_km(52.52, 13.40, 52.53, 13.40)) == pytest.approx(
        1.112, abs=1e-3
    )
    # Berlin to Munich, about 504 km.
    assert float(expansion.haversine_km(52.52, 13.405, 48.137, 11.575)) == pytest.approx(504, abs=2)


def test_attribute_names() -> None:
    assert expansion.attribute_key("Footfall") == "footfall_per_day"
    assert expansion.attribute_key("opening-hours") == "opening_hours_per_week"
    assert expansion.attribute_key("Parking spaces") == "parking_spaces"
    assert expansion.clean_attributes({"parking spaces": "-2", "area": "1,5", "x": ""}) == {
        "parking_spaces": -2,
        "area_m2": 1.5,
    }
    with pytest.raises(ValidationError) as exc:
        expansion.clean_attributes({"footfall": 1, "footfall_per_day": 2})
    assert "given twice" in exc.value.message


# --------------------------------------------------------------------------- migration


def test_the_table_checks_coordinates_and_types(factory: SessionFactory) -> None:
    engine = factory.kw["bind"]
    insert = (
        "INSERT INTO expansion_candidate (id, name, country, latitude, longitude, "
        "location_type, source, attributes, notes, status, created_at, updated_at) VALUES "
        "(:id, 'X', 'DE', :lat, 13.4, :type, 'manual', '{}', '', 'open', "
        "'2030-01-01', '2030-01-01')"
    )
    with engine.begin() as conn:
        conn.execute(text(insert), {"id": "a", "lat": 52.5, "type": "kiosk"})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(insert), {"id": "b", "lat": 95, "type": "kiosk"})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(insert), {"id": "c", "lat": 52.5, "type": "spaceship"})


# --------------------------------------------------------------------------- standctl


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Run]:
    """``standctl`` on this test's database (``tmp_path/stand.db``, as the ``factory``
    fixture made it), with the ``expansion`` group added if app.cli does not wire it yet."""
    for var in ("STAND_OS_DATA_DIR", "STAND_OS_DB_URL", "STAND_OS_USER", "STAND_OS_ROLE"):
        monkeypatch.delenv(var, raising=False)
    build = cli.build_parser

    def build_with_expansion() -> cli._Parser:
        parser = build()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "expansion" not in sub.choices:
            add_commands(sub, cli._command, cli._group)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_with_expansion)

    def _run(*args: str, role: str | None = None) -> Run:
        argv = ["--data-dir", str(tmp_path), "--user", "rep.anna"]
        if role:
            argv += ["--role", role]
        code = cli.main([*argv, *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return _run


def test_cli_add_list_and_refusals(run: Callable[..., Run], catalog: list[CatalogProduct]) -> None:
    r = run(
        "expansion", "add", "--name", "Kiosk Alexanderplatz", "--lat", "52.5219",
        "--lon", "13.4132", "--type", "kiosk", "--city", "Berlin",
        "--attr", "footfall=1200", "--attr", "area_m2=12.5",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "Kiosk Alexanderplatz (open)" in r.out
    assert "Footfall per day 1200" in r.out
    r = run("--json", "expansion", "list")
    assert r.code == 0, r.err
    [row] = r.json()
    assert (row["name"], row["attributes"]) == (
        "Kiosk Alexanderplatz",
        {"area_m2": 12.5, "footfall_per_day": 1200},
    )
    r = run("expansion", "list")
    assert "Kiosk Alexanderplatz" in r.out
    assert "1 candidate" in r.out
    r = run("expansion", "add", "--name", "X", "--lat", "95", "--lon", "13", "--type", "kiosk")
    assert r.code == 2
    assert r.err.strip() == "standctl: error: Latitude must be between -90 and 90."
    r = run("--json", "expansion", "add", "--name", "X", "--lat", "5", "--lon", "13",
            "--type", "kiosk", "--attr", "footfall")  # fmt: skip
    assert r.code == 2
    assert r.json()["error"]["field"] == "attributes"
    r = run("expansion", "add", "--name", "X", "--lat", "5", "--lon", "13", "--type", "ship")
    assert r.code == 2
    assert "invalid choice" in r.err
    r = run("expansion", "list", "--status", "rejected")
    assert r.out.strip() == "No rejected candidates."


def test_cli_import_good_and_bad_files(
    run: Callable[..., Run], tmp_path: Path, catalog: list[CatalogProduct]
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(GOOD_CSV, encoding="utf-8")
    r = run("expansion", "import", str(good))
    assert r.code == 0, r.err
    assert "Imported 3 candidates from good.csv." in r.out
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "name,latitude,longitude,location_type\nA,52.5,13.4,kiosk\nB,95,13.4,kiosk\n",
        encoding="utf-8",
    )
    r = run("expansion", "import", str(bad))
    assert r.code == 2
    lines = r.err.splitlines()
    assert lines[0].startswith("standctl: error: 1 of 2 rows in bad.csv have errors")
    assert lines[1] == "  line 3 (latitude): Latitude must be between -90 and 90."
    r = run("--json", "expansion", "import", str(bad))
    assert r.code == 2
    assert r.json()["error"]["rows"] == [
        {"line": 3, "field": "latitude", "message": "Latitude must be between -90 and 90."}
    ]
    assert len(run("--json", "expansion", "list").json()) == 3


def test_cli_score(
    run: Callable[..., Run],
    session: Session,
    program: dict[str, str],
) -> None:
    add(session, kiosk("Rosenthaler Platz", 52.5299, 13.4015))
    add(session, kiosk("Markt Nord", 52.5209, 13.4000))
    at = NOW.isoformat()
    r = run("--json", "expansion", "score", "--at", at, "--k", "3")
    assert r.code == 0, r.err
    data = r.json()
    assert [d["name"] for d in data] == ["Rosenthaler Platz", "Markt Nord"]
    assert {a["name"] for a in data[0]["analogues"]} == {"Kiosk am Markt", "Kiosk Hauptbahnhof"}
    assert Decimal(data[0]["expected_low"]) >= 50
    r = run("expansion", "score", "--at", at)
    assert r.code == 0, r.err
    assert "2 candidates against 6 stands" in r.out
    assert "1. Kiosk at Rosenthaler Platz: expected €5" in r.out
    assert "Kiosk am Markt 100 m" in r.out
    assert "60.00" in r.out
    r = run("expansion", "list")
    assert "Rosenthaler Platz" in r.out
    assert "–" in r.out  # the expected range from the stored score
    r = run("expansion", "score", "--k", "0")
    assert r.code == 2


def test_cli_accept_and_reject(
    run: Callable[..., Run], session: Session, catalog: list[CatalogProduct]
) -> None:
    a = add(session, kiosk("A", 52.5, 13.4))
    r = run("expansion", "reject", a, "--reason", "rent too high")
    assert r.code == 2
    assert "may not decide on expansion candidates" in r.err
    r = run("expansion", "reject", a, "--reason", "rent too high", role="manager")
    assert r.code == 0, r.err
    assert r.out.strip() == "A is rejected."


def test_cli_help_says_all_or_nothing(run: Callable[..., Run]) -> None:
    r = run("expansion", "import", "--help")
    assert r.code == 0
    assert "nothing is imported" in " ".join(r.out.split())


def test_a_type_without_stands_is_compared_across_types_with_a_low_fit(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    kiosk_id = add(session, kiosk("Rosenthaler Platz", 52.5299, 13.4015))
    gym = add(session, CandidateInput("FitX Mitte", 52.5299, 13.4016, "gym"))
    scores = expansion.score_candidates(session, now=NOW)
    g = by_id(scores, gym)
    assert g.analogues
    assert all(a.feature_distance >= expansion.TYPE_WEIGHT for a in g.analogues)
    assert g.fit < 0.2
    assert g.score < by_id(scores, kiosk_id).score
    evidence = json.loads(by_insight(factory, gym).evidence)
    assert evidence["reference"]["same_type_only"] is False
    assert evidence["reference"]["compared_with"] == 4


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_factory(pg_server_url: str) -> Iterator[SessionFactory]:
    factory = open_db(pg_server_url)
    yield factory
    engine = factory.kw["bind"]
    with engine.begin() as conn:  # leave an empty database for the next test
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def test_scoring_on_postgresql(pg_factory: SessionFactory) -> None:
    with pg_factory() as s, s.begin():
        seed_reference_data(s)
        product = Product(
            sku="TEN", name="Ten", category="snacks", list_price=Decimal("10.00"),
            unit_cost=Decimal("4.00"), pack_size=1,
        )  # fmt: skip
        s.add(product)
        s.flush()
        pid = product.id
    with pg_factory() as s:
        for name, lat, units in (("K1", 52.52, 6), ("K2", 52.54, 5), ("K3", 52.56, 2)):
            open_stand(s, pid, name, "kiosk", lat, 13.40, units, days=20)
        add(s, kiosk("Candidate", 52.5205, 13.40))
        [score] = expansion.score_candidates(s, now=NOW)
    # Opened 30 days before NOW, sold on their first 20 days: revenue over 30 days live.
    assert {a.name: a.revenue_per_day for a in score.analogues} == {
        "K1": Decimal("40.00"),
        "K2": Decimal("33.33"),
    }
    assert [n.name for n in score.nearby] == ["K1"]
    assert score.cannibalisation > 0.25


def test_csv_line_numbers_count_from_where_a_row_starts(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    content = (
        "name,notes,latitude,longitude,location_type\n"
        'A,"two\nlines",52.5,13.4,kiosk\n'  # lines 2-3
        "B,,52.6,13.4,tram\n"  # line 4
    )
    with pytest.raises(CandidateImportError) as exc:
        expansion.import_candidates_csv(session, REP, content, now=NOW)
    assert [(e.line, e.field) for e in exc.value.errors] == [(4, "location_type")]


# --------------------------------------------------------------------------- score_locations


def test_score_locations_adds_reuses_and_scores_exactly_those_in_order(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    known = add(session, kiosk("Rosenthaler Platz", 52.5299, 13.4015))
    bystander = add(session, kiosk("Somewhere Else", 52.45, 13.30))
    places = [
        CandidateInput(
            name="Apotheke Prenzlauer Berg",
            latitude="52.5400",
            longitude="13.4200",
            location_type="pharmacy",
            attributes={"footfall": 900},
        ),
        # The place already a candidate (name case and 1 m of noise do not matter).
        kiosk("rosenthaler platz", 52.529901, 13.4015),
        kiosk("Kiosk Wedding", 52.5500, 13.3600),
        kiosk("Kiosk Wedding", 52.5500, 13.3600),  # twice in one call: one candidate
    ]
    watch = Watch(factory)
    scores = expansion.score_locations(session, MANAGER, places, now=NOW)
    assert [s.name for s in scores] == [
        "Apotheke Prenzlauer Berg",
        "Rosenthaler Platz",
        "Kiosk Wedding",
        "Kiosk Wedding",
    ]
    assert scores[1].candidate_id == known
    assert scores[2] == scores[3]
    assert len({s.candidate_id for s in scores}) == 3
    assert [s.location_type for s in scores] == ["pharmacy", "kiosk", "kiosk", "kiosk"]
    assert all(0 <= s.score <= 100 and s.insight_id for s in scores)
    assert watch.added()["expansion_candidate"] == 2
    assert [op.op_type for op in watch.ops()] == ["expansion.candidate_add"] * 2
    # Exactly those are scored: the other open candidate has no insight.
    keys = {i.dedup_key for i in insights(factory)}
    assert keys == {expansion.dedup_key(s.candidate_id) for s in scores}
    assert expansion.dedup_key(bystander) not in keys
    # The same as scoring everything would say about them.
    everything = expansion.score_candidates(session, now=NOW, include_partner_leads=False)
    for s in scores:
        assert by_id(everything, s.candidate_id).score == s.score
    # Scoring the same places again adds nothing and answers the same.
    watch = Watch(factory)
    again = expansion.score_locations(session, MANAGER, places, now=NOW)
    assert [s.candidate_id for s in again] == [s.candidate_id for s in scores]
    assert "expansion_candidate" not in watch.added()


def test_score_locations_refusals(
    factory: SessionFactory, session: Session, program: dict[str, str]
) -> None:
    watch = Watch(factory)
    good = kiosk("Kiosk Wedding", 52.55, 13.36)
    with pytest.raises(PermissionDenied):
        expansion.score_locations(session, REP, [good], now=NOW)
    with pytest.raises(ValidationError) as exc:
        expansion.score_locations(
            session, MANAGER, [good] * (expansion.MAX_SCORE_LOCATIONS + 1), now=NOW
        )
    assert exc.value.field == "candidates"
    assert_readable(exc.value)
    bad = CandidateInput(name="Nowhere", latitude="north", longitude=13.4, location_type="kiosk")
    with pytest.raises(ValidationError) as exc:
        expansion.score_locations(session, MANAGER, [good, bad], now=NOW)
    assert exc.value.field == "candidates[1].latitude"
    assert str(exc.value).startswith("Location 2: ")
    assert_readable(exc.value)
    with pytest.raises(ValidationError) as exc:
        expansion.score_locations(session, MANAGER, [good], now=NOW, k=0)
    assert exc.value.field == "k"
    watch.assert_nothing_saved()
    assert expansion.score_locations(session, MANAGER, [], now=NOW) == []
    # A hundred at once is fine.
    many = [kiosk(f"Kiosk {i}", 52.40 + i / 1000, 13.30) for i in range(100)]
    assert len(expansion.score_locations(session, MANAGER, many, now=NOW)) == 100


def test_score_locations_without_history_keeps_the_candidates(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct]
) -> None:
    assert expansion.score_locations(session, MANAGER, [kiosk("Lonely", 52.5, 13.4)]) == []
    assert [c.name for c in expansion.list_candidates(session)] == ["Lonely"]
    assert insights(factory) == []
