"""The main window: every screen opens, the rail and shortcuts navigate, unsaved work is
guarded, the status bar says who and where, and ``stand-os --screenshot`` renders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox

from app.services import inventory, queries
from ui.main_window import RAIL, SCREENS, MainWindow
from ui.widgets import Stepper

STAND_SCREENS = ("stand", "sale", "count", "refill")


@pytest.fixture
def window(qtbot, ctx, two_stands):
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.close()
    ctx.runner.wait()


def _settle(qtbot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: not win.busy, timeout=10_000)


@pytest.mark.parametrize("name", sorted(SCREENS))
def test_every_screen_opens_and_renders(qtbot, window, two_stands, name: str) -> None:
    arg = two_stands[0].stand_id if name in STAND_SCREENS else None
    assert window.go(name, arg)
    _settle(qtbot, window)
    assert window.current == name
    assert window.stack.currentWidget() is window.views[name]
    assert window.page_title.text()
    assert not window.grab().isNull()


def test_rail_buttons_and_shortcuts_navigate(qtbot, window) -> None:
    window.start()
    _settle(qtbot, window)
    with qtbot.waitActive(window):
        window.activateWindow()
    for index, (name, _label, _icon, _shortcut) in enumerate(RAIL, start=1):
        qtbot.keyClick(window, Qt.Key(Qt.Key.Key_0 + index), Qt.KeyboardModifier.ControlModifier)
        _settle(qtbot, window)
        assert window.current == name
        checked = [b.objectName() for b in window.rail_buttons.buttons() if b.isChecked()]
        assert checked == [f"rail_{name}"]
    button = next(b for b in window.rail_buttons.buttons() if b.objectName() == "rail_stands")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    _settle(qtbot, window)
    assert window.current == "stands"
    assert "Ctrl+2" in button.toolTip()
    assert button.minimumHeight() >= 40


def test_opening_a_stand_and_going_back(qtbot, window, two_stands) -> None:
    with qtbot.waitActive(window):
        window.activateWindow()
    window.go("stands")
    _settle(qtbot, window)
    window.ctx.navigate.emit("stand", two_stands[1].stand_id)
    _settle(qtbot, window)
    assert window.current == "stand"
    assert window.back_button.isVisible()
    checked = [b.objectName() for b in window.rail_buttons.buttons() if b.isChecked()]
    assert checked == ["rail_stands"]
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    _settle(qtbot, window)
    assert window.current == "stands"


def test_status_bar_says_who_and_where(qtbot, window, ctx) -> None:
    _settle(qtbot, window)
    texts = " ".join(w.text() for w in window.statusBar().findChildren(type(window.message)))
    assert "mgr.max" in texts
    assert "manager" in texts
    assert ctx.backend.location in texts
    assert "Not linked to a server" in texts


def test_leaving_a_count_with_unsaved_numbers_asks(qtbot, window, two_stands, monkeypatch) -> None:
    stand_id = two_stands[0].stand_id
    window.go("count", stand_id)
    _settle(qtbot, window)
    count = window.views["count"]
    first = count.findChildren(Stepper)[0]
    first.edit.setText("3")
    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    asked: list[str] = []

    def answer(*args, **kwargs):
        asked.append(str(args[1:3]))
        return next(answers)

    monkeypatch.setattr(QMessageBox, "question", answer)
    assert window.go("stands") is False  # "No": stay and keep the numbers
    assert window.current == "count"
    assert first.edit.text() == "3"
    assert window.go("stands") is True  # "Yes": discard
    assert window.current == "stands"
    assert len(asked) == 2
    assert ctx_counts(window, stand_id) == []


def ctx_counts(window: MainWindow, stand_id: str) -> list[object]:
    """Nothing was saved: the stand has no counted lines."""
    detail = window.ctx.backend.read(queries.stand_detail, stand_id)
    return [line for line in detail.inventory if line.last_counted_at is not None]


def test_refresh_shortcut_reloads_the_screen(qtbot, window, ui_backend, two_stands) -> None:
    with qtbot.waitActive(window):
        window.activateWindow()
    window.go("stand", two_stands[0].stand_id)
    _settle(qtbot, window)
    product = two_stands[0].product_ids[0]
    ui_backend.call(inventory.record_count, window.ctx.actor, two_stands[0].stand_id, {product: 7})
    qtbot.keyClick(window, Qt.Key.Key_F5)
    _settle(qtbot, window)
    assert window.views["stand"].loading is False


def test_screenshot_command_renders_a_screen(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "stand-os"
    assert exe.exists(), "the stand-os entry point is not installed"
    out = tmp_path / "today.png"
    result = subprocess.run(
        [
            str(exe),
            "--demo",
            "--data-dir",
            str(tmp_path),
            "--screenshot",
            str(out),
            "--view",
            "today",
            "--size",
            "1024x600",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1024, 600)
    assert result.stderr == ""


def test_partner_stands_open_filtered(qtbot, window, two_stands) -> None:
    window.go("partners")
    _settle(qtbot, window)
    partners = window.views["partners"]
    row = next(i for i, r in enumerate(partners.model.rows) if r.id == two_stands[1].partner_id)
    partners.table.selectRow(row)
    partners.stands_button.click()
    _settle(qtbot, window)
    stands = window.views["stands"]
    assert window.current == "stands"
    assert stands.model.rowCount() == 1
    assert stands.filters().partner_id == two_stands[1].partner_id
    assert "Café Central" in stands.partner_combo.currentText()


def test_a_full_visit_count_sale_refill(qtbot, window, ui_backend, two_stands, catalog) -> None:
    """What a rep does at a stand, through the main window: count, sell, ask for a refill."""
    from app.services import refill_views, stand_views

    stand = two_stands[0]
    gtins = {p.id: p.gtin for p in catalog}
    first, second = stand.product_ids[0], stand.product_ids[1]
    with qtbot.waitActive(window):
        window.activateWindow()

    window.ctx.navigate.emit("count", stand.stand_id)
    _settle(qtbot, window)
    count = window.views["count"]
    steppers = count.findChildren(Stepper)
    assert len(steppers) == len(stand.product_ids)
    for stepper in steppers:
        stepper.edit.clear()
        qtbot.keyClicks(stepper.edit, "1")
    qtbot.mouseClick(count.save_button, Qt.MouseButton.LeftButton)
    _settle(qtbot, window)
    assert [s.lines for s in ui_backend.read(stand_views.count_snapshots, stand.stand_id)]

    window.ctx.navigate.emit("sale", stand.stand_id)
    _settle(qtbot, window)
    sale = window.views["sale"]
    for gtin in (gtins[first], gtins[second], gtins[second]):
        qtbot.keyClicks(sale.search, gtin)
        qtbot.keyClick(sale.search, Qt.Key.Key_Return)
    qtbot.keyClick(sale.search, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: "Sale saved" in sale.banner.text(), timeout=10_000)
    _settle(qtbot, window)
    orders = ui_backend.read(stand_views.recent_orders, stand.stand_id)
    assert len(orders) == 1
    assert sorted((i.product_id, i.quantity) for i in orders[0].items) == sorted(
        [(first, 1), (second, 2)]
    )

    window.ctx.navigate.emit("refill", stand.stand_id)
    _settle(qtbot, window)
    request = window.views["refill"]
    assert request.lines[second].stepper.value() > 0  # pre-filled: par minus what is left
    qtbot.mouseClick(request.submit_button, Qt.MouseButton.LeftButton)
    _settle(qtbot, window)
    refills = ui_backend.read(refill_views.refill_list, stand_id=stand.stand_id, state="open")
    assert len(refills) == 1
    assert inventory_is_consistent(ui_backend)


def inventory_is_consistent(backend) -> bool:
    return backend.read(inventory.verify_on_hand) == []


def test_a_screen_reached_from_another_keeps_its_rail_item(qtbot, window, two_stands) -> None:
    """A refill requested from the Coach stays under Coach; from the stand list, Stands."""
    window.go("coach")
    _settle(qtbot, window)
    window.ctx.navigate.emit("refill", two_stands[0].stand_id)
    _settle(qtbot, window)
    checked = [b.objectName() for b in window.rail_buttons.buttons() if b.isChecked()]
    assert checked == ["rail_coach"]
    window.go("stands")
    _settle(qtbot, window)
    window.ctx.navigate.emit("refill", two_stands[0].stand_id)
    _settle(qtbot, window)
    checked = [b.objectName() for b in window.rail_buttons.buttons() if b.isChecked()]
    assert checked == ["rail_stands"]
