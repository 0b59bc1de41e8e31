"""The new-partner wizard, driven as a rep would: typing, clicking Next, keyboard shortcuts;
checked through the services and the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QImage, QKeyEvent
from PySide6.QtWidgets import QAbstractButton, QApplication, QComboBox, QLineEdit
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.backend import Backend
from app.errors import LimitExceeded, PermissionDenied, ValidationError
from app.models import Role, StandLocation, StandPartner
from app.rules import payment_reference, qr_payload
from app.services import catalog as catalog_service
from app.services import loyalty, queries
from tests.conftest import MANAGER
from tests.ui.conftest import wait_idle
from ui.views.onboarding import (
    ASSORTMENT,
    DONE,
    PACKAGE,
    PARTNER,
    REVIEW,
    STAND,
    OnboardingView,
    parse_coordinate,
)


def _view(qtbot, ctx) -> OnboardingView:
    view = OnboardingView(ctx)
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    view.refresh()
    wait_idle(qtbot, ctx)
    return view


def _click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def _type(qtbot, widget, text: str) -> None:
    """Type ``text`` over what the field holds. QTest types ASCII only; other characters
    (é, ß) arrive as the key events a keyboard layout would send."""
    widget.setFocus()
    widget.selectAll()
    for char in text:
        if char.isascii():
            qtbot.keyClicks(widget, char)
        else:
            for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
                QApplication.sendEvent(
                    widget, QKeyEvent(kind, 0, Qt.KeyboardModifier.NoModifier, char)
                )


def _counts(backend: Backend) -> tuple[int, int]:
    def count(session: Session) -> tuple[int, int]:
        with session.begin():
            partners = session.scalar(select(func.count()).select_from(StandPartner)) or 0
            stands = session.scalar(select(func.count()).select_from(StandLocation)) or 0
            return partners, stands

    return backend.read(count)


def _partner(backend: Backend, partner_id: str) -> dict[str, Any]:
    def load(session: Session) -> dict[str, Any]:
        with session.begin():
            row = session.get_one(StandPartner, partner_id)
            return {
                k: getattr(row, k)
                for k in (
                    "name",
                    "contact_name",
                    "email",
                    "phone",
                    "region",
                    "payout_method",
                    "payout_account",
                    "notes",
                    "status",
                )
            }

    return backend.read(load)


def _error(view: OnboardingView, key: str) -> str:
    label = view.findChild(type(view.banner), f"error_{key}")
    assert label is not None, key
    return label.text() if label.isVisible() else ""


def _fill_partner(qtbot, view: OnboardingView) -> None:
    _type(qtbot, view.partner_name, "Café Sonne GmbH")
    _type(qtbot, view.contact_name, "Eva Schmidt")
    _type(qtbot, view.email, "eva@example.com")
    _type(qtbot, view.phone, "+49 (30) 123-4567")
    _type(qtbot, view.region.lineEdit(), "Berlin-Mitte")
    view.payout_method.setCurrentIndex(view.payout_method.findData("sepa"))
    _type(qtbot, view.payout_account, "DE89370400440532013000")


def _fill_stand(qtbot, view: OnboardingView, capacity: str = "240") -> None:
    _type(qtbot, view.stand_name, "Café Sonne")
    _type(qtbot, view.address, "Hauptstraße 5")
    _type(qtbot, view.postal_code, "10115")
    _type(qtbot, view.city, "Berlin")
    view.location_type.setCurrentIndex(view.location_type.findData("cafe"))
    _type(qtbot, view.capacity.edit, capacity)


def _to_review(qtbot, ctx, view: OnboardingView, package: str = "growth") -> None:
    _fill_partner(qtbot, view)
    _click(qtbot, view.next_button)
    assert view.current_step() == PACKAGE
    _click(qtbot, view.cards[package])
    _click(qtbot, view.next_button)
    assert view.current_step() == STAND
    _fill_stand(qtbot, view)
    _click(qtbot, view.next_button)
    assert view.current_step() == ASSORTMENT
    wait_idle(qtbot, ctx)
    _click(qtbot, view.next_button)
    assert view.current_step() == REVIEW


# --------------------------------------------------------------------------- the happy path


def test_onboard_a_partner_through_the_wizard(
    qtbot, ctx_as, ui_backend: Backend, tmp_path: Path, monkeypatch
) -> None:
    ctx = ctx_as(Role.REP, "rep.anna")
    view = _view(qtbot, ctx)
    assert view.current_step() == PARTNER
    assert not view.back_button.isEnabled()

    _fill_partner(qtbot, view)
    _type(qtbot, view.notes, "Open Mon-Sat")
    _click(qtbot, view.next_button)

    # Package cards say what each package includes.
    assert view.current_step() == PACKAGE
    assert set(view.cards) == {"starter", "growth", "pro"}
    starter_text = " ".join(
        label.text() for label in view.cards["starter"].findChildren(type(view.heading))
    )
    assert "12 products per stand" in starter_text
    assert "10% commission" in starter_text
    assert "1 stand" in starter_text
    assert "100 welcome points" in starter_text
    _click(qtbot, view.cards["growth"])
    assert view.package_code() == "growth"
    _click(qtbot, view.next_button)

    assert view.current_step() == STAND
    assert view.rep.currentText() == "rep.anna"  # the signed-in rep by default
    _fill_stand(qtbot, view)
    # Coordinates pasted as a map app copies them fill both fields.
    QApplication.clipboard().setText("52.5200, 13.4050")
    view.latitude.setFocus()
    qtbot.keyClick(view.latitude, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(view.latitude, Qt.Key.Key_Tab)
    assert (view.latitude.text(), view.longitude.text()) == ("52.5200", "13.4050")
    _click(qtbot, view.next_button)

    # The package's default assortment is ticked; untick two by keyboard (Space).
    assert view.current_step() == ASSORTMENT
    wait_idle(qtbot, ctx)
    assert view.preview is not None
    assert view.preview.package_code == "growth"
    default = set(view.preview.default_ids)
    assert set(view.checked_products()) == default
    assert len(default) == 24
    dropped = []
    for item in view._items():
        if item.checkState(0) == Qt.CheckState.Checked and len(dropped) < 2:
            view.tree.setCurrentItem(item)
            qtbot.keyClick(view.tree, Qt.Key.Key_Space)
            dropped.append(item.data(0, Qt.ItemDataRole.UserRole))
    chosen = view.checked_products()
    assert len(chosen) == 22
    assert not set(dropped) & set(chosen)
    assert "22 of 24" in view.assortment_count.text()
    _click(qtbot, view.next_button)

    # Review: the label preview is the label the stand will get.
    assert view.current_step() == REVIEW
    preview = view.label_data()
    assert preview.reference == payment_reference(view.stand_id)
    assert preview.payload == qr_payload(view.stand_id, preview.reference)
    assert not view.review_label.pixmap().isNull()
    assert "Café Sonne GmbH" in view.summary.text()
    assert preview.reference in view.summary.text()
    assert _counts(ui_backend) == (0, 0)  # nothing saved yet

    with qtbot.waitSignal(ctx.data_changed) as changed:
        qtbot.keyClick(view.finish_button, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, ctx)
    assert changed.args[0].touches("partners", "stands")
    assert view.current_step() == DONE
    assert view.result is not None
    stand = view.result.stand
    assert stand is not None
    assert (view.result.partner_id, stand.stand_id) == (view.partner_id, view.stand_id)

    # Checked through the services: the partner and stand with what was typed.
    partner = _partner(ui_backend, view.partner_id)
    assert partner == {
        "name": "Café Sonne GmbH",
        "contact_name": "Eva Schmidt",
        "email": "eva@example.com",
        "phone": "+49 (30) 123-4567",
        "region": "Berlin-Mitte",
        "payout_method": "sepa",
        "payout_account": "DE89370400440532013000",
        "notes": "Open Mon-Sat",
        "status": "onboarding",
    }
    detail = ui_backend.read(queries.stand_detail, view.stand_id)
    assert detail.stand.name == "Café Sonne"
    assert detail.stand.partner_name == "Café Sonne GmbH"
    assert (detail.address, detail.postal_code, detail.stand.city) == (
        "Hauptstraße 5",
        "10115",
        "Berlin",
    )
    assert (detail.latitude, detail.longitude) == (pytest.approx(52.52), pytest.approx(13.405))
    assert detail.stand.location_type == "cafe"
    assert detail.capacity_units == 240
    assert detail.stand.assigned_rep == "rep.anna"
    assert detail.stand.status == "planned"
    assert detail.package_code == "growth"
    assert {row.product_id for row in detail.inventory} == set(chosen)
    assert detail.payment_reference == preview.reference
    assert detail.qr_payload == preview.payload

    # The label exports (the dialogs are skipped by giving the path).
    png = view.export_label_png(tmp_path / "label.png")
    assert png is not None
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1181, 1772)
    assert "label.png" in view.done_message.text()
    pdf = view.export_label_pdf(tmp_path / "label.pdf")
    assert pdf is not None
    assert pdf.read_bytes().startswith(b"%PDF")
    assert view.export_label_pdf(tmp_path / "gone" / "label.pdf") is None
    assert "Could not write the label" in view.done_message.text()
    # Without a path the save dialog asks; cancelling it writes nothing.
    monkeypatch.setattr(view, "_ask_save_path", lambda *args: None)
    assert view.export_label_png() is None

    # Activate now, after a confirmation.
    asked: list[str] = []
    monkeypatch.setattr(view, "_confirm", lambda title, text: asked.append(text) or True)
    _click(qtbot, view.activate_button)
    wait_idle(qtbot, ctx)
    assert asked
    assert "250 welcome points" in asked[0]
    assert ui_backend.read(loyalty.balance, view.partner_id) == 250
    assert ui_backend.read(queries.stand_detail, view.stand_id).stand.status == "active"
    assert "is active" in view.done_message.text()
    assert not view.activate_button.isEnabled()

    with qtbot.waitSignal(ctx.navigate) as nav:
        _click(qtbot, view.open_stand_button)
    assert nav.args == ["stand", view.stand_id]


def test_keyboard_only(qtbot, ctx, ui_backend: Backend) -> None:
    """Alt+N and Alt+B move between steps; Ctrl+Enter moves on and, on Review, creates."""
    view = _view(qtbot, ctx)
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=5000)
    _fill_partner(qtbot, view)
    # A mnemonic "animates" the button's click, which lands a moment later.
    qtbot.keyClick(view.partner_name, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: view.current_step() == PACKAGE, timeout=2000)
    qtbot.keyClick(view.focusWidget(), Qt.Key.Key_B, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: view.current_step() == PARTNER, timeout=2000)
    qtbot.keyClick(view.partner_name, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert view.current_step() == PACKAGE
    # Arrow keys choose among the package cards (radio buttons).
    assert view.focusWidget() is view.cards["starter"].radio
    qtbot.keyClick(view.focusWidget(), Qt.Key.Key_Right)
    assert view.package_code() == "growth"
    qtbot.keyClick(view.focusWidget(), Qt.Key.Key_Enter, Qt.KeyboardModifier.ControlModifier)
    assert view.current_step() == STAND
    assert view.focusWidget() is view.stand_name
    _fill_stand(qtbot, view)
    qtbot.keyClick(view.stand_name, Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: view.current_step() == ASSORTMENT, timeout=2000)
    wait_idle(qtbot, ctx)
    qtbot.keyClick(view.tree, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert view.current_step() == REVIEW
    qtbot.keyClick(view.focusWidget(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, ctx)
    assert view.current_step() == DONE
    assert _counts(ui_backend) == (1, 1)


def test_every_button_is_a_touch_target(qtbot, ctx) -> None:
    view = _view(qtbot, ctx)
    for widget in view.findChildren(QAbstractButton) + view.findChildren(QLineEdit):
        inside_combo = isinstance(widget.parent(), QComboBox)
        if widget.isVisibleTo(view) and not inside_combo:
            assert widget.height() >= 40 or widget.minimumHeight() >= 40, widget.objectName()
    for combo in view.findChildren(QComboBox):
        assert combo.minimumHeight() >= 40


# --------------------------------------------------------------------------- bad input


def test_partner_page_refuses_bad_input(qtbot, ctx, ui_backend: Backend) -> None:
    view = _view(qtbot, ctx)
    _click(qtbot, view.next_button)
    assert view.current_step() == PARTNER
    assert _error(view, "name") == "Business name is required."
    assert _error(view, "contact_name") == "Contact person is required."
    assert view.focusWidget() is view.partner_name

    _type(qtbot, view.partner_name, "Café Sonne GmbH")
    assert _error(view, "name") == ""  # the message goes as the field is fixed
    _type(qtbot, view.contact_name, "Eva")
    _type(qtbot, view.email, "eva@example")
    _type(qtbot, view.phone, "call me")
    _click(qtbot, view.next_button)
    assert view.current_step() == PARTNER
    assert "is not an email address" in _error(view, "email")
    assert "digits" in _error(view, "phone")
    assert _error(view, "name") == ""

    view.email.clear()
    view.phone.clear()
    _type(qtbot, view.payout_account, "DE89370400440532013000")
    _click(qtbot, view.next_button)
    assert "Choose how the account is paid" in _error(view, "payout_method")
    view.payout_method.setCurrentIndex(1)
    _click(qtbot, view.next_button)
    assert view.current_step() == PACKAGE
    assert _counts(ui_backend) == (0, 0)


@pytest.mark.parametrize(
    ("field", "text", "key", "message"),
    [
        ("latitude", "north", "latitude", "Latitude must be a number such as 52.52."),
        ("latitude", "95", "latitude", "Latitude must be between -90 and 90."),
        ("longitude", "east", "longitude", "Longitude must be a number such as 52.52."),
        ("capacity", "abc", "capacity_units", "Capacity must be a whole number, e.g. 120."),
        ("capacity", "0", "capacity_units", "Capacity must be at least 1."),
        ("capacity", "-5", "capacity_units", "Capacity must be at least 1."),
        ("capacity", "2.5", "capacity_units", "Capacity must be a whole number, e.g. 120."),
        ("country", "D", "country", "Country must be a two-letter code such as DE."),
        ("stand_name", "", "stand_name", "Stand name is required."),
        ("city", "   ", "city", "City is required."),
    ],
)
def test_stand_page_refuses_bad_input(
    qtbot, ctx, ui_backend: Backend, field: str, text: str, key: str, message: str
) -> None:
    view = _view(qtbot, ctx)
    _fill_partner(qtbot, view)
    _click(qtbot, view.next_button)
    _click(qtbot, view.next_button)
    assert view.current_step() == STAND
    _fill_stand(qtbot, view)
    _type(qtbot, view.latitude, "52.52")
    _type(qtbot, view.longitude, "13.40")
    widget = {"capacity": view.capacity.edit}.get(field) or getattr(view, field)
    widget.clear()
    if text:
        _type(qtbot, widget, text)
    _click(qtbot, view.next_button)
    assert view.current_step() == STAND
    assert _error(view, key) == message
    # Jumping ahead with the step buttons is refused the same way.
    _click(qtbot, view.steps[REVIEW])
    assert view.current_step() == STAND
    assert _counts(ui_backend) == (0, 0)


def test_coordinates_accept_a_decimal_comma_and_need_both(qtbot, ctx) -> None:
    assert parse_coordinate("52,52", "Latitude", 90) == pytest.approx(52.52)
    assert parse_coordinate(" ", "Latitude", 90) is None
    with pytest.raises(ValueError, match="between -180 and 180"):
        parse_coordinate("-181", "Longitude", 180)
    view = _view(qtbot, ctx)
    _fill_partner(qtbot, view)
    view.go_to(STAND)
    _fill_stand(qtbot, view)
    _type(qtbot, view.latitude, "52,52")
    _click(qtbot, view.next_button)
    assert view.current_step() == STAND
    assert _error(view, "longitude") == "Give both coordinates, or neither."
    _type(qtbot, view.longitude, "13,4")
    _click(qtbot, view.next_button)
    assert view.current_step() == ASSORTMENT
    assert view.stand_input().latitude == pytest.approx(52.52)
    assert view.stand_input().longitude == pytest.approx(13.4)


def test_assortment_stays_within_the_package(qtbot, ctx, ui_backend: Backend) -> None:
    view = _view(qtbot, ctx)
    _fill_partner(qtbot, view)
    _click(qtbot, view.next_button)
    _click(qtbot, view.cards["starter"])
    _click(qtbot, view.next_button)
    _fill_stand(qtbot, view, capacity="10")
    _click(qtbot, view.next_button)
    wait_idle(qtbot, ctx)
    assert view.current_step() == ASSORTMENT
    assert len(view.checked_products()) == 12
    # Full: the products not chosen cannot be ticked until one is unticked.
    unticked = [i for i in view._items() if i.checkState(0) != Qt.CheckState.Checked]
    assert unticked
    assert all(not (i.flags() & Qt.ItemFlag.ItemIsEnabled) for i in unticked)
    assert "untick one" in view.assortment_count.text()
    view.set_product_checked(view.checked_products()[0], False)
    assert all(i.flags() & Qt.ItemFlag.ItemIsEnabled for i in unticked)

    # Capacity 10 cannot hold 11 products.
    _click(qtbot, view.next_button)
    assert view.current_step() == ASSORTMENT
    assert "needs a capacity of at least 11 units" in _error(view, "products")

    _click(qtbot, view.clear_button)
    assert view.checked_products() == []
    _click(qtbot, view.next_button)
    assert _error(view, "products") == "Choose at least one product."

    _click(qtbot, view.default_button)
    assert len(view.checked_products()) == 12
    # The filter narrows the list without changing what is ticked.
    _type(qtbot, view.filter, "Product 0")
    shown = [i for i in view._items() if not i.isHidden()]
    assert 0 < len(shown) < 30
    assert len(view.checked_products()) == 12
    assert _counts(ui_backend) == (0, 0)


def test_a_choice_that_no_longer_fits_falls_back_to_the_default(qtbot, ctx) -> None:
    view = _view(qtbot, ctx)
    _fill_partner(qtbot, view)
    view.go_to(PACKAGE)
    _click(qtbot, view.cards["pro"])
    view.go_to(STAND)
    _fill_stand(qtbot, view)
    view.go_to(ASSORTMENT)
    wait_idle(qtbot, ctx)
    assert len(view.checked_products()) == 30  # Pro: 40 slots, the whole catalog
    view.set_product_checked(view.checked_products()[0], False)  # customised: 29
    _click(qtbot, view.back_button)
    _click(qtbot, view.back_button)
    _click(qtbot, view.cards["starter"])
    wait_idle(qtbot, ctx)
    view.go_to(ASSORTMENT)
    assert len(view.checked_products()) == 12
    assert "did not fit the Starter package" in _error(view, "products")


# --------------------------------------------------------------------------- service refusals


def test_a_refusal_from_the_service_is_shown_on_its_page(qtbot, ctx, ui_backend: Backend) -> None:
    view = _view(qtbot, ctx)
    _to_review(qtbot, ctx, view, package="starter")
    # Meanwhile a manager discontinues one of the ticked products.
    gone = view.checked_products()[0]
    ui_backend.call(catalog_service.update_product, MANAGER, gone, active=False)
    _click(qtbot, view.finish_button)
    wait_idle(qtbot, ctx)
    assert view.current_step() == ASSORTMENT
    assert "is no longer sold" in _error(view, "products")
    assert _counts(ui_backend) == (0, 0)
    # The list was reloaded without it: the package default, now without that product.
    assert view.preview is not None
    assert gone not in {p.id for p in view.preview.products}
    assert gone not in view.checked_products()
    assert len(view.checked_products()) == 12
    view.go_to(REVIEW)
    _click(qtbot, view.finish_button)
    wait_idle(qtbot, ctx)
    assert view.current_step() == DONE
    detail = ui_backend.read(queries.stand_detail, view.stand_id)
    assert {row.product_id for row in detail.inventory} == set(view.checked_products())


def test_a_custom_choice_survives_a_discontinued_product(qtbot, ctx, ui_backend: Backend) -> None:
    view = _view(qtbot, ctx)
    _to_review(qtbot, ctx, view, package="starter")
    view.back()
    assert view.current_step() == ASSORTMENT
    view.set_product_checked(view.checked_products()[-1], False)  # a choice of 11
    mine = view.checked_products()
    view.go_to(REVIEW)
    ui_backend.call(catalog_service.update_product, MANAGER, mine[0], active=False)
    _click(qtbot, view.finish_button)
    wait_idle(qtbot, ctx)
    assert view.current_step() == ASSORTMENT
    assert "is no longer sold" in _error(view, "products")
    assert view.checked_products() == mine[1:]
    assert _counts(ui_backend) == (0, 0)


def test_refusals_land_next_to_their_field(qtbot, ctx) -> None:
    """Whatever the service names, the wizard shows it on the step that has the field."""
    view = _view(qtbot, ctx)
    _to_review(qtbot, ctx, view, package="starter")
    cases = [
        (
            LimitExceeded(
                "The Starter package allows 12 products per stand; 13 were chosen.",
                field="products",
            ),
            ASSORTMENT,
            "products",
        ),
        (ValidationError("Stand name is required.", field="stand_name"), STAND, "stand_name"),
        (ValidationError("Business name is required.", field="name"), PARTNER, "name"),
        (ValidationError("'x' is not an email address.", field="email"), PARTNER, "email"),
        (ValidationError("Latitude must be …", field="latitude"), STAND, "latitude"),
        (ValidationError("No package 'x'.", field="package_code"), PACKAGE, "package_code"),
    ]
    for exc, step, key in cases:
        view._save_failed(exc)
        assert view.current_step() == step, exc
        assert _error(view, key) == exc.message
        view.go_to(REVIEW)
        wait_idle(qtbot, ctx)
    view._save_failed(RuntimeError("disk full"))
    assert view.current_step() == REVIEW
    assert "disk full" in view.banner.text()


def test_a_partner_cannot_sign_up_partners(qtbot, ctx_as, ui_backend: Backend) -> None:
    ctx = ctx_as(Role.PARTNER, "partner.shop")
    view = _view(qtbot, ctx)
    assert "Only reps, managers and admins" in view.notice.text()
    _to_review(qtbot, ctx, view)
    assert not view.finish_button.isEnabled()
    view._save_failed(PermissionDenied("A partner may not onboard partners."))
    assert view.banner.text() == "A partner may not onboard partners."
    assert _counts(ui_backend) == (0, 0)


# --------------------------------------------------------------------------- leaving


def test_leaving_asks_only_when_something_was_typed(qtbot, ctx, monkeypatch) -> None:
    view = _view(qtbot, ctx)
    asked: list[str] = []
    monkeypatch.setattr(view, "_confirm", lambda title, text: asked.append(title) or False)
    assert view.can_leave()
    assert not asked

    _type(qtbot, view.partner_name, "Café Sonne GmbH")
    assert not view.can_leave()
    assert asked == ["Discard the new partner?"]
    assert view.partner_name.text() == "Café Sonne GmbH"

    monkeypatch.setattr(view, "_confirm", lambda title, text: True)
    assert view.can_leave()
    assert view.partner_name.text() == ""
    assert view.current_step() == PARTNER


def test_after_finishing_leaving_and_coming_back_starts_afresh(
    qtbot, ctx, ui_backend: Backend
) -> None:
    view = _view(qtbot, ctx)
    _to_review(qtbot, ctx, view)
    first_stand = view.stand_id
    _click(qtbot, view.finish_button)
    wait_idle(qtbot, ctx)
    assert view.current_step() == DONE
    assert view.can_leave()  # saved: nothing to lose
    view.hide()
    view.show()
    view.refresh()
    wait_idle(qtbot, ctx)
    assert view.current_step() == PARTNER
    assert view.partner_name.text() == ""
    assert view.stand_id != first_stand
    assert view.rep.currentText() == ctx.actor.user

    # "Sign up another partner" does the same from the Done page.
    _to_review(qtbot, ctx, view)
    _click(qtbot, view.finish_button)
    wait_idle(qtbot, ctx)
    _click(qtbot, view.again_button)
    assert view.current_step() == PARTNER
    assert _counts(ui_backend) == (2, 2)


def test_an_empty_catalog_says_so(qtbot, ctx_as, tmp_path: Path) -> None:
    from app.models import Role as R
    from app.services.base import Actor
    from ui.context import UiContext
    from ui.tasks import TaskRunner

    backend = Backend.open(f"sqlite:///{tmp_path / 'empty.db'}")
    runner = TaskRunner()
    ctx = UiContext(backend, runner, Actor("rep.anna", R.REP))
    try:
        view = _view(qtbot, ctx)
        _fill_partner(qtbot, view)
        view.go_to(STAND)
        _fill_stand(qtbot, view)
        view.go_to(ASSORTMENT)
        wait_idle(qtbot, ctx)
        assert view.assortment_empty.isVisible()
        assert "no products" in view.assortment_empty.text()
        _click(qtbot, view.next_button)
        assert view.current_step() == ASSORTMENT
        assert _error(view, "products") == "Choose at least one product."
    finally:
        runner.wait()
        backend.close()


def test_a_catalog_change_reloads_the_assortment(qtbot, ctx, ui_backend: Backend) -> None:
    view = _view(qtbot, ctx)
    _fill_partner(qtbot, view)
    view.go_to(PACKAGE)
    _click(qtbot, view.cards["growth"])
    view.go_to(STAND)
    _fill_stand(qtbot, view)
    view.go_to(ASSORTMENT)
    wait_idle(qtbot, ctx)
    assert view.preview is not None
    spare = next(p.id for p in view.preview.products if not p.in_default)
    cards_before = dict(view.cards)
    ui_backend.call(catalog_service.update_product, MANAGER, spare, active=False)
    ctx.changed("products", ids=(spare,))  # as the products screen announces it
    wait_idle(qtbot, ctx)
    assert spare not in {p.id for p in view.preview.products}
    assert view.cards == cards_before  # same packages: the cards stay as they were
    assert view.partner_name.text() == "Café Sonne GmbH"  # what was typed stays
    assert view.current_step() == ASSORTMENT
