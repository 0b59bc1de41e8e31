"""The sale screen, driven as a rep would: scan, tap, type, shortcuts; checked in the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.backend import Backend
from app.db import SessionFactory
from app.models import OrderKind, Role, StandOrder
from app.services import inventory, queries
from app.services.base import transactional
from tests.conftest import REP, CatalogProduct, StandFixture, make_stand
from tests.helpers import Watch
from tests.ui.conftest import wait_idle
from ui.views.sale import SaleView, parse_price
from ui.widgets import money

STOCK = 5


@dataclass(frozen=True)
class Order:
    id: str
    kind: str
    payment_method: str
    total: Decimal
    points: int
    oversold: bool
    voided_order_id: str | None
    items: dict[str, int]


def orders(backend: Backend, stand_id: str) -> list[Order]:
    @transactional
    def query(session: Session) -> list[Order]:
        rows = session.scalars(
            select(StandOrder)
            .where(StandOrder.stand_id == stand_id)
            .order_by(StandOrder.created_at, StandOrder.id)
        )
        return [
            Order(
                o.id,
                o.kind.value,
                o.payment_method.value,
                o.total,
                o.points_earned,
                o.oversold,
                o.voided_order_id,
                {i.product_id: i.quantity for i in o.items},
            )
            for o in rows
        ]

    return backend.read(query)


def on_hand(backend: Backend, stand_id: str) -> dict[str, int]:
    detail = backend.read(queries.stand_detail, stand_id)
    return {row.product_id: row.on_hand for row in detail.inventory}


@pytest.fixture
def shop(ui_backend: Backend, two_stands: tuple[StandFixture, StandFixture]) -> StandFixture:
    """The first stand, counted at STOCK units of every SKU."""
    stand = two_stands[0]
    ui_backend.call(
        inventory.record_count, REP, stand.stand_id, dict.fromkeys(stand.product_ids, STOCK)
    )
    return stand


@pytest.fixture
def products(catalog: list[CatalogProduct], shop: StandFixture) -> list[CatalogProduct]:
    """The catalog products the shop carries, in the shop's order."""
    by_id = {p.id: p for p in catalog}
    return [by_id[pid] for pid in shop.product_ids]


@pytest.fixture
def rep_ctx(ctx_as: Callable[..., object]) -> object:
    return ctx_as(Role.REP, "rep.anna")


def _show(qtbot: object, view: SaleView) -> None:
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.show()
    qtbot.waitExposed(view)
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow)


@pytest.fixture
def view(qtbot: object, rep_ctx: object, shop: StandFixture) -> Iterator[SaleView]:
    v = SaleView(rep_ctx)
    _show(qtbot, v)
    v.open(shop.stand_id)
    qtbot.waitUntil(lambda: not v.loading)
    yield v
    wait_idle(qtbot, rep_ctx)


def scan(qtbot: object, view: SaleView, code: str) -> None:
    """What a USB scanner does: type the digits into the focused field, then Enter."""
    target = view.focusWidget() or view.search
    qtbot.keyClicks(target, code)
    qtbot.keyClick(target, Qt.Key.Key_Return)


def save(qtbot: object, view: SaleView, keys: str = "Ctrl+Return") -> None:
    target = view.focusWidget() or view.search
    key = {"Ctrl+Return": Qt.Key.Key_Return, "Ctrl+S": Qt.Key.Key_S}[keys]
    qtbot.keyClick(target, key, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not view.saving)


def quantities(view: SaleView) -> dict[str, str]:
    return {line.item.product_id: line.quantity.text() for line in view.lines}


def answer(monkeypatch: pytest.MonkeyPatch, button: QMessageBox.StandardButton) -> list[str]:
    """Answer the next question boxes with ``button``; returns their texts as asked."""
    asked: list[str] = []

    def question(parent: object, title: str, text: str, *args: object) -> object:
        asked.append(text)
        return button

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


# --------------------------------------------------------------------------- finding products


