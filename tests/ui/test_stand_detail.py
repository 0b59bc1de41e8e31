"""Stand detail: the header (partner, package, tier and points, address, a real QR code and
the payment reference), the three actions with their shortcuts, and the tabs, each checked
against the services that feed it."""

from __future__ import annotations

import sys
import types
from datetime import timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.clock import utcnow
from app.services import inventory, loyalty, queries, refills, sales, stand_views
from tests.conftest import REP, StandFixture, make_stand
from tests.ui.conftest import wait_idle
from ui.views.stand_detail import InventoryModel, StandDetailView, qr_pixmap
from ui.widgets import TOUCH

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def busy_stand(ui_backend, two_stands) -> StandFixture:
    """Kiosk am Markt with stock (one SKU out, one low), two sales (one voided), two counts
    and an open refill."""
    kiosk = two_stands[0]

    def run(session):
        lines = queries.stand_detail(session, kiosk.stand_id).inventory
        counts = {line.product_id: line.par_level for line in lines}
        counts[lines[0].product_id] = 0  # out
        counts[lines[1].product_id] = lines[1].reorder_point  # low
        inventory.record_count(
            session, REP, kiosk.stand_id, counts, counted_at=utcnow() - timedelta(days=2)
        )
        first = sales.record_sale(
            session,
            REP,
            kiosk.stand_id,
            [sales.SaleLine(lines[2].product_id, 2), sales.SaleLine(lines[3].product_id, 1)],
            "cash",
            occurred_at=utcnow() - timedelta(hours=5),
        )
        sales.record_sale(
            session,
            REP,
            kiosk.stand_id,
            [sales.SaleLine(lines[4].product_id, 1)],
            "qr",
            occurred_at=utcnow() - timedelta(hours=4),
        )
        sales.void_sale(session, REP, first.order_id, occurred_at=utcnow() - timedelta(hours=3))
        inventory.record_count(
            session, REP, kiosk.stand_id, {lines[5].product_id: lines[5].par_level - 1}
        )
        refills.request_refill(session, REP, kiosk.stand_id)

    ui_backend.call(run)
    return kiosk


def _view(qtbot, ctx, stand_id: str | None = None, size=(1280, 800)) -> StandDetailView:
    view = StandDetailView(ctx)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    if stand_id is not None:
        view.open(stand_id)
        assert view.loading
        qtbot.waitUntil(lambda: not view.loading, timeout=10_000)
        wait_idle(qtbot, ctx)
    return view


def _focus_tabs(qtbot, view: StandDetailView) -> QWidget:
    """Activate the window and put the keyboard focus on the tab bar (for shortcuts)."""
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=2000)
    bar = view.tabs.tabBar()
    bar.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is bar, timeout=2000)
    return bar


# --------------------------------------------------------------------------- header


def test_header_shows_partner_package_tier_and_qr(qtbot, ctx, ui_backend, busy_stand) -> None:
    view = _view(qtbot, ctx, busy_stand.stand_id)
    detail = ui_backend.read(queries.stand_detail, busy_stand.stand_id)
    assert view.name_label.text() == "Kiosk am Markt"
    assert view.status_label.text() == "Active"
    assert "Kiosk am Markt GmbH" in view.partner_label.text()
    assert f"{detail.package_name} package" in view.partner_label.text()
    assert "Marktplatz 1" in view.address_label.text()
    assert "Berlin" in view.address_label.text()
    assert "rep.anna" in view.address_label.text()
    balance = ui_backend.read(loyalty.balance, busy_stand.partner_id)
    assert view.tier_label.text() == f"{detail.tier_name} tier · {balance} points"
    pixmap = view.qr_label.pixmap()
    assert not pixmap.isNull()
    assert 90 <= pixmap.width() <= 140
    assert view.reference_label.text() == detail.payment_reference
    assert detail.qr_payload in view.qr_label.toolTip()
    assert not view.grab().isNull()


def test_qr_pixmap_is_square_and_sharp() -> None:
    payload = "standpay:v1?stand=01234567-89ab-7def-8123-456789abcdef&ref=SP-0000000-00"
    small, large = qr_pixmap(payload, 100), qr_pixmap(payload, 300)
    assert small.width() == small.height()
    assert large.width() > 2 * small.width() // 1.5
    image = small.toImage()
    colours = {image.pixelColor(x, y).name() for x in range(image.width()) for y in (0, 20)}
    assert colours <= {"#000000", "#ffffff"}


def test_actions_with_shortcuts_open_their_screens(qtbot, ctx, busy_stand) -> None:
    view = _view(qtbot, ctx, busy_stand.stand_id)
    bar = _focus_tabs(qtbot, view)
    for name, key, shortcut in (
        ("sale", Qt.Key.Key_S, "Ctrl+Shift+S"),
        ("count", Qt.Key.Key_C, "Ctrl+Shift+C"),
        ("refill", Qt.Key.Key_R, "Ctrl+Shift+R"),
    ):
        button = view.buttons[name]
        assert button.isEnabled()
        assert button.height() >= TOUCH
        assert shortcut in button.toolTip()
        with qtbot.waitSignal(ctx.navigate) as signal:
            qtbot.keyClick(bar, key, CTRL_SHIFT)
        assert signal.args == [name, busy_stand.stand_id]
    with qtbot.waitSignal(ctx.navigate) as signal:
        qtbot.mouseClick(view.buttons["count"], Qt.MouseButton.LeftButton)
    assert signal.args == ["count", busy_stand.stand_id]


