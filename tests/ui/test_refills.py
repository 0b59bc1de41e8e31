"""The refills screen and the request screen, driven through their widgets as a user would:
every transition through its dialog, what each role is offered, bad input kept and refused
next to its field with nothing saved, discrepancies shown, the request pre-filled from the
suggestion, and the keyboard route to every action."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QLineEdit,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from app.backend import Backend
from app.clock import utcnow
from app.models import DiscrepancyStatus, RefillAction, RefillStatus, Role
from app.rules import local_date
from app.services import base, inventory, queries, refill_views, refills
from app.services.base import Actor
from tests.conftest import MANAGER, PARTNER, REP, StandFixture
from tests.helpers import Watch
from tests.ui.conftest import wait_idle
from ui.views.refill_dialogs import RefillRequestView
from ui.views.refills import (
    ID_ROLE,
    DiscrepancyModel,
    EventsModel,
    LinesModel,
    RefillListModel,
    RefillsView,
)
from ui.widgets import TOUCH, Stepper

A = RefillAction
S = RefillStatus
ALL_ACTIONS = set(A) - {A.REQUEST}
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


# ------------------------------------------------------------------ helpers


def _refill(
    backend: Backend, stand: StandFixture, to: RefillStatus = S.REQUESTED, *, by: Actor = REP
) -> str:
    """A refill of 12 + 6 units taken through the lifecycle up to ``to``."""
    p = stand.product_ids
    rid = backend.call(refills.request_refill, by, stand.stand_id, {p[0]: 12, p[1]: 6}).refill_id
    if to in (S.REJECTED, S.CANCELLED):
        fn = refills.reject_refill if to == S.REJECTED else refills.cancel_refill
        backend.call(fn, MANAGER, rid, "Not needed")
        return rid
    steps = [
        (S.APPROVED, lambda: backend.call(refills.approve_refill, MANAGER, rid)),
        (
            S.SCHEDULED,
            lambda: backend.call(
                refills.schedule_refill, MANAGER, rid, date.today() + timedelta(days=2), "Depot"
            ),
        ),
        (S.DELIVERED, lambda: backend.call(refills.deliver_refill, REP, rid)),
        (S.CONFIRMED, lambda: backend.call(refills.confirm_refill, PARTNER, rid)),
    ]
    for status, step in steps:
        if to == S.REQUESTED:
            break
        step()
        if status == to:
            break
    return rid


def _on_hand(backend: Backend, stand_id: str, product_id: str) -> int:
    detail = backend.read(queries.stand_detail, stand_id)
    return next(i.on_hand for i in detail.inventory if i.product_id == product_id)


def _view(qtbot, ctx, **kw) -> RefillsView:
    view = RefillsView(ctx, **kw)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    view.refresh()
    wait_idle(qtbot, ctx)
    return view


def _show(qtbot, ctx, view: RefillsView, refill_id: str) -> None:
    view.select_refill(refill_id)
    wait_idle(qtbot, ctx)
    assert view.detail is not None
    assert view.detail.id == refill_id


def _visible_actions(view: RefillsView) -> set[RefillAction]:
    return {a for a, b in view.buttons.items() if b.isVisible()}


def _open(qtbot, view: RefillsView, action: RefillAction):
    qtbot.mouseClick(view.buttons[action], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.dialog is not None and view.dialog.isVisible(), timeout=5000)
    return view.dialog


def _type(qtbot, widget: QWidget | Stepper, text: str) -> None:
    edit = widget.edit if isinstance(widget, Stepper) else widget
    edit.clear()
    qtbot.keyClicks(edit, text)


def _ok(qtbot, ctx, dialog) -> None:
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, ctx)


def _item(backend: Backend, refill_id: str, product_id: str) -> refill_views.RefillLineView:
    detail = backend.read(refill_views.refill_detail, refill_id)
    return next(line for line in detail.lines if line.product_id == product_id)


def _status(backend: Backend, refill_id: str) -> RefillStatus:
    return backend.read(refill_views.refill_detail, refill_id).status


# ------------------------------------------------------------------ the list


def test_lists_open_refills_across_stands_and_filters_by_state(
    qtbot, ctx, ui_backend, two_stands
) -> None:
    kiosk, cafe = two_stands
    requested = _refill(ui_backend, kiosk)
    scheduled = _refill(ui_backend, cafe, S.SCHEDULED)
    confirmed = _refill(ui_backend, kiosk, S.CONFIRMED)
    view = _view(qtbot, ctx)
    assert view.state_filter.currentData() == "open"
    assert {r.id for r in view.model.rows} == {requested, scheduled}
    headers = [view.model.headerData(c, Qt.Orientation.Horizontal) for c in range(4)]
    assert headers[:3] == ["Stand", "Status", "Requested"]
    assert view.count_label.text() == "2 refills"

    view.state_filter.setCurrentIndex(view.state_filter.findData("confirmed"))
    wait_idle(qtbot, ctx)
    assert [r.id for r in view.model.rows] == [confirmed]
    assert view.detail is not None
    assert view.detail.id == confirmed  # the first row is shown

    view.state_filter.setCurrentIndex(0)  # all
    wait_idle(qtbot, ctx)
    qtbot.keyClicks(view.search, "central")
    qtbot.waitUntil(lambda: [r.id for r in view.model.rows] == [scheduled], timeout=5000)
    wait_idle(qtbot, ctx)

    view.state_filter.setCurrentIndex(view.state_filter.findData("rejected"))
    wait_idle(qtbot, ctx)
    assert view.list_empty.isVisible()
    assert view.list_empty.text() == "No refills match this filter."
    assert view.detail_empty.isVisible()


def test_a_stands_own_list_has_no_stand_column(qtbot, ctx, ui_backend, two_stands) -> None:
    kiosk, cafe = two_stands
    mine = _refill(ui_backend, kiosk, S.CONFIRMED)
    _refill(ui_backend, cafe)
    view = _view(qtbot, ctx, stand_id=kiosk.stand_id)
    assert view.state_filter.currentData() is None  # all states
    assert [r.id for r in view.model.rows] == [mine]
    keys = [c.key for c in view.model.columns]
    assert "stand" not in keys
    with qtbot.waitSignal(ctx.navigate) as blocker:
        qtbot.mouseClick(view.new_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["refill", kiosk.stand_id]


def test_empty_program_says_so(qtbot, ctx) -> None:
    view = _view(qtbot, ctx)
    view.state_filter.setCurrentIndex(0)
    wait_idle(qtbot, ctx)
    assert view.list_empty.isVisible()
    assert "No refills yet" in view.list_empty.text()
    assert view.detail_empty.isVisible()
    assert not view.pane_scroll.isVisible()


def test_every_item_model_passes_qtmodeltester(
    qtmodeltester, qtbot, ctx, ui_backend, two_stands
) -> None:
    kiosk = two_stands[0]
    rid = _refill(ui_backend, kiosk, S.DELIVERED)
    ui_backend.call(refills.confirm_refill, PARTNER, rid, {kiosk.product_ids[0]: 10})
    _refill(ui_backend, two_stands[1])
    view = _view(qtbot, ctx)
    view.state_filter.setCurrentIndex(0)
    wait_idle(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    for model in (view.model, view.pane.lines_model, view.pane.discrepancy_model):
        assert model.rowCount() > 0
        qtmodeltester.check(model)
    qtmodeltester.check(view.pane.events_model)
    qtmodeltester.check(view.proxy)
    for empty in (RefillListModel(), RefillListModel(with_stand=False), LinesModel()):
        qtmodeltester.check(empty)
    qtmodeltester.check(DiscrepancyModel())
    qtmodeltester.check(EventsModel())


# ------------------------------------------------------------------ roles


@pytest.mark.parametrize(
    ("role", "user", "status", "expected"),
    [
        (Role.MANAGER, "mgr.max", S.REQUESTED, {A.APPROVE, A.REJECT, A.CANCEL}),
        (Role.MANAGER, "mgr.max", S.APPROVED, {A.SCHEDULE, A.REJECT, A.CANCEL}),
        (Role.REP, "rep.anna", S.REQUESTED, {A.CANCEL}),  # no Approve for a rep
        (Role.REP, "rep.ben", S.REQUESTED, set()),  # not their request: no Cancel either
        (Role.REP, "rep.anna", S.SCHEDULED, {A.DELIVER, A.CANCEL}),
        (Role.PARTNER, "partner.shop", S.DELIVERED, {A.CONFIRM}),  # Confirm only
        (Role.PARTNER, "partner.shop", S.REQUESTED, set()),
        (Role.ADMIN, "admin", S.CONFIRMED, set()),
    ],
)
def test_buttons_follow_role_and_state(
    qtbot, ctx_as, ui_backend, two_stands, role, user, status, expected
) -> None:
    rid = _refill(ui_backend, two_stands[0], status)
    ctx = ctx_as(role, user)
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    assert _visible_actions(view) == expected
    for action in ALL_ACTIONS - expected:
        assert not view.lifecycle[action].isEnabled()  # and their shortcuts do nothing
    assert view.new_button.isVisible() == (role != Role.PARTNER)


def test_buttons_are_touch_sized_with_shortcuts_in_tooltips(
    qtbot, ctx, ui_backend, two_stands
) -> None:
    rid = _refill(ui_backend, two_stands[0])
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    for action in (A.APPROVE, A.REJECT, A.CANCEL):
        button = view.buttons[action]
        assert button.height() >= TOUCH
        assert button.width() >= TOUCH
        assert view.lifecycle[action].shortcut().toString() in button.toolTip()
    assert "Ctrl+Shift+A" in view.buttons[A.APPROVE].toolTip()
    assert view.state_filter.height() >= TOUCH
    assert view.search.height() >= TOUCH


# ------------------------------------------------------------------ each transition


def test_manager_approves_with_changed_quantities(qtbot, ctx, ui_backend, two_stands) -> None:
    kiosk = two_stands[0]
    p = kiosk.product_ids
    rid = _refill(ui_backend, kiosk)
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, A.APPROVE)
    assert dialog.steppers[p[0]].value() == 12  # starts at what was asked
    _type(qtbot, dialog.steppers[p[0]], "8")
    with qtbot.waitSignal(ctx.data_changed) as changed:
        _ok(qtbot, ctx, dialog)
    wait_idle(qtbot, ctx)
    assert not dialog.isVisible()
    assert changed.args[0].touches("refills", "inventory", "stands")
    assert kiosk.stand_id in changed.args[0].ids
    assert _status(ui_backend, rid) == S.APPROVED
    assert _item(ui_backend, rid, p[0]).approved == 8
    assert _item(ui_backend, rid, p[1]).approved == 6
    assert view.detail is not None
    assert view.detail.status == S.APPROVED  # the view reloaded
    assert _visible_actions(view) == {A.SCHEDULE, A.REJECT, A.CANCEL}
    assert "approved" in view.message.text()


def _qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


def test_manager_schedules_with_a_date_and_dealer(qtbot, ctx, ui_backend, two_stands) -> None:
    rid = _refill(ui_backend, two_stands[0], S.APPROVED)
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, A.SCHEDULE)
    today = local_date(utcnow(), "Europe/Berlin")  # the stand's date
    assert dialog.date_edit.date() == _qdate(today + timedelta(days=1))  # tomorrow by default
    dialog.date_edit.setDate(_qdate(today + timedelta(days=3)))
    _type(qtbot, dialog.dealer, "Spree Frischdienst")
    _ok(qtbot, ctx, dialog)
    detail = ui_backend.read(refill_views.refill_detail, rid)
    assert detail.status == S.SCHEDULED
    assert detail.scheduled_for == today + timedelta(days=3)
    assert detail.dealer == "Spree Frischdienst"
    assert "Spree Frischdienst" in view.pane.facts.text()


def test_schedule_dialog_offers_the_stands_date_not_the_machines(
    qtbot, ctx, ui_backend, two_stands, monkeypatch
) -> None:
    """At 23:30 UTC it is already the next day at a stand in Berlin: the dialog's earliest
    date is the stand's (an earlier one the service would refuse as in the past), and
    scheduling for it goes through."""
    now = utcnow()
    late = datetime.combine(now.date(), time(23, 30), tzinfo=UTC)
    if late <= now:
        late += timedelta(days=1)
    monkeypatch.setattr(base, "utcnow", lambda: late)  # what the services take as now
    stand_day = late.date() + timedelta(days=1)
    assert local_date(late, "Europe/Berlin") == stand_day
    rid = _refill(ui_backend, two_stands[0], S.APPROVED)
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, A.SCHEDULE)
    assert dialog.date_edit.minimumDate() == _qdate(stand_day)
    assert dialog.date_edit.date() == _qdate(stand_day + timedelta(days=1))
    dialog.date_edit.setDate(_qdate(late.date()))  # the machine's date: below the minimum
    assert dialog.date_edit.date() == _qdate(stand_day)
    _type(qtbot, dialog.dealer, "Depot")
    _ok(qtbot, ctx, dialog)
    detail = ui_backend.read(refill_views.refill_detail, rid)
    assert detail.status == S.SCHEDULED
    assert detail.scheduled_for == stand_day


def test_rep_delivers_fewer_units_and_stock_goes_up(qtbot, ctx_as, ui_backend, two_stands) -> None:
    kiosk = two_stands[0]
    p = kiosk.product_ids
    rid = _refill(ui_backend, kiosk, S.SCHEDULED)
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, A.DELIVER)
    _type(qtbot, dialog.steppers[p[1]], "4")
    _ok(qtbot, ctx, dialog)
    assert _status(ui_backend, rid) == S.DELIVERED
    assert (_item(ui_backend, rid, p[0]).delivered, _item(ui_backend, rid, p[1]).delivered) == (
        12,
        4,
    )
    assert _on_hand(ui_backend, kiosk.stand_id, p[1]) == 4


def test_rep_delivers_in_two_parts_by_keyboard(
    qtbot, factory, ctx_as, ui_backend, two_stands
) -> None:
    kiosk = two_stands[0]
    p = kiosk.product_ids
    rid = _refill(ui_backend, kiosk, S.SCHEDULED)  # 12 + 6 approved
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)

    dialog = _open(qtbot, view, A.DELIVER)
    box = dialog.more_to_come
    assert box is not None
    assert not box.isChecked()  # one delivery unless said otherwise
    assert box.focusPolicy() & Qt.FocusPolicy.TabFocus
    assert box.height() >= TOUCH
    assert dialog.findChild(QWidget, "delivered_before") is None  # nothing arrived yet
    assert [dialog.steppers[pid].value() for pid in p[:2]] == [12, 6]
    _type(qtbot, dialog.steppers[p[0]], "5")
    _type(qtbot, dialog.steppers[p[1]], "0")
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_M, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(box.isChecked, timeout=2000)  # its mnemonic (an animated click)
    assert dialog.ok_button.text() == "Deliver part"
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert not box.isChecked()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert box.isChecked()
    watch = Watch(factory)
    qtbot.keyClick(box, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, ctx)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    assert [o.op_type for o in watch.ops()] == ["refill.deliver"]
    assert _status(ui_backend, rid) == S.SCHEDULED
    assert (
        _on_hand(ui_backend, kiosk.stand_id, p[0]),
        _on_hand(ui_backend, kiosk.stand_id, p[1]),
    ) == (5, 0)
    assert "Part delivery recorded" in view.message.text()
    assert "13 units to come" in view.message.text()
    # The detail says how far the delivery has come.
    assert view.detail is not None
    assert view.detail.status == S.SCHEDULED
    assert "Partly delivered: 5 of 18 units, 13 to come" in view.pane.facts.text()
    assert view.pane.status.text() == "Scheduled"
    keys = [c.key for c in view.pane.lines_model.columns]
    delivered = [view.pane.lines_model.index(r, keys.index("delivered")).data() for r in range(2)]
    assert delivered == ["5 of 12", "0 of 6"]
    events = view.pane.events_model
    assert (
        events.index(events.rowCount() - 1, 1).data()
        == "Delivered 5 units, more to come (5 so far)"
    )
    row = next(r for r in view.model.rows if r.id == rid)
    status_col = [c.key for c in view.model.columns].index("status")
    shown = view.proxy.index(
        next(
            i for i in range(view.proxy.rowCount()) if view.proxy.index(i, 0).data(ID_ROLE) == rid
        ),
        status_col,
    )
    assert shown.data() == "Scheduled, partly delivered"
    assert row.partly_delivered
    assert _visible_actions(view) == {A.DELIVER}  # no cancel: part of it is on the stand

    # The second part: what is still to come is proposed; more is refused beside the field.
    dialog = _open(qtbot, view, A.DELIVER)
    assert not dialog.more_to_come.isChecked()
    assert dialog.findChild(QWidget, "delivered_before") is not None
    assert dialog.findChild(QLabel, f"before_{p[0]}").text() == "5"
    assert dialog.findChild(QLabel, f"before_{p[1]}").text() == "–"
    assert [dialog.steppers[pid].value() for pid in p[:2]] == [7, 6]
    watch = Watch(factory)
    _type(qtbot, dialog.steppers[p[0]], "8")
    _ok(qtbot, ctx, dialog)
    assert dialog.isVisible()
    assert dialog.errors[f"qty:{p[0]}"].text() == (
        "Only 7 still to deliver (5 of 12 delivered before)."
    )
    watch.assert_nothing_saved()
    _type(qtbot, dialog.steppers[p[0]], "7")
    _ok(qtbot, ctx, dialog)
    assert not dialog.isVisible()
    assert _status(ui_backend, rid) == S.DELIVERED
    assert (_item(ui_backend, rid, p[0]).delivered, _item(ui_backend, rid, p[1]).delivered) == (
        12,
        6,
    )
    assert (
        _on_hand(ui_backend, kiosk.stand_id, p[0]),
        _on_hand(ui_backend, kiosk.stand_id, p[1]),
    ) == (12, 6)
    assert "Delivered in 2 parts" in view.pane.facts.text()
    texts = [events.index(r, 1).data() for r in range(events.rowCount())]
    assert texts[-2:] == [
        "Delivered 5 units, more to come (5 so far)",
        "Delivered the last 13 units (18 in total)",
    ]
    assert ui_backend.read(inventory.verify_on_hand) == []


def test_partner_confirms_a_difference_and_the_discrepancy_shows(
    qtbot, ctx_as, ui_backend, two_stands
) -> None:
    kiosk = two_stands[0]
    p = kiosk.product_ids
    rid = _refill(ui_backend, kiosk, S.DELIVERED)
    ctx = ctx_as(Role.PARTNER, "partner.shop")
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    assert not view.pane.issue_banner.isVisible()
    dialog = _open(qtbot, view, A.CONFIRM)
    notice = dialog.findChild(QWidget, "confirm_notice")
    assert "discrepancy" in notice.text()  # said before anyone presses Confirm
    _type(qtbot, dialog.steppers[p[0]], "10")
    assert dialog.notes[p[0]].isVisible()
    assert "discrepancy will be opened" in dialog.notes[p[0]].text()
    assert not dialog.notes[p[1]].isVisible()
    _ok(qtbot, ctx, dialog)
    assert _status(ui_backend, rid) == S.CONFIRMED
    assert _item(ui_backend, rid, p[0]).received == 10
    assert _on_hand(ui_backend, kiosk.stand_id, p[0]) == 12  # not silently
    assert view.detail is not None
    (disc,) = view.detail.discrepancies
    assert (disc.delivered, disc.received, disc.status) == (12, 10, DiscrepancyStatus.OPEN)
    assert view.pane.issue_banner.isVisible()
    assert "discrepancy" in view.pane.issue_banner.text()
    assert view.pane.tabs.isTabEnabled(1)
    assert view.pane.tabs.tabText(1) == "Discrepancies (1)"
    assert view.pane.discrepancy_model.index(0, 3).data() == "-2"
    assert not view.resolve_button.isVisible()  # partners do not resolve
    assert "1 discrepancy opened" in view.message.text()
    row = next(r for r in view.model.rows if r.id == rid)
    assert row.open_discrepancies == 1


def test_manager_resolves_the_discrepancy(qtbot, factory, ctx, ui_backend, two_stands) -> None:
    kiosk = two_stands[0]
    p = kiosk.product_ids
    rid = _refill(ui_backend, kiosk, S.DELIVERED)
    ui_backend.call(refills.confirm_refill, PARTNER, rid, {p[0]: 10})
    view = _view(qtbot, ctx)
    view.state_filter.setCurrentIndex(view.state_filter.findData("discrepancy"))
    wait_idle(qtbot, ctx)
    assert [r.id for r in view.model.rows] == [rid]
    assert view.pane.tabs.currentIndex() == 1  # the open discrepancy, selected
    assert view.resolve_button.isVisible()
    assert view.resolve_action.isEnabled()
    view.pane.discrepancy_table.clearSelection()
    assert not view.resolve_action.isEnabled()  # nothing selected
    view.pane.discrepancy_table.selectRow(0)
    assert view.resolve_action.isEnabled()
    qtbot.mouseClick(view.resolve_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.dialog is not None and view.dialog.isVisible(), timeout=5000)
    dialog = view.dialog
    watch_nothing = Watch(factory)
    _ok(qtbot, ctx, dialog)  # no choice made: refused beside the choice
    assert dialog.isVisible()
    assert dialog.errors["choice"].isVisible()
    watch_nothing.assert_nothing_saved()
    qtbot.mouseClick(dialog.accept_received, Qt.MouseButton.LeftButton)
    _type(qtbot, dialog.note, "Driver confirmed")
    _ok(qtbot, ctx, dialog)
    assert not dialog.isVisible()
    detail = ui_backend.read(refill_views.refill_detail, rid)
    assert detail.discrepancies[0].status == DiscrepancyStatus.ACCEPTED_RECEIVED
    assert _on_hand(ui_backend, kiosk.stand_id, p[0]) == 10
    assert view.model.rows == []  # no open discrepancy left under this filter


@pytest.mark.parametrize("action", [A.REJECT, A.CANCEL])
def test_reject_and_cancel_need_a_reason(
    qtbot, factory, ctx, ui_backend, two_stands, action
) -> None:
    rid = _refill(ui_backend, two_stands[0])
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, action)
    watch = Watch(factory)
    _ok(qtbot, ctx, dialog)  # empty reason
    assert dialog.isVisible()
    assert dialog.errors["reason"].isVisible()
    assert dialog.errors["reason"].text() == "Give a reason."
    watch.assert_nothing_saved()
    qtbot.keyClicks(dialog.reason, "Stand closes for renovation")
    _ok(qtbot, ctx, dialog)
    detail = ui_backend.read(refill_views.refill_detail, rid)
    assert detail.status == (S.REJECTED if action == A.REJECT else S.CANCELLED)
    assert detail.close_reason == "Stand closes for renovation"
    assert "Stand closes for renovation" in view.pane.facts.text()
    assert _visible_actions(view) == set()


def test_rep_cancels_their_own_request(qtbot, ctx_as, ui_backend, two_stands) -> None:
    rid = _refill(ui_backend, two_stands[0])
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, A.CANCEL)
    qtbot.keyClicks(dialog.reason, "Asked twice")
    _ok(qtbot, ctx, dialog)
    assert _status(ui_backend, rid) == S.CANCELLED


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "“abc” is not a whole number."),
        ("-3", "The quantity cannot be negative."),
        ("", "Enter a quantity (0 for none)."),
        ("2.5", "“2.5” is not a whole number."),
    ],
)
def test_bad_quantities_are_refused_beside_the_field(
    qtbot, factory, ctx, ui_backend, two_stands, typed, message
) -> None:
    kiosk = two_stands[0]
    p = kiosk.product_ids
    rid = _refill(ui_backend, kiosk)
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, A.APPROVE)
    watch = Watch(factory)
    _type(qtbot, dialog.steppers[p[0]], typed)
    _ok(qtbot, ctx, dialog)
    assert dialog.isVisible()
    error = dialog.errors[f"qty:{p[0]}"]
    assert error.isVisible()
    assert error.text() == message
    assert not dialog.errors[f"qty:{p[1]}"].isVisible()
    assert dialog.steppers[p[0]].text() == typed  # what was typed stays
    watch.assert_nothing_saved()
    assert _status(ui_backend, rid) == S.REQUESTED


def test_a_refusal_from_the_service_lands_beside_its_field(
    qtbot, factory, ctx, ui_backend, two_stands
) -> None:
    kiosk = two_stands[0]
    p = kiosk.product_ids
    rid = _refill(ui_backend, kiosk)
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, A.APPROVE)
    watch = Watch(factory)
    _type(qtbot, dialog.steppers[p[0]], "0")
    _type(qtbot, dialog.steppers[p[1]], "0")
    _ok(qtbot, ctx, dialog)  # the service refuses: nothing would be approved
    assert dialog.isVisible()
    assert "reject the refill instead" in dialog.errors["quantities"].text()
    assert dialog.ok_button.isEnabled()
    watch.assert_nothing_saved()


def test_delivering_more_than_approved_is_refused(
    qtbot, factory, ctx, ui_backend, two_stands
) -> None:
    kiosk = two_stands[0]
    p = kiosk.product_ids
    rid = _refill(ui_backend, kiosk, S.SCHEDULED)
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, A.DELIVER)
    watch = Watch(factory)
    _type(qtbot, dialog.steppers[p[1]], "9")
    _ok(qtbot, ctx, dialog)
    assert dialog.errors[f"qty:{p[1]}"].text() == "Only 6 approved."
    watch.assert_nothing_saved()


def test_schedule_needs_a_dealer(qtbot, factory, ctx, ui_backend, two_stands) -> None:
    rid = _refill(ui_backend, two_stands[0], S.APPROVED)
    view = _view(qtbot, ctx)
    _show(qtbot, ctx, view, rid)
    dialog = _open(qtbot, view, A.SCHEDULE)
    watch = Watch(factory)
    _type(qtbot, dialog.dealer, "   ")
    _ok(qtbot, ctx, dialog)
    assert dialog.errors["dealer"].text() == "Enter who delivers."
    watch.assert_nothing_saved()
    dialog.reject()
    assert not dialog.isVisible()
    assert _status(ui_backend, rid) == S.APPROVED


# ------------------------------------------------------------------ keyboard


@pytest.mark.parametrize("embedded", [False, True])
def test_every_action_is_reachable_by_keyboard(
    qtbot, ctx, ui_backend, two_stands, embedded
) -> None:
    rid = _refill(ui_backend, two_stands[0])
    view = _view(qtbot, ctx, stand_id=two_stands[0].stand_id if embedded else None)
    _show(qtbot, ctx, view, rid)
    view.activateWindow()
    view.table.setFocus()
    qtbot.keyClick(
        view.table,
        Qt.Key.Key_A,
        CTRL_SHIFT,
    )
    qtbot.waitUntil(lambda: view.dialog is not None and view.dialog.isVisible(), timeout=5000)
    dialog = view.dialog
    assert dialog.objectName() == "refill_approve_dialog"
    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)
    qtbot.keyClick(
        dialog.focusWidget() or dialog, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
    )
    wait_idle(qtbot, ctx)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
    assert _status(ui_backend, rid) == S.APPROVED


# ------------------------------------------------------------------ the request screen


def _request_view(qtbot, ctx, stand_id: str | None) -> RefillRequestView:
    view = RefillRequestView(ctx)
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.show()
    view.open(stand_id)
    wait_idle(qtbot, ctx)
    return view


def _stock(backend: Backend, stand: StandFixture) -> None:
    """Some products out, some low, some full."""
    p = stand.product_ids
    backend.call(
        inventory.record_count, REP, stand.stand_id, {p[0]: 0, p[1]: 1, p[2]: 3, p[3]: 500}
    )


def test_request_is_prefilled_with_the_suggestion(qtbot, ctx_as, ui_backend, two_stands) -> None:
    kiosk = two_stands[0]
    _stock(ui_backend, kiosk)
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request_view(qtbot, ctx, kiosk.stand_id)
    suggestion = ui_backend.read(refills.suggest_refill, kiosk.stand_id)
    assert set(view.lines) == set(kiosk.product_ids)  # every SKU of the stand
    assert {pid: w.stepper.value() for pid, w in view.lines.items() if w.stepper.value()} == (
        suggestion
    )
    assert view.lines[kiosk.product_ids[3]].stepper.value() == 0  # above par
    assert view.stand_picker.currentData() == kiosk.stand_id
    assert view.can_leave()
    assert view.totals.text().startswith(f"To request: {len(suggestion)} of 24 products")


def test_request_edit_and_submit(qtbot, ctx_as, ui_backend, two_stands) -> None:
    kiosk = two_stands[0]
    _stock(ui_backend, kiosk)
    p = kiosk.product_ids
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request_view(qtbot, ctx, kiosk.stand_id)
    qtbot.mouseClick(view.clear_all, Qt.MouseButton.LeftButton)
    _type(qtbot, view.lines[p[0]].stepper, "7")
    qtbot.mouseClick(view.lines[p[1]].stepper.plus, Qt.MouseButton.LeftButton)  # one pack
    pack = view.lines[p[1]].line.pack_size
    qtbot.keyClicks(view.note, "Weekend market")
    assert not view.can_leave()
    with qtbot.waitSignal(ctx.navigate) as navigated:
        qtbot.keyClick(view.note, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        wait_idle(qtbot, ctx)
    target, refill_id = navigated.args
    assert target == "refills"
    detail = ui_backend.read(refill_views.refill_detail, refill_id)
    assert detail.status == S.REQUESTED
    assert detail.requested_by == "rep.anna"
    assert detail.note == "Weekend market"
    assert {line.product_id: line.requested for line in detail.lines} == {p[0]: 7, p[1]: pack}
    assert view.can_leave()  # saved: nothing left to lose
    assert view.note.text() == ""


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("lots", "“lots” is not a whole number."),
        ("-2", "The quantity cannot be negative."),
        ("", "Enter a quantity (0 for none)."),
    ],
)
def test_request_refuses_bad_quantities_and_keeps_them(
    qtbot, factory, ctx_as, ui_backend, two_stands, typed, message
) -> None:
    kiosk = two_stands[0]
    p = kiosk.product_ids
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request_view(qtbot, ctx, kiosk.stand_id)
    watch = Watch(factory)
    _type(qtbot, view.lines[p[2]].stepper, typed)
    qtbot.mouseClick(view.submit_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, ctx)
    error = view.lines[p[2]].error
    assert error.isVisible()
    assert error.text() == message
    assert view.lines[p[2]].stepper.text() == typed
    watch.assert_nothing_saved()


def test_request_with_nothing_to_refill_says_so(
    qtbot, factory, ctx_as, ui_backend, two_stands
) -> None:
    kiosk = two_stands[0]
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request_view(qtbot, ctx, kiosk.stand_id)
    watch = Watch(factory)
    qtbot.mouseClick(view.clear_all, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(view.submit_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, ctx)
    assert view.errors["quantities"].isVisible()
    assert "at least one product" in view.errors["quantities"].text()
    watch.assert_nothing_saved()
    qtbot.mouseClick(view.use_suggestion, Qt.MouseButton.LeftButton)
    assert view.can_leave()


def test_request_without_a_stand_offers_the_stands(qtbot, ctx_as, ui_backend, two_stands) -> None:
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request_view(qtbot, ctx, None)
    assert view.empty.isVisible()
    assert not view.submit_button.isEnabled()
    names = [view.stand_picker.itemText(i) for i in range(view.stand_picker.count())]
    assert names == ["Café Central · Berlin", "Kiosk am Markt · Berlin"]
    view.stand_picker.setCurrentIndex(1)
    view.stand_picker.activated.emit(1)
    wait_idle(qtbot, ctx)
    assert view.stand_id == two_stands[0].stand_id
    assert len(view.lines) == len(two_stands[0].product_ids)


def test_request_warns_about_open_refills(qtbot, ctx_as, ui_backend, two_stands) -> None:
    kiosk = two_stands[0]
    rid = _refill(ui_backend, kiosk)
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request_view(qtbot, ctx, kiosk.stand_id)
    assert view.open_notice.isVisible()
    assert "already has open refills" in view.open_notice.text()
    with qtbot.waitSignal(ctx.navigate) as navigated:
        view.open_notice.linkActivated.emit(rid)
    assert navigated.args == ["refills", rid]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.PARTNER])
@pytest.mark.parametrize("make", [RefillsView, RefillRequestView])
def test_building_a_screen_opens_no_stray_window(qtbot, ctx_as, two_stands, role, make) -> None:
    """A widget shown before it has a parent becomes a window of its own for a moment,
    and takes the focus from the main window (its shortcuts then stop working)."""
    ctx = ctx_as(role, "someone")
    window = QStackedWidget()
    qtbot.addWidget(window)
    window.addWidget(QLineEdit())
    window.show()
    with qtbot.waitActive(window):
        window.activateWindow()
    view = make(ctx)
    window.addWidget(view)
    window.setCurrentWidget(view)
    view.refresh()
    wait_idle(qtbot, ctx)
    qtbot.wait(20)
    assert QApplication.activeWindow() is window


@pytest.mark.parametrize("discard", [False, True])
def test_switching_stands_asks_before_dropping_typed_quantities(
    qtbot, monkeypatch, ctx_as, two_stands, discard
) -> None:
    kiosk, cafe = two_stands
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _request_view(qtbot, ctx, kiosk.stand_id)
    _type(qtbot, view.lines[kiosk.product_ids[0]].stepper, "5")
    asked: list[str] = []

    def answer(_parent, _title, text, *_args):
        asked.append(text)
        return QMessageBox.StandardButton.Discard if discard else QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "question", answer)
    cafe_index = view.stand_picker.findData(cafe.stand_id)
    view.stand_picker.setCurrentIndex(cafe_index)
    view.stand_picker.activated.emit(cafe_index)
    wait_idle(qtbot, ctx)
    assert asked == ["Discard the quantities and note typed for Kiosk am Markt?"]
    if discard:
        assert view.stand_id == cafe.stand_id
        assert set(view.lines) == set(cafe.product_ids)
    else:
        assert view.stand_id == kiosk.stand_id
        assert view.stand_picker.currentData() == kiosk.stand_id
        assert view.lines[kiosk.product_ids[0]].stepper.text() == "5"


def test_screen_shortcuts_do_not_clash_with_the_window(qtbot, ctx, two_stands) -> None:
    """Two actions with one key in the same window cancel each other ("ambiguous shortcut
    overload"), so the screens' keys must differ from the main window's."""
    from ui.main_window import MainWindow

    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window_keys = {k.toString() for a in window.actions() for k in a.shortcuts()}
    assert window_keys  # the window has its own (Ctrl+1..5, Ctrl+N, F5...)
    for name, arg in (("today", None), ("refills", None), ("refill", two_stands[0].stand_id)):
        window.go(name, arg)
        wait_idle(qtbot, ctx)
        view_keys = [k.toString() for a in window.views[name].actions() for k in a.shortcuts()]
        assert not window_keys.intersection(view_keys), name
        assert len(view_keys) == len(set(view_keys)), name
