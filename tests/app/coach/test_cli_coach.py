"""``standctl coach`` on the small program of test_insights, in a real data folder."""

from __future__ import annotations

from decimal import Decimal

from app.coach import insights as rules
from tests.app.coach.test_insights import World
from tests.conftest import Cli

AT = "2026-03-30T12:00+02:00"  # the world's "now"
World_ = tuple[object, World]


def test_coach_for_people(run: Cli, world: World_) -> None:
    r = run("coach", "--at", AT, "--limit", "0")
    assert r.code == 0, r.err
    first = r.out.splitlines()[0]
    assert first.startswith("Coach run at 2026-03-30 ")
    assert "over 6 stands (28 products)" in first
    assert "new, 0 updated" in first
    assert "Severity  Kind" in r.out
    assert "Kiosk K1" in r.out
    assert "sold nothing in 56 days in stock" in r.out
    assert "Refills recommended:" in r.out
    assert "Expected " in r.out
    assert "more insights" not in r.out
    # Again: found before, updated rather than added.
    r = run("coach", "--at", AT, "--limit", "2")
    assert r.code == 0, r.err
    assert "(0 new, 0 updated," in r.out.splitlines()[0]
    assert "more insights (--limit 0 shows all" in r.out


def test_coach_as_json(run: Cli, world: World_) -> None:
    _, w = world
    r = run("--json", "coach", "--at", AT, "--stand", w.stand["K1"])
    assert r.code == 0, r.err
    data = r.json()
    assert data["stands"] == 1
    assert data["series"] == 4
    assert data["service"] == 0.95
    assert data["lead_days"] == 2
    assert data["counts"]["created"] == data["counts"]["insights"] >= 1
    assert set(data["timings"]) == {"load", "forecast", "policy", "insights", "store"}
    (slow,) = [i for i in data["insights"] if i["kind"] == rules.SLOW_MOVER]
    assert slow["stand_name"] == "Kiosk K1"
    assert slow["product_id"] == w.product["D"]
    assert slow["action"]["type"] == "swap_sku"
    assert slow["evidence"]["on_hand"] == 20
    rec = data["recommendations"][0]
    assert rec["stand_id"] == w.stand["K1"]
    assert rec["quantity"] > 0
    assert Decimal(rec["value"]) == Decimal(rec["unit_price"]) * rec["quantity"]
    assert rec["reason"]["service"] == 0.95
    assert rec["message"].startswith("Expected ")
    assert data["stand_risks"][0]["stand_id"] == w.stand["K1"]


def test_listing_and_acting_on_insights(run: Cli, world: World_) -> None:
    assert run("coach", "--at", AT).code == 0
    r = run("--json", "coach", "--list", "--kind", rules.SLOW_MOVER)
    assert r.code == 0, r.err
    (slow,) = r.json()
    assert slow["status"] == "new"
    assert slow["stand_name"] == "Kiosk K1"
    r = run("coach", "--list", "--severity", "critical")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0].split() == ["Id", "Severity", "Status", "Kind", "Stand", "Insight"]
    assert "warning" not in r.out

    r = run("coach", "--dismiss", slow["id"])
    assert r.code == 2
    assert "A reason for dismissing is required" in r.err
    r = run("coach", "--dismiss", slow["id"], "--reason", "Seasonal")
    assert r.code == 0, r.err
    assert r.out.startswith(f"Insight {slow['id']} is now dismissed: ")
    r = run("--json", "coach", "--list", "--kind", rules.SLOW_MOVER)
    assert r.json() == []
    r = run("--json", "coach", "--ack", slow["id"])
    assert r.code == 2
    assert r.json()["error"]["code"] == "invalid_transition"
    r = run("coach", "--done", slow["id"], role="partner")
    assert r.code == 2
    assert "A partner may not" in r.err


def test_coach_refuses_unclear_requests(run: Cli, world: World_) -> None:
    for args, message in (
        (("--stand", "nope"), "No stand with id"),
        (("--service", "1.5"), "service level must be at least 0.5"),
        (("--reason", "why"), "--reason goes with --dismiss or --done"),
        (("--kind", "slow_mover"), "--kind and --severity filter --list"),
        (("--list", "--kind", "gossip"), "not an insight kind"),
        (("--list", "--dismiss", "x"), "not allowed with argument"),
        (("--at", "yesterday"), "is not a time"),
        (("--limit", "-1"), "--limit must be 0 (all) or more"),
    ):
        r = run("coach", "--at", AT, *args) if args[0] != "--at" else run("coach", *args)
        assert r.code == 2, (args, r.err)
        assert message in r.err, (args, r.err)


def test_no_open_insights(run: Cli, world: World_) -> None:
    r = run("coach", "--list")
    assert r.code == 0, r.err
    assert r.out.strip() == "No open coach insights."