def test_scanner_adds_then_increments_and_sale_is_saved(
    qtbot, view: SaleView, ui_backend: Backend, shop: StandFixture, products
) -> None:
    first, second = products[0], products[1]
    assert view.search.hasFocus()

    scan(qtbot, view, first.gtin)
    assert quantities(view) == {first.id: "1"}
    assert view.search.text() == ""  # ready for the next scan
    scan(qtbot, view, first.gtin)
    assert quantities(view) == {first.id: "2"}
    scan(qtbot, view, second.sku.lower())  # a typed SKU works like a barcode
    assert quantities(view) == {first.id: "2", second.id: "1"}
    assert second.name in view.hint.text()
    expected_total = first.list_price * 2 + second.list_price
    assert view.total_label.text() == money(expected_total)

    save(qtbot, view)

    [order] = orders(ui_backend, shop.stand_id)
    assert order.kind == "sale"
    assert order.payment_method == "cash"
    assert order.total == expected_total
    assert order.items == {first.id: 2, second.id: 1}
    stock = on_hand(ui_backend, shop.stand_id)
    assert stock[first.id] == STOCK - 2
    assert stock[second.id] == STOCK - 1
    assert ui_backend.read(inventory.verify_on_hand, shop.stand_id) == []
    # The screen is clear for the next customer and says what was saved.
    assert view.lines == []
    assert view.banner.isVisible()
    assert view.banner.text().startswith("Sale saved: total " + money(expected_total))
    assert f"{order.points} points" in view.banner.text()
    assert not view.oversold.isVisible()
    assert view.undo_button.isEnabled()
    # The list shows the new stock once the change has been announced and reloaded.
    qtbot.waitUntil(lambda: not view.loading)
    wait_idle(qtbot, view.ctx)
    item = next(i for i in view.stock.items if i.product_id == first.id)
    assert item.on_hand == STOCK - 2


def test_unknown_code_is_reported_next_to_the_search(
    qtbot, view: SaleView, catalog: list[CatalogProduct], shop: StandFixture
) -> None:
    not_carried = next(p for p in catalog if p.id not in shop.product_ids)
    scan(qtbot, view, not_carried.gtin)
    assert view.lines == []
    assert view.search_error.isVisible()
    assert not_carried.gtin in view.search_error.text()
    assert view.search.selectedText() == not_carried.gtin  # the next scan replaces it
    scan(qtbot, view, "000")
    assert view.search.text() == "000"


