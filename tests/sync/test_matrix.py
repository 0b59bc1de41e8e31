"""The role x endpoint x scope matrix of the stand API, over real HTTP.

The expectations are this file's own (``EXPECTED_ROLES``, ``HOME``, ``FOREIGN`` and
``World.stands_of``), written from the policy and not imported from the server, so the
tests catch the server being wrong:

* a role not allowed for an endpoint gets 403 before any scope check (also on records
  outside its scope), and nothing changes;
* an allowed role gets its answer, and the effect is checked in the database;
* a record outside the caller's scope answers 404 exactly like a record that does not
  exist (the same problem body, apart from the id), and nothing changes;
* no, a malformed, an unknown, an expired or a revoked token answers 401 with
  ``WWW-Authenticate: Bearer`` on every endpoint.

Requests that cannot change anything (reads, and refused writes) go to one server per
module (``shared``); an allowed write gets a fresh server and database (``live``). A
representative part runs again on PostgreSQL (``pg_live``), with uuid ids throughout.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.db import open_db
from app.models import (
    ExpansionCandidate,
    Product,
    StandAIInsight,
    StandInventory,
    StandLocation,
    StandOrder,
    StandPartner,
    StandRefillOrder,
    StandRefillOrderItem,
)
from app.services import users
from tests.sync.conftest import Live, serve
from tests.sync.world import PASSWORD, STANDS, USERS, World

PROBLEM = "application/problem+json"
LEAKS = ("Traceback", "sqlalchemy", "SELECT", 'File "', "/work/", ".py", "Error(")

# --------------------------------------------------------------------------- the policy

ADMIN, MANAGER, REP, PARTNER = "admin", "manager", "rep", "partner"
EVERYONE = frozenset({ADMIN, MANAGER, REP, PARTNER})
STAFF = frozenset({ADMIN, MANAGER, REP})
MANAGERS = frozenset({ADMIN, MANAGER})

ROLE = {
    "admin": ADMIN,
    "mgr.north": MANAGER,
    "mgr.south": MANAGER,
    "rep.anna": REP,
    "rep.ben": REP,
    "partner.n1": PARTNER,
    "partner.s1": PARTNER,
}
USERNAMES = tuple(ROLE)
assert set(USERNAMES) == set(USERS)

#: Who may call which endpoint (before scope): the test's own statement of the policy.
EXPECTED_ROLES: dict[str, frozenset[str]] = {
    "list": EVERYONE,
    "details": EVERYONE,
    "performance": EVERYONE,
    "create": STAFF,
    "refill": STAFF,
    "refill/approve": MANAGERS,
    "refill/schedule": MANAGERS,
    "refill/reject": MANAGERS,
    "refill/deliver": STAFF,
    "refill/cancel": STAFF,
    "refill/confirm": EVERYONE,
    "sales-record": STAFF,
    "ai/refill-forecast": STAFF,
    "ai/performance-insights": STAFF,
    "ai/location-expansion": MANAGERS,
    "automation/on-low-stock": MANAGERS,
}
ENDPOINTS = tuple(EXPECTED_ROLES)
#: Endpoints that change nothing even when allowed.
READS = frozenset({"list", "details", "performance", "ai/refill-forecast"})
#: Endpoints that name a stand (or a refill of a stand): they have a scope to be outside of.
SCOPED = tuple(e for e in ENDPOINTS if e not in ("list", "ai/location-expansion"))

#: A stand in each user's scope (one with an open refill, World.open_refill) ...
HOME = {
    "admin": "North Kiosk A",
    "mgr.north": "North Kiosk A",
    "mgr.south": "South Kiosk",
    "rep.anna": "North Kiosk A",
    "rep.ben": "South Kiosk",
    "partner.n1": "North Kiosk A",
    "partner.s1": "South Kiosk",
}
#: ... and one outside it (also with an open refill). An admin sees everything.
FOREIGN = {
    "mgr.north": "South Kiosk",
    "mgr.south": "North Kiosk A",
    "rep.anna": "South Kiosk",
    "rep.ben": "North Kiosk A",
    "partner.n1": "South Kiosk",
    "partner.s1": "North Kiosk A",
}
TERRITORY = {"rep.anna": "rep.anna", "rep.ben": "rep.ben"}

STEP_BODY: dict[str, dict[str, Any]] = {
    "approve": {},
    "schedule": {"scheduled_for": (date.today() + timedelta(days=2)).isoformat(), "dealer": "Van"},
    "deliver": {},
    "confirm": {},
    "reject": {"reason": "Not needed"},
    "cancel": {"reason": "Stand closed"},
}
#: The steps that take a refill from requested to the state a step needs.
STEPS_BEFORE = {
    "approve": (),
    "reject": (),
    "cancel": (),
    "schedule": ("approve",),
    "deliver": ("approve", "schedule"),
    "confirm": ("approve", "schedule", "deliver"),
}
STATE_AFTER = {
    "approve": "approved",
    "schedule": "scheduled",
    "deliver": "delivered",
    "confirm": "confirmed",
    "reject": "rejected",
    "cancel": "cancelled",
}


def test_world_matches_the_tables(world_template: tuple[Path, World]) -> None:
    """The tables above say what the world is; make sure they still agree with it."""
    _, world = world_template
    for user in USERNAMES:
        assert HOME[user] in world.stands_of(user)
        if user in FOREIGN:
            assert FOREIGN[user] not in world.stands_of(user)
        assert HOME[user] in world.open_refill
        assert FOREIGN.get(user, HOME[user]) in world.open_refill


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def shared(
    world_template: tuple[Path, World], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One server per module for requests that must change nothing (reads and refusals),
    with an expired and a revoked token of rep.anna in ``world.token``."""
    path, world = world_template
    db = tmp_path_factory.mktemp("matrix") / "server.db"
    shutil.copyfile(path, db)
    url = f"sqlite:///{db}"
    sm = open_db(url, migrate=False)
    tokens = dict(world.token)
    with sm() as s:
        tokens["expired"] = users.token_for_password(
            s,
            "rep.anna",
            PASSWORD,
            ttl=timedelta(minutes=5),
            now=datetime.now(UTC) - timedelta(hours=1),
        ).token
    with sm() as s:
        revoked = users.token_for_password(s, "rep.anna", PASSWORD).token
    with sm() as s:
        users.revoke_token(s, revoked)
    tokens["revoked"] = revoked
    view = World(
        product=world.product,
        partner=world.partner,
        stand=world.stand,
        token=tokens,
        open_refill=world.open_refill,
        built_at=world.built_at,
    )
    with serve(url) as base:
        yield Live(base, view, sm)
    sm.kw["bind"].dispose()


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Call:
    """One request of the matrix, and the record it would make (to check it did not)."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    made: tuple[type, str] | None = None
    candidate: str | None = None

    def send(self, client: httpx.Client) -> httpx.Response:
        return client.request(self.method, self.path, json=self.body, params=self.params)


def new_id() -> str:
    return str(uuid.uuid4())


def stand_body(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "address": "Weg 2",
        "city": "Hamburg",
        "location_type": "kiosk",
        "capacity_units": 100,
    }


def call_for(endpoint: str, w: World, stand: str) -> Call:
    """The request of ``endpoint`` aimed at ``stand`` (or its open refill)."""
    sid = w.stand[stand]
    nid = new_id()
    if endpoint == "list":
        return Call("GET", "/list")
    if endpoint == "details":
        return Call("GET", f"/{sid}/details")
    if endpoint == "performance":
        return Call("GET", f"/performance/{sid}", params={"period": "28d"})
    if endpoint == "create":
        partner = w.partner[STANDS[stand][0]]
        body = {"stand_id": nid, "partner_id": partner, "stand": stand_body(f"Matrix {nid[:8]}")}
        return Call("POST", "/create", body, made=(StandLocation, nid))
    if endpoint == "refill":
        body = {"refill_id": nid, "stand_id": sid, "lines": [{"product": "SKU-B", "quantity": 3}]}
        return Call("POST", "/refill", body, made=(StandRefillOrder, nid))
    if endpoint.startswith("refill/"):
        step = endpoint.split("/", 1)[1]
        return Call("POST", f"/refill/{w.open_refill[stand]}/{step}", STEP_BODY[step])
    if endpoint == "sales-record":
        body = {
            "order_id": nid,
            "stand_id": sid,
            "payment_method": "cash",
            "lines": [{"product": "SKU-A", "quantity": 2}],
        }
        return Call("POST", "/sales-record", body, made=(StandOrder, nid))
    if endpoint == "ai/refill-forecast":
        return Call("POST", "/ai/refill-forecast", {"stand_ids": [sid]})
    if endpoint == "ai/performance-insights":
        return Call("POST", "/ai/performance-insights", {"stand_ids": [sid], "refresh": True})
    if endpoint == "ai/location-expansion":
        name = f"Matrix {nid[:8]}"
        body = {
            "candidates": [
                {"name": name, "latitude": 53.56, "longitude": 10.01, "location_type": "kiosk"}
            ]
        }
        return Call("POST", "/ai/location-expansion", body, candidate=name)
    if endpoint == "automation/on-low-stock":
        return Call(
            "POST", "/automation/on-low-stock", {"stand_id": sid, "product": "SKU-B", "on_hand": 1}
        )
    raise AssertionError(endpoint)


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with ``status`` (and ``code``), leaking nothing internal."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert {"type", "title", "status", "detail", "code", "errors"} <= set(body), body
    assert body["status"] == status
    assert body["type"].endswith("/" + body["code"])
    assert body["detail"]
    assert body["title"]
    if code is not None:
        assert body["code"] == code, body
    for leak in LEAKS:
        assert leak not in r.text, (leak, r.text)
    return body


def same_problem_apart_from_id(a: httpx.Response, a_id: str, b: httpx.Response, b_id: str) -> None:
    """Two refusals that must not be told apart: same status, headers that matter and body,
    once each one's own id is blanked out."""
    assert a.status_code == b.status_code
    assert a.headers["content-type"] == b.headers["content-type"]
    masked_a = json.loads(a.text.replace(a_id, "<id>"))
    masked_b = json.loads(b.text.replace(b_id, "<id>"))
    masked_a.pop("instance", None)
    masked_b.pop("instance", None)
    assert masked_a == masked_b


