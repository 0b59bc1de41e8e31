"""``standctl kpi`` on a real data folder (``standctl report``: tests/ui/test_report.py)."""

from __future__ import annotations

from decimal import Decimal

from app.db import SessionFactory
from tests.app.test_cli import onboard
from tests.conftest import CatalogProduct, Cli


def test_kpi_for_a_stand_as_json(
    run: Cli, factory: SessionFactory, catalog: list[CatalogProduct]
) -> None:
    shop = onboard(run)
    assert run("sale", "record", shop.stand_id, "SKU-000=2", "SKU-001=1", "--pay", "cash").code == 0
    r = run("--json", "kpi", "--stand", shop.stand_id, "--period", "7d")
    assert r.code == 0, r.err
    data = r.json()
    assert data["scope"] == {"kind": "stand", "id": shop.stand_id, "label": "Kiosk am Markt"}
    assert data["period"]["days"] == 7
    kpis = {k["key"]: k for k in data["kpis"]}
    assert Decimal(kpis["revenue"]["value"]) == Decimal("5.00")  # 2 x 1.50 + 1 x 2.00
    assert Decimal(kpis["units"]["value"]) == 3
    assert Decimal(kpis["orders"]["value"]) == 1
    assert Decimal(kpis["revenue"]["prior"]) == 0
    assert kpis["aov"]["prior"] is None
    assert kpis["revenue"]["formula"]


def test_kpi_table_for_people(
    run: Cli, factory: SessionFactory, catalog: list[CatalogProduct]
) -> None:
    shop = onboard(run)
    assert run("sale", "record", shop.stand_id, "SKU-000=2", "--pay", "cash").code == 0
    r = run("kpi", "--program", "--explain")
    assert r.code == 0, r.err
    assert r.out.startswith("Whole program: 1 stand, ")
    assert "(28 days)" in r.out
    revenue = next(line for line in r.out.splitlines() if line.startswith("Revenue "))
    assert "€3.00" in revenue
    assert "from zero" in revenue  # no sales in the prior period: no percentage of nothing
    assert "Sum of order totals" in revenue
    r = run("kpi", "--rep", "rep.anna", "--period", "2026-01-01..2026-01-31")
    assert r.code == 0, r.err
    assert "Territory of rep.anna: 1 stand, 2026-01-01 – 2026-01-31 (31 days)" in r.out


def test_kpi_refuses_unclear_requests(
    run: Cli, factory: SessionFactory, catalog: list[CatalogProduct]
) -> None:
    shop = onboard(run)
    for args, message in (
        ((), "name exactly one of"),
        (("--program", "--stand", shop.stand_id), "name exactly one of"),
        (("--program", "--period", "lastweek"), "not understood"),
        (("--program", "--period", "2026-02-01..2026-01-01"), "ends before it starts"),
        (("--stand", "nope"), "No stand with id"),
    ):
        r = run("kpi", *args)
        assert r.code == 2, args
        assert message in r.err, (args, r.err)