def test_search_by_name_tap_and_keyboard(qtbot, view: SaleView, products) -> None:
    target = products[2]
    qtbot.keyClicks(view.search, target.name.lower())
    assert view.proxy.rowCount() == 1
    index = view.proxy.index(0, 0)
    rect = view.products.visualRect(index)
    qtbot.mouseClick(view.products.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert quantities(view) == {target.id: "1"}
    assert view.search.hasFocus()  # back in the search box, ready for a scan
    # Enter with words that match one product adds it too.
    qtbot.keyClick(view.search, Qt.Key.Key_Return)
    assert quantities(view) == {target.id: "2"}
    # Arrow down into the list, Enter adds the highlighted product.
    view.search.setText("")
    qtbot.keyClick(view.search, Qt.Key.Key_Down)
    assert view.products.hasFocus()
    qtbot.keyClick(view.products, Qt.Key.Key_Down)
    chosen = view.products.currentIndex().data(Qt.ItemDataRole.UserRole + 1)
    qtbot.keyClick(view.products, Qt.Key.Key_Return)
    assert quantities(view)[chosen] == ("3" if chosen == target.id else "1")
    # Typing while the list has the focus goes to the search box.
    qtbot.keyClicks(view.products, "xyz")
    assert view.search.hasFocus()
    assert view.search.text() == "xyz"
    assert "No product" in view.products_empty.text()


def test_scan_while_a_quantity_has_the_focus(qtbot, view: SaleView, products) -> None:
    item = products[0]
    scan(qtbot, view, item.gtin)
    line = view.lines[0]
    line.quantity.edit.setFocus()
    line.quantity.edit.end(False)
    scan(qtbot, view, item.gtin)  # the scanner typed into the quantity field
    assert quantities(view) == {item.id: "2"}
    assert view.search.hasFocus()


def test_steppers_and_remove(qtbot, view: SaleView, products) -> None:
    scan(qtbot, view, products[0].gtin)
    scan(qtbot, view, products[1].gtin)
    line = view.lines[0]
    qtbot.mouseClick(line.quantity.plus, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(line.quantity.plus, Qt.MouseButton.LeftButton)
    assert line.quantity.text() == "3"
    qtbot.mouseClick(line.quantity.minus, Qt.MouseButton.LeftButton)
    assert line.quantity.text() == "2"
    qtbot.mouseClick(line.quantity.minus, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(line.quantity.minus, Qt.MouseButton.LeftButton)
    assert line.quantity.text() == "1"  # never below 1; ✕ removes a line
    assert line.total.text() == money(products[0].list_price)
    qtbot.mouseClick(view.lines[1].remove, Qt.MouseButton.LeftButton)
    assert quantities(view) == {products[0].id: "1"}
    assert view.total_label.text() == money(products[0].list_price)
    for button in (line.quantity.plus, line.quantity.minus, line.remove):
        assert min(button.width(), button.height()) >= 40


# --------------------------------------------------------------------------- stock and payment


def test_quantity_over_stock_warns_and_still_saves(
    qtbot, view: SaleView, ui_backend: Backend, shop: StandFixture, products
) -> None:
    item = products[0]
    scan(qtbot, view, item.gtin)
    line = view.lines[0]
    assert not line.warning.isVisible()
    line.quantity.edit.selectAll()
    qtbot.keyClicks(line.quantity.edit, str(STOCK + 2))
    assert line.warning.isVisible()
    assert f"Only {STOCK} expected" in line.warning.text()

    save(qtbot, view, "Ctrl+S")

    [order] = orders(ui_backend, shop.stand_id)
    assert order.items == {item.id: STOCK + 2}
    assert order.oversold
    assert on_hand(ui_backend, shop.stand_id)[item.id] == -2
    assert view.oversold.isVisible()
    assert item.name in view.oversold.text()
    assert f"{STOCK + 2} sold, {STOCK} expected" in view.oversold.text()


@pytest.mark.parametrize(
    ("how", "method"), [("click", "qr"), ("shortcut", "card"), ("default", "cash")]
)
def test_payment_choice_is_saved(
    qtbot, view: SaleView, ui_backend: Backend, shop: StandFixture, products, how, method
) -> None:
    scan(qtbot, view, products[0].gtin)
    if how == "click":
        qtbot.mouseClick(view.payment_buttons[method], Qt.MouseButton.LeftButton)
    elif how == "shortcut":
        qtbot.keyClick(view.search, Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)
    assert view.payment_method() == method
    assert "Alt+" in view.payment_buttons[method].toolTip()
    view.search.setFocus()
    save(qtbot, view)
    [order] = orders(ui_backend, shop.stand_id)
    assert order.payment_method == method
    assert view.payment_method() == "cash"  # the next sale starts from cash again


def test_price_override_within_and_outside_the_guardrails(
    qtbot, view: SaleView, ui_backend: Backend, shop: StandFixture, products, factory
) -> None:
    item = products[0]
    scan(qtbot, view, item.gtin)
    line = view.lines[0]
    qtbot.keyClicks(line.price, "0,50")  # the catalog's minimum price is 1.00
    assert line.total.text() == money(Decimal("0.50"))
    watch = Watch(factory)
    save(qtbot, view)
    watch.assert_nothing_saved()
    assert line.error.isVisible()
    assert "below 1.00" in line.error.text()
    assert line.price.text() == "0,50"  # nothing typed is lost
    line.price.selectAll()
    qtbot.keyClicks(line.price, "1.25")
    save(qtbot, view)
    [order] = orders(ui_backend, shop.stand_id)
    assert order.total == Decimal("1.25")


# --------------------------------------------------------------------------- undo


def test_undo_voids_the_last_sale_after_asking(
    qtbot, view: SaleView, ui_backend: Backend, shop: StandFixture, products, monkeypatch
) -> None:
    item = products[0]
    scan(qtbot, view, item.gtin)
    scan(qtbot, view, item.gtin)
    save(qtbot, view)
    assert on_hand(ui_backend, shop.stand_id)[item.id] == STOCK - 2
    assert "Ctrl+Z" in view.undo_button.toolTip()

    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    qtbot.keyClick(view.search, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(asked) == 1
    assert money(products[0].list_price * 2) in asked[0]
    assert len(orders(ui_backend, shop.stand_id)) == 1  # "No" voids nothing

    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    qtbot.keyClick(view.search, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not view.saving)

    sale, void = orders(ui_backend, shop.stand_id)
    assert void.kind == OrderKind.VOID.value
    assert void.voided_order_id == sale.id
    assert void.total == -sale.total
    assert on_hand(ui_backend, shop.stand_id)[item.id] == STOCK
    assert ui_backend.read(inventory.verify_on_hand, shop.stand_id) == []
    assert "Sale voided" in view.banner.text()
    assert not view.undo_button.isEnabled()
    assert not view.undo_action.isEnabled()


def test_ctrl_z_undoes_typing_first(qtbot, view: SaleView, products, monkeypatch) -> None:
    scan(qtbot, view, products[0].gtin)
    save(qtbot, view)
    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    qtbot.keyClicks(view.search, "cho")
    qtbot.keyClick(view.search, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert asked == []  # the text edit took it
    assert view.search.text() != "cho"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter how many"),
        ("-1", "at least 1"),
        ("0", "at least 1"),
        ("abc", "whole number"),
        ("2.5", "whole number"),
    ],
)
def test_bad_quantity_is_shown_next_to_the_line_and_nothing_is_saved(
    qtbot, view: SaleView, products, factory: SessionFactory, typed: str, message: str
) -> None:
    scan(qtbot, view, products[0].gtin)
    scan(qtbot, view, products[1].gtin)
    line = view.lines[1]
    line.quantity.edit.selectAll()
    qtbot.keyClick(line.quantity.edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(line.quantity.edit, typed)
    watch = Watch(factory)

    save(qtbot, view)

    watch.assert_nothing_saved()
    assert line.error.isVisible()
    assert message in line.error.text()
    assert line.isAncestorOf(line.error)  # next to the line it is about
    assert not view.lines[0].error.isVisible()
    assert line.quantity.text() == typed  # what was typed stays
    assert line.quantity.edit.hasFocus()
    assert view.lines_error.isVisible()
    # Corrected, it saves.
    line.quantity.edit.selectAll()
    qtbot.keyClicks(line.quantity.edit, "2")
    assert not line.error.isVisible()
    save(qtbot, view)
    assert view.lines == []


def test_empty_sale_is_refused(qtbot, view: SaleView, factory: SessionFactory) -> None:
    watch = Watch(factory)
    save(qtbot, view)
    watch.assert_nothing_saved()
    assert view.lines_error.isVisible()
    assert "at least one product" in view.lines_error.text()


def test_refusal_by_the_service_keeps_the_sale(
    qtbot, rep_ctx, ui_backend: Backend, catalog: list[CatalogProduct], factory
) -> None:
    planned = ui_backend.call(make_stand, name="Apotheke West", activate=False)
    v = SaleView(rep_ctx)
    _show(qtbot, v)
    v.open(planned.stand_id)
    qtbot.waitUntil(lambda: not v.loading)
    assert "sales start once it is active" in v.error.text()
    code = next(p.gtin for p in catalog if p.id == planned.product_ids[0])
    scan(qtbot, v, code)
    watch = Watch(factory)
    save(qtbot, v)
    watch.assert_nothing_saved()
    assert v.error.isVisible()
    assert "active" in v.error.text()
    assert len(v.lines) == 1
    wait_idle(qtbot, rep_ctx)


def test_parse_price() -> None:
    assert parse_price("2.50") == Decimal("2.50")
    assert parse_price("2,50 €") == Decimal("2.50")
    assert parse_price(" 3 ") == Decimal(3)
    assert parse_price("abc") is None
    assert parse_price("nan") is None


# --------------------------------------------------------------------------- leaving and reloads


def test_can_leave_asks_only_with_a_sale_entered(
    qtbot, view: SaleView, products, monkeypatch
) -> None:
    asked = answer(monkeypatch, QMessageBox.StandardButton.No)
    assert view.can_leave()
    assert asked == []
    scan(qtbot, view, products[0].gtin)
    assert not view.can_leave()
    assert len(asked) == 1
    assert len(view.lines) == 1  # kept
    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    assert view.can_leave()
    assert view.lines == []
    assert view.can_leave()


def test_changes_elsewhere_refresh_the_stock_and_keep_the_lines(
    qtbot, view: SaleView, ui_backend: Backend, shop: StandFixture, products
) -> None:
    item = products[0]
    scan(qtbot, view, item.gtin)
    ui_backend.call(inventory.record_count, REP, shop.stand_id, {item.id: 1})
    line = view.lines[0]
    line.quantity.setValue(2)
    assert not line.warning.isVisible()
    view.ctx.changed("inventory", ids=(shop.stand_id,))
    qtbot.waitUntil(lambda: not view.loading)
    wait_idle(qtbot, view.ctx)
    assert quantities(view) == {item.id: "2"}
    assert line.warning.isVisible()  # now more than the 1 expected
    assert "Only 1 expected" in line.warning.text()


def test_another_stand_starts_a_fresh_sale(
    qtbot, view: SaleView, two_stands, products, ui_backend: Backend
) -> None:
    scan(qtbot, view, products[0].gtin)
    view.open(two_stands[1].stand_id)
    qtbot.waitUntil(lambda: not view.loading)
    assert view.lines == []
    assert "Café Central" in view.heading.text()
    wait_idle(qtbot, view.ctx)


def test_empty_states(qtbot, rep_ctx) -> None:
    v = SaleView(rep_ctx)
    _show(qtbot, v)
    assert v.products_stack.currentWidget() is v.products_empty
    assert "Choose a stand" in v.products_empty.text()
    assert v.lines_stack.currentWidget() is v.lines_empty
    assert v.total_label.text() == money(0)
    v.save()  # nothing to do, nothing breaks
    assert v.can_leave()
