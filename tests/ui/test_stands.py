"""The stand list: search, header sorting and filters re-query SQL; the model holds ids and
loads rows lazily; Enter, double click and tap open a stand; empty states say why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QInputDevice, QMouseEvent, QPalette, QPointingDevice
from PySide6.QtWidgets import QApplication, QScroller

from app.backend import Backend
from app.db import open_db
from app.demo import generate_demo
from app.services import onboarding, stand_views
from app.services.stand_views import StandFilters
from tests.conftest import MANAGER, OTHER_REP, REP, make_stand
from tests.ui.conftest import wait_idle
from ui.context import UiContext
from ui.stand_list_model import (
    ID_ROLE,
    PLACEHOLDER,
    ROW_ROLE,
    SORT_ROLE,
    StandListModel,
    tone,
)
from ui.tasks import TaskRunner
from ui.views.stands import StandsView
from ui.widgets import TOUCH


def _view(qtbot, ctx, size: tuple[int, int] = (1280, 800)) -> StandsView:
    view = StandsView(ctx)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    view.refresh()
    assert view.loading
    qtbot.waitUntil(lambda: not view.loading, timeout=10_000)
    wait_idle(qtbot, ctx)
    return view


def _add(ui_backend: Backend, name: str, **stand: object) -> str:
    """Onboard (and activate) a partner with one stand; returns the stand id."""
    fields = {
        "name": name,
        "address": "Hauptstraße 5",
        "city": "Berlin",
        "location_type": "kiosk",
        "capacity_units": 200,
        "assigned_rep": REP.user,
    }
    fields.update(stand)
    activate = bool(fields.pop("activate", True))

    def run(session):
        from app.services import loyalty

        result = onboarding.onboard_partner(
            session,
            REP,
            onboarding.PartnerInput(name=f"{name} GmbH", contact_name="Eva", package_code="growth"),
            onboarding.StandInput(**fields),
        )
        if activate:
            loyalty.activate_partner(session, REP, result.partner_id)
        return result.stand.stand_id

    return ui_backend.call(run)


@pytest.fixture
def five(ui_backend: Backend, two_stands) -> dict[str, str]:
    stands = {
        "Kiosk am Markt": two_stands[0].stand_id,
        "Café Central": two_stands[1].stand_id,
    }
    stands["Apotheke Nord"] = _add(
        ui_backend,
        "Apotheke Nord",
        location_type="pharmacy",
        city="Hamburg",
        assigned_rep=OTHER_REP.user,
        activate=False,
    )
    stands["Bistro Süd"] = _add(ui_backend, "Bistro Süd", location_type="cafe", city="München")
    stands["Zentrale"] = _add(ui_backend, "Zentrale", location_type="office", assigned_rep=None)
    return stands


def _names(view: StandsView) -> list[str]:
    return [view.model.index(r, 0).data() for r in range(view.model.rowCount())]


def _expected(ui_backend: Backend, filters: StandFilters | None = None, **sort) -> list[str]:
    return list(ui_backend.read(stand_views.stand_ids, filters or StandFilters(), **sort).ids)


def _click_header(qtbot, view: StandsView, key: str) -> None:
    col = [c.key for c in StandListModel.COLUMNS].index(key)
    header = view.table.horizontalHeader()
    x = header.sectionViewportPosition(col) + header.sectionSize(col) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 10))


# --------------------------------------------------------------------------- listing


def test_lists_every_stand_with_counts(qtbot, ctx, ui_backend, five) -> None:
    view = _view(qtbot, ctx)
    assert view.model.ids() == _expected(ui_backend)
    assert _names(view) == sorted(five)
    result = ui_backend.read(stand_views.stand_ids)
    text = view.count_label.text()
    assert "5 stands" in text
    assert f"{result.attention} need attention" in text
    # Rows carry native values for sorting and the whole row for other screens.
    kiosk = view.model.row_of(five["Kiosk am Markt"])
    assert view.model.index(kiosk, 0).data(ID_ROLE) == five["Kiosk am Markt"]
    units = [c.key for c in StandListModel.COLUMNS].index("units")
    assert view.model.index(kiosk, units).data(SORT_ROLE) == 0
    row = view.model.index(kiosk, 0).data(ROW_ROLE)
    assert (row.city, row.assigned_rep, row.needs_attention) == ("Berlin", REP.user, True)
    status = [c.key for c in StandListModel.COLUMNS].index("status")
    assert view.model.index(view.model.row_of(five["Apotheke Nord"]), status).data() == "Planned"


def test_typing_searches_after_a_pause(qtbot, ctx, ui_backend, five) -> None:
    view = _view(qtbot, ctx)
    qtbot.keyClicks(view.search, "central")
    qtbot.waitUntil(lambda: view.model.rowCount() == 1, timeout=5000)
    assert view.model.ids() == _expected(ui_backend, StandFilters(search="central"))
    assert _names(view) == ["Café Central"]
    assert "1 of 5 stands" in view.count_label.text()
    # Escape clears the search and the list comes back.
    qtbot.keyClick(view.search, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: view.model.rowCount() == 5, timeout=5000)
    # City and address match too.
    qtbot.keyClicks(view.search, "nchen")  # QTest types ASCII only
    qtbot.waitUntil(lambda: _names(view) == ["Bistro Süd"], timeout=5000)


def test_header_click_sorts_in_sql(qtbot, ctx, ui_backend, five) -> None:
    view = _view(qtbot, ctx)
    _click_header(qtbot, view, "city")
    qtbot.waitUntil(
        lambda: view.model.ids() == _expected(ui_backend, order_by="city"), timeout=5000
    )
    assert view.model.sort_key == "city"
    wait_idle(qtbot, ctx)
    _click_header(qtbot, view, "city")
    qtbot.waitUntil(
        lambda: view.model.ids() == _expected(ui_backend, order_by="city", descending=True),
        timeout=5000,
    )
    cities = [c.key for c in StandListModel.COLUMNS].index("city")
    assert view.model.index(0, cities).data() == "München"
    # Stock columns sort in SQL too.
    _click_header(qtbot, view, "rep")
    qtbot.waitUntil(lambda: view.model.ids() == _expected(ui_backend, order_by="rep"), timeout=5000)


def test_filters_combine_and_clear(qtbot, ctx, ui_backend, five) -> None:
    view = _view(qtbot, ctx)
    assert not view.clear_button.isEnabled()
    view.status_combo.setCurrentIndex(view.status_combo.findData("planned"))
    qtbot.waitUntil(lambda: _names(view) == ["Apotheke Nord"], timeout=5000)
    assert view.clear_button.isEnabled()
    view.status_combo.setCurrentIndex(view.status_combo.findData("active"))
    view.type_combo.setCurrentIndex(view.type_combo.findData("kiosk"))
    qtbot.waitUntil(lambda: _names(view) == ["Café Central", "Kiosk am Markt"], timeout=5000)
    assert view.model.ids() == _expected(
        ui_backend, StandFilters(status="active", location_type="kiosk")
    )
    qtbot.mouseClick(view.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.model.rowCount() == 5, timeout=5000)
    assert view.status_combo.currentIndex() == view.type_combo.currentIndex() == 0

    # Reps and partners come from the database.
    reps = [view.rep_combo.itemData(i) for i in range(1, view.rep_combo.count())]
    assert reps == ["rep.anna", "rep.ben"]
    view.rep_combo.setCurrentIndex(view.rep_combo.findData("rep.ben"))
    qtbot.waitUntil(lambda: _names(view) == ["Apotheke Nord"], timeout=5000)
    view.rep_combo.setCurrentIndex(0)
    partners = ui_backend.read(stand_views.filter_choices).partners
    bistro = next(p for p in partners if p.name == "Bistro Süd GmbH")
    view.partner_combo.setCurrentIndex(1 + partners.index(bistro))
    qtbot.waitUntil(lambda: _names(view) == ["Bistro Süd"], timeout=5000)
    assert view.filters().partner_id == bistro.id
    # Typing a partner's name picks it; text naming nobody means all partners.
    view.partner_combo.setCurrentIndex(0)
    qtbot.waitUntil(lambda: view.model.rowCount() == 5, timeout=5000)


def test_needs_attention_toggle(qtbot, ctx, ui_backend, five) -> None:
    view = _view(qtbot, ctx)
    qtbot.mouseClick(view.attention, Qt.MouseButton.LeftButton)
    expected = _expected(ui_backend, StandFilters(needs_attention=True))
    qtbot.waitUntil(lambda: view.model.ids() == expected, timeout=5000)
    # Planned stands never need attention; the empty active ones all do.
    assert sorted(_names(view)) == ["Bistro Süd", "Café Central", "Kiosk am Markt", "Zentrale"]
    assert all(
        view.model.index(r, 0).data(ROW_ROLE).needs_attention for r in range(view.model.rowCount())
    )
    # Alt+N is its mnemonic.
    assert view.attention.text().startswith("&N")
    assert "Alt+N" in view.attention.toolTip()


def test_empty_states(qtbot, ctx, five) -> None:
    view = _view(qtbot, ctx)
    qtbot.keyClicks(view.search, "no such stand anywhere")
    qtbot.waitUntil(lambda: view.pages.currentIndex() == 1, timeout=5000)
    assert view.empty_label.text() == "No stands match these filters."
    assert view.empty_action.isVisible()
    qtbot.mouseClick(view.empty_action, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.model.rowCount() == 5, timeout=5000)
    assert view.pages.currentIndex() == 0
    assert view.search.text() == ""


def test_empty_program_offers_onboarding(qtbot, tmp_path: Path, catalog, db_url) -> None:
    backend = Backend.open(f"sqlite:///{tmp_path / 'empty.db'}")
    runner = TaskRunner()
    ctx = UiContext(backend, runner, REP)
    try:
        view = _view(qtbot, ctx)
        assert view.pages.currentIndex() == 1
        assert "No stands yet" in view.empty_label.text()
        with qtbot.waitSignal(ctx.navigate) as signal:
            qtbot.mouseClick(view.empty_action, Qt.MouseButton.LeftButton)
        assert signal.args == ["onboarding", None]
    finally:
        runner.wait()
        backend.close()


# --------------------------------------------------------------------------- opening


def test_keyboard_search_then_enter_opens(qtbot, ctx, five) -> None:
    view = _view(qtbot, ctx)
    view.focus_search()
    qtbot.keyClicks(view.search, "bistro")
    qtbot.waitUntil(lambda: _names(view) == ["Bistro Süd"], timeout=5000)
    qtbot.keyClick(view.search, Qt.Key.Key_Down)
    assert view.table.hasFocus() or QApplication.focusWidget() is view.table
    assert view.current_stand_id() == five["Bistro Süd"]
    with qtbot.waitSignal(ctx.navigate) as signal:
        qtbot.keyClick(view.table, Qt.Key.Key_Return)
    assert signal.args == ["stand", five["Bistro Süd"]]


def test_ctrl_f_focuses_search(qtbot, ctx, five) -> None:
    view = _view(qtbot, ctx)
    view.activateWindow()
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(view.search.hasFocus, timeout=2000)


def test_double_click_and_tap_open(qtbot, ctx, five) -> None:
    view = _view(qtbot, ctx)
    row = view.model.row_of(five["Café Central"])
    rect = view.table.visualRect(view.model.index(row, 0))
    with qtbot.waitSignal(ctx.navigate) as signal:
        # An item view opens on a double click that follows a press on the same row.
        qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert signal.args == ["stand", five["Café Central"]]
    # A single mouse click only selects...
    with qtbot.assertNotEmitted(ctx.navigate, wait=50):
        qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    # ...but a tap on a touchscreen opens.
    touch = QPointingDevice(
        "test touchscreen",
        4242,
        QInputDevice.DeviceType.TouchScreen,
        QPointingDevice.PointerType.Finger,
        QInputDevice.Capability.Position,
        5,
        0,
    )
    row = view.model.row_of(five["Zentrale"])
    pos = QPointF(view.table.visualRect(view.model.index(row, 1)).center())
    global_pos = QPointF(view.table.viewport().mapToGlobal(pos.toPoint()))
    with qtbot.waitSignal(ctx.navigate) as signal:
        for kind, buttons in (
            (QEvent.Type.MouseButtonPress, Qt.MouseButton.LeftButton),
            (QEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton),
        ):
            event = QMouseEvent(
                kind,
                pos,
                global_pos,
                Qt.MouseButton.LeftButton,
                buttons,
                Qt.KeyboardModifier.NoModifier,
                touch,
            )
            QApplication.sendEvent(view.table.viewport(), event)
    assert signal.args == ["stand", five["Zentrale"]]


def test_row_actions_have_shortcuts(qtbot, ctx, five) -> None:
    view = _view(qtbot, ctx)
    view.table.setFocus()
    view.table.selectRow(view.model.row_of(five["Kiosk am Markt"]))
    shortcuts = {a.text(): a.shortcut().toString() for a in view.row_actions}
    assert shortcuts == {
        "Record sale": "Ctrl+Shift+S",
        "Count stock": "Ctrl+Shift+C",
        "Request refill": "Ctrl+Shift+R",
    }
    assert all(a.shortcut().toString() in a.toolTip() for a in view.row_actions)
    with qtbot.waitSignal(ctx.navigate) as signal:
        qtbot.keyClick(
            view.table,
            Qt.Key.Key_C,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
    assert signal.args == ["count", five["Kiosk am Markt"]]


# --------------------------------------------------------------------------- touch and size


def test_touch_friendly_and_fits_small_screens(qtbot, ctx, five) -> None:
    view = _view(qtbot, ctx, size=(1024, 600))
    assert QScroller.hasScroller(view.table.viewport())
    assert view.table.verticalHeader().defaultSectionSize() >= TOUCH
    for widget in (
        view.search,
        view.attention,
        view.status_combo,
        view.type_combo,
        view.rep_combo,
        view.partner_combo,
        view.clear_button,
    ):
        assert widget.height() >= TOUCH, widget.objectName()
    header = view.table.horizontalHeader()
    assert header.sectionSize(0) >= 150  # the names keep their room...
    assert header.isSectionHidden([c.key for c in StandListModel.COLUMNS].index("last_count"))
    view.resize(1920, 1080)
    qtbot.waitUntil(lambda: not any(header.isSectionHidden(i) for i in range(header.count())))
    assert not view.grab().isNull()


def test_warning_colours_read_on_dark_palettes(qapp) -> None:
    light = QPalette(qapp.palette())
    try:
        dark = QPalette(light)
        dark.setColor(QPalette.ColorRole.Base, Qt.GlobalColor.black)
        qapp.setPalette(dark)
        assert tone("out").lightness() > 150
        assert tone("low").lightness() > 150
    finally:
        qapp.setPalette(light)
    assert tone("out").lightness() < 128


# --------------------------------------------------------------------------- refresh


def test_refreshes_on_change_and_keeps_selection(qtbot, ctx, ui_backend, five) -> None:
    view = _view(qtbot, ctx)
    view.table.selectRow(view.model.row_of(five["Zentrale"]))
    ui_backend.call(make_stand, name="Alte Post")
    ctx.changed("stands")
    assert view.loading
    qtbot.waitUntil(lambda: view.model.rowCount() == 6 and not view.loading, timeout=5000)
    assert _names(view)[0] == "Alte Post"
    assert view.current_stand_id() == five["Zentrale"]
    # Changes that do not concern the list leave it alone.
    calls = view.model.load_calls
    ctx.changed("settings")
    assert not view.loading
    assert view.model.load_calls == calls


def test_a_failed_load_is_reported(qtbot, ctx, five, monkeypatch) -> None:
    view = _view(qtbot, ctx)

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(stand_views, "stand_ids", broken)
    with qtbot.waitSignal(ctx.status) as signal:
        view.refresh()
    qtbot.waitUntil(lambda: not view.loading, timeout=5000)
    assert "disk on fire" in signal.args[0]
    assert "disk on fire" in view.count_label.text()


# --------------------------------------------------------------------------- the model


def test_model_passes_qtmodeltester(qtmodeltester, ui_backend, five) -> None:
    def load(ids, deliver):
        deliver(ui_backend.read(stand_views.rows_for_ids, ids))

    model = StandListModel(load, page_size=2)
    model.set_ids(_expected(ui_backend))
    qtmodeltester.check(model)
    assert [model.index(r, 0).data() for r in range(5)] == sorted(five)
    assert model.is_loaded(4)


def test_view_model_passes_qtmodeltester_while_loading(qtmodeltester, qtbot, ctx, five) -> None:
    view = _view(qtbot, ctx)
    view.model.invalidate()  # rows are stale: the tester's reads start background loads
    qtmodeltester.check(view.model)
    qtbot.waitUntil(lambda: not view.loading, timeout=5000)


def test_model_shows_placeholders_until_rows_arrive() -> None:
    asked: list[tuple[list[str], object]] = []
    model = StandListModel(lambda ids, deliver: asked.append((list(ids), deliver)), page_size=3)
    model.set_ids([f"s{i}" for i in range(7)])
    assert model.rowCount() == 7
    assert model.index(4, 0).data() == PLACEHOLDER
    assert model.index(4, 0).data(ID_ROLE) == "s4"
    assert model.loading
    assert [ids for ids, _ in asked] == [["s3", "s4", "s5"]]  # only row 4's page
    model.index(5, 0).data()  # same page, already asked: no second request
    assert len(asked) == 1
    assert model.load_calls == 1


@pytest.fixture(scope="module")
def big_program(tmp_path_factory) -> Path:
    """A 1,000-stand demo program (two weeks of history: about 2 s to make), made once."""
    path = tmp_path_factory.mktemp("big") / "stand.db"
    factory = open_db(f"sqlite:///{path}")
    generate_demo(factory, stands=1000, days=14, seed=11)
    factory.kw["bind"].dispose()
    return path


@pytest.mark.slow
def test_thousand_stands_load_lazily(qtbot, big_program: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    shutil.copyfile(big_program, path)
    backend = Backend.open(f"sqlite:///{path}")
    runner = TaskRunner()
    ctx = UiContext(backend, runner, MANAGER)
    try:
        view = _view(qtbot, ctx)
        model = view.model
        assert model.rowCount() == 1000
        assert model.ids() == list(backend.read(stand_views.stand_ids).ids)
        # Only the pages on (and just below) the screen were loaded.
        assert model.is_loaded(0)
        assert not model.is_loaded(999)
        assert model.load_calls <= 2
        # Scrolling to the end loads the last page, and it holds the right rows.
        view.table.scrollToBottom()
        qtbot.waitUntil(lambda: model.is_loaded(999), timeout=10_000)
        last = backend.read(stand_views.rows_for_ids, model.ids()[-1:])[0]
        assert model.index(999, 0).data() == last.name
        assert model.load_calls <= 4
        qtbot.waitUntil(lambda: not view.loading, timeout=10_000)
        # A header sort re-queries; loaded rows are reused for the new order.
        _click_header(qtbot, view, "partner")
        expected = list(backend.read(stand_views.stand_ids, order_by="partner").ids)
        qtbot.waitUntil(lambda: model.ids() == expected, timeout=10_000)
        qtbot.waitUntil(lambda: model.is_loaded(0) and not view.loading, timeout=10_000)
        # A search narrows it in SQL.
        qtbot.keyClicks(view.search, "berlin")
        expected = list(
            backend.read(
                stand_views.stand_ids, StandFilters(search="berlin"), order_by="partner"
            ).ids
        )
        qtbot.waitUntil(lambda: model.ids() == expected, timeout=10_000)
        assert 0 < model.rowCount() < 1000
        qtbot.waitUntil(lambda: not view.loading, timeout=10_000)
    finally:
        runner.wait()
        backend.close()
