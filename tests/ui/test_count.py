"""The count screen, driven as a rep would; and a visit through count and sale end to end."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.backend import Backend
from app.db import SessionFactory
from app.models import Role, StandInventorySnapshot, StandInventorySnapshotLine
from app.services import inventory, queries
from app.services.base import transactional
from tests.conftest import REP, CatalogProduct, StandFixture
from tests.helpers import Watch
from tests.ui.conftest import wait_idle
from ui.views.count import CountRow, CountView, signed
from ui.views.sale import SaleView

STOCK = 6


def on_hand(backend: Backend, stand_id: str) -> dict[str, int]:
    detail = backend.read(queries.stand_detail, stand_id)
    return {row.product_id: row.on_hand for row in detail.inventory}


def snapshots(backend: Backend, stand_id: str) -> list[dict[str, tuple[int, int, int]]]:
    """Each count at the stand: product id -> (expected, counted, variance)."""

    @transactional
    def query(session: Session) -> list[dict[str, tuple[int, int, int]]]:
        out = []
        for snap in session.scalars(
            select(StandInventorySnapshot)
            .where(StandInventorySnapshot.stand_id == stand_id)
            .order_by(StandInventorySnapshot.counted_at, StandInventorySnapshot.id)
        ):
            lines = session.scalars(
                select(StandInventorySnapshotLine).where(
                    StandInventorySnapshotLine.snapshot_id == snap.id
                )
            )
            out.append(
                {ln.product_id: (ln.expected_qty, ln.counted_qty, ln.variance) for ln in lines}
            )
        return out

    return backend.read(query)


@pytest.fixture
def shop(ui_backend: Backend, two_stands: tuple[StandFixture, StandFixture]) -> StandFixture:
    stand = two_stands[0]
    ui_backend.call(
        inventory.record_count, REP, stand.stand_id, dict.fromkeys(stand.product_ids, STOCK)
    )
    return stand


@pytest.fixture
def products(catalog: list[CatalogProduct], shop: StandFixture) -> dict[str, CatalogProduct]:
    by_id = {p.id: p for p in catalog}
    return {pid: by_id[pid] for pid in shop.product_ids}


@pytest.fixture
def rep_ctx(ctx_as: Callable[..., object]) -> object:
    return ctx_as(Role.REP, "rep.anna")


def _show(qtbot, widget: QWidget, size: tuple[int, int] = (1024, 600)) -> None:
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()
    qtbot.waitUntil(widget.isActiveWindow)


@pytest.fixture
def view(qtbot, rep_ctx, shop: StandFixture) -> Iterator[CountView]:
    v = CountView(rep_ctx)
    _show(qtbot, v)
    v.open(shop.stand_id)
    qtbot.waitUntil(lambda: not v.loading)
    yield v
    wait_idle(qtbot, rep_ctx)


def row_for(view: CountView, product_id: str) -> CountRow:
    return next(r for r in view.rows if r.item.product_id == product_id)


def type_count(qtbot, row: CountRow, text: str) -> None:
    row.counted.edit.setFocus()
    row.counted.edit.selectAll()
    qtbot.keyClick(row.counted.edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(row.counted.edit, text)


def save(qtbot, view: CountView, key: Qt.Key = Qt.Key.Key_S) -> None:
    target = view.focusWidget() or view.search
    qtbot.keyClick(target, key, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not view.saving)


def answer(monkeypatch: pytest.MonkeyPatch, button: QMessageBox.StandardButton) -> list[str]:
    asked: list[str] = []

    def question(parent: object, title: str, text: str, *args: object) -> object:
        asked.append(text)
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_grid_lists_every_sku_with_expected_stock(
    view: CountView, shop: StandFixture, products
) -> None:
    assert {r.item.product_id for r in view.rows} == set(shop.product_ids)
    for row in view.rows:
        assert row.expected.text() == str(STOCK)
        assert row.counted.text() == ""  # not counted until the rep says so
        assert row.variance.text() == "—"
        assert products[row.item.product_id].sku in row.name.text()
        for button in (row.counted.minus, row.counted.plus, row.same):
            assert min(button.width(), button.height()) >= 40
    assert f"0 of {len(shop.product_ids)} SKUs counted" in view.summary.text()
    assert "Kiosk am Markt" in view.heading.text()


def test_count_saves_a_snapshot_with_the_right_variances(
    qtbot, view: CountView, ui_backend: Backend, shop: StandFixture
) -> None:
    a, b, c, d, e = (row_for(view, pid) for pid in shop.product_ids[:5])
    type_count(qtbot, a, "4")  # two missing
    assert a.variance.text() == "−2"
    qtbot.mouseClick(b.same, Qt.MouseButton.LeftButton)  # as expected, by the ＝ button
    assert b.counted.text() == str(STOCK)
    assert b.variance.text() == "±0"
    type_count(qtbot, c, "")
    qtbot.keyClicks(c.counted.edit, "=")  # "=" in the field
    assert c.counted.text() == str(STOCK)
    for _ in range(STOCK + 3):  # the big + button, from empty
        qtbot.mouseClick(d.counted.plus, Qt.MouseButton.LeftButton)
    assert d.variance.text() == "+3"
    type_count(qtbot, e, "0")  # none left
    assert e.variance.text() == f"−{STOCK}"
    assert f"5 of {len(view.rows)} SKUs counted" in view.summary.text()
    assert f"variance {signed(-2 + 3 - STOCK)} units" in view.summary.text()

    save(qtbot, view, Qt.Key.Key_Return)

    [_, snap] = snapshots(ui_backend, shop.stand_id)  # the first is the fixture's
    assert snap == {
        a.item.product_id: (STOCK, 4, -2),
        b.item.product_id: (STOCK, STOCK, 0),
        c.item.product_id: (STOCK, STOCK, 0),
        d.item.product_id: (STOCK, STOCK + 3, 3),
        e.item.product_id: (STOCK, 0, -STOCK),
    }
    stock = on_hand(ui_backend, shop.stand_id)
    assert stock[a.item.product_id] == 4
    assert stock[d.item.product_id] == STOCK + 3
    assert stock[e.item.product_id] == 0
    assert all(stock[pid] == STOCK for pid in shop.product_ids[5:])  # not counted: unchanged
    assert ui_backend.read(inventory.verify_on_hand, shop.stand_id) == []
    assert view.banner.isVisible()
    assert "Count saved: 5 SKUs" in view.banner.text()
    assert f"total variance {signed(-2 + 3 - STOCK)} units" in view.banner.text()
    assert "2 short, 1 over" in view.banner.text()
    # The grid starts over from the new stock.
    qtbot.waitUntil(lambda: not view.loading)
    wait_idle(qtbot, view.ctx)
    assert a.counted.text() == ""
    assert a.expected.text() == "4"
    assert view.can_leave()


def test_nothing_entered_is_refused_politely(
    qtbot, view: CountView, factory: SessionFactory
) -> None:
    watch = Watch(factory)
    save(qtbot, view)
    watch.assert_nothing_saved()
    assert view.counts_error.isVisible()
    assert "Nothing is counted yet" in view.counts_error.text()
    assert not view.banner.isVisible()


@pytest.mark.parametrize(
    ("typed", "message"),
    [("-1", "cannot be negative"), ("abc", "whole number"), ("2.5", "whole number")],
)
def test_bad_count_is_shown_next_to_the_line_and_nothing_is_saved(
    qtbot,
    view: CountView,
    ui_backend: Backend,
    shop: StandFixture,
    factory: SessionFactory,
    typed,
    message,
) -> None:
    good, bad = row_for(view, shop.product_ids[0]), row_for(view, shop.product_ids[3])
    type_count(qtbot, good, "5")
    type_count(qtbot, bad, typed)
    assert bad.error.isVisible()  # as soon as it is typed
    good.counted.edit.setFocus()
    watch = Watch(factory)

    save(qtbot, view)

    watch.assert_nothing_saved()
    assert bad.error.isVisible()
    assert message in bad.error.text()
    assert bad.isAncestorOf(bad.error)
    assert not good.error.isVisible()
    assert bad.counted.text() == typed  # kept as typed
    assert good.counted.text() == "5"
    assert bad.counted.edit.hasFocus()
    assert "nothing was saved" in view.counts_error.text()
    # Corrected, it saves both.
    type_count(qtbot, bad, "1")
    assert not bad.error.isVisible()
    save(qtbot, view)
    [_, snap] = snapshots(ui_backend, shop.stand_id)
    assert set(snap) == {good.item.product_id, bad.item.product_id}


def test_scanning_counts_one_unit_per_beep(
    qtbot, view: CountView, shop: StandFixture, products
) -> None:
    item = products[shop.product_ids[2]]
    for _ in range(3):
        qtbot.keyClicks(view.search, item.gtin)
        qtbot.keyClick(view.search, Qt.Key.Key_Return)
    row = row_for(view, item.id)
    assert row.counted.text() == "3"
    assert row.variance.text() == signed(3 - STOCK)
    assert view.search.text() == ""
    assert item.name in view.hint.text()


def test_search_filters_and_enter_goes_to_the_sku(
    qtbot, view: CountView, shop: StandFixture, products
) -> None:
    item = products[shop.product_ids[1]]
    qtbot.keyClicks(view.search, item.name.lower())
    visible = [r for r in view.rows if not r.isHidden()]
    assert [r.item.product_id for r in visible] == [item.id]
    qtbot.keyClick(view.search, Qt.Key.Key_Return)
    row = row_for(view, item.id)
    assert row.counted.edit.hasFocus()
    qtbot.keyClicks(row.counted.edit, "2")
    view.search.setText("no such thing")
    assert view.stack.currentWidget() is view.empty
    assert "No SKU" in view.empty.text()
    view.search.setText("")
    assert view.stack.currentWidget() is view.area
    assert row.counted.text() == "2"  # filtering loses nothing


def test_enter_moves_to_the_next_sku(qtbot, view: CountView) -> None:
    first, second = view.rows[0], view.rows[1]
    first.counted.edit.setFocus()
    qtbot.keyClicks(first.counted.edit, "3")
    qtbot.keyClick(first.counted.edit, Qt.Key.Key_Return)
    assert second.counted.edit.hasFocus()
    qtbot.keyClick(second.counted.edit, Qt.Key.Key_Up)  # the stepper's keys work too
    assert second.counted.text() == "1"


def test_can_leave_asks_when_counts_are_unsaved(
    qtbot, view: CountView, monkeypatch, factory: SessionFactory
) -> None:
    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    assert view.can_leave()
    assert asked == []
    type_count(qtbot, view.rows[0], "2")
    type_count(qtbot, view.rows[1], "abc")
    assert not view.can_leave()
    assert "SKUs counted: 2" in asked[0]
    assert view.rows[0].counted.text() == "2"
    watch = Watch(factory)
    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    assert view.can_leave()
    assert view.unsaved() == 0
    watch.assert_nothing_saved()


def test_can_leave_with_the_real_dialog(qtbot, view: CountView) -> None:
    """The question is a real message box with Yes/No; "Yes" discards."""
    type_count(qtbot, view.rows[0], "2")
    seen: list[str] = []

    def press_yes() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.button(QMessageBox.StandardButton.Yes).click()
        else:
            QTimer.singleShot(10, press_yes)

    QTimer.singleShot(0, press_yes)
    assert view.can_leave()
    assert "SKUs counted: 1" in seen[0]
    assert view.unsaved() == 0


def test_refusal_by_the_service_is_shown(
    qtbot, view: CountView, ctx_as, shop: StandFixture, factory: SessionFactory
) -> None:
    partner_view = CountView(ctx_as(Role.PARTNER, "partner.shop"))
    _show(qtbot, partner_view)
    partner_view.open(shop.stand_id)
    qtbot.waitUntil(lambda: not partner_view.loading)
    type_count(qtbot, partner_view.rows[0], "1")
    watch = Watch(factory)
    save(qtbot, partner_view)
    watch.assert_nothing_saved()
    assert partner_view.error.isVisible()
    assert "may not count stock" in partner_view.error.text()
    assert partner_view.rows[0].counted.text() == "1"
    wait_idle(qtbot, partner_view.ctx)


def test_empty_states(qtbot, rep_ctx, ui_backend: Backend, catalog) -> None:
    v = CountView(rep_ctx)
    _show(qtbot, v)
    assert v.stack.currentWidget() is v.empty
    assert "Choose a stand" in v.empty.text()
    v.save()
    assert v.can_leave()


def test_a_visit_count_then_sale(
    qtbot,
    rep_ctx,
    ui_backend: Backend,
    shop: StandFixture,
    products,
    monkeypatch,
) -> None:
    """Count the stand, then sell from it: the sale screen knows the counted stock, warns
    when selling past it, and both land in the ledger."""
    count = CountView(rep_ctx)
    sale = SaleView(rep_ctx)
    _show(qtbot, count, (1280, 800))
    count.open(shop.stand_id)
    sale.open(shop.stand_id)  # open but not shown, like a page of the main window
    qtbot.waitUntil(lambda: not count.loading and not sale.loading)
    first, second = shop.product_ids[0], shop.product_ids[1]

    type_count(qtbot, row_for(count, first), "2")
    type_count(qtbot, row_for(count, second), "9")
    save(qtbot, count)
    assert "Count saved: 2 SKUs" in count.banner.text()

    # The main window asks the count screen before switching; nothing is left to ask about.
    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    assert count.can_leave()
    assert asked == []
    count.hide()
    _show(qtbot, sale, (1280, 800))
    qtbot.waitUntil(lambda: not sale.loading)
    wait_idle(qtbot, rep_ctx)
    assert next(i for i in sale.stock.items if i.product_id == first).on_hand == 2

    sale.focus_search()
    for _ in range(3):
        qtbot.keyClicks(sale.search, products[first].gtin)
        qtbot.keyClick(sale.search, Qt.Key.Key_Return)
    qtbot.keyClicks(sale.search, products[second].gtin)
    qtbot.keyClick(sale.search, Qt.Key.Key_Return)
    assert sale.lines[0].warning.isVisible()  # 3 sold, 2 counted
    assert not sale.lines[1].warning.isVisible()
    qtbot.keyClick(sale.search, Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)  # QR
    qtbot.keyClick(sale.search, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not sale.saving)

    assert "Sale saved" in sale.banner.text()
    assert sale.oversold.isVisible()
    stock = on_hand(ui_backend, shop.stand_id)
    assert stock[first] == -1
    assert stock[second] == 8
    assert ui_backend.read(inventory.verify_on_hand, shop.stand_id) == []
    # The count screen heard about the sale and shows the new expected stock.
    qtbot.waitUntil(lambda: not count.loading)
    wait_idle(qtbot, rep_ctx)
    assert row_for(count, second).expected.text() == "8"
    assert row_for(count, first).expected.text() == "−1"