def test_a_planned_stand_cannot_sell_yet(qtbot, ctx, ui_backend, two_stands) -> None:
    planned = ui_backend.call(make_stand, name="Apotheke Nord", activate=False)
    view = _view(qtbot, ctx, planned.stand_id)
    assert view.status_label.text() == "Planned"
    assert not view.buttons["sale"].isEnabled()
    assert "once the stand is active" in view.buttons["sale"].toolTip()
    assert view.buttons["refill"].isEnabled()
    bar = _focus_tabs(qtbot, view)
    with qtbot.assertNotEmitted(ctx.navigate, wait=50):
        qtbot.keyClick(bar, Qt.Key.Key_S, CTRL_SHIFT)


def test_unknown_stand_says_so(qtbot, ctx, two_stands) -> None:
    view = _view(qtbot, ctx)
    assert view.pages.currentIndex() == 0  # nothing opened yet: a friendly line
    assert view.message.text()
    view.open("01234567-89ab-7def-8123-456789abcdef")
    qtbot.waitUntil(lambda: not view.loading, timeout=5000)
    wait_idle(qtbot, ctx)
    assert view.pages.currentIndex() == 0
    assert "no longer exists" in view.message.text()
    assert not any(b.isEnabled() for b in view.buttons.values())


def test_switching_stands_shows_only_the_last(qtbot, ctx, two_stands) -> None:
    view = _view(qtbot, ctx)
    view.open(two_stands[0].stand_id)
    view.open(two_stands[1].stand_id)
    qtbot.waitUntil(lambda: not view.loading, timeout=5000)
    wait_idle(qtbot, ctx)
    assert view.name_label.text() == "Café Central"
    assert view.detail is not None
    assert view.detail.stand.id == two_stands[1].stand_id


# --------------------------------------------------------------------------- tabs


def test_inventory_tab_marks_low_and_out(qtbot, qtmodeltester, ctx, ui_backend, busy_stand):
    view = _view(qtbot, ctx, busy_stand.stand_id)
    detail = ui_backend.read(queries.stand_detail, busy_stand.stand_id)
    model = view.inventory_model
    assert model.rows == list(detail.inventory)
    states = {r.product_id: r.state for r in detail.inventory}
    assert sorted(states.values()).count("out") == 1
    state_col = [k for k, _ in InventoryModel.COLUMNS].index("state")
    for row, item in enumerate(model.rows):
        state = model.index(row, state_col).data()
        background = model.index(row, 0).data(Qt.ItemDataRole.BackgroundRole)
        assert state == {"out": "Out", "low": "Low", "ok": "OK"}[item.state]
        assert (background is None) == (item.state == "ok")
    # The table lists what is out first, then what is low.
    proxy = view.inventory_proxy
    first = [proxy.index(r, state_col).data() for r in range(2)]
    assert first == ["Out", "Low"]
    assert "1 out" in view.inventory_summary.text()
    qtmodeltester.check(model)


def test_sales_tab_lists_orders_with_items(qtbot, qtmodeltester, ctx, ui_backend, busy_stand):
    view = _view(qtbot, ctx, busy_stand.stand_id)
    view.tabs.setCurrentWidget(view.sales_page)
    orders = ui_backend.read(stand_views.recent_orders, busy_stand.stand_id)
    model = view.sales_model
    assert model.rowCount() == len(orders) == 3
    texts = [model.index(r, 0).data() for r in range(3)]
    assert texts[0].endswith("Void")
    assert texts[1].endswith("Sale")
    assert texts[2].endswith("Sale, voided")
    for row, order in enumerate(orders):
        parent = model.index(row, 0)
        assert model.rowCount(parent) == len(order.items)
        names = [model.index(i, 0, parent).data() for i in range(len(order.items))]
        assert names == [f"{i.name}  ({i.sku})" for i in order.items]
    assert model.item(2, 3).font().strikeOut()  # the voided sale's total
    assert "1 voided" in view.sales_summary.text()
    qtmodeltester.check(model)


def test_counts_tab_shows_variance(qtbot, ctx, ui_backend, busy_stand) -> None:
    view = _view(qtbot, ctx, busy_stand.stand_id)
    snaps = ui_backend.read(stand_views.count_snapshots, busy_stand.stand_id)
    model = view.counts_model
    assert model.rowCount() == len(snaps) == 2
    newest = model.index(0, 0)
    assert model.rowCount(newest) == len(snaps[0].lines) == 1
    assert model.index(0, 3).data() == str(snaps[0].total_variance)
    assert model.index(0, 3, newest).data() == "-1"
    assert view.counts_tree.isExpanded(newest)
    assert "1 of 1 products off" in view.counts_summary.text()


