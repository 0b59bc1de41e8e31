"""The coach inside the rep's screens: the stand's inventory tab with forecast, days of cover
and stock-out risk per SKU, and the refill request pre-filled from the coach's
recommendation with the reason for each quantity (or from an insight, via the Coach
screen's "Create refill"), checked against :func:`app.coach.agent.stand_outlook` on a stand
with weeks of sales."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from app.backend import Backend
from app.clock import utcnow
from app.coach.agent import StandOutlook, list_insights, run_coach, stand_outlook
from app.models import InsightStatus, Role
from app.services import inventory, refill_views, refills
from tests.app.test_today import sell_daily
from tests.conftest import REP, StandFixture
from tests.ui.conftest import wait_idle
from ui.stand_list_model import tone
from ui.views import refill_dialogs, stand_detail
from ui.views.refill_dialogs import COACH, PAR, RefillRequestView
from ui.views.stand_detail import InventoryModel, StandDetailView


@pytest.fixture
def selling(ui_backend: Backend, two_stands: tuple[StandFixture, StandFixture]) -> StandFixture:
    """Kiosk am Markt after six weeks of daily sales, counted yesterday (the next visit is
    a week later): its first product sells 4 a day and has 2 left (sure to run out), the
    second sells 1 a day with 30 left, the third sells nothing and has 10; the three have
    room for 60 and a par of 20."""
    kiosk = two_stands[0]
    p = kiosk.product_ids

    def build(session) -> None:
        for pid in p[:3]:
            inventory.set_levels(
                session, REP, kiosk.stand_id, pid, capacity=60, par_level=20, reorder_point=5
            )
        plan = {p[0]: (4, 2), p[1]: (1, 30), p[2]: (0, 10)}
        sell_daily(session, kiosk.stand_id, plan, now=utcnow())

    ui_backend.call(build)
    return kiosk


def _outlook(backend: Backend, stand: StandFixture) -> StandOutlook:
    return backend.read(stand_outlook, stand.stand_id)


# --------------------------------------------------------------------------- inventory tab


def _detail(qtbot, ctx, stand_id: str, size=(1280, 800)) -> StandDetailView:
    view = StandDetailView(ctx)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    view.open(stand_id)
    qtbot.waitUntil(lambda: not view.loading, timeout=10_000)
    wait_idle(qtbot, ctx)
    return view


def _col(key: str) -> int:
    return InventoryModel.KEYS.index(key)


def test_inventory_tab_shows_the_coachs_outlook(
    qtbot, qtmodeltester, ctx, ui_backend, selling
) -> None:
    outlook = _outlook(ui_backend, selling)
    view = _detail(qtbot, ctx, selling.stand_id)
    model = view.inventory_model
    rows = {r.product_id: n for n, r in enumerate(model.rows)}
    risky, steady, still = selling.product_ids[:3]
    by_id = {s.product_id: s for s in outlook.skus}
    assert set(model.outlook) == set(by_id)

    def cell(pid: str, key: str, role=Qt.ItemDataRole.DisplayRole):
        return model.index(rows[pid], _col(key)).data(role)

    # Product 1: sold 4 a day for six weeks (a few days without sales around them pull the
    # expectation down a little), 2 on hand last less than a day: sure to run out.
    sku = by_id[risky]
    assert sku.stockout_risk > 0.9
    assert 14 < sum(sku.forecast[:7]) < 36
    assert cell(risky, "forecast") == f"{sum(sku.forecast[:7]):.0f}"
    assert cell(risky, "cover") == f"{sku.days_of_cover:.1f} d"
    assert cell(risky, "risk") == f"{round(100 * sku.stockout_risk)} %"
    assert cell(risky, "risk", Qt.ItemDataRole.ForegroundRole) == tone("out")  # critical
    assert cell(risky, "risk", Qt.ItemDataRole.FontRole).bold()
    tip = cell(risky, "risk", Qt.ItemDataRole.ToolTipRole)
    assert sku.recommendation.message in tip
    assert "Demand: " in tip
    assert "forecast by" in tip
    # Product 2: about one a day, 30 on hand: weeks of cover, no risk, no colour.
    assert 20 < by_id[steady].days_of_cover < 60
    assert cell(steady, "cover") == f"{by_id[steady].days_of_cover:.0f} d"
    assert cell(steady, "risk", Qt.ItemDataRole.ForegroundRole) is None
    # Product 3 sells nothing: no cover to speak of.
    assert by_id[still].days_of_cover is None
    assert cell(still, "cover") == "—"
    # Native sort values: the riskiest first when sorted by risk, the endless cover last.
    proxy = view.inventory_proxy
    proxy.sort(_col("risk"), Qt.SortOrder.DescendingOrder)
    assert proxy.index(0, 0).data(stand_detail.ID_ROLE) == risky
    proxy.sort(_col("cover"), Qt.SortOrder.AscendingOrder)
    covers = [proxy.index(r, _col("cover")).data() for r in range(proxy.rowCount())]
    assert covers[-1] == "—"
    proxy.sort(_col("forecast"), Qt.SortOrder.DescendingOrder)
    assert proxy.index(0, 0).data(stand_detail.ID_ROLE) == risky
    # The line above the table.
    line = view.coach_line.text()
    day = outlook.next_visit
    assert f"Next visit in {(day - outlook.today).days} days" in line
    assert "may run out before it" in line
    n = len(outlook.quantities)
    assert f"coach suggests refilling <a href='refill'>{n} product" in line
    assert view.coach_line.isVisible()
    with qtbot.waitSignal(ctx.navigate) as navigated:
        view.coach_line.linkActivated.emit("refill")
    assert navigated.args == ["refill", selling.stand_id]
    header = model.headerData(_col("risk"), Qt.Orientation.Horizontal)
    assert header == "Risk"
    assert "before the next visit" in model.headerData(
        _col("risk"), Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole
    )
    qtmodeltester.check(model)


def test_the_stock_shows_first_and_the_coach_follows(
    qtbot, monkeypatch, ctx, ui_backend, selling
) -> None:
    """The coach's read runs after the stock's and never holds the table back."""
    gate = threading.Event()

    def slow_outlook(session, stand_id):
        gate.wait(10)
        return stand_outlook(session, stand_id)

    monkeypatch.setattr(stand_detail, "stand_outlook", slow_outlook)
    view = StandDetailView(ctx)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    try:
        view.open(selling.stand_id)
        qtbot.waitUntil(lambda: bool(view.inventory_model.rows), timeout=10_000)
        model = view.inventory_model
        assert model.outlook == {}
        assert model.index(0, _col("risk")).data() == ""
        assert view.coach_line.text() == "The coach is working out its forecast…"
        assert view.loading
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not view.loading, timeout=10_000)
    wait_idle(qtbot, ctx)
    assert model.outlook
    assert model.index(0, _col("risk")).data().endswith(" %")
    assert view.coach_line.text().startswith("Next visit in ")


def test_without_sales_the_coach_has_no_forecast_yet(qtbot, ctx, two_stands) -> None:
    view = _detail(qtbot, ctx, two_stands[0].stand_id)
    assert view.inventory_model.rows
    assert view.inventory_model.outlook == {}
    assert view.inventory_model.index(0, _col("forecast")).data() == ""
    assert view.coach_line.text().startswith("The coach has no forecast yet")


def test_a_coach_failure_leaves_the_stock_on_screen(
    qtbot, monkeypatch, ctx, ui_backend, selling
) -> None:
    def broken(_session, _stand_id):
        raise RuntimeError("numbers went missing")

    monkeypatch.setattr(stand_detail, "stand_outlook", broken)
    view = _detail(qtbot, ctx, selling.stand_id)
    assert view.error is None
    assert view.pages.currentIndex() == 1  # the stand, not an error page
    assert len(view.inventory_model.rows) == len(selling.product_ids)
    assert view.coach_line.text().startswith("The coach has no forecast yet")
    assert view.coach_line.toolTip() == "numbers went missing"


def test_a_narrow_screen_leaves_out_the_optional_columns(qtbot, ctx, selling) -> None:
    view = _detail(qtbot, ctx, selling.stand_id, size=(1024, 600))
    table = view.inventory_table
    hidden = {k for n, k in enumerate(InventoryModel.KEYS) if table.isColumnHidden(n)}
    assert hidden == set(InventoryModel.OPTIONAL)
    assert table.columnWidth(0) > 120  # the product names stay readable
    tip = view.inventory_model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert "last counted" in tip
    view.resize(1400, 800)
    assert not any(table.isColumnHidden(n) for n in range(len(InventoryModel.KEYS)))


# --------------------------------------------------------------------------- refill request


def _request(qtbot, ctx, arg) -> RefillRequestView:
    view = RefillRequestView(ctx)
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.show()
    view.open(arg)
    wait_idle(qtbot, ctx)
    return view


def _quantities(view: RefillRequestView) -> dict[str, int]:
    return {pid: w.stepper.value() for pid, w in view.lines.items() if w.stepper.value()}


def test_request_is_prefilled_from_the_coach_with_reasons(
    qtbot, ctx_as, ui_backend, selling
) -> None:
    outlook = _outlook(ui_backend, selling)
    recs = {s.product_id: s.recommendation for s in outlook.skus}
    risky = selling.product_ids[0]
    assert outlook.quantities.get(risky, 0) > 0
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request(qtbot, ctx, selling.stand_id)
    assert view.use_coach.isChecked()
    assert view.effective_source() == COACH
    assert _quantities(view) == outlook.quantities
    line = view.lines[risky]
    assert line.why.text() == recs[risky].message
    assert line.why.isVisible()
    assert line.coach.text() == str(outlook.quantities[risky])
    assert recs[risky].message in line.stepper.edit.toolTip()
    assert "Par minus on hand: Par " in line.stepper.edit.toolTip()
    assert view.coach_info.text().startswith("Next visit in ")
    assert "the coach recommends" in view.coach_info.text()
    assert next(iter(view.lines)) == risky  # what to refill first
    assert view.can_leave()

    # Switching to par changes every quantity to par minus on hand, with its reason.
    par = ui_backend.read(refills.suggest_refill, selling.stand_id)
    assert par != outlook.quantities
    qtbot.mouseClick(view.use_par, Qt.MouseButton.LeftButton)
    assert view.effective_source() == PAR
    assert _quantities(view) == par
    assert line.why.text().startswith("Par ")
    assert view.can_leave()
    # And back.
    qtbot.mouseClick(view.use_coach, Qt.MouseButton.LeftButton)
    assert _quantities(view) == outlook.quantities
    assert line.why.text() == recs[risky].message


def test_typed_quantities_survive_the_coach_arriving(
    qtbot, monkeypatch, ctx_as, ui_backend, selling
) -> None:
    """The form shows at once with par; the coach's numbers replace only what was not
    typed over."""
    gate = threading.Event()

    def slow_outlook(session, stand_id):
        gate.wait(10)
        return stand_outlook(session, stand_id)

    monkeypatch.setattr(refill_dialogs, "stand_outlook", slow_outlook)
    outlook = _outlook(ui_backend, selling)
    risky, steady = selling.product_ids[:2]
    ctx = ctx_as(Role.REP, "rep.anna")
    view = RefillRequestView(ctx)
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.show()
    try:
        view.open(selling.stand_id)
        qtbot.waitUntil(lambda: bool(view.lines), timeout=10_000)
        assert view.coach_info.text() == "The coach is working out its recommendation…"
        assert view.lines[risky].coach.text() == "…"
        par = ui_backend.read(refills.suggest_refill, selling.stand_id)
        assert _quantities(view) == par  # par until the coach has spoken
        view.lines[steady].stepper.edit.setText("5")
    finally:
        gate.set()
    wait_idle(qtbot, ctx)
    assert view.lines[risky].stepper.value() == outlook.quantities[risky]
    assert view.lines[steady].stepper.text() == "5"
    assert not view.can_leave()


def test_without_a_forecast_the_request_uses_par_and_says_so(
    qtbot, ctx_as, ui_backend, two_stands
) -> None:
    kiosk = two_stands[0]
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request(qtbot, ctx, kiosk.stand_id)
    assert view.use_par.isChecked()
    assert not view.use_coach.isEnabled()
    assert "has no forecast" in view.coach_info.text()
    assert "par minus on hand" in view.coach_info.text()
    assert _quantities(view) == ui_backend.read(refills.suggest_refill, kiosk.stand_id)
    line = next(iter(view.lines.values()))
    assert line.coach.text() == "–"
    assert line.why.text().startswith("Par ")


def test_the_coach_screens_payload_fills_the_request_and_closes_the_insight(
    qtbot, ctx_as, ui_backend, selling
) -> None:
    """The Coach screen's "Create refill" navigates with the insight's quantities and
    reasons; requesting the refill closes the insight as done."""
    from ui.main_window import MainWindow

    ui_backend.call(run_coach)
    (insight,) = ui_backend.read(list_insights, kind="stockout_risk", stand_id=selling.stand_id)
    p = selling.product_ids
    payload = {
        "stand_id": selling.stand_id,
        "quantities": {p[0]: 24, p[1]: 6},
        "reasons": {p[0]: "The coach says 24: it sells out every weekend"},
        "insight_id": insight.id,
    }
    ctx = ctx_as(Role.REP, "rep.anna")
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    window.go("refill", payload)
    wait_idle(qtbot, ctx)
    view = window.views["refill"]
    assert isinstance(view, RefillRequestView)
    assert view.stand_id == selling.stand_id
    assert view.insight_id == insight.id
    assert view.use_coach.isChecked()
    assert _quantities(view) == {p[0]: 24, p[1]: 6}
    assert view.lines[p[0]].why.text() == "The coach says 24: it sells out every weekend"
    assert view.lines[p[0]].coach.text() == "24"
    assert view.lines[p[2]].stepper.value() == 0
    assert "from the coach's insight: 2 products, 30 units" in view.coach_info.text()
    assert view.can_leave()

    changes = []
    ctx.data_changed.connect(changes.append)
    qtbot.mouseClick(view.submit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(c.touches("insights") for c in changes), timeout=10_000)
    wait_idle(qtbot, ctx)
    (done,) = [i for i in ui_backend.read(list_insights, status=None) if i.id == insight.id]
    assert done.status == InsightStatus.DONE
    assert done.status_reason == "Refill requested"
    (refill,) = ui_backend.read(refill_views.refill_list, stand_id=selling.stand_id)
    detail = ui_backend.read(refill_views.refill_detail, refill.id)
    assert {line.product_id: line.requested for line in detail.lines} == {p[0]: 24, p[1]: 6}
    assert window.current == "refills"
    # The insight is used up: the form no longer closes it, nor keeps its quantities.
    assert view.insight_id is None
    assert view.given is None


def test_an_insight_closed_meanwhile_does_not_bother_the_rep(
    qtbot, ctx_as, ui_backend, selling
) -> None:
    from app.coach.agent import mark_insight_done
    from tests.conftest import MANAGER

    ui_backend.call(run_coach)
    (insight,) = ui_backend.read(list_insights, kind="stockout_risk", stand_id=selling.stand_id)
    ctx = ctx_as(Role.REP, "rep.anna")
    p = selling.product_ids
    view = _request(
        qtbot,
        ctx,
        {"stand_id": selling.stand_id, "quantities": {p[0]: 12}, "insight_id": insight.id},
    )
    # The Coach screen (or a colleague) closed it first.
    ui_backend.call(mark_insight_done, MANAGER, insight.id, "Handled")
    messages = []
    ctx.status.connect(messages.append)
    qtbot.mouseClick(view.submit_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, ctx)
    assert messages
    assert messages[0].startswith("Refill requested for Kiosk am Markt")
    assert not [m for m in messages if "could not be closed" in m]
    (done,) = [i for i in ui_backend.read(list_insights, status=None) if i.id == insight.id]
    assert done.status_reason == "Handled"


def test_opening_a_stand_after_a_payload_forgets_the_insight(qtbot, ctx_as, two_stands) -> None:
    kiosk, cafe = two_stands
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request(
        qtbot,
        ctx,
        {"stand_id": kiosk.stand_id, "quantities": {kiosk.product_ids[0]: 3}, "insight_id": "x"},
    )
    assert view.effective_source() == COACH  # the insight's quantities, without a forecast
    assert _quantities(view) == {kiosk.product_ids[0]: 3}
    view.open(cafe.stand_id)
    wait_idle(qtbot, ctx)
    assert (view.insight_id, view.given) == (None, None)
    assert view.effective_source() == PAR
