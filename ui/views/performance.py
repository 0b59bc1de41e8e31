"""A stand's Performance tab: KPI tiles against the prior period, revenue per day, stock of
each SKU over time with deliveries and counts, units by product, and every KPI in a table.

It computes only when shown (opening a stand stays fast) and in the background; the previous
figures stay on screen, marked as being recomputed, until the new ones arrive.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.kpi import StandPerformance, stand_performance
from ui.charts.widget import RevenueChart, SkuUnitsChart, StockChart
from ui.context import Changed, LatestRead, UiContext
from ui.i18n import tr
from ui.views.kpi_widgets import KpiExports, KpiTableModel, KpiTiles, PeriodPicker, kpi_table

TILES = (
    "revenue",
    "units",
    "gross_margin_pct",
    "sell_through",
    "in_stock_rate",
    "days_of_cover",
    "stockout_days",
    "shrink_pct",
)
KINDS = ("sales", "inventory", "refills", "stands", "loyalty")


class PerformancePanel(KpiExports, QWidget):
    pdf_title = "Save stand report"
    pdf_renderer = "render_stand_report"
    pdf_action_text = "Stand report as PDF…"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.stand_id: str | None = None
        self.data: StandPerformance | None = None
        self.loading = False
        self.stale = True
        self._latest = LatestRead(ctx, self)
        self._started = 0.0

        self.period = PeriodPicker()
        self.period.changed.connect(lambda _p: self.reload())
        self.status_label = QLabel()
        self.status_label.setStyleSheet("color: palette(mid);")
        self._build_export_button()

        top = QHBoxLayout()
        top.addWidget(self.period, 1)
        top.addWidget(self.status_label)
        top.addWidget(self.export_button)

        self.tiles = KpiTiles(TILES)
        self.revenue_chart = RevenueChart()
        self.stock_chart = StockChart(tr("Stock by product"))
        self.units_chart = SkuUnitsChart()
        self.table_model = KpiTableModel(self)
        self.table = kpi_table(self.table_model)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        sales = QSplitter(Qt.Orientation.Horizontal)
        sales.addWidget(self.revenue_chart)
        sales.addWidget(self.units_chart)
        sales.setChildrenCollapsible(False)
        self.tabs.addTab(sales, tr("Sales"))
        self.tabs.addTab(self.stock_chart, tr("Stock"))
        self.tabs.addTab(self.table, tr("All KPIs"))

        # On a small screen the page scrolls rather than squeezing the charts flat.
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addLayout(top)
        layout.addWidget(self.tiles)
        layout.addWidget(self.tabs, 1)
        self.tabs.setMinimumHeight(340)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        ctx.data_changed.connect(self._on_changed)

    def open(self, stand_id: str, *, now: bool = False) -> None:
        """Show ``stand_id``; computed at once when ``now`` or when visible, else when shown."""
        if stand_id != self.stand_id:
            self.stand_id = stand_id
            self.data = None
            self.export_button.setEnabled(False)
            for chart in (self.revenue_chart, self.stock_chart, self.units_chart):
                chart.set_loading()
        self.stale = True
        if now or self.isVisible():
            self.reload()

    def reload(self) -> None:
        if self.stand_id is None:
            return
        self.loading = True
        self.stale = False
        self._started = time.perf_counter()
        self.tiles.set_loading()
        self.status_label.setText(tr("Computing…"))
        self._latest(
            stand_performance,
            self.stand_id,
            self.period.period(),
            on_done=self._got,
            on_error=self._failed,
        )

    def _got(self, data: StandPerformance) -> None:
        self.loading = False
        self.data = data
        self.tiles.set_report(data.report)
        self.table_model.set_report(data.report)
        self.revenue_chart.set_data(data.revenue)
        self.stock_chart.set_data(data.stock)
        self.units_chart.set_data(data.sku_units)
        seconds = time.perf_counter() - self._started
        self.status_label.setText(tr("computed in {seconds:.2f} s").format(seconds=seconds))
        self.export_button.setEnabled(True)

    def _failed(self, exc: Exception) -> None:
        self.loading = False
        message = getattr(exc, "message", None) or str(exc)
        self.status_label.setText(tr("Could not compute: {error}").format(error=message))

    def _on_changed(self, change: Changed) -> None:
        if self.stand_id is None or not change.touches(*KINDS):
            return
        if change.ids and self.stand_id not in change.ids:
            return
        self.stale = True
        if self.isVisible():
            self.reload()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.stale and not self.loading:
            self.reload()
