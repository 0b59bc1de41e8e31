"""The error contract of the server, over real HTTP.

* Every refusal is ``application/problem+json`` (RFC 9457) with type, title, status,
  detail, code and errors, and nothing internal leaks (no traceback, SQL, file path or
  exception class name); a 422 names each field at fault by its dotted path.
* Idempotency: the same ``Idempotency-Key`` with the same request replays the first answer
  (``Idempotent-Replayed: true``) and has one effect; with another request it is a 409;
  keys are per user; a refused request does not use the key up.
* Client ids (``order_id``, ``refill_id``, ``stand_id``): a repeat answers 200 with
  ``duplicate`` and changes nothing.
* Sign-in: a wrong password and an unknown user are refused alike; the device flow gives a
  working token, and revoking the user ends it.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.db import open_db
from app.models import (
    IdempotencyRecord,
    StandInventory,
    StandLocation,
    StandOrder,
    StandPartner,
    StandRefillOrder,
)
from app.services import users
from sync.server.auth import SignInThrottle
from sync.server.problems import TooManyAttempts
from tests.sync.conftest import Live, serve
from tests.sync.world import PASSWORD, World

PROBLEM = "application/problem+json"
#: What must never reach a client: tracebacks, SQL, paths, exception class names.
LEAKS = (
    "Traceback",
    'File "',
    "sqlalchemy",
    "SELECT ",
    "INSERT ",
    "sqlite3",
    "psycopg",
    "/work/",
    "site-packages",
    ".py",
    "Error(",
    "RequestValidationError",
    "IntegrityError",
    "OperationalError",
    "KeyError",
    "TypeError",
    "errors.pydantic.dev",
)
SMALL_LIMIT = 1024


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def shared(
    world_template: tuple[Path, World], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One server per module for the requests that are refused (they change nothing)."""
    path, world = world_template
    db = tmp_path_factory.mktemp("problems") / "server.db"
    shutil.copyfile(path, db)
    url = f"sqlite:///{db}"
    sm = open_db(url, migrate=False)
    with serve(url) as base:
        yield Live(base, world, sm)
    sm.kw["bind"].dispose()


