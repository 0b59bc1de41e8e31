"""Read-side queries for the onboarding wizard and the settings screen."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import NotFound
from app.reference import PACKAGES
from app.services import catalog as catalog_service
from app.services import onboarding, onboarding_views
from app.services.base import device_id
from tests.conftest import MANAGER, REP, CatalogProduct, make_stand
from tests.helpers import Watch


def test_packages_come_by_rank_with_everything_that_tells_them_apart(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    options = onboarding_views.list_packages(session)
    assert [o.code for o in options] == [p.code for p in sorted(PACKAGES, key=lambda p: p.rank)]
    for option, spec in zip(options, sorted(PACKAGES, key=lambda p: p.rank), strict=True):
        assert (
            option.name,
            option.max_stands,
            option.sku_slots,
            option.commission_rate,
            option.loyalty_multiplier,
            option.refill_cadence_days,
            option.default_par,
            option.activation_points,
            option.description,
        ) == (
            spec.name,
            spec.max_stands,
            spec.sku_slots,
            spec.commission_rate,
            spec.loyalty_multiplier,
            spec.refill_cadence_days,
            spec.default_par,
            spec.activation_points,
            spec.description,
        )


def test_choices_suggest_reps_and_regions_in_use(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    empty = onboarding_views.onboarding_choices(session)
    assert [p.code for p in empty.packages] == ["starter", "growth", "pro"]
    assert empty.reps == ()
    assert empty.regions == ()

    make_stand(session, name="Kiosk am Markt")  # assigned to rep.anna, no region
    onboarding.onboard_partner(
        session,
        MANAGER,
        onboarding.PartnerInput("Apotheke Nord", "Ida", "starter", region="Hamburg"),
    )
    onboarding.onboard_partner(
        session,
        MANAGER,
        onboarding.PartnerInput("Café Süd", "Jo", "starter", region="Berlin-Mitte"),
    )
    choices = onboarding_views.onboarding_choices(session)
    assert choices.reps == (REP.user,)
    assert choices.regions == ("Berlin-Mitte", "Hamburg")


def test_assortment_preview_ticks_the_package_default(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    preview = onboarding_views.assortment_preview(session, " Starter ")
    assert preview.package_code == "starter"
    assert preview.package_name == "Starter"
    assert preview.sku_slots == 12
    assert len(preview.products) == len(catalog) == 30
    with session.begin():
        expected = [p.id for p in onboarding.default_assortment(session, 12)]
    assert set(preview.default_ids) == set(expected)
    assert len(preview.default_ids) == 12
    # Listed by category, then name; every catalog product appears once.
    keys = [(p.category, p.name) for p in preview.products]
    assert keys == sorted(keys)
    assert {p.id for p in preview.products} == {p.id for p in catalog}

    # What the preview ticks is exactly what a stand with the default assortment gets.
    result = onboarding.onboard_partner(
        session,
        REP,
        onboarding.PartnerInput("Kiosk Ost", "Ute", "starter"),
        onboarding.StandInput("Kiosk Ost", "Weg 1", "Berlin", "kiosk", 120),
    )
    assert result.stand is not None
    assert set(result.stand.product_ids) == set(preview.default_ids)


def test_assortment_preview_leaves_out_discontinued_products(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    gone = catalog[0]
    catalog_service.update_product(session, MANAGER, gone.sku, active=False)
    preview = onboarding_views.assortment_preview(session, "pro")
    assert gone.id not in {p.id for p in preview.products}
    assert len(preview.products) == 29
    assert len(preview.default_ids) == 29  # Pro has 40 slots: everything still sold


def test_assortment_preview_of_an_unknown_package(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    with pytest.raises(NotFound) as err:
        onboarding_views.assortment_preview(session, "platinum")
    assert err.value.field == "package_code"


def test_device_summary_counts_what_waits_for_sync(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct]
) -> None:
    before = onboarding_views.device_summary(session)
    with session.begin():
        assert before.device_id == device_id(session)
    assert before.pending_changes == before.recorded_changes == 0
    make_stand(session)  # onboard + stand + activation (+ its ledger entry)
    after = onboarding_views.device_summary(session)
    assert after.device_id == before.device_id
    assert after.pending_changes == after.recorded_changes > 0
    assert after.created_at == before.created_at


def test_the_queries_write_nothing(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct]
) -> None:
    watch = Watch(factory)
    onboarding_views.list_packages(session)
    onboarding_views.onboarding_choices(session)
    onboarding_views.assortment_preview(session, "growth")
    onboarding_views.device_summary(session)
    watch.assert_nothing_saved()
