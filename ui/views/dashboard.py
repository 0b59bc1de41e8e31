"""The manager dashboard: KPI tiles against the prior period, then charts, for the whole
program, a rep's territory or one partner, over a chosen period.

Everything on the page comes from one background read (:func:`app.kpi.dashboard`); while it
runs the page keeps showing the previous figures, marked as being recomputed, so switching
periods never freezes the window. Only the newest answer is shown.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import kpi
from app.kpi import Dashboard, Period, Scope, ScopeKind
from app.models import Role
from ui.charts.widget import (
    CycleTimeChart,
    HeatmapChart,
    LocationScatterChart,
    RankingChart,
    RefillFunnelChart,
    RevenueChart,
    SkuUnitsChart,
)
from ui.context import Changed, LatestRead, UiContext
from ui.i18n import tr
from ui.views.kpi_widgets import (
    KpiExports,
    KpiTableModel,
    KpiTiles,
    PeriodPicker,
    kpi_table,
)
from ui.widgets import TOUCH

#: The tiles at the top, most asked-for first.
TILES = (
    "revenue",
    "gross_margin_pct",
    "units",
    "aov",
    "sell_through",
    "in_stock_rate",
    "days_of_cover",
    "otif",
)
#: Data changes that move the figures.
KINDS = ("sales", "inventory", "refills", "stands", "partners", "loyalty", "payouts")


class DashboardView(KpiExports, QWidget):
    title = "Dashboard"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.loading = False
        self.stale = True
        self.data: Dashboard | None = None
        self._latest = LatestRead(ctx, self)
        self._started = 0.0
        self._scopes_loaded = False
        self._computed_for: Period | None = None

        self.scope_combo = QComboBox()
        self.scope_combo.setMinimumHeight(TOUCH)
        self.scope_combo.setMinimumContentsLength(28)
        self.scope_combo.setEditable(True)
        self.scope_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.scope_combo.setAccessibleName(tr("Show"))
        self.scope_combo.setToolTip(tr("The whole program, a rep's territory or one partner"))
        completer = QCompleter(self.scope_combo.model(), self.scope_combo)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.scope_combo.setCompleter(completer)
        self._fill_scopes([], [])
        self.scope_combo.activated.connect(lambda _i: self.reload())

        self.period = PeriodPicker()
        self.period.changed.connect(lambda _p: self.reload())

        self._build_export_button()

        self.status_label = QLabel()
        self.status_label.setStyleSheet("color: palette(mid);")

        top = QHBoxLayout()
        show = QLabel(tr("&Show:"))
        show.setBuddy(self.scope_combo)
        top.addWidget(show)
        top.addWidget(self.scope_combo, 2)
        top.addStretch(1)
        top.addWidget(self.status_label)
        top.addWidget(self.export_button)

        self.tiles = KpiTiles(TILES)

        self.revenue_chart = RevenueChart()
        self.rank_by = QComboBox()
        self.rank_by.setMinimumHeight(TOUCH)
        self.rank_by.setAccessibleName(tr("Rank stands by"))
        for key in kpi.STAND_KPIS:
            self.rank_by.addItem(tr(kpi.KPI_BY_KEY[key].label), key)
        self.rank_by.currentIndexChanged.connect(self._show_ranking)
        self.ranking_chart = RankingChart()
        self.map_chart = LocationScatterChart()
        self.units_chart = SkuUnitsChart()
        self.heatmap_chart = HeatmapChart(tr("Sell-through: top stands by revenue × top products"))
        self.funnel_chart = RefillFunnelChart()
        self.cycle_chart = CycleTimeChart()
        self.table_model = KpiTableModel(self)
        self.table = kpi_table(self.table_model)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.revenue_chart, tr("&Revenue"))
        stands_page = QWidget()
        stands_layout = QVBoxLayout(stands_page)
        rank_row = QHBoxLayout()
        rank_row.addWidget(QLabel(tr("Rank stands by:")))
        rank_row.addWidget(self.rank_by)
        rank_row.addStretch(1)
        stands_layout.addLayout(rank_row)
        stands_layout.addWidget(self._split(self.ranking_chart, self.map_chart), 1)
        self.tabs.addTab(stands_page, tr("S&tands"))
        self.tabs.addTab(self._split(self.units_chart, self.heatmap_chart), tr("&Products"))
        self.tabs.addTab(self._split(self.funnel_chart, self.cycle_chart), tr("Re&fills"))
        self.tabs.addTab(self.table, tr("&All KPIs"))

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addLayout(top)
        layout.addWidget(self.period)
        layout.addWidget(self.tiles)
        layout.addWidget(self.tabs, 1)
        self.tabs.setMinimumHeight(360)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        ctx.data_changed.connect(self._on_changed)

    @staticmethod
    def _split(left: QWidget, right: QWidget) -> QSplitter:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([1, 1])
        return splitter

    # ------------------------------------------------------------ scope

    def _default_scope(self) -> Scope:
        if self.ctx.actor.role == Role.REP:
            return Scope(ScopeKind.TERRITORY, self.ctx.actor.user)
        return Scope(ScopeKind.PROGRAM)

    def _fill_scopes(self, partners: list[tuple[str, str]], reps: list[str]) -> None:
        keep = self.scope()
        self.scope_combo.clear()
        self.scope_combo.addItem(tr("Whole program"), Scope(ScopeKind.PROGRAM))
        user = self.ctx.actor.user
        if self.ctx.actor.role == Role.REP and user not in reps:
            reps = [user, *reps]
        for rep in reps:
            label = tr("My territory") if rep == user else tr("Territory of {rep}").format(rep=rep)
            self.scope_combo.addItem(label, Scope(ScopeKind.TERRITORY, rep))
        for pid, name in partners:
            self.scope_combo.addItem(
                tr("Partner: {name}").format(name=name), Scope(ScopeKind.PARTNER, pid)
            )
        self.select_scope(keep or self._default_scope())

    def select_scope(self, scope: Scope) -> None:
        for i in range(self.scope_combo.count()):
            item = self.scope_combo.itemData(i)
            if isinstance(item, Scope) and (item.kind, item.key) == (scope.kind, scope.key):
                self.scope_combo.setCurrentIndex(i)
                return
        self.scope_combo.setCurrentIndex(0)

    def scope(self) -> Scope | None:
        data = self.scope_combo.currentData()
        return data if isinstance(data, Scope) else None

    # ------------------------------------------------------------ loading

    def refresh(self) -> None:
        """Coming back to the dashboard shows the figures it has while nothing changed and
        the day is the same; F5 (:meth:`force_refresh`) recomputes anyway."""
        if not self._scopes_loaded:
            self._scopes_loaded = True
            self._latest_scopes = LatestRead(self.ctx, self)
            self._latest_scopes(kpi.scopes, on_done=self._got_scopes, on_error=self._failed)
        self.period.roll_to_today()
        current = self.data is not None and not self.stale
        if current and self.period.period() == self._computed_for:
            return
        self.reload()

    def force_refresh(self) -> None:
        self.refresh()
        if not self.loading:
            self.reload()

    def _got_scopes(self, result: tuple[list[tuple[str, str]], list[str]]) -> None:
        self._fill_scopes(*result)
        # A completer model that knows the entries (typing filters them).
        names = [self.scope_combo.itemText(i) for i in range(self.scope_combo.count())]
        completer = self.scope_combo.completer()
        if completer is not None:
            completer.setModel(QStringListModel(names, completer))

    def reload(self) -> None:
        scope = self.scope() or self._default_scope()
        period: Period = self.period.period()
        self._computed_for = period
        self.loading = True
        self.stale = False
        self._started = time.perf_counter()
        self.tiles.set_loading()
        if self.data is None:
            for chart in self._charts():
                chart.set_loading()
        self.status_label.setText(tr("Computing…"))
        self._latest(kpi.dashboard, scope, period, on_done=self._got, on_error=self._failed)

    def _charts(self) -> list[Any]:
        return [
            self.revenue_chart,
            self.ranking_chart,
            self.map_chart,
            self.units_chart,
            self.heatmap_chart,
            self.funnel_chart,
            self.cycle_chart,
        ]

    def _got(self, data: Dashboard) -> None:
        self.loading = False
        self.data = data
        seconds = time.perf_counter() - self._started
        report = data.report
        self.tiles.set_report(report)
        self.table_model.set_report(report)
        self.revenue_chart.set_data(data.revenue)
        self.units_chart.set_data(data.sku_units)
        self.heatmap_chart.set_data(data.heatmap if data.heatmap.stand_ids else None)
        self.funnel_chart.set_data(data.refills)
        self.cycle_chart.set_data(data.refills)
        self._show_ranking()
        stands = tr("{n} stands").format(n=report.stand_count)
        if report.stand_count == 1:
            stands = tr("1 stand")
        self.status_label.setText(
            tr("{stands} · computed in {seconds:.1f} s").format(stands=stands, seconds=seconds)
        )
        self.export_button.setEnabled(True)

    def _show_ranking(self, *_args: Any) -> None:
        if self.data is None:
            return
        key = self.rank_by.currentData() or "revenue"
        ranking = self.data.ranking(key)
        self.ranking_chart.set_data(ranking if ranking.stands else None)
        self.map_chart.set_data(ranking if ranking.stands else None)

    def _failed(self, exc: Exception) -> None:
        self.loading = False
        message = getattr(exc, "message", None) or str(exc)
        self.status_label.setText(tr("Could not compute: {error}").format(error=message))
        self.ctx.status.emit(tr("Dashboard: {error}").format(error=message))

    def _on_changed(self, change: Changed) -> None:
        if not change.touches(*KINDS):
            return
        self.stale = True
        if self.isVisible():
            self.reload()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self.stale and not self.loading and self._scopes_loaded:
            self.reload()
