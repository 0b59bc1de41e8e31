"""The Expansion sites screen: adding a site (field errors beside the field), CSV import
(all or nothing), scoring in the background, and accepting or rejecting (managers only).

Services are called directly only to set up data; everything under test goes through the
screen."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from app.coach import expansion
from app.models import Role
from app.services import sales
from app.services.sales import SaleLine
from tests.conftest import REP, StandFixture
from tests.ui.conftest import wait_idle
from ui.views.expansion import COLUMN_INDEX, ExpansionView, ImportErrorsDialog, range_text

HEADER = "name,latitude,longitude,location_type,city,footfall_per_day\n"


def make_view(qtbot: Any, ctx: Any) -> ExpansionView:
    view = ExpansionView(ctx)
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    view.refresh()
    wait_idle(qtbot, ctx)
    return view


def cell(view: ExpansionView, row: int, key: str) -> str:
    return str(view.proxy.index(row, COLUMN_INDEX[key]).data())


def add(ui_backend: Any, name: str, lat: float = 52.53, lon: float = 13.41) -> str:
    row = ui_backend.call(
        expansion.add_candidate,
        REP,
        expansion.CandidateInput(
            name=name, latitude=lat, longitude=lon, location_type="kiosk", city="Berlin"
        ),
    )
    return str(row.id)


def sell_history(ui_backend: Any, stands: tuple[StandFixture, ...], days: int = 20) -> None:
    """Each stand sold every day for ``days`` days up to yesterday (different amounts)."""
    start = datetime.now(UTC) - timedelta(days=days)

    def run(session: Any) -> None:
        for n, s in enumerate(stands, start=1):
            for d in range(days):
                sales.record_sale(
                    session,
                    REP,
                    s.stand_id,
                    [SaleLine(s.product_ids[0], n)],
                    "cash",
                    occurred_at=start + timedelta(days=d),
                )

    ui_backend.call(run)


def test_add_site_shows_field_error_then_saves(qtbot: Any, ctx: Any, ui_backend: Any) -> None:
    view = make_view(qtbot, ctx)
    assert view.list_empty.isVisible()
    assert "No candidate sites yet" in view.list_empty.text()
    dialog = view.add_site()
    assert dialog is not None
    dialog.edits["name"].setText("Kiosk Ostbahnhof")
    dialog.edits["city"].setText("Berlin")
    dialog.edits["latitude"].setText("95")
    dialog.edits["longitude"].setText("13,43")
    dialog.edits["footfall_per_day"].setText("1500")
    dialog.location_type.setCurrentIndex(dialog.location_type.findData("kiosk"))
    dialog.accept()
    wait_idle(qtbot, ctx)
    assert dialog.isVisible()
    error = dialog.errors["latitude"]
    assert error.isVisible()
    assert "between -90 and 90" in error.text()
    assert not dialog.errors["name"].isVisible()
    assert dialog.edits["name"].text() == "Kiosk Ostbahnhof"  # nothing typed is lost
    assert ui_backend.read(expansion.list_candidates) == []

    dialog.edits["latitude"].setText("52.51")
    with qtbot.waitSignal(dialog.saved):
        dialog.accept()
    wait_idle(qtbot, ctx)
    rows = ui_backend.read(expansion.list_candidates)
    assert [(r.name, r.latitude, r.longitude) for r in rows] == [("Kiosk Ostbahnhof", 52.51, 13.43)]
    assert rows[0].attributes == {"footfall_per_day": 1500.0}
    assert [r.name for r in view.rows] == ["Kiosk Ostbahnhof"]
    selected = view.selected()
    assert selected is not None
    assert selected.name == "Kiosk Ostbahnhof"
    assert "Not scored yet" in view.pane.expected.text()


def test_add_site_attribute_error_beside_its_field(qtbot: Any, ctx: Any) -> None:
    view = make_view(qtbot, ctx)
    dialog = view.add_site()
    assert dialog is not None
    dialog.edits["name"].setText("Kiosk")
    dialog.edits["latitude"].setText("52.5")
    dialog.edits["longitude"].setText("13.4")
    dialog.edits["area_m2"].setText("-5")
    dialog.location_type.setCurrentIndex(dialog.location_type.findData("kiosk"))
    dialog.accept()
    wait_idle(qtbot, ctx)
    assert "must not be negative" in dialog.errors["attributes.area_m2"].text()
    dialog.reject()


def test_import_with_a_bad_row_lists_it_and_imports_nothing(
    qtbot: Any, ctx: Any, ui_backend: Any, tmp_path: Path
) -> None:
    view = make_view(qtbot, ctx)
    path = tmp_path / "sites.csv"
    path.write_text(
        HEADER + "Kiosk Nord,52.55,13.40,kiosk,Berlin,900\nKiosk Süd,north,13.41,kiosk,Berlin,\n",
        encoding="utf-8",
    )
    view.import_csv(str(path))
    wait_idle(qtbot, ctx)
    assert isinstance(view.dialog, ImportErrorsDialog)
    text = view.dialog.list.toPlainText()
    assert "Line 3 (latitude): Latitude must be a number" in text
    assert "Line 2" not in text
    assert ui_backend.read(expansion.list_candidates) == []
    assert "Nothing imported" in view.message.text()
    view.dialog.reject()


def test_import_a_good_file(qtbot: Any, ctx: Any, ui_backend: Any, tmp_path: Path) -> None:
    view = make_view(qtbot, ctx)
    path = tmp_path / "sites.csv"
    path.write_text(
        HEADER + "Kiosk Nord,52.55,13.40,kiosk,Berlin,900\nKiosk Süd,52.45,13.41,kiosk,Berlin,\n",
        encoding="utf-8",
    )
    view.import_csv(str(path))
    wait_idle(qtbot, ctx)
    assert "Imported 2 sites from sites.csv" in view.message.text()
    assert sorted(r.name for r in view.rows) == ["Kiosk Nord", "Kiosk Süd"]
    assert {cell(view, i, "status") for i in range(2)} == {"Open · CSV import"}


def test_score_fills_the_expected_range(
    qtbot: Any, ctx: Any, ui_backend: Any, two_stands: tuple[StandFixture, StandFixture]
) -> None:
    sell_history(ui_backend, two_stands)
    add(ui_backend, "Kiosk Alexanderplatz")
    view = make_view(qtbot, ctx)
    assert cell(view, 0, "expected") == "–"
    qtbot.mouseClick(view.buttons["score"], Qt.MouseButton.LeftButton)
    assert view.scoring
    assert view.loading
    assert not view.buttons["score"].isEnabled()
    assert view.progress.isVisible()
    qtbot.waitUntil(lambda: not view.scoring and not view.loading, timeout=10_000)
    wait_idle(qtbot, ctx)
    assert view.buttons["score"].isEnabled()
    assert not view.progress.isVisible()
    expected = cell(view, 0, "expected")
    assert re.fullmatch(r"€[\d.]+(–[\d.]+)?/day", expected), expected
    row = view.rows[0]
    assert expected == range_text(row.expected_low, row.expected_high)
    assert 0 <= int(cell(view, 0, "score")) <= 100
    assert int(cell(view, 0, "analogues")) >= 1
    analogues = view.pane.analogues.text()
    assert "Kiosk am Markt" in analogues or "Café Central" in analogues
    assert "within 1 km" in view.pane.cannibalisation.text()
    assert "Scored 1 site" in view.message.text()


def test_a_new_screen_shows_the_stored_analogues(
    qtbot: Any, ctx: Any, ui_backend: Any, two_stands: tuple[StandFixture, StandFixture]
) -> None:
    from app.coach.expansion import score_candidates

    sell_history(ui_backend, two_stands)
    add(ui_backend, "Kiosk Alexanderplatz")
    ui_backend.call(score_candidates)  # scored elsewhere (the CLI, another session)
    view = make_view(qtbot, ctx)
    assert int(cell(view, 0, "analogues")) >= 1
    analogues = view.pane.analogues.text()
    assert "Press Score now" not in analogues
    assert "Kiosk am Markt" in analogues or "Café Central" in analogues


def test_score_without_history_says_why(qtbot: Any, ctx: Any, ui_backend: Any) -> None:
    add(ui_backend, "Kiosk Alexanderplatz")
    view = make_view(qtbot, ctx)
    view.score()
    qtbot.waitUntil(lambda: not view.scoring, timeout=10_000)
    wait_idle(qtbot, ctx)
    assert "two weeks of sales" in view.message.text()


def test_manager_accepts_and_rejects(qtbot: Any, ctx: Any, ui_backend: Any) -> None:
    first = add(ui_backend, "Kiosk Eins", 52.50)
    second = add(ui_backend, "Kiosk Zwei", 52.60)
    view = make_view(qtbot, ctx)
    view.open(first)
    wait_idle(qtbot, ctx)
    selected = view.selected()
    assert selected is not None
    assert selected.id == first
    assert view.buttons["accept"].isEnabled()
    assert view.buttons["reject"].isEnabled()
    qtbot.mouseClick(view.buttons["accept"], Qt.MouseButton.LeftButton)
    wait_idle(qtbot, ctx)
    assert [r.id for r in view.rows] == [second]
    assert [r.id for r in ui_backend.read(expansion.list_candidates, status="accepted")] == [first]

    dialog = view.reject_site()
    assert dialog is not None
    dialog.accept()  # no reason yet
    assert "Give a reason" in dialog.errors["reason"].text()
    dialog.reason.setPlainText("Too close to the competition")
    with qtbot.waitSignal(dialog.saved):
        dialog.accept()
    wait_idle(qtbot, ctx)
    assert view.rows == []
    rejected = ui_backend.read(expansion.list_candidates, status="rejected")
    assert [(r.id, r.status_reason) for r in rejected] == [(second, "Too close to the competition")]
    view.status_filter.setCurrentIndex(view.status_filter.findData("all"))
    wait_idle(qtbot, ctx)
    assert len(view.rows) == 2
    view.open(first)
    wait_idle(qtbot, ctx)
    assert not view.buttons["accept"].isEnabled()
    assert "already accepted" in view.buttons["accept"].toolTip()


def test_rep_can_add_but_not_accept(qtbot: Any, ctx_as: Any, ui_backend: Any) -> None:
    cid = add(ui_backend, "Kiosk Drei")
    rep = ctx_as(Role.REP, "rep.anna")
    view = make_view(qtbot, rep)
    selected = view.selected()
    assert selected is not None
    assert selected.id == cid
    for name in ("accept", "reject"):
        assert not view.buttons[name].isEnabled()
        assert "Only managers" in view.buttons[name].toolTip()
        assert not view.actions_by_name[name].isEnabled()
    assert view.buttons["add"].isEnabled()
    assert view.buttons["score"].isEnabled()
    view.accept_site()
    assert view.reject_site() is None
    wait_idle(qtbot, rep)
    assert [r.id for r in ui_backend.read(expansion.list_candidates)] == [cid]
    dialog = view.add_site()
    assert dialog is not None
    dialog.reject()


@pytest.mark.parametrize("role", [Role.PARTNER])
def test_partner_only_reads(qtbot: Any, ctx_as: Any, ui_backend: Any, role: Role) -> None:
    add(ui_backend, "Kiosk Vier")
    view = make_view(qtbot, ctx_as(role, "partner.paul"))
    assert len(view.rows) == 1
    for name in ("add", "import", "score", "accept", "reject"):
        assert not view.buttons[name].isEnabled()
    assert view.add_site() is None


def test_coach_opens_expansion_sites(qtbot: Any, ctx: Any, ui_backend: Any) -> None:
    from ui.main_window import MainWindow

    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.go("coach")
    wait_idle(qtbot, ctx)
    coach = window.view("coach")
    qtbot.mouseClick(coach.expansion_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, ctx)
    assert window.current == "expansion"
    assert window.page_title.text() == "Expansion sites"
    assert window.back_button.isVisibleTo(window)
