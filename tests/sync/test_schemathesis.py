"""Property-based tests of the live server against its own OpenAPI document.

Schemathesis generates requests for every operation of ``/api/v1/openapi.json`` and sends
them to the real server (uvicorn on loopback, one per module, serving a copy of the test
world on SQLite). Every answer is checked: never a 5xx, a status code the document lists
for the operation, the media type the document gives for that status
(``application/problem+json`` for errors) and a body matching the documented schema.

The passes, each bounded and derandomized (``MAX_EXAMPLES`` per operation, no deadline):

* ``test_documented_example``: each request-body example in the document, with its ids
  mapped onto the world (and its dates onto today), must be accepted (2xx): the examples a
  client developer copies work;
* ``test_api_as_admin``: straight from the document, positive and negative data, the
  document's examples and the coverage phase's boundary values. Ids are random UUIDs, so
  most writes end in a 404 or a 422: the robustness pass;
* ``test_api_as_rep``: the same as rep.anna (without the coverage phase): role refusals
  (403) and scope (404) must be documented too;
* ``test_api_deep_as_admin``: positive data only, with every id in a generated request
  swapped for one of the world's real stands, partners, products and refills, so requests
  get past the lookups into the services (sales recorded, refills moved, the coach run).

Why the cases are generated from the document as the app makes it, at import, and not
from the live URL through ``schemathesis.pytest.from_fixture``: with pytest 9.2 the lazy
loader of schemathesis 4.32.5 fails before running anything
(``AttributeError: 'Function' object has no attribute '_nodeid'``; pytest 9.2 keeps node
ids in ``_id``). ``test_live_document`` checks the live server serves exactly this
document, so the cases are those of the live document.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import checks as st_checks

from sync.server.app import create_app
from tests.sync.conftest import serve
from tests.sync.world import PASSWORD, World

SPEC_PATH = "/api/v1/openapi.json"
MAX_EXAMPLES = 25

CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]

#: Refills per open state made for the deep pass to move along.
REFILLS_PER_STATE = 3
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("approve", {}),
    ("schedule", {"dealer": "North van"}),  # for tomorrow, added when sent
    ("deliver", {}),
]
#: The state a refill must be in for each step.
STATE_FOR_STEP = {
    "approve": 0,
    "reject": 0,
    "cancel": 0,
    "schedule": 1,
    "deliver": 2,
    "confirm": 3,
}


# --------------------------------------------------------------------------- the document


def _document() -> dict[str, Any]:
    """The OpenAPI document as the app makes it (on a throwaway database)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(f"sqlite:///{Path(folder) / 'spec.db'}")
        try:
            return json.loads(json.dumps(app.openapi()))
        finally:
            app.state.server.engine.dispose()


DOCUMENT = _document()


def _schema(*, mode: str, coverage: bool) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "generation": {
                "mode": mode,
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": coverage},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "request-timeout": 60,
        }
    )
    return schemathesis.openapi.from_dict(DOCUMENT, config=config)


# --------------------------------------------------------------------------- the server


class Target:
    """The running server and its world."""

    def __init__(self, url: str, world: World) -> None:
        self.url = url
        self.world = world

    def bearer(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.token[username]}"}

    def api(self, username: str = "admin") -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1/stand", headers=self.bearer(username), timeout=60
        )

    def refill_in(self, state: int, stand: str = "North Kiosk B") -> str:
        """A new refill, moved ``state`` steps along (0 requested .. 3 delivered)."""
        with self.api() as c:
            r = c.post(
                "/refill",
                json={
                    "stand_id": self.world.stand[stand],
                    "lines": [{"product": "SKU-A", "quantity": 4}],
                },
            )
            assert r.status_code == 201, r.text
            rid = str(r.json()["refill_id"])
            tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
            for step, body in STEPS[:state]:
                if step == "schedule":
                    body = {**body, "scheduled_for": tomorrow}
                r = c.post(f"/refill/{rid}/{step}", json=body)
                assert r.status_code == 200, r.text
        return rid


#: The real ids the deep pass swaps in: filled by the ``target`` fixture before any case
#: is generated (the hooks are registered at import, when there is no world yet).
REAL: dict[str, list[str]] = {"stand": [], "partner": [], "sku": [], "refill": []}