@pytest.fixture(scope="module")
def small(
    world_template: tuple[Path, World], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A server that takes request bodies of at most ``SMALL_LIMIT`` bytes."""
    path, world = world_template
    db = tmp_path_factory.mktemp("problems_small") / "server.db"
    shutil.copyfile(path, db)
    url = f"sqlite:///{db}"
    sm = open_db(url, migrate=False)
    with serve(url, max_body_bytes=SMALL_LIMIT) as base:
        yield Live(base, world, sm)
    sm.kw["bind"].dispose()


# --------------------------------------------------------------------------- helpers


def new_id() -> str:
    return str(uuid.uuid4())


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with ``status`` (and ``code``), leaking nothing internal."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert {"type", "title", "status", "detail", "code", "errors"} <= set(body), body
    assert body["status"] == status
    assert body["type"].endswith("/" + body["code"])
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert isinstance(body["errors"], list)
    for error in body["errors"]:
        assert set(error) == {"field", "message"}
        assert error["field"]
        assert error["message"]
    if code is not None:
        assert body["code"] == code, body
    for leak in LEAKS:
        assert leak not in r.text, (leak, r.text)
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["errors"]}


def sale(w: World, stand: str = "North Kiosk A", **overrides: Any) -> dict[str, Any]:
    body = {
        "order_id": new_id(),
        "stand_id": w.stand[stand],
        "payment_method": "cash",
        "lines": [{"product": "SKU-A", "quantity": 1}],
    }
    body.update(overrides)
    return body


def push(w: World, **op: Any) -> dict[str, Any]:
    """A push body of one sale (as a device sends it)."""
    payload = {"order": {"id": new_id(), "stand_id": w.stand["North Kiosk A"]}, "pay": "cash"}
    return {
        "device_id": new_id(),
        "ops": [
            {
                "op_id": new_id(),
                "device_seq": 1,
                "op_type": "sale.record",
                "entity_id": new_id(),
                "payload": payload,
                "schema_version": 2,
                "created_at": "2026-11-24T10:00:00+00:00",
                **op,
            }
        ],
    }


def line(**overrides: Any) -> list[dict[str, Any]]:
    return [{"product": "SKU-A", "quantity": 1, **overrides}]


def count(live: Live, model: type, *where: Any) -> int:
    with live.factory() as s, s.begin():
        stmt = select(func.count()).select_from(model)
        if where:
            stmt = stmt.where(*where)
        return int(s.scalar(stmt) or 0)


def on_hand(live: Live, stand: str, sku: str) -> int:
    with live.factory() as s, s.begin():
        value = s.scalar(
            select(StandInventory.on_hand).where(
                StandInventory.stand_id == live.world.stand[stand],
                StandInventory.product_id == live.world.product[sku],
            )
        )
    assert value is not None
    return int(value)


def stock_of(live: Live) -> dict[tuple[str, str], int]:
    return {(n, sku): on_hand(live, n, sku) for n in live.world.stand for sku in ("SKU-A", "SKU-B")}


def state(live: Live) -> tuple[int, ...]:
    """Counts a refused request must leave unchanged."""
    return tuple(
        count(live, m)
        for m in (StandLocation, StandPartner, StandOrder, StandRefillOrder, IdempotencyRecord)
    )


# --------------------------------------------------------------------------- bad requests

#: name -> (method, path under /api/v1, request kwargs, status, fields at fault or None,
#: words the message of the (first) field must contain)
Case = tuple[str, str, dict[str, Any], int, set[str] | None, str]


def bad_requests(w: World) -> dict[str, Case]:
    sid = w.stand["North Kiosk A"]
    rid = w.open_refill["North Kiosk A"]
    json_headers = {"content-type": "application/json"}
    return {
        "invalid-json": (
            "POST",
            "/stand/sales-record",
            {"content": b'{"order_id": ', "headers": json_headers},
            422,
            None,
            "JSON",
        ),
        "not-an-object": ("POST", "/stand/sales-record", {"json": [1, 2]}, 422, {"body"}, ""),
        # The push route reads its body itself (routes_sync.push_request): refused alike.
        "push-invalid-json": (
            "POST",
            "/sync/push",
            {"content": b'{"device_id": ', "headers": json_headers},
            422,
            {"body"},
            "JSON",
        ),
        "push-empty-body": ("POST", "/sync/push", {"headers": json_headers}, 422, {"body"}, ""),
        "push-wrong-content-type": (
            "POST",
            "/sync/push",
            {"content": json.dumps(push(w)).encode(), "headers": {"content-type": "text/plain"}},
            422,
            {"body"},
            "application/json",
        ),
        "push-nul-in-the-text": (
            "POST",
            "/sync/push",
            {
                "content": json.dumps(push(w)).replace("cash", "ca\\u0000sh").encode(),
                "headers": json_headers,
            },
            422,
            {"body"},
            "NUL",
        ),
        "push-no-ops": ("POST", "/sync/push", {"json": {**push(w), "ops": []}}, 422, {"ops"}, ""),
        "push-bad-op": (
            "POST",
            "/sync/push",
            {"json": push(w, device_seq=0)},
            422,
            {"ops.0.device_seq"},
            "",
        ),
        "wrong-content-type": (
            "POST",
            "/stand/sales-record",
            {"content": json.dumps(sale(w)).encode(), "headers": {"content-type": "text/plain"}},
            422,
            None,
            "",
        ),
        "wrong-types": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, payment_method=5, lines=line(quantity="many"))},
            422,
            {"payment_method", "lines.0.quantity"},
            "",
        ),
        "missing-fields": (
            "POST",
            "/stand/sales-record",
            {"json": {}},
            422,
            {"order_id", "stand_id", "payment_method", "lines"},
            "required",
        ),
        "extra-field": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, discount="1.00")},
            422,
            {"discount"},
            "not permitted",
        ),
        "extra-nested-field": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, lines=line(colour="red"))},
            422,
            {"lines.0.colour"},
            "not permitted",
        ),
        "money-as-float": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, lines=line(unit_price=2.5))},
            422,
            {"lines.0.unit_price"},
            "string",
        ),
        "money-as-integer": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, lines=line(unit_price=3))},
            422,
            {"lines.0.unit_price"},
            "string",
        ),
        "money-as-bool": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, lines=line(unit_price=True))},
            422,
            {"lines.0.unit_price"},
            "string",
        ),
        "money-in-exponent-notation": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, lines=line(unit_price="1e3"))},
            422,
            {"lines.0.unit_price"},
            "",
        ),
        "money-negative": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, lines=line(unit_price="-1.00"))},
            422,
            {"lines.0.unit_price"},
            "",
        ),
        "naive-datetime": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, occurred_at="2026-01-01T10:00:00")},
            422,
            {"occurred_at"},
            "timezone",
        ),
        "unknown-payment-method": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, payment_method="bitcoin")},
            422,
            {"payment_method"},
            "cash",
        ),
        "quantity-zero": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, lines=line(quantity=0))},
            422,
            {"lines.0.quantity"},
            "1",
        ),
        "no-lines": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, lines=[])},
            422,
            {"lines"},
            "",
        ),
        "bad-uuid": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w, stand_id="North Kiosk A")},
            422,
            {"stand_id"},
            "",
        ),
        "refill-quantity-negative": (
            "POST",
            f"/stand/refill/{rid}/approve",
            {"json": {"quantities": {"SKU-A": -1}}},
            422,
            {"quantities.SKU-A"},
            "",
        ),
        "refill-line-quantity-zero": (
            "POST",
            "/stand/refill",
            {"json": {"stand_id": sid, "lines": [{"product": "SKU-A", "quantity": 0}]}},
            422,
            {"lines.0.quantity"},
            "",
        ),
        "schedule-bad-date": (
            "POST",
            f"/stand/refill/{rid}/schedule",
            {"json": {"scheduled_for": "tomorrow", "dealer": "Van"}},
            422,
            {"scheduled_for"},
            "",
        ),
        "create-both-partners": (
            "POST",
            "/stand/create",
            {
                "json": {
                    "partner_id": w.partner["N1"],
                    "partner": {"name": "X", "contact_name": "Y", "package_code": "growth"},
                    "stand": {
                        "name": "S",
                        "address": "A",
                        "city": "C",
                        "location_type": "kiosk",
                        "capacity_units": 10,
                    },
                }
            },
            422,
            {"body"},
            "either",
        ),
        "path-id-not-uuid": ("GET", "/stand/not-a-uuid/details", {}, 422, {"stand_id"}, ""),
        "bad-period": (
            "GET",
            f"/stand/performance/{sid}",
            {"params": {"period": "forever"}},
            422,
            {"period"},
            "",
        ),
        "period-too-long": (
            "GET",
            f"/stand/performance/{sid}",
            {"params": {"period": "9999d"}},
            422,
            {"period"},
            "",
        ),
        "limit-zero": ("GET", "/stand/list", {"params": {"limit": 0}}, 422, {"limit"}, ""),
        "unknown-status-filter": (
            "GET",
            "/stand/list",
            {"params": {"status": "closed"}},
            422,
            {"status"},
            "active",
        ),
        "unknown-grant": (
            "POST",
            "/auth/token",
            {"json": {"grant_type": "magic", "username": "admin", "password": "x"}},
            422,
            None,
            "",
        ),
        "empty-idempotency-key": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w), "headers": {"Idempotency-Key": ""}},
            422,
            {"Idempotency-Key"},
            "Idempotency-Key",
        ),
        "long-idempotency-key": (
            "POST",
            "/stand/sales-record",
            {"json": sale(w), "headers": {"Idempotency-Key": "k" * 201}},
            422,
            {"Idempotency-Key"},
            "Idempotency-Key",
        ),
        "unprintable-idempotency-key": (
            "POST",
            "/stand/refill",
            {"json": {"stand_id": sid}, "headers": {"Idempotency-Key": "a\tb"}},
            422,
            {"Idempotency-Key"},
            "Idempotency-Key",
        ),
        "unknown-path": ("GET", f"/stand/{sid}/nothing", {}, 404, set(), ""),
        "unknown-path-outside-stand": ("POST", "/nowhere", {"json": {}}, 404, set(), ""),
        "wrong-method-get": ("GET", "/stand/sales-record", {}, 405, set(), ""),
        "wrong-method-delete": ("DELETE", "/stand/list", {}, 405, set(), ""),
        "wrong-method-put": ("PUT", f"/stand/refill/{rid}/approve", {"json": {}}, 405, set(), ""),
    }


CASES = list(
    bad_requests(
        World(partner={"N1": ""}, stand={"North Kiosk A": ""}, open_refill={"North Kiosk A": ""})
    )
)
ALLOW = {
    "wrong-method-get": "POST",
    "wrong-method-delete": "GET",
    "wrong-method-put": "POST",
}


@pytest.mark.parametrize("case", CASES)
def test_bad_request(case: str, shared: Live) -> None:
    """Each bad request is a problem with the right status and code, names the fields at
    fault (a 422), leaks nothing internal and saves nothing."""
    method, path, kwargs, status, at_fault, words = bad_requests(shared.world)[case]
    before = state(shared)
    with shared.client("admin") as c:
        r = c.request(method, "/api/v1" + path, **kwargs)
    body = assert_problem(r, status)
    assert body["instance"] == "/api/v1" + path
    if status == 422:
        assert body["code"] == "validation_error"
        assert body["errors"], body
        if at_fault is not None:
            assert fields(body) == at_fault, body
        if words:
            assert words.lower() in body["errors"][0]["message"].lower(), body
        if len(body["errors"]) == 1:
            assert body["errors"][0]["message"].rstrip(".") in body["detail"]
    elif status in (404, 409):
        # At most the field that named the record, with the detail as its message.
        assert len(body["errors"]) <= 1
        assert all(e["message"] == body["detail"] for e in body["errors"])
    else:
        assert body["errors"] == []
    if status == 405:
        assert r.headers["allow"] == ALLOW[case]
        assert body["code"] == "method_not_allowed"
    if status == 404:
        assert body["code"] == "not_found"
    assert state(shared) == before


DOMAIN_FIELDS = {
    # A product the stand does not carry: the line's product is at fault.
    "sale-product-not-carried": (
        "/stand/sales-record",
        lambda w: sale(w, "North Cafe", lines=[{"product": "SKU-F", "quantity": 1}]),
        "lines.0.product",
    ),
    "sale-second-line-not-carried": (
        "/stand/sales-record",
        lambda w: sale(
            w,
            "North Cafe",
            lines=[{"product": "SKU-A", "quantity": 1}, {"product": "SKU-F", "quantity": 1}],
        ),
        "lines.1.product",
    ),
    "refill-product-not-carried": (
        "/stand/refill",
        lambda w: {
            "stand_id": w.stand["North Cafe"],
            "lines": [{"product": "SKU-F", "quantity": 1}],
        },
        "lines.0.product",
    ),
}


@pytest.mark.parametrize("case", list(DOMAIN_FIELDS))
def test_service_refusals_name_fields_by_dotted_path(case: str, shared: Live) -> None:
    """A 422 from the services names the field the way a 422 from the schema does: the
    dotted, 0-based path into the request (``lines.0.product``), not a form's own name."""
    path, make, expected = DOMAIN_FIELDS[case]
    before = state(shared)
    with shared.client("admin") as c:
        r = c.post("/api/v1" + path, json=make(shared.world))
    body = assert_problem(r, 422, "validation_error")
    assert fields(body) == {expected}, body
    assert state(shared) == before


def test_problem_schema_is_published(shared: Live) -> None:
    with shared.client() as c:
        spec = c.get("/api/v1/openapi.json").json()
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "errors"} <= set(problem["properties"])
    sale_op = spec["paths"]["/api/v1/stand/sales-record"]["post"]
    for status in ("401", "403", "404", "409", "413", "422"):
        assert PROBLEM in sale_op["responses"][status]["content"], status


