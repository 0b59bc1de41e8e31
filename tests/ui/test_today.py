"""The Today screen: the rep's stands most urgent first, with reasons and quick actions that
work by touch and by keyboard, an empty state when nothing is urgent, and a rep filter for
managers."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit, QStackedWidget

from app.backend import Backend
from app.clock import utcnow
from app.models import Role
from app.rules import local_date
from app.services import inventory, queries, refills
from tests.conftest import MANAGER, REP, StandFixture
from tests.ui.conftest import wait_idle
from ui.views.today import TodayView
from ui.widgets import TOUCH


def _view(qtbot, ctx) -> TodayView:
    view = TodayView(ctx)
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.show()
    view.refresh()
    wait_idle(qtbot, ctx)
    return view


def _due_today(backend: Backend, stand: StandFixture) -> str:
    rid = backend.call(
        refills.request_refill, REP, stand.stand_id, {stand.product_ids[0]: 6}
    ).refill_id
    backend.call(refills.approve_refill, MANAGER, rid)
    # The stand's today (the program's time zone), which is not the machine's date between
    # 23:00 and midnight UTC on a machine that runs on UTC.
    backend.call(refills.schedule_refill, MANAGER, rid, local_date(utcnow()), "Depot")
    return rid


def _stock_to_par(backend: Backend, stand: StandFixture) -> None:
    detail = backend.read(queries.stand_detail, stand.stand_id)
    counts = {i.product_id: i.par_level for i in detail.inventory}
    backend.call(inventory.record_count, REP, stand.stand_id, counts)


def test_most_urgent_first_with_reasons(qtbot, ctx_as, ui_backend, two_stands) -> None:
    cafe = two_stands[1]
    _due_today(ui_backend, cafe)  # both are empty; the café also has a delivery due today
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    assert [c.row.stand_name for c in view.cards] == ["Café Central", "Kiosk am Markt"]
    first, second = view.cards
    assert "refill scheduled for today — deliver" in first.reasons.text()
    assert "24 products out" in second.reasons.text()
    assert view.summary.text().startswith("2 stands to visit (your stands)")
    assert not view.rep_filter.isVisible()  # a rep sees their own stands
    assert "rep.anna" not in first.place.text()
    assert first.place.text().startswith("Marktplatz 1, Berlin")
    assert not view.empty.isVisible()
    assert "deliver_button" in {b.objectName() for b in first.buttons.values()}
    assert "deliver" not in second.buttons
    for button in first.buttons.values():
        assert button.height() >= TOUCH
        assert "(" in button.toolTip()  # the key is in the tooltip


def test_quick_actions_navigate(qtbot, ctx_as, ui_backend, two_stands) -> None:
    cafe = two_stands[1]
    rid = _due_today(ui_backend, cafe)
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    card = view.cards[0]
    for name, target, arg in (
        ("stand", "stand", cafe.stand_id),
        ("sale", "sale", cafe.stand_id),
        ("count", "count", cafe.stand_id),
        ("refill", "refill", cafe.stand_id),
        ("deliver", "refills", rid),
    ):
        with qtbot.waitSignal(ctx.navigate) as blocker:
            qtbot.mouseClick(card.buttons[name], Qt.MouseButton.LeftButton)
        assert blocker.args == [target, arg]


def test_keyboard_moves_between_cards_and_acts(qtbot, ctx_as, ui_backend, two_stands) -> None:
    kiosk, cafe = two_stands
    _due_today(ui_backend, cafe)
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    view.activateWindow()
    first, second = view.cards
    first.setFocus()
    qtbot.waitUntil(first.hasFocus, timeout=5000)
    with qtbot.waitSignal(ctx.navigate) as blocker:
        qtbot.keyClick(first, Qt.Key.Key_C)
    assert blocker.args == ["count", cafe.stand_id]
    qtbot.keyClick(first, Qt.Key.Key_Down)
    assert second.hasFocus()
    with qtbot.waitSignal(ctx.navigate) as blocker:
        qtbot.keyClick(second, Qt.Key.Key_Return)
    assert blocker.args == ["stand", kiosk.stand_id]
    with qtbot.waitSignal(ctx.navigate) as blocker:
        qtbot.keyClick(second, Qt.Key.Key_S)
    assert blocker.args == ["sale", kiosk.stand_id]
    qtbot.keyClick(second, Qt.Key.Key_Up)
    assert first.hasFocus()
    # Tab reaches the buttons themselves.
    first.buttons["deliver"].setFocus()
    qtbot.keyClick(first.buttons["deliver"], Qt.Key.Key_Tab)
    assert view.focusWidget() is first.buttons["stand"]


def test_nothing_urgent_shows_the_empty_state(qtbot, ctx_as, ui_backend, two_stands) -> None:
    for stand in two_stands:
        _stock_to_par(ui_backend, stand)
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    assert view.cards == []
    assert view.empty.isVisible()
    assert "All stands look fine today" in view.empty.text()
    assert not view.scroll_area.isVisible()


def test_a_write_elsewhere_refreshes_the_list(qtbot, ctx_as, ui_backend, two_stands) -> None:
    kiosk, cafe = two_stands
    _stock_to_par(ui_backend, kiosk)
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    assert [c.row.stand_name for c in view.cards] == ["Café Central"]
    _stock_to_par(ui_backend, cafe)
    ctx.changed("inventory", ids=(cafe.stand_id,))
    wait_idle(qtbot, ctx)
    assert view.cards == []
    assert view.empty.isVisible()


def test_managers_see_all_reps_and_can_narrow(qtbot, ctx, ui_backend, two_stands) -> None:
    view = _view(qtbot, ctx)
    assert view.rep_filter.isVisible()
    assert [view.rep_filter.itemText(i) for i in range(view.rep_filter.count())] == [
        "All reps",
        "rep.anna",
    ]
    assert len(view.cards) == 2
    assert "rep.anna" in view.cards[0].place.text()  # whose stand it is
    view.rep_filter.setCurrentIndex(1)
    wait_idle(qtbot, ctx)
    assert view.rep() == "rep.anna"
    assert len(view.cards) == 2
    assert "(rep.anna)" in view.summary.text()


@pytest.mark.parametrize(("role", "user"), [(Role.MANAGER, "mgr.max"), (Role.REP, "rep.anna")])
def test_building_the_screen_opens_no_stray_window(qtbot, ctx_as, two_stands, role, user) -> None:
    """A widget shown before it has a parent becomes a window of its own for a moment,
    and takes the focus from the main window (its shortcuts then stop working)."""
    ctx = ctx_as(role, user)
    window = QStackedWidget()
    qtbot.addWidget(window)
    window.addWidget(QLineEdit())
    window.show()
    with qtbot.waitActive(window):
        window.activateWindow()
    view = TodayView(ctx)
    window.addWidget(view)
    window.setCurrentWidget(view)
    view.refresh()
    wait_idle(qtbot, ctx)
    qtbot.wait(20)
    assert QApplication.activeWindow() is window


def test_a_rep_without_stands_is_told_so(qtbot, ctx_as, two_stands) -> None:
    from app.models import Role
    from tests.ui.conftest import wait_idle
    from ui.views.today import TodayView

    nobody = ctx_as(Role.REP, "rep.new")
    view = TodayView(nobody)
    qtbot.addWidget(view)
    view.show()
    view.refresh()
    wait_idle(qtbot, nobody)
    assert view.empty.isVisible()
    assert "No stands are assigned to rep.new" in view.empty.text()
    assigned = ctx_as(Role.REP, "rep.anna")  # the fixtures' stands belong to rep.anna
    other = TodayView(assigned)
    qtbot.addWidget(other)
    other.show()
    other.refresh()
    wait_idle(qtbot, assigned)
    assert "No stands are assigned" not in other.empty.text()


def test_the_coachs_risk_shows_and_a_change_of_insights_refreshes(
    qtbot, ctx_as, ui_backend, two_stands
) -> None:
    from app.models import InsightStatus
    from tests.app.test_today import _insight

    kiosk, cafe = two_stands
    _stock_to_par(ui_backend, kiosk)
    _stock_to_par(ui_backend, cafe)
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    assert view.cards == []
    p = kiosk.product_ids[0]
    lines = ui_backend.read(queries.stand_detail, kiosk.stand_id).inventory
    product = next(i for i in lines if i.product_id == p)
    ui_backend.call(_insight, kiosk.stand_id, [(p, product.sku, 0.85)])
    ui_backend.call(_insight, cafe.stand_id, [(p, product.sku, 0.9)], status=InsightStatus.DONE)
    ctx.changed("insights", ids=(kiosk.stand_id,))
    wait_idle(qtbot, ctx)
    (card,) = view.cards
    assert card.row.stand_id == kiosk.stand_id
    text = f"85 % risk {product.name} runs out before the next visit (coach)"
    assert text in card.reasons.text()
    assert "#ad1457" in card.reasons.text()  # the coach's colour
    assert "Score 85" in card.toolTip()
