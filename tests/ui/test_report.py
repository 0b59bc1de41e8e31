"""The one-page PDF reports and the KPI CSV (``ui.report``), and ``standctl report``.

The PDFs are checked the way a person would: rendered to an image with pypdfium2 (one A4
page, ink where the charts are) and read back as text (the scope, the period, the revenue
written as ``standctl kpi`` writes it). No Qt is involved.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pypdfium2 as pdfium
import pytest
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.kpi import Dashboard, Period, Scope, ScopeKind, StandPerformance, dashboard
from app.kpi import stand_performance as performance_of
from app.kpi.model import SkuUnits, StockSeries
from app.kpi.text import format_value
from app.services import inventory, loyalty, onboarding, refills, sales
from app.services.sales import SaleLine
from tests.app.test_cli import onboard
from tests.conftest import MANAGER, PARTNER, REP, CatalogProduct, Cli
from ui.report import (
    AUTHOR,
    CSV_COLUMNS,
    export_kpi_csv,
    period_text,
    render_program_report,
    render_stand_report,
    stock_at_risk,
)

BERLIN = "Europe/Berlin"
PERIOD = Period(date(2026, 3, 23), date(2026, 3, 29))
NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
GENERATED = datetime(2026, 3, 30, 10, 5, tzinfo=UTC)
PERIOD_TEXT = "23 Mar – 29 Mar 2026 vs prior 16 – 22 Mar"
A4 = (595.0, 842.0)  # points
ROOT = Path(__file__).resolve().parents[2]


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(BERLIN)).astimezone(UTC)


@dataclass(frozen=True)
class Data:
    factory: SessionFactory
    stand: str  # "Kiosk Rosenthaler Str.", three SKUs, one sells out
    other: str  # "Café Nord", two SKUs
    empty: str  # "Späti Ost", onboarded, nothing else
    partner: str  # the kiosk's partner


def _build(session: Session, catalog: list[CatalogProduct]) -> dict[str, str]:
    """Two stands that sell every day of the period and the prior one, with refills (one
    in the period), a count, and an SKU that sells out; and a stand with nothing."""
    created = berlin("2026-03-01 09:00")

    def onboard_stand(name: str, products: list[str]) -> tuple[str, str]:
        result = onboarding.onboard_partner(
            session,
            REP,
            onboarding.PartnerInput(name=f"{name} GmbH", contact_name="Eva", package_code="pro"),
            onboarding.StandInput(
                name=name,
                address="Rosenthaler Str. 1",
                city="Berlin",
                location_type="kiosk",
                capacity_units=300,
                latitude=52.53,
                longitude=13.40,
                assigned_rep=REP.user,
                timezone=BERLIN,
                products=products,
            ),
            now=created,
        )
        assert result.stand is not None
        loyalty.activate_partner(session, REP, result.partner_id, now=created)
        return result.partner_id, result.stand.stand_id

    p = [c.id for c in catalog[:4]]
    partner, kiosk = onboard_stand("Kiosk Rosenthaler Str.", [p[0], p[1], p[2]])
    _, cafe = onboard_stand("Café Nord", [p[0], p[3]])
    _, empty = onboard_stand("Späti Ost", [p[0]])

    def refill(stand: str, qty: dict[str, int], requested: datetime, days: int) -> None:
        r = refills.request_refill(session, REP, stand, qty, now=requested)
        refills.approve_refill(session, MANAGER, r.refill_id, now=requested + timedelta(hours=1))
        delivered = requested + timedelta(days=days)
        refills.schedule_refill(
            session,
            MANAGER,
            r.refill_id,
            delivered.astimezone(ZoneInfo(BERLIN)).date(),
            "Dealer",
            now=requested + timedelta(hours=2),
        )
        refills.deliver_refill(session, REP, r.refill_id, now=delivered)
        refills.confirm_refill(session, PARTNER, r.refill_id, now=delivered + timedelta(hours=1))

    refill(kiosk, {p[0]: 60, p[1]: 40, p[2]: 12}, berlin("2026-03-12 08:00"), 2)
    refill(cafe, {p[0]: 40, p[3]: 30}, berlin("2026-03-12 08:00"), 2)
    stock = {(kiosk, p[0]): 60, (kiosk, p[1]): 40, (kiosk, p[2]): 12}
    stock |= {(cafe, p[0]): 40, (cafe, p[3]): 30}
    day = date(2026, 3, 16)
    n = 0
    while day <= PERIOD.end:
        for stand, plan in (
            (kiosk, {p[0]: 2 + n % 3, p[1]: 1, p[2]: 1}),
            (cafe, {p[0]: 1, p[3]: 1 + n % 2}),
        ):
            sold = {
                pid: min(q, stock[(stand, pid)])
                for pid, q in plan.items()
                if stock[(stand, pid)] > 0
            }
            if sold:
                sales.record_sale(
                    session,
                    REP,
                    stand,
                    [SaleLine(pid, q) for pid, q in sold.items()],
                    "cash",
                    occurred_at=berlin(f"{day.isoformat()} {11 + n % 5}:30"),
                )
                for pid, q in sold.items():
                    stock[(stand, pid)] -= q
        if day == date(2026, 3, 25):
            refill(kiosk, {p[0]: 30}, berlin("2026-03-25 08:00"), 2)
            stock[(kiosk, p[0])] += 30
        if day == date(2026, 3, 27):
            counts = {pid: stock[(kiosk, pid)] for pid in (p[0], p[1], p[2])}
            counts[p[1]] -= 1  # one missing
            inventory.record_count(
                session, REP, kiosk, counts, counted_at=berlin("2026-03-27 19:00")
            )
            stock[(kiosk, p[1])] -= 1
        day += timedelta(days=1)
        n += 1
    return {"stand": kiosk, "other": cafe, "empty": empty, "partner": partner}


@pytest.fixture
def data(factory: SessionFactory, catalog: list[CatalogProduct]) -> Data:
    with factory() as s, s.begin():
        ids = _build(s, catalog)
    return Data(factory, **ids)


def _stand(data: Data, stand_id: str, period: Period = PERIOD) -> StandPerformance:
    with data.factory() as s:
        return performance_of(s, stand_id, period, now=NOW)


def _dashboard(data: Data, scope: Scope, period: Period = PERIOD) -> Dashboard:
    with data.factory() as s:
        return dashboard(s, scope, period, now=NOW)


@dataclass(frozen=True)
class Page:
    text: str
    pixels: np.ndarray  # height × width × channels, 0..255
    size: tuple[float, float]
    pages: int
    metadata: dict[str, str]

    def ink(self, top: float, bottom: float) -> float:
        """The share of non-white pixels between two heights (fractions from the top)."""
        h = self.pixels.shape[0]
        band = self.pixels[int(top * h) : int(bottom * h), :, :3]
        return float((band.min(axis=2) < 235).mean())


def _read(path: Path) -> Page:
    doc = pdfium.PdfDocument(path)
    try:
        page = doc[0]
        textpage = page.get_textpage()
        result = Page(
            text=textpage.get_text_range(),
            pixels=page.render(scale=1).to_numpy(),
            size=(page.get_width(), page.get_height()),
            pages=len(doc),
            metadata=dict(doc.get_metadata_dict()),
        )
        textpage.close()
        page.close()
        return result
    finally:
        doc.close()


def _assert_page(page: Page) -> None:
    assert page.pages == 1
    assert page.size == pytest.approx(A4, abs=1.0)
    assert page.ink(0.12, 0.30) > 0.02  # the tiles
    assert page.ink(0.30, 0.93) > 0.02  # the charts
    assert page.ink(0.0, 0.02) == 0.0  # the margin is left white
    assert page.metadata["Author"] == AUTHOR
    assert page.metadata["CreationDate"].startswith("D:20260330")


# ------------------------------------------------------------------ stand report


def test_stand_report_is_one_a4_page_with_the_figures(data: Data, tmp_path: Path) -> None:
    perf = _stand(data, data.stand)
    revenue = perf.report["revenue"]
    assert revenue.value is not None
    assert revenue.value > 0
    path = render_stand_report(perf, tmp_path / "stand.pdf", generated_at=GENERATED)
    assert path == tmp_path / "stand.pdf"
    page = _read(path)
    _assert_page(page)
    text = page.text
    assert "Kiosk Rosenthaler Str." in text
    assert PERIOD_TEXT in text
    assert "7 days" in text
    assert "1 stand" in text
    # Figures computed at 10:00 (``now``), the page made at 10:05: both are said.
    assert "Figures as of 2026-03-30 10:00 UTC · generated 2026-03-30 10:05 UTC" in text
    assert format_value(revenue.unit, revenue.value, "EUR") in text
    assert format_value(revenue.unit, revenue.prior, "EUR") in text
    for heading in ("Revenue per day", "Stock of the SKUs most at risk", "All KPIs"):
        assert heading in text
    # Every KPI is in the table, and the SKU that sold out is among those at risk.
    for kpi in perf.report.kpis:
        assert kpi.label in text
    assert "Product 02" in text
    assert "empty now" in text
    # Stock-out days went from 0 to some: no percentage, red (more is worse).
    assert perf.report["stockout_days"].prior == 0
    assert "▲ from zero" in text
    assert "Definitions: see standctl kpi --explain" in text
    assert page.metadata["Title"].startswith("Kiosk Rosenthaler Str.: 2026-03-23")


def test_stand_report_takes_a_title(data: Data, tmp_path: Path) -> None:
    perf = _stand(data, data.stand)
    page = _read(
        render_stand_report(perf, tmp_path / "t.pdf", title="Kiosk — March €", generated_at=NOW)
    )
    assert "Kiosk — March €" in page.text
    # Figures computed at the moment the page was made: no "figures as of".
    assert "Generated 2026-03-30 10:00 UTC" in page.text
    assert "Figures as of" not in page.text


def test_report_of_a_stand_with_nothing_yet(data: Data, tmp_path: Path) -> None:
    perf = _stand(data, data.empty)
    page = _read(render_stand_report(perf, tmp_path / "empty.pdf", generated_at=GENERATED))
    assert page.pages == 1
    assert "Späti Ost" in page.text
    assert "€0.00" in page.text
    assert "—" in page.text  # undefined KPIs


def test_stock_at_risk_puts_the_least_cover_first() -> None:
    days = tuple(date(2026, 3, 23) + timedelta(days=i) for i in range(4))

    def series(pid: str, on_hand: tuple[int, ...], reorder: int = 2) -> StockSeries:
        return StockSeries(pid, f"Name {pid}", days, on_hand, 10, reorder, (), ())

    stock = [
        series("plenty", (9, 9, 9, 9)),  # sells 1 a day: 9 d
        series("out_now", (3, 1, 0, 0)),  # 0 d, two days out
        series("slow", (5, 5, 5, 5)),  # nothing sold: endless
        series("low", (4, 3, 2, 2)),  # 2 a day: 1 d
        series("was_out", (0, 8, 8, 8)),  # 8 d, one day out
    ]
    sold = [
        SkuUnits("plenty", "", 4, Decimal(4), None),
        SkuUnits("out_now", "", 3, Decimal(3), None),
        SkuUnits("low", "", 8, Decimal(8), None),
        SkuUnits("was_out", "", 4, Decimal(4), None),
    ]
    risks = stock_at_risk(stock, sold, count=4)
    assert [r.series.product_id for r in risks] == ["out_now", "low", "was_out", "plenty"]
    assert [r.out_days for r in risks] == [2, 0, 1, 0]
    assert risks[1].cover == pytest.approx(1.0)
    assert stock_at_risk([], sold) == []


# ------------------------------------------------------------------ program report


@pytest.mark.parametrize(
    ("kind", "title", "stands"),
    [
        (ScopeKind.PROGRAM, "Whole program", 3),
        (ScopeKind.PARTNER, "Kiosk Rosenthaler Str. GmbH", 1),
        (ScopeKind.TERRITORY, "Territory of rep.anna", 3),
    ],
)
def test_program_report_serves_every_wider_scope(
    data: Data, tmp_path: Path, kind: ScopeKind, title: str, stands: int
) -> None:
    key = {ScopeKind.PARTNER: data.partner, ScopeKind.TERRITORY: REP.user}.get(kind)
    dash = _dashboard(data, Scope(kind, key))
    page = _read(render_program_report(dash, tmp_path / "p.pdf", generated_at=GENERATED))
    _assert_page(page)
    text = page.text
    assert title in text
    assert PERIOD_TEXT in text
    assert f"{stands} stand{'s' if stands != 1 else ''}" in text
    revenue = dash.report["revenue"]
    assert format_value(revenue.unit, revenue.value, "EUR") in text
    for heading in ("Revenue per day", "Stands by revenue", "Units sold per SKU"):
        assert heading in text
    assert "Kiosk Rosenthaler Str." in text  # in the ranking
    assert page.metadata["Title"].startswith(f"{title}: 2026-03-23")


def test_a_long_period_shows_revenue_per_week(data: Data, tmp_path: Path) -> None:
    period = Period(date(2026, 1, 1), date(2026, 3, 29))
    dash = _dashboard(data, Scope(ScopeKind.PROGRAM), period)
    page = _read(render_program_report(dash, tmp_path / "q.pdf", generated_at=GENERATED))
    assert page.pages == 1
    assert "Revenue per week" in page.text
    assert "1 Jan – 29 Mar 2026 vs prior 5 Oct – 31 Dec 2025" in page.text


def test_period_text() -> None:
    assert period_text(*PERIOD_DATES) == PERIOD_TEXT
    assert (
        period_text(date(2026, 3, 1), date(2026, 3, 28), date(2026, 2, 1), date(2026, 2, 28))
        == "1 Mar – 28 Mar 2026 vs prior 1 – 28 Feb"
    )
    assert (
        period_text(date(2026, 1, 5), date(2026, 2, 1), date(2025, 12, 8), date(2026, 1, 4))
        == "5 Jan – 1 Feb 2026 vs prior 8 Dec 2025 – 4 Jan 2026"
    )
    assert (
        period_text(date(2025, 12, 29), date(2026, 1, 4), date(2025, 12, 22), date(2025, 12, 28))
        == "29 Dec 2025 – 4 Jan 2026 vs prior 22 – 28 Dec 2025"
    )
    assert (
        period_text(date(2026, 3, 29), date(2026, 3, 29), date(2026, 3, 28), date(2026, 3, 28))
        == "29 Mar 2026 vs prior 28 Mar"
    )


PERIOD_DATES = (PERIOD.start, PERIOD.end, PERIOD.prior().start, PERIOD.prior().end)


# ------------------------------------------------------------------ CSV


def test_export_kpi_csv_round_trips(data: Data, tmp_path: Path) -> None:
    report = _stand(data, data.stand).report
    path = export_kpi_csv(report, tmp_path / "kpis.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    assert [r["key"] for r in rows] == [k.key for k in report.kpis]

    def decimal(text: str) -> Decimal | None:
        return None if text == "" else Decimal(text)

    for row, kpi in zip(rows, report.kpis, strict=True):
        assert row["label"] == kpi.label
        assert row["unit"] == kpi.unit.value
        assert decimal(row["value"]) == kpi.value
        assert decimal(row["prior"]) == kpi.prior
        if kpi.change is None:
            assert row["change"] == ""
        else:
            assert decimal(row["change"]) == kpi.change.quantize(Decimal("0.0001"))
        assert row["formula"] == kpi.formula  # "÷" and "−" survive
        assert "E" not in row["value"]  # plain notation, never 1E+1
        assert (row["period_start"], row["period_end"]) == ("2026-03-23", "2026-03-29")
        assert (row["prior_start"], row["prior_end"]) == ("2026-03-16", "2026-03-22")
        assert row["scope"] == "Kiosk Rosenthaler Str."
    # A stand without orders: the average order value is undefined (empty), not zero.
    empty = export_kpi_csv(_stand(data, data.empty).report, tmp_path / "empty.csv")
    with empty.open(encoding="utf-8-sig", newline="") as f:
        by_key = {r["key"]: r for r in csv.DictReader(f)}
    assert (by_key["aov"]["value"], by_key["revenue"]["value"]) == ("", "0.00")


# ------------------------------------------------------------------ standctl report


def test_report_command_writes_a_pdf(
    run: Cli, catalog: list[CatalogProduct], tmp_path: Path
) -> None:
    shop = onboard(run)
    assert run("sale", "record", shop.stand_id, "SKU-000=2", "--pay", "cash").code == 0
    out, table = tmp_path / "stand.pdf", tmp_path / "stand.csv"
    r = run(
        "--json", "report", "--stand", shop.stand_id, "--period", "7d", "--out", str(out),
        "--csv", str(table),
    )  # fmt: skip
    assert r.code == 0, r.err
    data = r.json()
    assert data["path"] == str(out.resolve())
    assert data["bytes"] == out.stat().st_size > 0
    assert data["pages"] == 1
    assert data["csv"] == str(table.resolve())
    assert data["scope"]["label"] == "Kiosk am Markt"
    page = _read(out)
    assert page.pages == 1
    assert "Kiosk am Markt" in page.text
    assert "€3.00" in page.text  # 2 x 1.50
    with table.open(encoding="utf-8-sig", newline="") as f:
        revenue = next(row for row in csv.DictReader(f) if row["key"] == "revenue")
    assert Decimal(revenue["value"]) == Decimal("3.00")

    program = tmp_path / "program.PDF"
    r = run("report", "--program", "--at", "2026-03-30T10:00Z", "--out", str(program))
    assert r.code == 0, r.err
    assert r.out.startswith(f"Wrote {program} (1 page, ")
    assert r.out.rstrip().endswith(" KB)")
    page = _read(program)
    assert "Whole program" in page.text
    assert "Figures as of 2026-03-30 10:00 UTC" in page.text


def test_report_command_refuses_unclear_requests(
    run: Cli, catalog: list[CatalogProduct], tmp_path: Path
) -> None:
    shop = onboard(run)
    good = str(tmp_path / "r.pdf")
    for args, message in (
        (("--out", good), "name exactly one of"),
        (("--program", "--stand", shop.stand_id, "--out", good), "name exactly one of"),
        (("--program", "--out", str(tmp_path / "r.png")), "must name a .pdf file"),
        (("--program", "--out", str(tmp_path / "r")), "must name a .pdf file"),
        (("--program", "--out", str(tmp_path / "nope" / "r.pdf")), "does not exist"),
        (("--program", "--out", good, "--csv", str(tmp_path / "r.txt")), ".csv"),
        (("--program",), "--out"),
        (("--program", "--period", "lastweek", "--out", good), "not understood"),
        (("--stand", "nope", "--out", good), "No stand with id"),
    ):
        r = run("report", *args)
        assert r.code == 2, (args, r.out, r.err)
        assert message in r.err, (args, r.err)
    assert not (tmp_path / "r.pdf").exists()
    assert not (tmp_path / "nope").exists()


def test_the_command_line_loads_matplotlib_only_for_a_report() -> None:
    code = "import sys, app.cli; print('matplotlib' in sys.modules, 'ui.report' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.split() == ["False", "False"]


@pytest.fixture(autouse=True)
def _no_pyplot() -> Iterator[None]:
    """The report never goes through pyplot (no global figures, no GUI backend)."""
    had = "matplotlib.pyplot" in sys.modules
    yield
    if not had:
        assert "matplotlib.pyplot" not in sys.modules