@pytest.fixture(scope="module")
def target(
    world_template: tuple[Path, World], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """One server for the module, on its own copy of the world."""
    path, world = world_template
    db = tmp_path_factory.mktemp("schemathesis") / "server.db"
    shutil.copyfile(path, db)
    with serve(f"sqlite:///{db}") as url:
        t = Target(url, world)
        stands = ("North Kiosk B", "North Cafe", "South Kiosk")
        refills = [
            t.refill_in(state, stands[n % len(stands)])
            for state in range(4)
            for n in range(REFILLS_PER_STATE)
        ]
        REAL["stand"][:] = sorted(world.stand.values())
        REAL["partner"][:] = sorted(world.partner.values())
        REAL["sku"][:] = sorted(world.product)
        REAL["refill"][:] = [*refills, *world.open_refill.values()]
        yield t


def test_live_document(target: Target) -> None:
    """The live server serves the document the cases here are generated from."""
    r = httpx.get(target.url + SPEC_PATH, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == DOCUMENT


# --------------------------------------------------------------------------- documented examples


def _examples() -> list[tuple[str, str, int, Any]]:
    """(method, path, index, example) for every request-body example in the document."""
    schemas = DOCUMENT["components"]["schemas"]
    out = []
    for path, operations in DOCUMENT["paths"].items():
        for method, op in operations.items():
            media = op.get("requestBody", {}).get("content", {}).get("application/json")
            if not media:
                continue
            found = [e["value"] for e in media.get("examples", {}).values()]
            ref = media["schema"].get("$ref", "")
            if ref:
                found += schemas[ref.rsplit("/", 1)[1]].get("examples", [])
            out += [(method.upper(), path, n, example) for n, example in enumerate(found)]
    return out


EXAMPLES = _examples()


def _onto_world(value: Any, target: Target, fresh: dict[str, str]) -> Any:
    """The example with its ids, products, dates and secrets mapped onto the world."""
    w = target.world
    named = {
        # Existing records the examples name.
        "01936f6e-0000-7000-8000-000000000001": w.partner["N2"],
        "01936f6e-0000-7000-8000-000000000002": w.stand["North Kiosk A"],
        "SKU-001": "SKU-A",
        "4000000000029": "SKU-B",
        "correct horse": PASSWORD,
    }
    if isinstance(value, dict):
        # Keys too: the quantity maps of the refill steps are keyed by product.
        out = {named.get(k, k): _onto_world(v, target, fresh) for k, v in value.items()}
        for key in ("stand_id", "refill_id", "order_id"):
            if isinstance(value.get(key), str) and value[key] not in named:
                # The client-made id of a new record: a new one per run.
                out[key] = fresh.setdefault(value[key], str(uuid.uuid4()))
        if "scheduled_for" in out:
            out["scheduled_for"] = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
        if "occurred_at" in out:
            out["occurred_at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        return out
    if isinstance(value, list):
        return [_onto_world(v, target, fresh) for v in value]
    if isinstance(value, str):
        return named.get(value, value)
    return value


def _register_device(target: Target) -> dict[str, str]:
    r = httpx.post(
        target.url + "/api/v1/auth/devices",
        json={"name": "Example tablet"},
        headers=target.bearer("rep.anna"),
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return {"device_id": r.json()["device_id"], "device_secret": r.json()["device_secret"]}


@pytest.mark.parametrize(
    ("method", "path", "example"),
    [pytest.param(m, p, e, id=f"{m} {p} #{n}") for m, p, n, e in EXAMPLES],
)
def test_documented_example(target: Target, method: str, path: str, example: Any) -> None:
    body = _onto_world(example, target, {})
    if body.get("grant_type") == "device":
        body.update(_register_device(target))
    url = path
    if "{refill_id}" in path:
        step = path.rsplit("/", 1)[1]
        url = path.replace("{refill_id}", target.refill_in(STATE_FOR_STEP[step]))
    r = httpx.request(
        method, target.url + url, json=body, headers=target.bearer("admin"), timeout=60
    )
    assert 200 <= r.status_code < 300, (body, r.status_code, r.text)
    documented = DOCUMENT["paths"][path][method.lower()]["responses"]
    assert str(r.status_code) in documented, (r.status_code, sorted(documented))


def test_every_body_has_an_example() -> None:
    """The write operations a client developer reads first show a request to copy."""
    with_examples = {p for _m, p, _n, _e in EXAMPLES}
    expected = {
        "/api/v1/auth/token",
        "/api/v1/auth/devices",
        "/api/v1/stand/create",
        "/api/v1/stand/refill",
        "/api/v1/stand/sales-record",
        "/api/v1/stand/automation/on-low-stock",
        "/api/v1/stand/ai/location-expansion",
    }
    assert expected <= with_examples, sorted(expected - with_examples)


# --------------------------------------------------------------------------- deep pass


def _real(kind: str) -> st.SearchStrategy[str]:
    values = REAL[kind]
    assert values, f"no real {kind} ids: the target fixture did not run"
    return st.sampled_from(values)


def _product_map(value: Any) -> st.SearchStrategy[Any]:
    if not isinstance(value, dict):
        return st.just(value)
    quantities = st.sampled_from(sorted(set(value.values()), key=repr) or [1])
    return st.dictionaries(_real("sku"), quantities, max_size=3)


def _line(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, dict) and "product" in value:
        return _real("sku").map(lambda sku: {**value, "product": sku})
    return st.just(value)


def _deep_body(_ctx: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    if not isinstance(body, dict):
        return st.just(body)
    parts: dict[str, st.SearchStrategy[Any]] = {k: st.just(v) for k, v in body.items()}
    if "stand_id" in body and "stand" not in body:  # not create's client-made stand id
        parts["stand_id"] = _real("stand")
    if body.get("partner_id") is not None:
        parts["partner_id"] = _real("partner")
    if isinstance(body.get("stand_ids"), list):
        parts["stand_ids"] = st.lists(_real("stand"), min_size=1, max_size=3)
    if isinstance(body.get("product"), str):
        parts["product"] = _real("sku")
    if isinstance(body.get("lines"), list):
        parts["lines"] = st.tuples(*(_line(v) for v in body["lines"])).map(list)
    for key in ("quantities", "received"):
        if isinstance(body.get(key), dict):
            parts[key] = _product_map(body[key])
    return st.fixed_dictionaries(parts)


def _deep_path(_ctx: schemathesis.HookContext, params: Any) -> st.SearchStrategy[Any]:
    if not isinstance(params, dict):
        return st.just(params)
    parts: dict[str, st.SearchStrategy[Any]] = {k: st.just(v) for k, v in params.items()}
    if "stand_id" in params:
        parts["stand_id"] = _real("stand")
    if "refill_id" in params:
        parts["refill_id"] = _real("refill")
    return st.fixed_dictionaries(parts)


ADMIN = _schema(mode="all", coverage=True)
REP = _schema(mode="all", coverage=False)  # the boundary values are the admin pass's
DEEP = _schema(mode="positive", coverage=False)
DEEP.hooks.register_hook_with_name(_deep_body, "flatmap_body")
DEEP.hooks.register_hook_with_name(_deep_path, "flatmap_path_parameters")


# --------------------------------------------------------------------------- the passes


@ADMIN.parametrize()
def test_api_as_admin(case: schemathesis.Case, target: Target) -> None:
    case.call_and_validate(base_url=target.url, headers=target.bearer("admin"), checks=CHECKS)


@REP.parametrize()
def test_api_as_rep(case: schemathesis.Case, target: Target) -> None:
    case.call_and_validate(base_url=target.url, headers=target.bearer("rep.anna"), checks=CHECKS)


#: Status codes the deep pass met, per operation (for test_deep_pass_went_deep).
DEEP_SEEN: dict[str, set[int]] = {}


@DEEP.parametrize()
def test_api_deep_as_admin(case: schemathesis.Case, target: Target) -> None:
    headers = target.bearer("admin")
    response = case.call(base_url=target.url, headers=headers)
    DEEP_SEEN.setdefault(case.operation.label, set()).add(response.status_code)
    case.validate_response(response, checks=CHECKS, headers=headers)


#: The operations whose deep requests must get past the lookups into the services.
DEEP_ENOUGH = {
    "GET /api/v1/stand/list",
    "GET /api/v1/stand/{stand_id}/details",
    "GET /api/v1/stand/performance/{stand_id}",
    "POST /api/v1/stand/create",
    "POST /api/v1/stand/refill",
    "POST /api/v1/stand/sales-record",
    "POST /api/v1/stand/ai/refill-forecast",
    "POST /api/v1/stand/ai/performance-insights",
    "POST /api/v1/stand/ai/location-expansion",
    "POST /api/v1/stand/automation/on-low-stock",
}


def test_deep_pass_went_deep() -> None:
    """The deep pass reached the services (a 2xx) for the main operations, and moved
    refills along: its id swapping works (it runs after the deep pass, in file order)."""
    assert DEEP_SEEN, "the deep pass did not run: run this module as a whole"
    succeeded = {op for op, codes in DEEP_SEEN.items() if any(200 <= c < 300 for c in codes)}
    assert not DEEP_ENOUGH - succeeded, sorted(DEEP_ENOUGH - succeeded)
    steps = {op for op in succeeded if op.startswith("POST /api/v1/stand/refill/")}
    assert len(steps) >= 3, {op: sorted(DEEP_SEEN[op]) for op in DEEP_SEEN}
