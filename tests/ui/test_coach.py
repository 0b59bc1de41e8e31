"""The Coach screen and the background scan, on a real database with a small program that
the coach has things to say about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt

from app.backend import Backend
from app.coach import insights as kinds
from app.coach.agent import get_insight, list_insights, mark_insight_done
from app.models import InsightStatus, Role, Severity
from app.services import inventory, loyalty, onboarding, refills, sales
from app.services.base import transactional
from app.services.sales import SaleLine
from tests.conftest import REP
from tests.ui.conftest import wait_idle


@dataclass(frozen=True)
class Program:
    stand_id: str
    #: Sells 2 a day and is sold out now (a stock-out risk before the next visit).
    runner: str
    #: Never sold (a slow mover).
    sitter: str
    #: Sells 1 a day, in stock.
    steady: str


def _program(backend: Backend, catalog: list) -> Program:
    """One kiosk opened 40 days ago, counted then and never since (count overdue), selling
    every day since."""
    now = datetime.now(UTC).replace(microsecond=0)
    opened = now - timedelta(days=40)
    runner, sitter, steady = catalog[0].id, catalog[5].id, catalog[10].id
    made = backend.call(
        onboarding.onboard_partner,
        REP,
        onboarding.PartnerInput(name="Kiosk GmbH", contact_name="Eva", package_code="growth"),
        onboarding.StandInput(
            name="Kiosk am Markt",
            address="Marktplatz 1",
            city="Berlin",
            location_type="kiosk",
            capacity_units=240,
            assigned_rep=REP.user,
            products=[runner, sitter, steady],
        ),
        now=opened,
    )
    backend.call(loyalty.activate_partner, REP, made.partner_id, now=opened)
    assert made.stand is not None
    stand_id = made.stand.stand_id
    backend.call(
        inventory.record_count,
        REP,
        stand_id,
        {runner: 78, sitter: 10, steady: 40},
        counted_at=opened + timedelta(hours=1),
    )
    for day in range(1, 40):
        backend.call(
            sales.record_sale,
            REP,
            stand_id,
            [SaleLine(runner, 2), SaleLine(steady, 1)],
            "cash",
            occurred_at=opened + timedelta(days=day, hours=2),
        )
    return Program(stand_id, runner, sitter, steady)


@pytest.fixture
def program(ui_backend: Backend, catalog: list) -> Program:
    return _program(ui_backend, catalog)


def _coach(qtbot, ctx, *, run: bool = True):
    from ui.views.coach import CoachView

    view = CoachView(ctx)
    qtbot.addWidget(view)
    view.resize(1200, 760)
    view.show()
    view.refresh()
    wait_idle(qtbot, ctx)
    if run:
        _run(qtbot, view)
    return view


def _run(qtbot, view) -> None:
    with qtbot.waitSignal(view.runs.finished, timeout=20_000):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, view.ctx)


def _shown(view) -> list:
    """The insights the table shows, top to bottom."""
    out = []
    for r in range(view.proxy.rowCount()):
        source = view.proxy.mapToSource(view.proxy.index(r, 0))
        out.append(view.model.rows[source.row()])
    return out


def _select(view, kind: str):
    for r in range(view.proxy.rowCount()):
        index = view.proxy.index(r, 0)
        row = view.model.rows[view.proxy.mapToSource(index).row()]
        if row.kind == kind:
            view.table.setCurrentIndex(index)
            assert view.insight is row
            return row
    raise AssertionError(f"no {kind} insight shown")


def test_running_the_coach_fills_the_table(qtbot, ctx, program) -> None:
    view = _coach(qtbot, ctx, run=False)
    assert not view.table.isVisible()
    assert view.list_empty.text() == "No open insights. Run the coach to scan your stands."
    assert "has not run" in view.run_label.text()

    with qtbot.waitSignal(ctx.data_changed, timeout=20_000) as changed:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        # Scanning: the button waits, the screen says so.
        assert not view.run_button.isEnabled()
        assert view.run_button.text() == "Scanning…"
        assert view.loading
    assert changed.args[0].kinds == frozenset({"insights"})
    wait_idle(qtbot, ctx)
    assert not view.loading
    assert view.run_button.isEnabled()

    rows = _shown(view)
    found = {r.kind for r in rows}
    assert {kinds.STOCKOUT_RISK, kinds.SLOW_MOVER, kinds.COUNT_OVERDUE} <= found
    assert view.table.isVisible()
    assert not view.list_empty.isVisible()
    assert view.count_label.text() == f"{len(rows)} open insights"
    # Critical first; the stand's name and the kind in words.
    assert rows[0].severity == Severity.CRITICAL
    assert view.proxy.index(0, 0).data() == "Critical"
    assert view.proxy.index(0, 1).data() == "Kiosk am Markt"
    assert view.proxy.index(0, 2).data() == "Stock-out risk"
    last = view.runs.last
    assert last is not None
    assert last.created == len(rows)
    assert f"{len(rows)} new, 0 updated, 0 closed" in view.run_label.text()
    # The first row is selected and shown.
    assert view.insight is rows[0]
    assert view.pane.message.text() == rows[0].message

    # A second run changes nothing and says so.
    _run(qtbot, view)
    assert "0 new, 0 updated, 0 closed" in view.run_label.text()
    assert len(_shown(view)) == len(rows)


def test_filters_and_search_narrow_the_list(qtbot, ctx, program) -> None:
    view = _coach(qtbot, ctx)
    total = len(_shown(view))
    view.kind_filter.setCurrentIndex(view.kind_filter.findData(kinds.SLOW_MOVER))
    assert [r.kind for r in _shown(view)] == [kinds.SLOW_MOVER]
    assert view.count_label.text() == f"1 of {total} open insights"
    assert view.kind_filter.currentText() == "Slow mover (1)"

    view.kind_filter.setCurrentIndex(0)
    view.severity_filter.setCurrentIndex(view.severity_filter.findData(Severity.CRITICAL))
    shown = _shown(view)
    assert shown
    assert all(r.severity == Severity.CRITICAL for r in shown)
    assert len(shown) < total

    view.severity_filter.setCurrentIndex(0)
    view.search.setText("count the")
    assert [r.kind for r in _shown(view)] == [kinds.COUNT_OVERDUE]
    view.search.setText("no such stand")
    assert _shown(view) == []
    assert view.list_empty.isVisible()
    assert view.list_empty.text() == "No insights match these filters."
    assert view.insight is None
    assert view.detail_empty.isVisible()
    view.search.clear()
    assert len(_shown(view)) == total


def test_the_panel_explains_the_selected_insight(qtbot, ctx, program) -> None:
    view = _coach(qtbot, ctx)
    risk = _select(view, kinds.STOCKOUT_RISK)
    units = sum(risk.action["quantities"].values())
    assert view.pane.action.text().startswith(f"Refill {units} units of ")
    evidence = view.pane.evidence.text().splitlines()
    assert "Next visit in: 1 day" in evidence
    assert "Service level aimed at: 95 %" in evidence
    assert any(line.startswith(f"{risk.evidence['at_risk'][0]['sku']}: risk ") for line in evidence)
    assert view.pane.badge.text() == "Critical"
    assert view.buttons["create_refill"].isVisibleTo(view)
    assert view.actions_by_name["create_refill"].isEnabled()

    slow = _select(view, kinds.SLOW_MOVER)
    assert slow.product_id == program.sitter
    assert "Units sold: 0" in view.pane.evidence.text().splitlines()
    assert view.pane.action.text() == "Swap this product for one that sells better here."
    assert not view.buttons["create_refill"].isVisibleTo(view)
    assert not view.actions_by_name["create_refill"].isEnabled()

    _select(view, kinds.COUNT_OVERDUE)
    assert view.pane.action.text() == "Count the stand."
    assert "Count due every: 28 days" in view.pane.evidence.text()


def test_dismiss_needs_a_reason_and_stays_dismissed(qtbot, ctx, program, ui_backend) -> None:
    view = _coach(qtbot, ctx)
    total = len(_shown(view))
    slow = _select(view, kinds.SLOW_MOVER)
    dialog = view.dismiss()
    assert dialog is not None
    assert dialog.isVisible()
    dialog.accept()  # no reason: refused, the dialog stays
    assert dialog.errors["reason"].text() == "Give a reason."
    assert dialog.isVisible()
    assert ui_backend.read(get_insight, slow.id).status == InsightStatus.NEW

    dialog.reason.setPlainText("Seasonal: sells in summer")
    with qtbot.waitSignal(ctx.data_changed, timeout=10_000):
        dialog.accept()
    wait_idle(qtbot, ctx)
    stored = ui_backend.read(get_insight, slow.id)
    assert stored.status == InsightStatus.DISMISSED
    assert stored.status_reason == "Seasonal: sells in summer"
    assert slow.id not in {r.id for r in _shown(view)}
    assert len(_shown(view)) == total - 1
    assert view.insight is not None  # the next one is selected, so triage goes on
    assert "Dismissed: Slow mover" in view.message.text()

    # The coach finds it again, and leaves it closed.
    _run(qtbot, view)
    assert view.runs.last.created == 0
    assert slow.id not in {r.id for r in _shown(view)}
    assert ui_backend.read(get_insight, slow.id).status == InsightStatus.DISMISSED


def test_acknowledge_then_done(qtbot, ctx, program, ui_backend) -> None:
    view = _coach(qtbot, ctx)
    count = _select(view, kinds.COUNT_OVERDUE)
    assert view.actions_by_name["acknowledge"].isEnabled()
    with qtbot.waitActive(view):
        view.activateWindow()
    with qtbot.waitSignal(ctx.data_changed, timeout=10_000):  # by its shortcut
        qtbot.keyClick(
            view.table,
            Qt.Key.Key_A,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
    wait_idle(qtbot, ctx)
    # Still open, still selected, now seen.
    assert view.insight is not None
    assert view.insight.id == count.id
    assert view.insight.status == InsightStatus.ACKNOWLEDGED
    assert not view.actions_by_name["acknowledge"].isEnabled()
    assert view.actions_by_name["done"].isEnabled()
    assert "Acknowledged" in view.pane.footer.text()

    with qtbot.waitSignal(ctx.data_changed, timeout=10_000):
        view.actions_by_name["done"].trigger()
    wait_idle(qtbot, ctx)
    assert ui_backend.read(get_insight, count.id).status == InsightStatus.DONE
    assert count.id not in {r.id for r in _shown(view)}


def test_create_refill_opens_the_request_prefilled(qtbot, ctx, program, ui_backend) -> None:
    view = _coach(qtbot, ctx)
    risk = _select(view, kinds.STOCKOUT_RISK)
    with qtbot.waitSignal(ctx.navigate, timeout=10_000) as nav:
        view.actions_by_name["create_refill"].trigger()
    name, payload = nav.args
    assert name == "refill"
    assert payload["stand_id"] == program.stand_id
    assert payload["insight_id"] == risk.id
    assert payload["quantities"] == risk.action["quantities"]
    assert program.runner in payload["quantities"]
    assert set(payload["reasons"]) == set(payload["quantities"])
    # Each quantity says why: the coach's line for it.
    reason = payload["reasons"][program.runner]
    assert f"refill {payload['quantities'][program.runner]}" in reason
    wait_idle(qtbot, ctx)

    # The refill is requested (on the refill screen): the insight is done.
    ui_backend.call(refills.request_refill, ctx.actor, program.stand_id, payload["quantities"])
    with qtbot.waitSignal(
        ctx.data_changed, timeout=10_000, check_params_cb=lambda c: c.touches("insights")
    ):
        ctx.changed("refills", "inventory", "stands", ids=(program.stand_id,))
    assert not view.refill_pending
    wait_idle(qtbot, ctx)
    stored = ui_backend.read(get_insight, risk.id)
    assert stored.status == InsightStatus.DONE
    assert stored.status_reason == "Refill requested"
    assert risk.id not in {r.id for r in _shown(view)}


def test_open_stand_navigates(qtbot, ctx, program) -> None:
    view = _coach(qtbot, ctx)
    _select(view, kinds.COUNT_OVERDUE)
    with qtbot.waitSignal(ctx.navigate) as nav:
        view.actions_by_name["open_stand"].trigger()
    assert nav.args == ["stand", program.stand_id]


def test_a_partner_reads_but_does_not_act(qtbot, ctx_as, ctx, program) -> None:
    _coach(qtbot, ctx)  # a manager's screen runs the coach
    partner = ctx_as(Role.PARTNER, "partner.shop")
    view = _coach(qtbot, partner, run=False)
    assert _shown(view)
    _select(view, kinds.STOCKOUT_RISK)
    assert not view.run_button.isVisibleTo(view)
    for name in ("create_refill", "acknowledge", "done", "dismiss", "run"):
        assert not view.actions_by_name[name].isEnabled(), name
    assert view.actions_by_name["open_stand"].isEnabled()
    assert view.dismiss() is None
    assert not view.buttons["dismiss"].isVisibleTo(view)


def test_the_screen_follows_insight_changes_made_elsewhere(qtbot, ctx, program, ui_backend) -> None:
    from ui.context import Changed

    view = _coach(qtbot, ctx)
    before = len(_shown(view))
    (slow,) = ui_backend.read(list_insights, kind=kinds.SLOW_MOVER)
    ui_backend.call(mark_insight_done, REP, slow.id, "Swapped on the last visit")
    ctx.data_changed.emit(Changed(frozenset({"insights"})))
    wait_idle(qtbot, ctx)
    assert len(_shown(view)) == before - 1


def test_insight_model(qtmodeltester, qtbot, ctx, program) -> None:
    view = _coach(qtbot, ctx)
    qtmodeltester.check(view.model)
    qtmodeltester.check(view.proxy)


def test_columns_give_way_on_a_narrow_screen(qtbot, ctx, program) -> None:
    view = _coach(qtbot, ctx)
    assert "message" in view.shown_columns
    view.resize(760, 600)
    qtbot.waitUntil(lambda: "message" not in view.shown_columns)
    assert view.shown_columns[:2] == ("severity", "stand")


def test_the_scanner_runs_in_the_background_and_stops(qtbot, ctx, program, ui_backend) -> None:
    from ui.coach_scan import CoachScanner, coach_runs
    from ui.context import Changed

    messages: list[str] = []
    ctx.status.connect(messages.append)
    scanner = CoachScanner(ctx, interval_ms=600_000, first_delay_ms=20, debounce_ms=30)
    try:
        with qtbot.waitSignal(scanner.scanned, timeout=20_000) as first:
            scanner.start()
        assert first.args[0].created > 0
        assert ui_backend.read(list_insights)
        assert messages
        assert messages[-1].startswith("Coach: ")
        assert coach_runs(ctx).last is first.args[0]
        wait_idle(qtbot, ctx)

        # A sale: one scan a moment later (a burst of changes is one scan).
        with qtbot.waitSignal(scanner.scanned, timeout=20_000):
            for _ in range(3):
                ctx.data_changed.emit(Changed(frozenset({"sales"}), frozenset({program.stand_id})))
        # Its own announcement does not start another.
        ctx.data_changed.emit(Changed(frozenset({"insights"})))
        assert not scanner.pending
        wait_idle(qtbot, ctx)
    finally:
        scanner.stop()
    assert not scanner.active
    assert not scanner._timer.isActive()
    assert not scanner._debounce.isActive()
    # Stopped: a change no longer schedules a scan.
    ctx.data_changed.emit(Changed(frozenset({"sales"})))
    assert not scanner.pending


def test_screen_and_scanner_share_one_run(qtbot, ctx, program) -> None:
    from ui.coach_scan import CoachScanner

    view = _coach(qtbot, ctx, run=False)
    scanner = CoachScanner(ctx, interval_ms=600_000, first_delay_ms=600_000)
    scanner.start()
    try:
        finished: list[object] = []
        view.runs.finished.connect(finished.append)
        with qtbot.waitSignal(view.runs.finished, timeout=20_000):
            view.run_coach()
            scanner.scan()  # joins the screen's run instead of queueing a second
            assert view.run_button.text() == "Scanning…"
        wait_idle(qtbot, ctx)
        assert len(finished) == 1
        assert _shown(view)
    finally:
        scanner.stop()


def test_the_screen_knows_every_kind_of_the_coach() -> None:
    from app.coach import agent
    from ui.views import coach

    assert tuple(coach.KIND_LABELS) == kinds.KINDS
    assert set(coach.KIND_TIPS) == set(kinds.KINDS)
    for name in ("STOCKOUT_RISK", "SLOW_MOVER", "COUNT_OVERDUE", "TIER_WITHIN_REACH"):
        assert getattr(coach, name) == getattr(kinds, name)
    assert coach.OPEN_STATUSES == agent.OPEN_STATUSES


def test_a_rep_sees_their_own_stands_first(qtbot, ctx, ctx_as, program, ui_backend) -> None:
    from sqlalchemy import update

    from app.models import StandLocation

    view = _coach(qtbot, ctx)  # a manager: every stand
    assert not view.whose.isVisible()
    everyone = len(view.rows)
    assert everyone > 0

    def reassign(session) -> None:
        session.execute(update(StandLocation).values(assigned_rep="rep.ben"))

    ui_backend.call(transactional(reassign))
    rep = ctx_as(Role.REP, "rep.anna")
    mine = _coach(qtbot, rep, run=False)
    assert mine.whose.isVisible()
    assert mine.whose.currentText() == "My stands"
    assert mine.rows == []  # every stand now belongs to rep.ben
    mine.whose.setCurrentIndex(mine.whose.findText("All stands"))
    wait_idle(qtbot, rep)
    assert len(mine.rows) == everyone