def db_get(live: Live, model: type, record_id: str) -> Any:
    with live.factory() as s, s.begin():
        return s.get(model, record_id)


def refill_status(live: Live, refill_id: str) -> str:
    row = db_get(live, StandRefillOrder, refill_id)
    assert row is not None
    return str(row.status.value)


def refill_skus(live: Live, refill_id: str) -> dict[str, int]:
    with live.factory() as s, s.begin():
        rows = s.execute(
            select(Product.sku, StandRefillOrderItem.requested_qty)
            .join(Product, Product.id == StandRefillOrderItem.product_id)
            .where(StandRefillOrderItem.refill_id == refill_id)
        ).all()
    return dict(rows)


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


def candidate_exists(live: Live, name: str) -> bool:
    with live.factory() as s, s.begin():
        found = s.scalar(select(ExpansionCandidate.id).where(ExpansionCandidate.name == name))
    return found is not None


def assert_nothing_made(live: Live, call: Call, before: dict[str, Any]) -> None:
    """After a refusal: the record the call named does not exist, and nothing else moved."""
    if call.made is not None:
        model, record_id = call.made
        assert db_get(live, model, record_id) is None
    if call.candidate is not None:
        assert not candidate_exists(live, call.candidate)
    assert snapshot(live) == before


def snapshot(live: Live) -> dict[str, Any]:
    """What a refused request must leave as it was: how many stands, partners, orders,
    refills, expansion candidates and coach insights there are, the open refills' states
    and lines, and the stock of every stand (one read transaction)."""
    w = live.world
    counts = [
        select(func.count()).select_from(model).scalar_subquery()
        for model in (
            StandLocation,
            StandPartner,
            StandOrder,
            StandRefillOrder,
            ExpansionCandidate,
            StandAIInsight,
        )
    ]
    open_ids = list(w.open_refill.values())
    with live.factory() as s, s.begin():
        totals = tuple(s.execute(select(*counts)).one())
        states = dict(
            s.execute(
                select(StandRefillOrder.id, StandRefillOrder.status).where(
                    StandRefillOrder.id.in_(open_ids)
                )
            ).all()
        )
        lines = sorted(
            s.execute(
                select(
                    StandRefillOrderItem.refill_id,
                    StandRefillOrderItem.product_id,
                    StandRefillOrderItem.requested_qty,
                ).where(StandRefillOrderItem.refill_id.in_(open_ids))
            ).all()
        )
        stock = sorted(
            s.execute(
                select(StandInventory.stand_id, StandInventory.product_id, StandInventory.on_hand)
            ).all()
        )
    return {"counts": totals, "states": states, "lines": lines, "stock": stock}


