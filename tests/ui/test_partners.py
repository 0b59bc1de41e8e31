"""The partners screen: list, search, filter, activate, and the way to their stands."""

from __future__ import annotations

from app.models import Role
from app.services import loyalty, queries
from tests.conftest import make_stand
from tests.ui.conftest import wait_idle
from ui.views.partners import PartnersView


def _view(qtbot, ctx) -> PartnersView:
    view = PartnersView(ctx)
    qtbot.addWidget(view)
    view.show()
    view.refresh()
    wait_idle(qtbot, ctx)
    return view


def test_lists_partners_with_package_tier_and_stands(qtbot, ctx, ui_backend, two_stands) -> None:
    ui_backend.call(make_stand, name="Apotheke Nord", activate=False)
    view = _view(qtbot, ctx)
    names = [view.model.index(r, 0).data() for r in range(view.model.rowCount())]
    assert names == ["Apotheke Nord GmbH", "Café Central GmbH", "Kiosk am Markt GmbH"]
    row = view.model.rows[1]
    assert (row.package_name, row.tier_name, row.stand_count) == ("Growth", "Bronze", 1)
    assert view.model.index(0, 6).data() == "Onboarding"


def test_search_and_status_filter(qtbot, ctx, ui_backend, two_stands) -> None:
    ui_backend.call(make_stand, name="Apotheke Nord", activate=False)
    view = _view(qtbot, ctx)
    qtbot.keyClicks(view.search, "central")
    qtbot.waitUntil(lambda: view.model.rowCount() == 1, timeout=5000)
    assert view.model.rows[0].name == "Café Central GmbH"
    view.search.clear()
    view.status_filter.setCurrentIndex(view.status_filter.findData("onboarding"))
    qtbot.waitUntil(lambda: not view._debounce.isActive(), timeout=5000)
    wait_idle(qtbot, ctx)
    assert [r.name for r in view.model.rows] == ["Apotheke Nord GmbH"]


def test_activate_an_onboarding_partner(qtbot, ctx, ui_backend, two_stands) -> None:
    pharmacy = ui_backend.call(make_stand, name="Apotheke Nord", activate=False)
    view = _view(qtbot, ctx)
    assert not view.activate_button.isEnabled()
    view.table.selectRow(0)
    assert view.activate_button.isEnabled()
    view.activate_button.click()
    qtbot.waitUntil(lambda: "is active" in view.message.text(), timeout=5000)
    wait_idle(qtbot, ctx)
    assert ui_backend.read(loyalty.balance, pharmacy.partner_id) == 250
    stand = ui_backend.read(queries.stand_detail, pharmacy.stand_id)
    assert stand.stand.status == "active"
    assert view.model.rows[0].status == "active"  # refreshed from the change notice


def test_show_stands_navigates_with_the_partner(qtbot, ctx, two_stands) -> None:
    view = _view(qtbot, ctx)
    view.table.selectRow(0)
    with qtbot.waitSignal(ctx.navigate) as blocker:
        view.stands_button.click()
    assert blocker.args == ["stands", {"partner_id": view.model.rows[0].id}]


def test_new_partner_button_and_shortcut(qtbot, ctx, two_stands) -> None:
    view = _view(qtbot, ctx)
    with qtbot.waitSignal(ctx.navigate) as blocker:
        view.new_button.click()
    assert blocker.args == ["onboarding", None]
    assert "Ctrl+N" in view.new_button.toolTip()


def test_empty_state(qtbot, ctx) -> None:
    view = _view(qtbot, ctx)
    assert view.empty.isVisible()
    assert not view.table.isVisible()


def test_partner_model_passes_modeltester(qtmodeltester, qtbot, ctx, two_stands) -> None:
    view = _view(qtbot, ctx)
    qtmodeltester.check(view.model)


def test_rep_sees_partners_too(qtbot, ctx_as, two_stands) -> None:
    rep_ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, rep_ctx)
    assert view.model.rowCount() == 2
