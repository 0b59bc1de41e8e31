"""The Dashboard screen and a stand's Performance tab, on a real database."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.backend import Backend
from app.kpi import KPI_DEFS, ScopeKind
from app.models import Role
from app.services import inventory, sales
from app.services.sales import SaleLine
from tests.conftest import REP, StandFixture
from tests.ui.conftest import wait_idle


def _stock_and_sell(backend: Backend, stand: StandFixture, units: int = 2) -> None:
    counts = dict.fromkeys(stand.product_ids[:3], 10)
    backend.call(inventory.record_count, REP, stand.stand_id, counts)
    backend.call(
        sales.record_sale, REP, stand.stand_id, [SaleLine(stand.product_ids[0], units)], "cash"
    )


@pytest.fixture
def shops(ui_backend: Backend, two_stands: tuple[StandFixture, StandFixture]) -> tuple:
    for stand in two_stands:
        _stock_and_sell(ui_backend, stand)
    return two_stands


def _dashboard(qtbot, ctx):
    from ui.views.dashboard import DashboardView

    view = DashboardView(ctx)
    qtbot.addWidget(view)
    view.resize(1200, 800)
    view.show()
    view.refresh()
    wait_idle(qtbot, ctx)
    return view


def test_dashboard_shows_the_program_with_tiles_charts_and_table(qtbot, ctx, shops) -> None:
    view = _dashboard(qtbot, ctx)
    assert not view.loading
    report = view.data.report
    assert report.scope.kind == ScopeKind.PROGRAM
    assert report.stand_count == 2
    revenue = report["revenue"].value
    assert revenue > 0
    tile = view.tiles.tile("revenue")
    assert tile.value.text() == f"€{revenue:,.2f}"
    assert "Sum of order totals" in tile.toolTip()
    assert "2 stands" in view.status_label.text()
    assert view.table_model.rowCount() == len(KPI_DEFS)
    assert view.revenue_chart.data is view.data.revenue
    assert len(view.ranking_chart.data.stands) == 2
    assert view.export_button.isEnabled()
    # The scope list was filled from the database: the program, the rep, both partners.
    labels = [view.scope_combo.itemText(i) for i in range(view.scope_combo.count())]
    assert labels[0] == "Whole program"
    assert "Territory of rep.anna" in labels
    assert sum(label.startswith("Partner: ") for label in labels) == 2


def test_switching_period_and_scope_recomputes_in_the_background(qtbot, ctx, shops) -> None:
    view = _dashboard(qtbot, ctx)
    qtbot.mouseClick(view.period.buttons[7], Qt.MouseButton.LeftButton)
    assert view.loading  # the figures are being recomputed; the window is not blocked
    assert view.tiles.tile("revenue").change.text() == "computing…"
    wait_idle(qtbot, ctx)
    assert (view.data.report.end - view.data.report.start).days + 1 == 7
    assert len(view.revenue_chart.data.days) == 7
    # One partner.
    index = next(
        i
        for i in range(view.scope_combo.count())
        if view.scope_combo.itemText(i).startswith("Partner: ")
    )
    view.scope_combo.setCurrentIndex(index)
    view.scope_combo.activated.emit(index)
    wait_idle(qtbot, ctx)
    assert view.data.report.scope.kind == ScopeKind.PARTNER
    assert view.data.report.stand_count == 1
    # Ranking by another KPI needs no new computation.
    busy_before = view.data
    view.rank_by.setCurrentIndex(view.rank_by.findData("units"))
    assert view.data is busy_before
    assert view.ranking_chart.data.kpi_key == "units"


def test_a_rep_sees_their_territory_first(qtbot, ctx_as, shops) -> None:
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _dashboard(qtbot, ctx)
    assert view.data.report.scope.kind == ScopeKind.TERRITORY
    assert view.data.report.scope.key == "rep.anna"
    assert view.scope_combo.currentText() == "My territory"


def test_a_new_sale_updates_the_dashboard(qtbot, ctx, shops, ui_backend) -> None:
    from ui.context import Changed

    view = _dashboard(qtbot, ctx)
    before = view.data.report["units"].value
    ui_backend.call(
        sales.record_sale, REP, shops[0].stand_id, [SaleLine(shops[0].product_ids[1], 3)], "qr"
    )
    ctx.data_changed.emit(Changed(frozenset({"sales"}), frozenset({shops[0].stand_id})))
    wait_idle(qtbot, ctx)
    assert view.data.report["units"].value == before + 3


def test_exports_csv_and_pdf(qtbot, ctx, shops, tmp_path: Path) -> None:
    view = _dashboard(qtbot, ctx)
    out = view.export_csv(tmp_path / "kpis.csv")
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = {r["key"]: r for r in csv.DictReader(f)}
    assert Decimal(rows["revenue"]["value"]) == view.data.report["revenue"].value
    pdf = view.export_pdf(tmp_path / "program.pdf")
    assert pdf is not None
    assert pdf.read_bytes().startswith(b"%PDF")


def test_performance_tab_of_a_stand(qtbot, ctx, shops, tmp_path: Path) -> None:
    from ui.views.stand_detail import StandDetailView

    view = StandDetailView(ctx)
    qtbot.addWidget(view)
    view.resize(1200, 900)
    view.show()
    view.open(shops[0].stand_id)
    wait_idle(qtbot, ctx)
    assert view.performance is None  # nothing computed until the tab is shown
    view.show_tab("performance")
    wait_idle(qtbot, ctx)
    panel = view.performance
    assert panel is not None
    assert not view.loading
    report = panel.data.report
    assert report.scope.key == shops[0].stand_id
    assert report["units"].value == 2
    assert panel.tiles.tile("units").value.text() == "2"
    assert {s.product_id for s in panel.data.stock} == set(shops[0].product_ids)
    assert panel.stock_chart.data.product_id == panel.data.stock[0].product_id
    qtbot.mouseClick(panel.period.buttons[90], Qt.MouseButton.LeftButton)
    wait_idle(qtbot, ctx)
    assert len(panel.revenue_chart.data.days) == 90
    # Another stand: the panel follows.
    view.open(shops[1].stand_id)
    wait_idle(qtbot, ctx)
    assert panel.data.report.scope.key == shops[1].stand_id
    assert panel.export_pdf(tmp_path / "stand.pdf") is not None
    assert (tmp_path / "stand.pdf").read_bytes().startswith(b"%PDF")


def test_custom_period_dialog_refuses_a_backwards_range(qtbot) -> None:
    from datetime import date

    from PySide6.QtCore import QDate

    from app.kpi import Period
    from ui.views.kpi_widgets import CustomPeriodDialog

    dialog = CustomPeriodDialog(Period(date(2026, 1, 1), date(2026, 1, 31)))
    qtbot.addWidget(dialog)
    dialog.start.setDate(QDate(2026, 2, 10))
    dialog._accept()
    assert dialog.result_period is None
    assert "ends before it starts" in dialog.error.text()
    dialog.start.setDate(QDate(2026, 1, 5))
    dialog._accept()
    assert dialog.result_period == Period(date(2026, 1, 5), date(2026, 1, 31))


def test_coming_back_keeps_current_figures_and_f5_recomputes(qtbot, ctx, shops) -> None:
    view = _dashboard(qtbot, ctx)
    first = view.data
    view.refresh()  # navigating back to the screen
    assert not view.loading
    assert view.data is first
    view.force_refresh()  # View > Refresh
    assert view.loading
    wait_idle(qtbot, ctx)
    assert view.data is not first