# --------------------------------------------------------------------------- body limit


def test_body_over_the_limit_with_content_length(small: Live) -> None:
    before = state(small)
    body = json.dumps({**sale(small.world), "pad": "x" * (SMALL_LIMIT * 2)}).encode()
    with small.client("admin") as c:
        r = c.post(
            "/api/v1/stand/sales-record",
            content=body,
            headers={"content-type": "application/json"},
        )
    problem = assert_problem(r, 413, "request_too_large")
    assert problem["instance"] == "/api/v1/stand/sales-record"
    assert state(small) == before


def test_body_over_the_limit_chunked(small: Live) -> None:
    before = state(small)

    def chunks() -> Iterator[bytes]:
        yield b'{"pad": "'
        for _ in range(64):
            yield b"x" * 256
        yield b'"}'

    with small.client("admin") as c:
        r = c.post(
            "/api/v1/stand/sales-record",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_problem(r, 413, "request_too_large")
    assert state(small) == before


def test_body_within_the_limit_is_handed_on_intact(small: Live) -> None:
    """Just under the cap, chunked: the body reaches the endpoint unchanged."""
    body = sale(small.world, lines=[{"product": "SKU-A", "quantity": 2}])
    raw = json.dumps(body).encode()
    raw = raw[:-1] + b" " * (SMALL_LIMIT - len(raw)) + b"}"
    assert len(raw) == SMALL_LIMIT
    before = on_hand(small, "North Kiosk A", "SKU-A")

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(raw), 100):
            yield raw[i : i + 100]

    with small.client("admin") as c:
        r = c.post(
            "/api/v1/stand/sales-record",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 201, r.text
    assert r.json()["order"]["id"] == body["order_id"]
    assert on_hand(small, "North Kiosk A", "SKU-A") == before - 2


# --------------------------------------------------------------------------- idempotency


def _refill_body(w: World, stand: str = "North Kiosk A", qty: int = 3) -> dict[str, Any]:
    return {"stand_id": w.stand[stand], "lines": [{"product": "SKU-B", "quantity": qty}]}


def _create_body(w: World, name: str) -> dict[str, Any]:
    return {
        "partner_id": w.partner["S1"],
        "stand": {
            "name": name,
            "address": "Weg 2",
            "city": "Munich",
            "location_type": "kiosk",
            "capacity_units": 100,
        },
    }


#: endpoint -> (path, body, the model whose rows it adds, first status)
def _keyed(w: World) -> dict[str, tuple[str, dict[str, Any], type, int]]:
    return {
        "refill": ("/refill", _refill_body(w), StandRefillOrder, 201),
        "sales-record": ("/sales-record", sale(w, "South Kiosk"), StandOrder, 201),
        "create": ("/create", _create_body(w, "Keyed Kiosk"), StandLocation, 201),
    }


@pytest.mark.parametrize("endpoint", ["refill", "sales-record", "create"])
def test_same_key_same_request_replays(endpoint: str, live: Live) -> None:
    """Without client ids, the key alone makes the write happen once."""
    path, body, model, first_status = _keyed(live.world)[endpoint]
    rows = count(live, model)
    stock = on_hand(live, "South Kiosk", "SKU-A")
    key = "key-" + new_id()
    with live.api("admin") as c:
        first = c.post(path, json=body, headers={"Idempotency-Key": key})
        assert first.status_code == first_status, first.text
        assert "idempotent-replayed" not in first.headers
        second = c.post(path, json=body, headers={"Idempotency-Key": key})
        third = c.post(path, json=body, headers={"Idempotency-Key": f'"{key}"'})
    for again in (second, third):
        assert again.status_code == first.status_code, again.text
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == "application/json"
    assert count(live, model) == rows + 1
    if endpoint == "sales-record":
        assert on_hand(live, "South Kiosk", "SKU-A") == stock - 1


def test_replayed_transition_is_not_a_conflict(live: Live) -> None:
    """Approving again with the same key replays the approval (without it: 409)."""
    rid = live.world.open_refill["North Kiosk A"]
    with live.api("mgr.north") as c:
        first = c.post(f"/refill/{rid}/approve", json={}, headers={"Idempotency-Key": "ap-1"})
        assert first.status_code == 200, first.text
        again = c.post(f"/refill/{rid}/approve", json={}, headers={"Idempotency-Key": "ap-1"})
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert_problem(c.post(f"/refill/{rid}/approve", json={}), 409, "invalid_transition")


def test_same_key_other_request_is_conflict(live: Live) -> None:
    w = live.world
    key = "key-" + new_id()
    with live.api("admin") as c:
        first = c.post("/refill", json=_refill_body(w, qty=3), headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        refills = count(live, StandRefillOrder)
        # Another body, the same path.
        r = c.post("/refill", json=_refill_body(w, qty=4), headers={"Idempotency-Key": key})
        body = assert_problem(r, 409, "conflict")
        assert "Idempotency-Key" in body["detail"]
        # The same body on another endpoint.
        r = c.post(
            "/automation/on-low-stock",
            json={"stand_id": w.stand["North Kiosk A"], "product": "SKU-B"},
            headers={"Idempotency-Key": key},
        )
        assert_problem(r, 409, "conflict")
    assert count(live, StandRefillOrder) == refills
    assert count(live, IdempotencyRecord) == 1


def test_keys_belong_to_their_user(live: Live) -> None:
    """Two users may use the same key for different requests: each gets their own."""
    w = live.world
    refills = count(live, StandRefillOrder)
    answers = []
    for user, qty in (("admin", 3), ("mgr.north", 4), ("rep.anna", 5)):
        with live.api(user) as c:
            r = c.post("/refill", json=_refill_body(w, qty=qty), headers={"Idempotency-Key": "k1"})
        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers
        assert r.json()["lines"][0]["requested"] == qty
        answers.append(r.json()["refill_id"])
    assert len(set(answers)) == 3
    assert count(live, StandRefillOrder) == refills + 3


def test_refused_request_does_not_use_the_key(live: Live) -> None:
    w = live.world
    with live.api("rep.anna") as c:
        r = c.post("/refill", json=_refill_body(w, "South Kiosk"), headers={"Idempotency-Key": "k"})
        assert_problem(r, 404, "not_found")
        r = c.post("/refill", json=_refill_body(w), headers={"Idempotency-Key": "k"})
        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers
    assert count(live, IdempotencyRecord) == 1


# --------------------------------------------------------------------------- client ids


def test_sale_repeated_by_order_id(live: Live) -> None:
    w = live.world
    body = sale(w, lines=[{"product": "SKU-A", "quantity": 3}])
    stock = on_hand(live, "North Kiosk A", "SKU-A")
    orders = count(live, StandOrder)
    with live.api("rep.anna") as c:
        first = c.post("/sales-record", json=body)
        assert first.status_code == 201, first.text
        assert first.json()["duplicate"] is False
        again = c.post("/sales-record", json=body)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["order"] == first.json()["order"]
    assert on_hand(live, "North Kiosk A", "SKU-A") == stock - 3
    assert count(live, StandOrder) == orders + 1


def test_refill_repeated_by_refill_id(live: Live) -> None:
    w = live.world
    body = {"refill_id": new_id(), **_refill_body(w)}
    refills = count(live, StandRefillOrder)
    with live.api("rep.anna") as c:
        first = c.post("/refill", json=body)
        assert first.status_code == 201, first.text
        assert first.json()["duplicate"] is False
        again = c.post("/refill", json=body)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["refill_id"] == body["refill_id"]
    assert again.json()["lines"] == first.json()["lines"]
    assert count(live, StandRefillOrder) == refills + 1


def test_create_repeated_by_stand_id(live: Live) -> None:
    w = live.world
    body = {"stand_id": new_id(), **_create_body(w, "Twice Kiosk")}
    stands = count(live, StandLocation)
    with live.api("mgr.south") as c:
        first = c.post("/create", json=body)
        assert first.status_code == 201, first.text
        assert first.json()["duplicate"] is False
        again = c.post("/create", json=body)
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True
        for key in ("stand_id", "partner_id", "name", "payment_reference", "qr_payload"):
            assert again.json()[key] == first.json()[key]
        assert sorted(again.json()["product_ids"]) == sorted(first.json()["product_ids"])
        renamed = {**body, "stand": {**body["stand"], "name": "Other Name"}}
        r = c.post("/create", json=renamed)
        assert_problem(r, 409, "conflict")
    assert count(live, StandLocation) == stands + 1
    with live.factory() as s, s.begin():
        assert s.get_one(StandLocation, body["stand_id"]).name == "Twice Kiosk"


# --------------------------------------------------------------------------- sign-in


def test_wrong_password_and_unknown_user_look_alike(shared: Live) -> None:
    with shared.client() as c:
        wrong = c.post(
            "/api/v1/auth/token",
            json={"grant_type": "password", "username": "rep.anna", "password": "wrong-horse"},
        )
        unknown = c.post(
            "/api/v1/auth/token",
            json={"grant_type": "password", "username": "nobody.here", "password": "wrong-horse"},
        )
    for r in (wrong, unknown):
        assert_problem(r, 401, "authentication_failed")
        assert r.headers["www-authenticate"].lower().startswith("bearer")
    assert wrong.json() == unknown.json()
    assert "rep.anna" not in wrong.text
    assert "nobody" not in unknown.text


def test_auth_endpoints_need_a_token(shared: Live) -> None:
    with shared.client() as c:
        for r in (
            c.get("/api/v1/auth/me"),
            c.post("/api/v1/auth/devices", json={"name": "Tablet"}),
            c.get("/api/v1/auth/me", headers={"Authorization": "Bearer spt_nope"}),
            # The caller is known before a push's body is read.
            c.post(
                "/api/v1/sync/push",
                content=b'{"ops": [',
                headers={"Content-Type": "application/json"},
            ),
        ):
            assert_problem(r, 401, "authentication_failed")
            assert r.headers["www-authenticate"].lower().startswith("bearer")


def test_device_flow_and_revocation(live: Live) -> None:
    with live.client("rep.anna") as c:
        r = c.post("/api/v1/auth/devices", json={"name": "Anna's tablet"})
    assert r.status_code == 201, r.text
    device = r.json()
    assert device["username"] == "rep.anna"
    assert device["device_id"]
    assert device["device_secret"]
    grant = {
        "grant_type": "device",
        "device_id": device["device_id"],
        "device_secret": device["device_secret"],
    }
    with live.client() as c:
        r = c.post("/api/v1/auth/token", json=grant)
        assert r.status_code == 200, r.text
        issued = r.json()
        assert issued["token_type"] == "bearer"
        assert issued["user"]["username"] == "rep.anna"
        expires = datetime.fromisoformat(issued["expires_at"])
        assert expires > datetime.now(UTC) + timedelta(days=1)
        token = issued["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        me = c.get("/api/v1/auth/me", headers=bearer)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "rep.anna"
        assert me.json()["role"] == "rep"
        assert me.json()["territory"] == "rep.anna"
        # The device token is the user's scope on the stand API too.
        r = c.get("/api/v1/stand/list", headers=bearer)
        assert {i["name"] for i in r.json()["items"]} == live.world.stands_of("rep.anna")
        # A wrong secret for the device is refused.
        r = c.post("/api/v1/auth/token", json={**grant, "device_secret": "spd_wrong"})
        assert_problem(r, 401, "authentication_failed")

        with live.factory() as s:
            users.revoke_user(s, "rep.anna")

        for headers in (bearer, {"Authorization": f"Bearer {live.world.token['rep.anna']}"}):
            r = c.get("/api/v1/auth/me", headers=headers)
            assert_problem(r, 401, "authentication_failed")
            assert r.headers["www-authenticate"].lower().startswith("bearer")
            r = c.post(
                "/api/v1/stand/sales-record",
                json=sale(live.world),
                headers=headers,
            )
            assert_problem(r, 401, "authentication_failed")
        # Neither the device nor the password signs in again; the password refusal is the
        # same as for a wrong password.
        assert_problem(c.post("/api/v1/auth/token", json=grant), 401, "authentication_failed")
        r = c.post(
            "/api/v1/auth/token",
            json={"grant_type": "password", "username": "rep.anna", "password": PASSWORD},
        )
        body = assert_problem(r, 401, "authentication_failed")
        assert body["detail"] == users.WRONG_LOGIN
    # Other users are not affected.
    with live.client("rep.ben") as c:
        assert c.get("/api/v1/auth/me").status_code == 200


# --------------------------------------------------------------------------- client ids reused


def _onboarding(stand_id: str | None, partner_id: str | None) -> dict[str, Any]:
    partner: dict[str, Any] = {
        "name": "Kiosk Lindenhof",
        "contact_name": "Lena Vogt",
        "package_code": "starter",
        "region": "North",
    }
    if partner_id is not None:
        partner["id"] = partner_id
    body: dict[str, Any] = {
        "partner": partner,
        "stand": {
            "name": "Kiosk Lindenhof",
            "address": "Lindenweg 1",
            "city": "Hamburg",
            "location_type": "kiosk",
            "capacity_units": 60,
        },
    }
    if stand_id is not None:
        body["stand_id"] = stand_id
    return body


@pytest.mark.parametrize("ids", ["stand_id", "partner.id", "both"])
def test_onboarding_repeated(ids: str, live: Live) -> None:
    """A new partner with its first stand, sent twice (a retry after a lost answer): the
    repeat answers 200 with ``duplicate`` and the first stand; one partner, one stand.
    The endpoint is "idempotent on ``stand_id`` / ``partner.id``"."""
    stand_id = new_id() if ids in ("stand_id", "both") else None
    partner_id = new_id() if ids in ("partner.id", "both") else None
    body = _onboarding(stand_id, partner_id)
    partners, stands = count(live, StandPartner), count(live, StandLocation)
    with live.api("mgr.north") as c:
        first = c.post("/create", json=body)
        assert first.status_code == 201, first.text
        assert first.json()["partner_created"] is True
        again = c.post("/create", json=body)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["stand_id"] == first.json()["stand_id"]
    assert again.json()["partner_id"] == first.json()["partner_id"]
    assert count(live, StandPartner) == partners + 1
    assert count(live, StandLocation) == stands + 1


def _reuse_cases(w: World) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    """name -> (path, first request, another request with the first one's client id)."""
    first_sale = sale(w, lines=[{"product": "SKU-A", "quantity": 1}])
    first_refill = {"refill_id": new_id(), **_refill_body(w, qty=3)}
    first_stand = {"stand_id": new_id(), **_create_body(w, "Reused Kiosk")}
    return {
        "sale-other-lines": (
            "/sales-record",
            first_sale,
            {**first_sale, "lines": [{"product": "SKU-B", "quantity": 4}]},
        ),
        "sale-other-stand": (
            "/sales-record",
            first_sale,
            {**first_sale, "stand_id": w.stand["North Kiosk B"]},
        ),
        "refill-other-lines": (
            "/refill",
            first_refill,
            {**first_refill, "lines": [{"product": "SKU-C", "quantity": 9}]},
        ),
        "refill-other-stand": (
            "/refill",
            first_refill,
            {**first_refill, "stand_id": w.stand["North Kiosk B"]},
        ),
        "create-other-name": (
            "/create",
            first_stand,
            {**first_stand, "stand": {**first_stand["stand"], "name": "Another Name"}},
        ),
    }


REUSE_CASES = list(
    _reuse_cases(World(partner={"S1": ""}, stand={"North Kiosk A": "", "North Kiosk B": ""}))
)


@pytest.mark.parametrize("case", REUSE_CASES)
def test_client_id_reused_for_another_request_is_conflict(case: str, live: Live) -> None:
    """A client id names one request: sent again with other content it is not a repeat
    (which would silently drop the second request behind ``duplicate: true``) but a
    conflict, like an Idempotency-Key reused with another body (409)."""
    path, first, other = _reuse_cases(live.world)[case]
    with live.api("admin") as c:
        r = c.post(path, json=first)
        assert r.status_code == 201, r.text
        before = state(live)
        stock = stock_of(live)
        r = c.post(path, json=other)
        assert_problem(r, 409, "conflict")
        # The first request repeated is still a plain repeat.
        r = c.post(path, json=first)
        assert r.status_code == 200, r.text
        assert r.json()["duplicate"] is True
    assert state(live) == before
    assert stock_of(live) == stock


def test_wrong_passwords_pause_sign_in_for_that_user(live: Live) -> None:
    """After too many wrong passwords for one user name, its sign-ins are refused (429)
    even with the right password; other users are not affected."""
    with live.client() as c:
        throttle_limit = 10
        for _ in range(throttle_limit):
            r = c.post(
                "/api/v1/auth/token",
                json={"grant_type": "password", "username": "rep.anna", "password": "wrong-guess"},
            )
            assert r.status_code == 401, r.text
        right = {"grant_type": "password", "username": "rep.anna", "password": PASSWORD}
        r = c.post("/api/v1/auth/token", json=right)
        assert r.status_code == 429, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "too_many_attempts"
        assert 1 <= int(r.headers["retry-after"]) <= 900
        other = {"grant_type": "password", "username": "rep.ben", "password": PASSWORD}
        assert c.post("/api/v1/auth/token", json=other).status_code == 200
        # The same name in other letter case is the same user.
        shout = {**right, "username": "REP.ANNA"}
        assert c.post("/api/v1/auth/token", json=shout).status_code == 429


def test_sign_in_pause_ends_when_the_failures_age() -> None:
    now = [1000.0]
    throttle = SignInThrottle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("anna")
        throttle.failed("anna")
        now[0] += 10
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check("anna")
    assert refused.value.retry_after == 30  # the first failure is 30 s from 60 s old
    throttle.check("ben")
    now[0] += 30
    throttle.check("anna")  # the first failure aged out: two left, under the limit