def admin_step(live: Live, refill_id: str, step: str) -> None:
    with live.api("admin") as c:
        r = c.post(f"/refill/{refill_id}/{step}", json=STEP_BODY[step])
        assert r.status_code == 200, r.text


def request_as(live: Live, user: str, stand: str) -> str:
    """A refill of 2 x SKU-C on ``stand``, requested by ``user``; its id."""
    rid = new_id()
    with live.api(user) as c:
        body = {"refill_id": rid, "stand_id": live.world.stand[stand]}
        r = c.post("/refill", json={**body, "lines": [{"product": "SKU-C", "quantity": 2}]})
        assert r.status_code == 201, r.text
    return rid


def list_names(c: httpx.Client, limit: int = 2, **filters: Any) -> list[str]:
    """Every stand name of the list, paged through with ``limit`` and the cursor."""
    names: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        params = {"limit": limit, **filters}
        if cursor:
            params["cursor"] = cursor
        r = c.get("/list", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        names += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return names
    raise AssertionError("the list never ended")


# --------------------------------------------------------------------------- roles


def _check_allowed(live: Live, endpoint: str, user: str) -> None:
    """The allowed call answers and has its effect, checked in the database."""
    w = live.world
    stand = HOME[user]
    sid = w.stand[stand]
    call = call_for(endpoint, w, stand)
    step = endpoint.split("/", 1)[1] if endpoint.startswith("refill/") else None
    refill_id = w.open_refill[stand]
    if step == "cancel" and ROLE[user] == REP:
        # A rep cancels the refills they asked for (test_rep_cancels_only_own_requests).
        refill_id = request_as(live, user, stand)
        call = Call("POST", f"/refill/{refill_id}/cancel", STEP_BODY["cancel"])
    if step is not None:
        for earlier in STEPS_BEFORE[step]:
            admin_step(live, refill_id, earlier)
    stock_before = on_hand(live, stand, "SKU-A")
    with live.api(user) as c:
        r = call.send(c)
        if endpoint == "list":
            assert r.status_code == 200, r.text
            names = {item["name"] for item in r.json()["items"]}
            assert names == w.stands_of(user)
        elif endpoint == "details":
            assert r.status_code == 200, r.text
            assert r.json()["stand"]["id"] == sid
        elif endpoint == "performance":
            assert r.status_code == 200, r.text
            assert r.json()["stand_id"] == sid
        elif endpoint == "create":
            assert r.status_code == 201, r.text
            assert call.made is not None
            stand_id = call.made[1]
            row = db_get(live, StandLocation, stand_id)
            assert row is not None
            assert row.partner_id == w.partner[STANDS[stand][0]]
            if ROLE[user] == REP:
                assert row.assigned_rep == TERRITORY[user]
            # The creator sees what they made.
            assert c.get(f"/{stand_id}/details").status_code == 200
        elif endpoint == "refill":
            assert r.status_code == 201, r.text
            assert call.made is not None
            row = db_get(live, StandRefillOrder, call.made[1])
            assert row is not None
            assert (row.stand_id, row.status.value, row.requested_by) == (sid, "requested", user)
            assert refill_skus(live, row.id) == {"SKU-B": 3}
        elif step is not None:
            assert r.status_code == 200, r.text
            assert r.json()["status"] == STATE_AFTER[step]
            assert refill_status(live, refill_id) == STATE_AFTER[step]
            if step == "deliver":
                # The open refill is 5 x SKU-A: delivery puts them on the stand.
                assert on_hand(live, stand, "SKU-A") == stock_before + 5
        elif endpoint == "sales-record":
            assert r.status_code == 201, r.text
            assert call.made is not None
            order = db_get(live, StandOrder, call.made[1])
            assert order is not None
            assert order.stand_id == sid
            assert on_hand(live, stand, "SKU-A") == stock_before - 2
            assert r.json()["stock_after"][w.product["SKU-A"]] == stock_before - 2
        elif endpoint == "ai/refill-forecast":
            assert r.status_code == 200, r.text
            assert [s["stand_id"] for s in r.json()["stands"]] == [sid]
        elif endpoint == "ai/performance-insights":
            assert r.status_code == 200, r.text
            assert all(i["stand_id"] == sid for i in r.json()["insights"])
        elif endpoint == "ai/location-expansion":
            assert r.status_code == 200, r.text
            assert [c["name"] for c in r.json()["candidates"]] == [call.candidate]
            assert call.candidate is not None
            assert candidate_exists(live, call.candidate)
        elif endpoint == "automation/on-low-stock":
            assert r.status_code == 200, r.text
            out = r.json()
            # The stand has a requested refill (5 x SKU-A): SKU-B is added to it.
            assert out["outcome"] == "added"
            assert out["refill"]["refill_id"] == w.open_refill[stand]
            skus = refill_skus(live, w.open_refill[stand])
            assert skus["SKU-A"] == 5
            assert skus["SKU-B"] >= 1
        else:
            raise AssertionError(endpoint)


def _check_forbidden(live: Live, endpoint: str, user: str) -> None:
    """403 on a record in scope and on one outside it (the role is checked first), and
    nothing changes."""
    w = live.world
    targets = [HOME[user]] + ([FOREIGN[user]] if user in FOREIGN else [])
    with live.api(user) as c:
        for stand in targets:
            call = call_for(endpoint, w, stand)
            before = snapshot(live)
            r = call.send(c)
            assert_problem(r, 403, "permission_denied")
            assert_nothing_made(live, call, before)


CELLS = [(e, u) for e in ENDPOINTS for u in USERNAMES]


@pytest.mark.parametrize(("endpoint", "user"), CELLS, ids=[f"{e}-{u}" for e, u in CELLS])
def test_role_allowed(endpoint: str, user: str, request: pytest.FixtureRequest) -> None:
    """One cell of the role x endpoint table: an allowed role gets its answer and its effect
    (a write on a fresh server), any other gets 403 and changes nothing."""
    allowed = ROLE[user] in EXPECTED_ROLES[endpoint]
    if allowed and endpoint not in READS:
        live = request.getfixturevalue("live")
        _check_allowed(live, endpoint, user)
    elif allowed:
        _check_allowed(request.getfixturevalue("shared"), endpoint, user)
    else:
        _check_forbidden(request.getfixturevalue("shared"), endpoint, user)


def test_the_table_covers_every_stand_route(shared: Live) -> None:
    """Every route under /api/v1/stand is in the table above, and its documented roles
    agree with it."""
    with shared.client() as c:
        spec = c.get("/api/v1/openapi.json").json()
    seen: dict[str, str] = {}
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/v1/stand/"):
            continue
        key = path.removeprefix("/api/v1/stand/")
        key = key.replace("{stand_id}/details", "details")
        key = key.replace("performance/{stand_id}", "performance")
        key = key.replace("refill/{refill_id}/", "refill/")
        for op in ops.values():
            seen[key] = op.get("description", "")
    assert set(seen) == set(EXPECTED_ROLES)
    for key, description in seen.items():
        roles_text = description.rsplit("Roles: ", 1)[1].rstrip(".")
        assert set(roles_text.split(", ")) == EXPECTED_ROLES[key], key


# --------------------------------------------------------------------------- scope: 404

#: details and performance are covered stand by stand in test_stand_visibility.
SCOPE_CELLS = [
    (e, u)
    for e in SCOPED
    if e not in ("details", "performance")
    for u in FOREIGN
    if ROLE[u] in EXPECTED_ROLES[e]
]


def _aim_at(call: Call, stand_id: str, target_id: str) -> Call:
    """The same call with ``stand_id`` swapped for ``target_id`` (in path and body)."""
    body = None
    if call.body is not None:
        body = json.loads(json.dumps(call.body).replace(stand_id, target_id))
    return Call(call.method, call.path.replace(stand_id, target_id), body, call.params)


@pytest.mark.parametrize(
    ("endpoint", "user"), SCOPE_CELLS, ids=[f"{e}-{u}" for e, u in SCOPE_CELLS]
)
def test_out_of_scope_is_not_found(endpoint: str, user: str, shared: Live) -> None:
    """A stand (or refill) outside the caller's scope: 404, the same answer as for an id
    that does not exist, and nothing changes."""
    w = shared.world
    stand = FOREIGN[user]
    call = call_for(endpoint, w, stand)
    target = w.open_refill[stand] if endpoint.startswith("refill/") else w.stand[stand]
    if endpoint in ("ai/refill-forecast", "ai/performance-insights"):
        # One foreign stand among visible ones is enough to refuse all.
        assert call.body is not None
        call = Call(
            call.method,
            call.path,
            {**call.body, "stand_ids": [w.stand[HOME[user]], target]},
        )
    before = snapshot(shared)
    with shared.api(user) as c:
        r = call.send(c)
        body = assert_problem(r, 404, "not_found")
        # At most the field that named the record; nothing else about it.
        assert len(body["errors"]) <= 1
        assert all(e["message"] == body["detail"] for e in body["errors"])
        assert_nothing_made(shared, call, before)
        missing = new_id()
        r_missing = _aim_at(call, target, missing).send(c)
        assert_problem(r_missing, 404, "not_found")
        same_problem_apart_from_id(r, target, r_missing, missing)
        assert_nothing_made(shared, call, before)


VISIBILITY = [(u, s) for u in USERNAMES for s in STANDS]


@pytest.mark.parametrize(("user", "stand"), VISIBILITY, ids=[f"{u}-{s}" for u, s in VISIBILITY])
def test_stand_visibility(user: str, stand: str, shared: Live) -> None:
    """details and performance: 200 iff the stand is in the user's scope; else a 404 that
    cannot be told from the one for an id that does not exist."""
    w = shared.world
    sid = w.stand[stand]
    missing = new_id()
    visible = stand in w.stands_of(user)
    with shared.api(user) as c:
        for path in ("/{}/details", "/performance/{}"):
            r = c.get(path.format(sid))
            if visible:
                assert r.status_code == 200, r.text
                got = r.json()
                assert (got["stand"]["id"] if "stand" in got else got["stand_id"]) == sid
            else:
                assert_problem(r, 404, "not_found")
                r_missing = c.get(path.format(missing))
                assert_problem(r_missing, 404, "not_found")
                same_problem_apart_from_id(r, sid, r_missing, missing)


# --------------------------------------------------------------------------- create


def _create(c: httpx.Client, **body: Any) -> tuple[httpx.Response, str]:
    stand_id = new_id()
    payload = {"stand_id": stand_id, "stand": stand_body(f"Matrix {stand_id[:8]}"), **body}
    return c.post("/create", json=payload), stand_id


CREATE_REFUSALS = {
    # A rep's partners are those with a stand in their territory.
    "rep-partner-outside-territory": ("rep.anna", "N2", {}, 404),
    "rep-partner-outside-territory-ben": ("rep.ben", "N1", {}, 404),
    "rep-assigns-another-rep": ("rep.anna", "N1", {"assigned_rep": "rep.ben"}, 403),
    "manager-partner-in-other-region": ("mgr.north", "S1", {}, 404),
    "manager-partner-in-other-region-south": ("mgr.south", "N1", {}, 404),
}


@pytest.mark.parametrize("case", list(CREATE_REFUSALS))
def test_create_refused_by_scope(case: str, shared: Live) -> None:
    user, partner, extra, status = CREATE_REFUSALS[case]
    w = shared.world
    before = snapshot(shared)
    with shared.api(user) as c:
        stand_id = new_id()
        body = {
            "stand_id": stand_id,
            "partner_id": w.partner[partner],
            "stand": {**stand_body(f"Matrix {stand_id[:8]}"), **extra},
        }
        r = c.post("/create", json=body)
    assert_problem(r, status)
    assert db_get(shared, StandLocation, stand_id) is None
    assert snapshot(shared) == before


def test_manager_onboards_only_in_own_region(shared: Live) -> None:
    before = snapshot(shared)
    partner_id = new_id()
    with shared.api("mgr.north") as c:
        r, stand_id = _create(
            c,
            partner={
                "id": partner_id,
                "name": "Southern Shop",
                "contact_name": "Eva Berg",
                "package_code": "growth",
                "region": "South",
            },
        )
    assert_problem(r, 403, "permission_denied")
    assert db_get(shared, StandPartner, partner_id) is None
    assert db_get(shared, StandLocation, stand_id) is None
    assert snapshot(shared) == before


def test_manager_onboarding_lands_in_own_region(live: Live) -> None:
    partner_id = new_id()
    partner = {
        "id": partner_id,
        "name": "New Shop",
        "contact_name": "Eva",
        "package_code": "growth",
    }
    with live.api("mgr.north") as c:
        r, stand_id = _create(c, partner=partner)
        assert r.status_code == 201, r.text
        assert r.json()["partner_created"] is True
        assert c.get(f"/{stand_id}/details").status_code == 200
    row = db_get(live, StandPartner, partner_id)
    assert row is not None
    assert row.region == "North"
    with live.api("mgr.south") as c:
        assert c.get(f"/{stand_id}/details").status_code == 404
        assert f"Matrix {stand_id[:8]}" not in list_names(c, limit=50)


def test_rep_create_defaults_to_own_territory(live: Live) -> None:
    w = live.world
    with live.api("rep.anna") as c:
        r, stand_id = _create(c, partner_id=w.partner["N1"])
        assert r.status_code == 201, r.text
        assert f"Matrix {stand_id[:8]}" in list_names(c)
    row = db_get(live, StandLocation, stand_id)
    assert row is not None
    assert row.assigned_rep == "rep.anna"
    with live.api("rep.ben") as c:
        assert c.get(f"/{stand_id}/details").status_code == 404


def test_package_limit(live: Live) -> None:
    """N1 is on Growth (at most 3 stands) and has 2: a third is fine, a fourth is 409."""
    w = live.world
    with live.api("admin") as c:
        r, third = _create(c, partner_id=w.partner["N1"])
        assert r.status_code == 201, r.text
        before = snapshot(live)
        r, fourth = _create(c, partner_id=w.partner["N1"])
        body = assert_problem(r, 409, "limit_exceeded")
        assert "3" in body["detail"]
    assert db_get(live, StandLocation, third) is not None
    assert db_get(live, StandLocation, fourth) is None
    assert snapshot(live) == before


# --------------------------------------------------------------------------- refill states

WRONG_STATE = {
    # (user, stand, steps taken first by admin, the step that must be refused)
    "approve-twice": ("mgr.north", "North Kiosk A", ("approve",), "approve"),
    "schedule-requested": ("mgr.south", "South Kiosk", (), "schedule"),
    "deliver-requested": ("rep.ben", "South Kiosk", (), "deliver"),
    "confirm-requested": ("partner.n1", "North Kiosk A", (), "confirm"),
    "reject-scheduled": ("admin", "North Kiosk A", ("approve", "schedule"), "reject"),
    "cancel-cancelled": ("rep.anna", "North Kiosk A", ("cancel",), "cancel"),
}


@pytest.mark.parametrize("case", list(WRONG_STATE))
def test_wrong_state_is_conflict(case: str, live: Live) -> None:
    user, stand, first, step = WRONG_STATE[case]
    refill_id = live.world.open_refill[stand]
    for earlier in first:
        admin_step(live, refill_id, earlier)
    status = refill_status(live, refill_id)
    with live.api(user) as c:
        r = c.post(f"/refill/{refill_id}/{step}", json=STEP_BODY[step])
    assert_problem(r, 409, "invalid_transition")
    assert refill_status(live, refill_id) == status


def test_rep_cancels_only_own_requests(live: Live) -> None:
    """A rep may cancel a refill they requested, not one someone else did (the lifecycle:
    "requester or manager")."""
    w = live.world
    theirs = w.open_refill["North Kiosk A"]  # requested by the admin
    with live.api("rep.anna") as c:
        r = c.post(f"/refill/{theirs}/cancel", json=STEP_BODY["cancel"])
        assert_problem(r, 403, "permission_denied")
        assert refill_status(live, theirs) == "requested"
        own = request_as(live, "rep.anna", "North Kiosk A")
        r = c.post(f"/refill/{own}/cancel", json=STEP_BODY["cancel"])
        assert r.status_code == 200, r.text
    assert refill_status(live, own) == "cancelled"


def test_partner_confirms_only_own_refill(live: Live) -> None:
    """A delivered refill on the other partner's stand is not found; on their own, fine."""
    w = live.world
    for stand in ("North Kiosk A", "South Kiosk"):
        for step in ("approve", "schedule", "deliver"):
            admin_step(live, w.open_refill[stand], step)
    with live.api("partner.s1") as c:
        r = c.post(f"/refill/{w.open_refill['North Kiosk A']}/confirm", json={})
        assert_problem(r, 404, "not_found")
    assert refill_status(live, w.open_refill["North Kiosk A"]) == "delivered"
    with live.api("partner.n1") as c:
        r = c.post(f"/refill/{w.open_refill['North Kiosk A']}/confirm", json={})
        assert r.status_code == 200, r.text
        assert r.json()["allowed_actions"] == []
        r = c.post(f"/refill/{w.open_refill['South Kiosk']}/confirm", json={})
        assert_problem(r, 404, "not_found")
    assert refill_status(live, w.open_refill["North Kiosk A"]) == "confirmed"
    assert refill_status(live, w.open_refill["South Kiosk"]) == "delivered"


# --------------------------------------------------------------------------- coach scope


@pytest.mark.parametrize("user", ["mgr.north", "mgr.south"])
def test_location_expansion_names_no_stand_outside_scope(user: str, live: Live) -> None:
    """A manager's expansion scores may use the whole program, but must not hand them the
    ids, names or revenue of stands outside their region."""
    w = live.world
    hidden = set(STANDS) - w.stands_of(user)
    body = {
        "candidates": [
            {
                "name": "Near Munich",
                "latitude": 48.14,
                "longitude": 11.58,
                "location_type": "kiosk",
            },
            {
                "name": "Near Hamburg",
                "latitude": 53.55,
                "longitude": 10.0,
                "location_type": "kiosk",
            },
        ]
    }
    with live.api(user) as c:
        r = c.post("/ai/location-expansion", json=body)
    assert r.status_code == 200, r.text
    for name in hidden:
        assert w.stand[name] not in r.text, (name, r.json())
        assert name not in r.text, (name, r.json())


# --------------------------------------------------------------------------- list


@pytest.mark.parametrize("user", USERNAMES)
def test_list_is_exactly_the_scope(user: str, shared: Live) -> None:
    with shared.api(user) as c:
        for limit in (1, 2, 50):
            names = list_names(c, limit=limit)
            assert len(names) == len(set(names)), names
            assert set(names) == shared.world.stands_of(user)
            assert names == sorted(names)


def _searchable(name: str) -> str:
    pkey, _rep, city = STANDS[name]
    return " ".join((name, city, f"Partner {pkey}", "Hauptstr. 1")).lower()


#: filters -> which stands of the world they keep, given the stand's name and whether the
#: admin's (unfiltered) list flags it as needing attention.
FILTERS: list[tuple[dict[str, str], Callable[[str, bool], bool]]] = [
    ({"status": "active"}, lambda n, a: True),
    ({"status": "paused"}, lambda n, a: False),
    ({"location_type": "kiosk"}, lambda n, a: "Kiosk" in n),
    ({"location_type": "cafe"}, lambda n, a: "Cafe" in n),
    ({"rep": "rep.anna"}, lambda n, a: STANDS[n][1] == "rep.anna"),
    ({"rep": "rep.ben"}, lambda n, a: STANDS[n][1] == "rep.ben"),
    ({"q": "kiosk"}, lambda n, a: "kiosk" in _searchable(n)),
    ({"q": "HAMBURG"}, lambda n, a: "hamburg" in _searchable(n)),
    ({"q": "partner s1"}, lambda n, a: "partner s1" in _searchable(n)),
    ({"q": "north", "location_type": "kiosk"}, lambda n, a: n.startswith("North Kiosk")),
    ({"needs_attention": "true"}, lambda n, a: a),
    ({"needs_attention": "false"}, lambda n, a: not a),
    ({"needs_attention": "true", "rep": "rep.ben"}, lambda n, a: a and STANDS[n][1] == "rep.ben"),
    ({"partner_id": "N1"}, lambda n, a: STANDS[n][0] == "N1"),
    ({"partner_id": "N2"}, lambda n, a: STANDS[n][0] == "N2"),
    ({"partner_id": "S1"}, lambda n, a: STANDS[n][0] == "S1"),
    ({"partner_id": "S1", "status": "active"}, lambda n, a: STANDS[n][0] == "S1"),
]


@pytest.mark.parametrize("user", USERNAMES)
def test_list_filters_never_widen_the_scope(user: str, shared: Live) -> None:
    """Each filter (alone or combined) gives the stands it keeps within the user's scope,
    never one outside it; paged two at a time, so the cursor carries the filters."""
    w = shared.world
    scope = w.stands_of(user)
    with shared.api("admin") as admin:
        r = admin.get("/list", params={"limit": 50})
        assert r.status_code == 200, r.text
        attention = {i["name"]: i["needs_attention"] for i in r.json()["items"]}
    assert set(attention) == set(STANDS)
    for filters, keeps in FILTERS:
        params = dict(filters)
        if "partner_id" in params:
            params["partner_id"] = w.partner[params["partner_id"]]
        everywhere = {n for n in STANDS if keeps(n, attention[n])}
        with shared.api(user) as c:
            got = list_names(c, limit=2, **params)
        assert set(got) == everywhere & scope, (filters, got)


@pytest.mark.parametrize(("user", "other"), [("rep.anna", "rep.ben"), ("rep.ben", "rep.anna")])
def test_rep_filtering_by_another_rep_sees_nothing(user: str, other: str, shared: Live) -> None:
    with shared.api(user) as c:
        r = c.get("/list", params={"rep": other})
    assert r.status_code == 200, r.text
    assert r.json() == {"items": [], "next_cursor": None, "limit": 50}


BAD_CURSORS = {
    "garbage": "not a cursor!",
    "not-base64-json": "bm90IGpzb24",
    "json-not-object": "WzEsMiwzXQ",
    "wrong-types": "eyJuIjogMSwgImkiOiAyLCAiZiI6IDN9",
    "missing-keys": "e30",
}


@pytest.mark.parametrize("case", list(BAD_CURSORS))
def test_bad_cursor(case: str, shared: Live) -> None:
    with shared.api("admin") as c:
        r = c.get("/list", params={"limit": 1, "cursor": BAD_CURSORS[case]})
    body = assert_problem(r, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["cursor"]


def test_cursor_reused_with_other_filters(shared: Live) -> None:
    with shared.api("admin") as c:
        first = c.get("/list", params={"limit": 1, "location_type": "kiosk"}).json()
        cursor = first["next_cursor"]
        assert cursor
        for other in ({}, {"location_type": "cafe"}, {"location_type": "kiosk", "q": "north"}):
            r = c.get("/list", params={"limit": 1, "cursor": cursor, **other})
            body = assert_problem(r, 422, "validation_error")
            assert [e["field"] for e in body["errors"]] == ["cursor"]
        # With the same filters it carries on (and another limit is fine).
        r = c.get("/list", params={"limit": 5, "cursor": cursor, "location_type": "kiosk"})
        assert r.status_code == 200, r.text


def test_cursor_of_one_user_does_not_widen_another(shared: Live) -> None:
    """A cursor is a position, not a permission: rep.anna paging on with the admin's cursor
    still sees only her own stands."""
    with shared.api("admin") as c:
        cursor = c.get("/list", params={"limit": 1}).json()["next_cursor"]
    with shared.api("rep.anna") as c:
        r = c.get("/list", params={"limit": 50, "cursor": cursor})
    assert r.status_code == 200, r.text
    assert {i["name"] for i in r.json()["items"]} <= shared.world.stands_of("rep.anna")


# --------------------------------------------------------------------------- 401

AUTH_KINDS = ("none", "malformed", "garbage", "expired", "revoked")


def _auth_headers(kind: str, w: World) -> list[dict[str, str]]:
    token = w.token["rep.anna"]
    if kind == "none":
        return [{}]
    if kind == "malformed":
        return [
            {"Authorization": "Basic cmVwLmFubmE6Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5"},
            {"Authorization": "Bearer"},
            {"Authorization": token},
            {"Authorization": f"Token {token}"},
            {"Authorization": f"Bearer{token}"},
        ]
    if kind == "garbage":
        return [
            {"Authorization": "Bearer spt_" + "x" * 43},
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": "Bearer " + "spt_" + "y" * 500},
        ]
    return [{"Authorization": f"Bearer {w.token[kind]}"}]


AUTH_CELLS = [(e, k) for e in ENDPOINTS for k in AUTH_KINDS]


@pytest.mark.parametrize(("endpoint", "kind"), AUTH_CELLS, ids=[f"{e}-{k}" for e, k in AUTH_CELLS])
def test_unauthenticated(endpoint: str, kind: str, shared: Live) -> None:
    w = shared.world
    writes = call_for(endpoint, w, "North Kiosk A").method != "GET"
    before = snapshot(shared) if writes else None
    for headers in _auth_headers(kind, w):
        call = call_for(endpoint, w, "North Kiosk A")
        with shared.api() as c:
            r = c.request(
                call.method, call.path, json=call.body, params=call.params, headers=headers
            )
        body = assert_problem(r, 401, "authentication_failed")
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), headers
        assert "rep.anna" not in body["detail"]
        if call.made is not None:
            assert db_get(shared, *call.made) is None
    if writes:
        assert snapshot(shared) == before


# --------------------------------------------------------------------------- PostgreSQL


@pytest.mark.parametrize("user", USERNAMES)
def test_pg_list_is_exactly_the_scope(user: str, pg_live: Live) -> None:
    with pg_live.api(user) as c:
        names = list_names(c, limit=1)
    assert len(names) == len(set(names))
    assert set(names) == pg_live.world.stands_of(user)


def _pg_refill(live: Live, stand: str, *steps: str) -> str:
    """A refill of 4 x SKU-C on ``stand``, made by the admin and taken through ``steps``."""
    rid = new_id()
    with live.api("admin") as c:
        body = {"refill_id": rid, "stand_id": live.world.stand[stand]}
        r = c.post("/refill", json={**body, "lines": [{"product": "SKU-C", "quantity": 4}]})
        assert r.status_code == 201, r.text
    for step in steps:
        admin_step(live, rid, step)
    return rid


@pytest.mark.parametrize("role", [ADMIN, MANAGER, REP, PARTNER])
def test_pg_one_write_per_role(role: str, pg_live: Live) -> None:
    w = pg_live.world
    if role == ADMIN:
        oid = new_id()
        before = on_hand(pg_live, "North Cafe", "SKU-A")
        with pg_live.api("admin") as c:
            r = c.post(
                "/sales-record",
                json={
                    "order_id": oid,
                    "stand_id": w.stand["North Cafe"],
                    "payment_method": "qr",
                    "lines": [{"product": "SKU-A", "quantity": 3}],
                },
            )
        assert r.status_code == 201, r.text
        assert db_get(pg_live, StandOrder, oid) is not None
        assert on_hand(pg_live, "North Cafe", "SKU-A") == before - 3
    elif role == MANAGER:
        rid = _pg_refill(pg_live, "South Kiosk")
        with pg_live.api("mgr.south") as c:
            r = c.post(f"/refill/{rid}/approve", json={})
        assert r.status_code == 200, r.text
        assert refill_status(pg_live, rid) == "approved"
    elif role == REP:
        rid = new_id()
        with pg_live.api("rep.ben") as c:
            r = c.post(
                "/refill",
                json={
                    "refill_id": rid,
                    "stand_id": w.stand["North Cafe"],
                    "lines": [{"product": "SKU-E", "quantity": 2}],
                },
            )
        assert r.status_code == 201, r.text
        assert refill_status(pg_live, rid) == "requested"
        assert refill_skus(pg_live, rid) == {"SKU-E": 2}
    else:
        rid = _pg_refill(pg_live, "North Kiosk B", "approve", "schedule", "deliver")
        with pg_live.api("partner.n1") as c:
            r = c.post(f"/refill/{rid}/confirm", json={})
        assert r.status_code == 200, r.text
        assert refill_status(pg_live, rid) == "confirmed"


def test_pg_out_of_scope_and_forbidden(pg_live: Live) -> None:
    w = pg_live.world
    oid = new_id()
    sale = {
        "order_id": oid,
        "stand_id": w.stand["South Kiosk"],
        "payment_method": "cash",
        "lines": [{"product": "SKU-A", "quantity": 1}],
    }
    before = on_hand(pg_live, "South Kiosk", "SKU-A")
    with pg_live.api("rep.anna") as c:
        r = c.post("/sales-record", json=sale)
        assert_problem(r, 404, "not_found")
        r_missing = c.post("/sales-record", json={**sale, "stand_id": (missing := new_id())})
        same_problem_apart_from_id(r, w.stand["South Kiosk"], r_missing, missing)
    with pg_live.api("partner.s1") as c:
        assert_problem(c.post("/sales-record", json=sale), 403, "permission_denied")
    assert db_get(pg_live, StandOrder, oid) is None
    assert on_hand(pg_live, "South Kiosk", "SKU-A") == before
    with pg_live.api("mgr.north") as c:
        for path in ("/{}/details", "/performance/{}"):
            assert_problem(c.get(path.format(w.stand["South Kiosk"])), 404, "not_found")


def _nul_requests(w: World) -> dict[str, tuple[str | None, str, str, dict[str, Any]]]:
    """name -> (user or None, method, path, request kwargs), each with a NUL character in a
    text input (valid JSON: ``\\u0000``)."""
    sid = w.stand["North Kiosk A"]
    sale = {
        "order_id": new_id(),
        "stand_id": sid,
        "payment_method": "cash",
        "lines": [{"product": "SKU-A\x00", "quantity": 1}],
    }
    refill = {"stand_id": sid, "note": "a\x00b", "lines": [{"product": "SKU-A", "quantity": 1}]}
    create = {"partner_id": w.partner["N1"], "stand": stand_body("Kiosk\x00")}
    grant = {"grant_type": "password", "username": "adm\x00in", "password": "x"}
    return {
        "sign-in-username": (None, "POST", "/api/v1/auth/token", {"json": grant}),
        "sale-product": ("admin", "POST", "/api/v1/stand/sales-record", {"json": sale}),
        "refill-note": ("admin", "POST", "/api/v1/stand/refill", {"json": refill}),
        "stand-name": ("admin", "POST", "/api/v1/stand/create", {"json": create}),
        "list-search": ("admin", "GET", "/api/v1/stand/list", {"params": {"q": "a\x00b"}}),
    }


NUL_CASES = list(
    _nul_requests(World(partner={"N1": ""}, stand={"North Kiosk A": ""}, open_refill={}))
)


@pytest.mark.parametrize("case", NUL_CASES)
def test_pg_nul_character_is_a_client_error(case: str, pg_live: Live) -> None:
    """PostgreSQL text cannot hold NUL; input with one is the client's error (4xx), not a
    500, and changes nothing (SQLite stores such text, so this is PostgreSQL's own test)."""
    user, method, path, kwargs = _nul_requests(pg_live.world)[case]
    before = snapshot(pg_live)
    with pg_live.client(user) as c:
        r = c.request(method, path, **kwargs)
    assert 400 <= r.status_code < 500, r.text
    assert_problem(r, r.status_code)
    assert snapshot(pg_live) == before
