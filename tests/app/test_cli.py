"""The ``standctl`` command line, run in-process against a data folder per test.

The ``catalog`` fixture puts packages, tiers and 30 products into ``tmp_path/stand.db``,
which is exactly the database ``standctl --data-dir tmp_path`` opens.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from app import cli
from app.clock import utcnow
from app.db import SessionFactory, head_revision
from app.models import StandInventory
from app.rules import local_date
from tests.conftest import CatalogProduct, Cli, Run


@dataclass(frozen=True)
class Shop:
    partner_id: str
    stand_id: str


def onboard(run: Cli, *, activate: bool = True, package: str = "growth") -> Shop:
    r = run(
        "--json",
        "partner",
        "onboard",
        "--name",
        "Kiosk am Markt GmbH",
        "--contact",
        "Hans Müller",
        "--package",
        package,
        "--email",
        "hans@example.com",
        "--stand-name",
        "Kiosk am Markt",
        "--address",
        "Marktplatz 1",
        "--city",
        "Berlin",
        "--type",
        "kiosk",
        "--capacity",
        "240",
        "--lat",
        "52.52",
        "--lon",
        "13.40",
        "--rep",
        "rep.anna",
        *[f"--product=SKU-00{i}" for i in range(6)],
    )
    assert r.code == 0, r.err
    data = r.json()
    shop = Shop(data["partner_id"], data["stand"]["stand_id"])
    if activate:
        assert run("loyalty", "activate", shop.partner_id).code == 0
    return shop


@pytest.fixture
def shop(run: Cli, catalog: list[CatalogProduct]) -> Shop:
    return onboard(run)


def on_hand(run: Cli, stand_id: str) -> dict[str, int]:
    r = run("--json", "stand", stand_id)
    assert r.code == 0, r.err
    return {row["sku"]: row["on_hand"] for row in r.json()["inventory"]}


def assert_refused(r: Run, *fragments: str) -> None:
    """Exit 2, nothing on stdout, exactly one ``standctl: error:`` line on stderr."""
    assert r.code == 2, (r.out, r.err)
    assert r.out == ""
    assert len(r.err_lines) == 1, r.err
    assert r.err_lines[0].startswith("standctl: error: ")
    for fragment in fragments:
        assert fragment in r.err


# --------------------------------------------------------------------------- database


def test_db_upgrade_and_info(run: Cli, tmp_path: Path) -> None:
    r = run("db", "upgrade")
    assert r.code == 0
    assert f"revision {head_revision()}" in r.out
    assert str(tmp_path) in r.out

    r = run("--json", "db", "info")
    info = r.json()
    assert info["revision"] == head_revision()
    assert info["database"].endswith("stand.db")
    assert {info["stands"], info["partners"], info["products"]} == {0}
    assert len(info["device_id"]) == 36

    r = run("db", "info")
    assert "Device id:" in r.out
    assert "Pending ops:" in r.out


def test_demo_data_lives_in_its_own_folder(run: Cli, tmp_path: Path) -> None:
    r = run("--demo", "--json", "db", "info")
    assert r.code == 0
    assert Path(r.json()["database"]) == tmp_path.resolve() / "demo" / "stand.db"
    assert_refused(run("--demo", "--db-url", "sqlite:///x.db", "stands"), "--demo")


# --------------------------------------------------------------------------- partners, stands


def test_onboard_activate_and_list(run: Cli, catalog: list[CatalogProduct]) -> None:
    shop = onboard(run, activate=False)
    r = run("--json", "stands")
    [row] = r.json()
    assert (row["id"], row["status"], row["sku_count"]) == (shop.stand_id, "planned", 6)

    r = run("loyalty", "activate", shop.partner_id)
    assert r.code == 0
    assert "balance 250 points" in r.out

    r = run("stands")
    assert r.code == 0
    header, rule, line, *_ = r.out.splitlines()
    assert header.split()[:3] == ["Name", "City", "Partner"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert "Kiosk am Markt" in line
    assert "active" in line
    assert shop.stand_id in line

    stands = run("--json", "stands", "--status", "active", "--attention", "--sort", "city").json()
    assert [s["id"] for s in stands] == [shop.stand_id]
    assert run("--json", "stands", "--search", "hamburg").json() == []

    detail = run("--json", "stand", shop.stand_id).json()
    assert detail["payment_reference"].startswith("SP-")
    assert detail["qr_payload"] == (
        f"standpay:v1?stand={shop.stand_id}&ref={detail['payment_reference']}"
    )
    assert {row["state"] for row in detail["inventory"]} == {"out"}
    assert Decimal(detail["inventory"][0]["list_price"]) > 0

    human = run("stand", shop.stand_id).out
    assert "Payment ref:" in human
    assert "SKU-000" in human
    assert "1.50" in human


def test_onboard_prints_ids_reference_and_qr(run: Cli, catalog: list[CatalogProduct]) -> None:
    r = run(
        "partner",
        "onboard",
        "--name",
        "Café Rosa",
        "--contact",
        "Rosa",
        "--package",
        "starter",
        "--stand-name",
        "Café Rosa",
        "--address",
        "Hauptstr. 5",
        "--city",
        "Potsdam",
        "--type",
        "cafe",
        "--capacity",
        "120",
    )
    assert r.code == 0, r.err
    assert "Payment ref:" in r.out
    assert "standpay:v1?stand=" in r.out
    partner_id = r.out.split("Partner:", 1)[1].split()[0]
    # Starter allows one stand.
    assert_refused(
        run(
            "partner",
            "add-stand",
            partner_id,
            "--stand-name",
            "Café Rosa 2",
            "--address",
            "Am Bahnhof 1",
            "--city",
            "Potsdam",
            "--type",
            "cafe",
            "--capacity",
            "100",
        ),
        "Starter package allows 1 stand",
    )


# --------------------------------------------------------------------------- sales, counts


def test_sale_by_sku_and_barcode_warns_when_oversold(
    run: Cli, shop: Shop, catalog: list[CatalogProduct]
) -> None:
    barcode = catalog[1].gtin
    r = run("--json", "sale", "record", shop.stand_id, "SKU-000=2", f"{barcode}=1", "--pay", "cash")
    assert r.code == 0, r.err
    result = r.json()
    assert Decimal(result["total"]) == Decimal("5.00")  # 2 x 1.50 + 1 x 2.00
    assert result["points_earned"] == 6  # floor(5.00 x 1.25 growth x 1.00 bronze)
    assert len(result["oversold"]) == 2
    assert result["stock_after"] == {catalog[0].id: -2, catalog[1].id: -1}
    assert len(r.err_lines) == 2
    assert all(line.startswith("standctl: warning: sold ") for line in r.err_lines)

    r = run("sale", "record", shop.stand_id, "SKU-002=1@4.00", "--pay", "qr")
    assert r.code == 0
    assert "Total:" in r.out
    assert "4.00" in r.out
    assert "SKU-002" in r.out
    assert on_hand(run, shop.stand_id)["SKU-002"] == -1


def test_sale_with_order_id_is_idempotent(run: Cli, shop: Shop) -> None:
    order_id = "01900000-0000-7000-8000-000000000001"
    first = run(
        "--json",
        "sale",
        "record",
        shop.stand_id,
        "SKU-000=1",
        "--pay",
        "card",
        "--order-id",
        order_id,
    )
    again = run(
        "--json",
        "sale",
        "record",
        shop.stand_id,
        "SKU-000=1",
        "--pay",
        "card",
        "--order-id",
        order_id,
    )
    assert first.code == again.code == 0
    assert again.json()["duplicate"] is True
    assert "already recorded" in again.err
    assert on_hand(run, shop.stand_id)["SKU-000"] == -1


def test_sale_void(run: Cli, shop: Shop) -> None:
    sale = run("--json", "sale", "record", shop.stand_id, "SKU-003=4", "--pay", "cash").json()
    r = run("--json", "sale", "void", sale["order_id"], "--reason", "wrong product")
    assert r.code == 0, r.err
    void = r.json()
    assert void["voided_order_id"] == sale["order_id"]
    assert Decimal(void["total"]) == -Decimal(sale["total"])
    assert void["points_reversed"] == sale["points_earned"]
    assert on_hand(run, shop.stand_id)["SKU-003"] == 0
    assert_refused(run("sale", "void", sale["order_id"]), "already been voided")


def test_count(run: Cli, shop: Shop, catalog: list[CatalogProduct]) -> None:
    r = run("--json", "count", shop.stand_id, "SKU-000=5", f"{catalog[1].gtin}=0")
    assert r.code == 0, r.err
    lines = {ln["product_id"]: ln for ln in r.json()["lines"]}
    assert lines[catalog[0].id] == {
        "product_id": catalog[0].id,
        "expected": 0,
        "counted": 5,
        "variance": 5,
        "sku": "SKU-000",
        "name": catalog[0].name,
    }
    assert lines[catalog[1].id]["variance"] == 0

    r = run("count", shop.stand_id, "SKU-000=3", "--note", "recount")
    assert r.code == 0
    assert "SKU-000" in r.out
    assert "-2" in r.out
    assert "Total variance: -2" in r.out
    assert on_hand(run, shop.stand_id)["SKU-000"] == 3


# --------------------------------------------------------------------------- refills


def test_refill_lifecycle(run: Cli, shop: Shop, catalog: list[CatalogProduct]) -> None:
    suggestion = run("--json", "refill", "suggest", shop.stand_id).json()
    assert {s["sku"] for s in suggestion} == {f"SKU-00{i}" for i in range(6)}
    assert "Request it with" in run("refill", "suggest", shop.stand_id).out

    r = run(
        "--json", "refill", "request", shop.stand_id, "SKU-000=10", "SKU-001=6", "--note", "weekend"
    )
    assert r.code == 0, r.err
    refill = r.json()
    rid = refill["refill_id"]
    assert refill["status"] == "requested"

    assert_refused(run("refill", "approve", rid), "A rep may not approve a refill")

    r = run("--json", "refill", "approve", rid, "SKU-000=8", role="manager", user="mgr.max")
    assert r.code == 0, r.err
    approved = {ln["product_id"]: ln["approved"] for ln in r.json()["lines"]}
    assert approved == {catalog[0].id: 8, catalog[1].id: 6}

    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    r = run(
        "refill",
        "schedule",
        rid,
        "--date",
        tomorrow,
        "--dealer",
        "Nord Logistik",
        role="manager",
        user="mgr.max",
    )
    assert r.code == 0, r.err
    assert "scheduled" in r.out
    assert "SKU-000" in r.out

    r = run("--json", "refill", "deliver", rid)
    assert r.code == 0, r.err
    assert r.json()["status"] == "delivered"
    stock = on_hand(run, shop.stand_id)
    assert (stock["SKU-000"], stock["SKU-001"]) == (8, 6)

    r = run("--json", "refill", "confirm", rid, "SKU-001=5", role="partner", user="partner")
    assert r.code == 0, r.err
    confirmed = r.json()
    assert confirmed["status"] == "confirmed"
    [discrepancy] = confirmed["discrepancies"]
    assert "discrepancy" in r.err
    assert on_hand(run, shop.stand_id)["SKU-001"] == 6  # stock keeps the delivered figure

    r = run("refill", "resolve", discrepancy, "--accept-received", role="manager")
    assert r.code == 0, r.err
    assert on_hand(run, shop.stand_id)["SKU-001"] == 5

    rows = run("--json", "refill", "list", "--status", "confirmed").json()
    assert [row["id"] for row in rows] == [rid]
    assert "confirmed" in run("refill", "list", "--stand", shop.stand_id).out

    # the exits: a manager rejects, the requester cancels
    other = run("--json", "refill", "request", shop.stand_id).json()["refill_id"]
    r = run("--json", "refill", "reject", other, "--reason", "too soon", role="manager")
    assert r.json()["status"] == "rejected"
    third = run("--json", "refill", "request", shop.stand_id, "SKU-002=6").json()["refill_id"]
    assert_refused(
        run("refill", "cancel", third, "--reason", "x", user="rep.ben"),
        "only the refills they requested",
    )
    assert (
        run("--json", "refill", "cancel", third, "--reason", "closed").json()["status"]
        == "cancelled"
    )
    assert_refused(run("refill", "deliver", third), "This refill is cancelled")


def test_refill_delivered_in_parts(run: Cli, shop: Shop) -> None:
    rid = run("--json", "refill", "request", shop.stand_id, "SKU-000=10", "SKU-001=6").json()[
        "refill_id"
    ]
    assert run("refill", "approve", rid, role="manager").code == 0
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    r = run("refill", "schedule", rid, "--date", tomorrow, "--dealer", "Depot", role="manager")
    assert r.code == 0, r.err
    assert "--more-to-come" in run("refill", "deliver", "--help").out

    r = run("--json", "refill", "deliver", rid, "SKU-000=6", "SKU-001=0", "--more-to-come")
    assert r.code == 0, r.err
    part = r.json()
    assert part["status"] == "scheduled"
    assert [(ln["approved"], ln["delivered"]) for ln in part["lines"]] == [(10, 6), (6, 0)]
    stock = on_hand(run, shop.stand_id)
    assert (stock["SKU-000"], stock["SKU-001"]) == (6, 0)

    r = run("refill", "deliver", rid, "SKU-000=0", "SKU-001=3", "--more-to-come")
    assert r.code == 0, r.err
    assert "scheduled" in r.out
    assert "Partly delivered: 9 of 16 units" in r.out
    assert_refused(
        run("refill", "cancel", rid, "--reason", "late"),
        "Part of this refill was already delivered",
    )
    assert_refused(
        run("refill", "deliver", rid, "SKU-000=5"), "delivered in total but only 10 approved"
    )

    r = run("--json", "refill", "deliver", rid)  # the rest
    assert r.code == 0, r.err
    assert r.json()["status"] == "delivered"
    stock = on_hand(run, shop.stand_id)
    assert (stock["SKU-000"], stock["SKU-001"]) == (10, 6)
    assert run("verify").code == 0


# --------------------------------------------------------------------------- loyalty


def test_loyalty_balance_redeem_and_ledger(run: Cli, shop: Shop) -> None:
    r = run("--json", "loyalty", "balance", shop.partner_id)
    data = r.json()
    assert data["balance"] == 250
    assert data["tier"]["tier_code"] == "bronze"
    assert data["tier"]["points_to_next"] == 2000 - 250
    assert "Bronze" in run("loyalty", "balance", shop.partner_id).out

    r = run("loyalty", "redeem", shop.partner_id, "100", "--note", "display kit")
    assert r.code == 0
    assert "balance 150 points" in r.out

    r = run("loyalty", "redeem", shop.partner_id, "1000")
    assert_refused(r, "has 150 points", "1000 cannot be redeemed")

    r = run("--json", "loyalty", "redeem", shop.partner_id, "1000")
    assert r.code == 2
    assert len(r.err_lines) == 1
    assert r.json() == {
        "error": {
            "code": "limit_exceeded",
            "field": "points",
            "message": r.err_lines[0].removeprefix("standctl: error: "),
        }
    }

    entries = run("--json", "loyalty", "ledger", shop.partner_id).json()
    assert [(e["kind"], e["points"]) for e in entries] == [("redeem", -100), ("activation", 250)]
    assert "activation" in run("loyalty", "ledger", shop.partner_id, "--limit", "5").out

    assert_refused(run("loyalty", "expire"), "may not expire points")
    assert run("--json", "loyalty", "expire", role="manager").json() == []
    assert run("--json", "loyalty", "tiers", role="manager").json() == []


# --------------------------------------------------------------------------- payouts, verify


def test_payout_for_a_past_period(run: Cli, shop: Shop) -> None:
    # The program's today, as payouts count finished periods (not the machine's date, which
    # differs between 23:00 and midnight UTC on a machine that runs on UTC).
    today = local_date(utcnow())
    sold_at = datetime.combine(today - timedelta(days=4), time(12), UTC).isoformat()
    r = run("sale", "record", shop.stand_id, "SKU-005=2", "--pay", "cash", "--at", sold_at)
    assert r.code == 0, r.err  # 2 x 4.00 = 8.00
    period = (
        "--from",
        (today - timedelta(days=8)).isoformat(),
        "--to",
        (today - timedelta(days=2)).isoformat(),
    )

    assert_refused(run("payout", "compute", *period), "may not compute payouts")
    r = run("--json", "payout", "compute", *period, role="manager")
    assert r.code == 0, r.err
    [payout] = r.json()
    assert (payout["partner_id"], payout["order_count"]) == (shop.partner_id, 1)
    assert (Decimal(payout["sales_total"]), Decimal(payout["amount"])) == (
        Decimal("8.00"),
        Decimal("0.96"),
    )  # Growth: 12 %
    assert payout["status"] == "draft"

    human = run("payout", "compute", *period, role="manager").out
    assert "12%" in human
    assert "0.96" in human

    pid = payout["payout_id"]
    pay_on = (today + timedelta(days=3)).isoformat()
    assert (
        run("--json", "payout", "schedule", pid, "--date", pay_on, role="manager").json()["status"]
        == "scheduled"
    )
    assert (
        run("--json", "payout", "paid", pid, "--reference", "BANK-4711", role="manager").json()[
            "status"
        ]
        == "paid"
    )
    assert [p["status"] for p in run("--json", "payout", "list").json()] == ["paid"]

    assert_refused(
        run(
            "payout",
            "compute",
            "--from",
            today.isoformat(),
            "--to",
            today.isoformat(),
            role="manager",
        ),
        "finished periods only",
    )


def test_verify_ok(run: Cli, shop: Shop) -> None:
    run("sale", "record", shop.stand_id, "SKU-000=1", "--pay", "cash")
    run("count", shop.stand_id, "SKU-000=4")
    r = run("verify")
    assert r.code == 0
    assert r.out.startswith("OK")
    assert run("--json", "verify").json() == {"ok": True, "mismatches": []}


def test_verify_lists_mismatches_and_exits_1(run: Cli, shop: Shop, factory: SessionFactory) -> None:
    run("count", shop.stand_id, "SKU-000=4")
    with factory() as s, s.begin():  # corrupt the cache behind the services' back
        s.execute(
            update(StandInventory)
            .where(StandInventory.stand_id == shop.stand_id)
            .values(on_hand=StandInventory.on_hand + 1)
        )
    r = run("verify")
    assert r.code == 1
    assert "6 stand x product pair(s)" in r.out
    data = run("--json", "verify", "--stand", shop.stand_id).json()
    assert data["ok"] is False
    assert {(m["cached"], m["ledger"]) for m in data["mismatches"]} == {(5, 4), (1, 0)}


# --------------------------------------------------------------------------- bad input

UNKNOWN_ID = "01900000-0000-7000-8000-00000000dead"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("sale", "record", "{stand}", "SKU-000=abc", "--pay", "cash"), "whole number"),
        (("sale", "record", "{stand}", "SKU-000=-1", "--pay", "cash"), "must not be negative"),
        (("sale", "record", "{stand}", "SKU-000", "--pay", "cash"), "is not SKU=QTY@PRICE"),
        (("sale", "record", "{stand}", "SKU-000=1@abc", "--pay", "cash"), "amount like 12.50"),
        (("sale", "record", "{stand}", "SKU-000=0", "--pay", "cash"), "at least 1"),
        (("sale", "record", "{stand}", "SKU-000=1"), "--pay"),
        (("sale", "record", "{stand}", "SKU-000=1", "--pay", "bitcoin"), "invalid choice"),
        (("sale", "record", UNKNOWN_ID, "SKU-000=1", "--pay", "cash"), "No stand with id"),
        (("stand", "not-a-stand"), "No stand with id"),
        (("sale", "record", "{stand}", "NOPE-1=1", "--pay", "cash"), "No product with id, SKU"),
        (("count", "{stand}", "NOPE-1=1"), "No product with id, SKU"),
        (("count", "{stand}", "SKU-000=1@2.00"), "price"),
        (("count", "{stand}", "SKU-000=1", "SKU-000=2"), "listed twice"),
        (("count", "{stand}", "SKU-029=1"), "not carried"),
        (("--role", "boss", "stands"), "invalid choice: 'boss'"),
        (
            ("refill", "schedule", UNKNOWN_ID, "--date", "2025-02-30", "--dealer", "x"),
            "is not a date",
        ),
        (
            ("refill", "schedule", UNKNOWN_ID, "--date", "tomorrow", "--dealer", "x"),
            "is not a date",
        ),
        (("payout", "compute", "--from", "2025-01-01", "--to", "01/31/2025"), "is not a date"),
        (
            ("sale", "record", "{stand}", "SKU-000=1", "--pay", "cash", "--at", "noon"),
            "is not a time",
        ),
        (
            (
                "partner",
                "onboard",
                "--name",
                "X",
                "--contact",
                "Y",
                "--package",
                "growth",
                "--city",
                "Berlin",
            ),
            "a stand needs --stand-name, --address, --type, --capacity",
        ),
        (
            ("partner", "onboard", "--name", "X", "--contact", "Y", "--package", "gold"),
            "No package 'gold'",
        ),
        (("loyalty", "redeem", "{partner}", "0"), "1 or more"),
        (("frobnicate",), "invalid choice"),
        ((), "required: COMMAND"),
    ],
)
def test_bad_input_is_refused_with_one_line(
    run: Cli, shop: Shop, args: tuple[str, ...], fragment: str
) -> None:
    argv = [a.format(stand=shop.stand_id, partner=shop.partner_id) for a in args]
    assert_refused(run(*argv), fragment)


def test_bad_role_from_environment(run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAND_OS_ROLE", "boss")
    assert_refused(run("stands"), "STAND_OS_ROLE='boss' is not a role")


def test_role_and_user_from_environment(
    run: Cli, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = run("--json", "refill", "request", shop.stand_id, "SKU-000=3").json()["refill_id"]
    monkeypatch.setenv("STAND_OS_ROLE", "manager")
    assert run("--json", "refill", "approve", rid).json()["status"] == "approved"


def test_unexpected_error_is_one_line_and_exit_1(run: Cli, tmp_path: Path) -> None:
    """A real fault, not a planted one: the database file is not a database."""
    (tmp_path / "stand.db").write_bytes(b"this is not an SQLite file " * 100)
    r = run("stands")
    assert r.code == 1
    assert len(r.err_lines) == 1
    assert r.err_lines[0].startswith("standctl: error: unexpected ")
    assert "file is not a database" in r.err_lines[0]
    assert r.err_lines[0].endswith("(run with --debug for the traceback)")
    r = run("--debug", "stands")
    assert r.code == 1
    assert "Traceback" in r.err


def test_json_flag_is_accepted_after_the_command(run: Cli, shop: Shop) -> None:
    r = run("stands", "--json")
    assert [s["id"] for s in r.json()] == [shop.stand_id]


# --------------------------------------------------------------------------- help, demo


def test_help_in_process(run: Cli) -> None:
    r = run("sale", "record", "--help")
    assert r.code == 0
    assert "examples:" in r.out
    assert "--pay" in r.out


def test_installed_entry_point_help() -> None:
    exe = Path(sys.executable).parent / "standctl"
    assert exe.exists(), f"the standctl entry point is not installed next to {sys.executable}"
    proc = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: standctl")
    for word in (
        "db",
        "demo",
        "stands",
        "sale",
        "count",
        "refill",
        "partner",
        "loyalty",
        "payout",
        "verify",
        "not authenticated",
    ):
        assert word in proc.stdout.replace("NOT", "not")


def test_demo_generates_into_the_demo_folder(run: Cli, tmp_path: Path) -> None:
    r = run("--json", "demo", "--stands", "3", "--days", "20", "--seed", "7")
    assert r.code == 0, r.err
    assert r.err == ""  # no progress line when stderr is not a terminal
    summary = r.json()
    assert Path(summary["database"]) == tmp_path.resolve() / "demo" / "stand.db"
    assert summary["summary"]["stands"] == 3
    assert run("--json", "db", "info").json()["stands"] == 0  # real data untouched
    info = run("--demo", "--json", "db", "info").json()
    assert info["stands"] == 3
    assert run("--demo", "verify").code == 0
    assert_refused(run("demo", "--stands", "3", "--days", "20"), "--reset")
    r = run("demo", "--stands", "3", "--days", "20", "--reset")
    assert r.code == 0, r.err
    assert "Stands:" in r.out
    assert re.search(r"Elapsed seconds:\s+\d+\.\d s", r.out), r.out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_only_on_a_terminal() -> None:
    term = _Terminal()
    progress = cli._Progress(term)
    progress("simulate", 0.25)
    progress("write", 1.0)
    progress.done()
    text = term.getvalue()
    assert text.startswith("\rsimulate 25%")
    assert "write 100%" in text
    assert text.endswith("\r")
    pipe = io.StringIO()
    cli._Progress(pipe)("simulate", 0.5)
    assert pipe.getvalue() == ""


# --------------------------------------------------------------------------- products


def test_fresh_database_set_up_from_the_command_line(run: Cli) -> None:
    """No fixtures: products, a partner, a stand and a sale, all through standctl."""
    for sku, gtin in (("COLA-033", "4006381333931"), ("CHIPS-100", "")):
        args = [
            "product",
            "add",
            "--sku",
            sku,
            "--name",
            f"{sku} name",
            "--category",
            "drinks",
            "--price",
            "1.90",
            "--cost",
            "0.80",
            "--pack-size",
            "6",
        ]
        if gtin:
            args += ["--gtin", gtin]
        r = run(*args, role="manager")
        assert r.code == 0, r.err
    r = run("--json", "product", "list")
    assert [p["sku"] for p in r.json()] == ["CHIPS-100", "COLA-033"]
    assert r.json()[1]["list_price"] == "1.9000"

    r = run(
        "--json",
        "partner",
        "onboard",
        "--name",
        "Späti",
        "--contact",
        "Ada",
        "--package",
        "starter",
        "--stand-name",
        "Späti Ecke",
        "--address",
        "Ecke 1",
        "--city",
        "Berlin",
        "--type",
        "kiosk",
        "--capacity",
        "60",
    )
    assert r.code == 0, r.err
    stand_id = r.json()["stand"]["stand_id"]
    assert run("loyalty", "activate", r.json()["partner_id"]).code == 0
    r = run("--json", "sale", "record", stand_id, "4006381333931=2", "--pay", "cash")
    assert r.code == 0, r.err
    assert r.json()["total"] == "3.80"


def test_product_add_rejects_bad_input(run: Cli) -> None:
    r = run(
        "product",
        "add",
        "--sku",
        "A",
        "--name",
        "A",
        "--category",
        "c",
        "--price",
        "1.00",
        "--cost",
        "0.50",
        role="rep",
    )
    assert r.code == 2
    assert "rep may not change the catalog" in r.err
    r = run(
        "product",
        "add",
        "--sku",
        "A",
        "--name",
        "A",
        "--category",
        "c",
        "--price",
        "1.00",
        "--cost",
        "0.50",
        "--gtin",
        "4006381333932",
        role="manager",
    )
    assert r.code == 2
    assert r.err.strip() == "standctl: error: '4006381333932' is not a valid GTIN (check digit)."
    r = run(
        "product",
        "add",
        "--sku",
        "A",
        "--name",
        "A",
        "--category",
        "c",
        "--price",
        "abc",
        "--cost",
        "0.50",
        role="manager",
    )
    assert r.code == 2
    assert "List price must be an amount" in r.err
    assert run("--json", "product", "list").json() == []


def test_product_update_and_discontinue(run: Cli) -> None:
    assert (
        run(
            "product",
            "add",
            "--sku",
            "A",
            "--name",
            "A",
            "--category",
            "c",
            "--price",
            "1.00",
            "--cost",
            "0.50",
            role="manager",
        ).code
        == 0
    )
    r = run(
        "--json", "product", "update", "A", "--price", "1.20", "--max-price", "1.50", role="manager"
    )
    assert r.code == 0, r.err
    assert (r.json()["list_price"], r.json()["max_price"]) == ("1.2000", "1.5000")
    r = run("product", "update", "A", "--price", "2.00", role="manager")
    assert r.code == 2
    assert "above the maximum price" in r.err
    assert run("product", "update", "A", "--active", "no", role="manager").code == 0
    assert run("--json", "product", "list").json() == []
    assert len(run("--json", "product", "list", "--all").json()) == 1