def test_loyalty_tab_shows_balance_ledger_and_progress(qtbot, ctx, ui_backend, busy_stand):
    view = _view(qtbot, ctx, busy_stand.stand_id)
    view.tabs.setCurrentWidget(view.loyalty_page)
    pid = busy_stand.partner_id
    balance = ui_backend.read(loyalty.balance, pid)
    status = ui_backend.read(loyalty.tier_status, pid)
    ledger = ui_backend.read(loyalty.ledger, pid)
    assert view.balance_label.text() == f"{balance} points"
    assert status.tier_name in view.loyalty_tier_label.text()
    assert view.ledger_model.rowCount() == len(ledger)
    assert view.ledger_model.index(0, 2).data() == f"{ledger[0].points:+d}"
    assert status.next_tier_name is not None
    assert view.progress.value() == status.earned_in_window
    assert view.progress.maximum() > view.progress.value()
    assert status.next_tier_name in view.progress.text()
    assert str(status.points_to_next) in view.progress_label.text()


def test_refills_tab_embeds_the_refills_screen(qtbot, ctx, busy_stand, monkeypatch) -> None:
    made: list[tuple[object, str | None]] = []

    class FakeRefillsView(QWidget):
        loading = False

        def __init__(self, ctx, parent=None, *, stand_id=None):
            super().__init__(parent)
            made.append((ctx, stand_id))
            QLabel(f"refills of {stand_id}", self)

        def refresh(self) -> None:
            pass

    module = types.ModuleType("ui.views.refills")
    module.RefillsView = FakeRefillsView
    monkeypatch.setitem(sys.modules, "ui.views.refills", module)
    view = _view(qtbot, ctx, busy_stand.stand_id)
    assert made == [(ctx, busy_stand.stand_id)]
    assert isinstance(view.refills_view, FakeRefillsView)
    assert view.refills_fallback.isHidden()
    # On the Refills tab the embedded screen's own Ctrl+Shift keys apply, not the page's.
    view.tabs.setCurrentWidget(view.refills_page)
    assert view.quick_actions["sale"].shortcut().isEmpty()
    view.tabs.setCurrentWidget(view.inventory_page)
    assert view.quick_actions["sale"].shortcut().toString() == "Ctrl+Shift+S"


def test_refills_tab_follows_the_stand(qtbot, ctx, two_stands, busy_stand) -> None:
    """With the real Refills screen: one embedded list, narrowed to each stand opened."""
    view = _view(qtbot, ctx, busy_stand.stand_id)
    embedded = view.refills_view
    assert embedded is not None
    assert type(embedded).__name__ == "RefillsView"
    assert embedded.stand_id == busy_stand.stand_id
    view.open(two_stands[1].stand_id)
    qtbot.waitUntil(lambda: not view.loading, timeout=5000)
    wait_idle(qtbot, ctx)
    assert view.refills_view is embedded
    assert embedded.stand_id == two_stands[1].stand_id


def test_refills_tab_without_the_refills_screen(qtbot, ctx, busy_stand, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ui.views.refills", None)  # import fails
    view = _view(qtbot, ctx, busy_stand.stand_id)
    view.tabs.setCurrentWidget(view.refills_page)
    assert view.refills_view is None
    assert view.refills_fallback.isVisible()
    assert "Refills" in view.refills_fallback.text()


def test_tabs_switch_by_keyboard(qtbot, ctx, busy_stand) -> None:
    view = _view(qtbot, ctx, busy_stand.stand_id)
    bar = _focus_tabs(qtbot, view)
    qtbot.keyClick(bar, Qt.Key.Key_L, Qt.KeyboardModifier.AltModifier)
    assert view.tabs.currentWidget() is view.loyalty_page
    assert view.tabs.tabBar().height() >= TOUCH


# --------------------------------------------------------------------------- refresh


def test_refreshes_when_a_sale_is_recorded(qtbot, ctx, ui_backend, busy_stand) -> None:
    view = _view(qtbot, ctx, busy_stand.stand_id)
    before = view.sales_model.rowCount()
    product = view.inventory_model.rows[-1].product_id
    ctx.write(
        sales.record_sale,
        busy_stand.stand_id,
        [sales.SaleLine(product, 1)],
        "card",
        on_done=lambda _r: ctx.changed("sales", "inventory", "loyalty"),
    )
    qtbot.waitUntil(lambda: view.sales_model.rowCount() == before + 1, timeout=5000)
    qtbot.waitUntil(lambda: not view.loading, timeout=5000)
    wait_idle(qtbot, ctx)
    assert (
        view.balance_label.text()
        == f"{ui_backend.read(loyalty.balance, busy_stand.partner_id)} points"
    )


def test_fits_a_small_screen(qtbot, ctx, busy_stand) -> None:
    view = _view(qtbot, ctx, busy_stand.stand_id, size=(1024, 600))
    for tab in range(view.tabs.count()):
        view.tabs.setCurrentIndex(tab)
        assert view.tabs.currentWidget().isVisible()
    assert view.header.height() < 240
    assert view.tabs.height() > 250
    assert not view.grab().isNull()
