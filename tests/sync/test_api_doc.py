"""docs/api.md, the contract document, against the live OpenAPI document of the server.

Every operation the server publishes is in the document (as ``METHOD /path``), and every
``METHOD /api/v1/...`` the document mentions exists. Every operation has a summary and
documents its refusals as problem details: 401 (unless anyone may call it) and 422 (when
it takes any input); every request body comes with an example.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import errors
from sync.server import problems
from tests.sync.conftest import Live

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
PROBLEM_REF = "#/components/schemas/Problem"
#: Operations anyone may call, without a token: no 401.
PUBLIC = {"GET /api/v1/health", "POST /api/v1/auth/token"}
#: Served, but not operations of the contract (FastAPI leaves them out of the document);
#: the document may mention them, and they must answer.
NOT_IN_SPEC = {"GET /api/v1/openapi.json", "GET /api/v1/docs"}
#: "GET /api/v1/..." in running text, code or a table; a path ends at a space, a quote, a
#: closing bracket or the query string.
MENTION = re.compile(r"\b(GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS) (/api/v1/[^\s`'\"()<>\[\]?#|]*)")


@pytest.fixture
def spec(live: Live) -> dict[str, Any]:
    with live.client() as c:
        r = c.get("/api/v1/openapi.json")
    assert r.status_code == 200, r.text
    spec: dict[str, Any] = r.json()
    return spec


@pytest.fixture(scope="module")
def doc() -> str:
    assert DOC.is_file(), f"{DOC} is missing"
    return DOC.read_text(encoding="utf-8")


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """("METHOD /path", operation) of every operation in the document."""
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", op


def _template(path: str) -> re.Pattern[str]:
    """A path of the spec as a pattern: a ``{param}`` matches one concrete segment."""
    parts = re.split(r"(\{[^}/]+\})", path)
    return re.compile(
        "".join(r"[^/]+" if p.startswith("{") and p.endswith("}") else re.escape(p) for p in parts)
        + "$"
    )


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name]
    return schema


def _has_examples(schema: dict[str, Any]) -> bool:
    return bool(schema.get("examples")) or "example" in schema


def _value_has_examples(spec: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> bool:
    """Whether a field's schema has examples: on the field, or on the value it holds
    (through references, ``anyOf``/``oneOf`` alternatives and array items). Examples of a
    map's keys alone (``propertyNames``) give no example of a body and do not count."""
    if depth > 4:
        return False
    if _has_examples(schema):
        return True
    if "$ref" in schema:
        return _value_has_examples(spec, _resolve(spec, schema), depth + 1)
    alternatives = [*schema.get("anyOf", ()), *schema.get("oneOf", ()), *schema.get("allOf", ())]
    if "items" in schema:
        alternatives.append(schema["items"])
    return any(_value_has_examples(spec, s, depth + 1) for s in alternatives)


def _body_has_example(spec: dict[str, Any], media: dict[str, Any]) -> bool:
    """A request body has an example: on the media type, the body model, or a field."""
    if _has_examples(media):
        return True
    schema = media.get("schema", {})
    models = [_resolve(spec, s) for s in schema.get("oneOf", schema.get("anyOf", [schema]))]
    return all(
        _has_examples(model)
        or any(_value_has_examples(spec, f) for f in model.get("properties", {}).values())
        for model in models
    )


def _problem_response(op: dict[str, Any], status: str) -> str | None:
    """Why the operation's ``status`` response is not a documented Problem, or None."""
    response = op.get("responses", {}).get(status)
    if response is None:
        return f"no {status} response"
    content = response.get("content", {})
    refs = {media: body.get("schema", {}).get("$ref") for media, body in content.items()}
    if PROBLEM_REF not in refs.values():
        return f"{status} is not a Problem: {refs}"
    return None


# --------------------------------------------------------------------------- the document


def test_every_operation_is_in_the_document(spec: dict[str, Any], doc: str) -> None:
    missing = [name for name, _op in operations(spec) if name not in doc]
    assert not missing, "docs/api.md does not mention: " + ", ".join(missing)


def test_every_mentioned_operation_exists(live: Live, spec: dict[str, Any], doc: str) -> None:
    known = [
        (name.split(" ", 1)[0], _template(name.split(" ", 1)[1])) for name, _op in operations(spec)
    ]
    mentioned = {f"{m} {p}" for m, p in MENTION.findall(doc)}
    assert mentioned, "docs/api.md mentions no operation at all"
    unknown = sorted(
        name
        for name in mentioned - NOT_IN_SPEC
        if not any(
            method == name.split(" ", 1)[0] and pattern.match(name.split(" ", 1)[1])
            for method, pattern in known
        )
    )
    assert not unknown, "docs/api.md mentions operations the server does not have: " + ", ".join(
        unknown
    )
    with live.client() as c:
        for name in sorted(mentioned & NOT_IN_SPEC):
            method, path = name.split(" ", 1)
            r = c.request(method, path)
            assert r.status_code == 200, f"{name}: {r.status_code}"


def test_the_document_lists_every_problem_code(doc: str) -> None:
    """The table of codes has a row per code the server answers with, with its status: the
    domain's exceptions (app/errors.py, mapped in sync/server/problems.py) and the server's
    own refusals."""
    domain = [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.DomainError)
    ]
    expected = {cls.code: problems.status_of(cls("x")) for cls in domain}
    expected.update(method_not_allowed=405, request_too_large=413, busy=503, internal_error=500)
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    missing = [
        f"{code} ({status})"
        for code, status in sorted(expected.items())
        if not any(re.match(rf"\| `{code}` \| {status} \|", row) for row in rows)
    ]
    assert not missing, "docs/api.md has no table row '| `code` | status |' for: " + ", ".join(
        missing
    )


# --------------------------------------------------------------------------- the spec


def test_every_operation_has_a_summary(spec: dict[str, Any]) -> None:
    missing = [name for name, op in operations(spec) if not (op.get("summary") or "").strip()]
    assert not missing, "operations without a summary: " + ", ".join(missing)


def test_refusals_are_documented_as_problems(spec: dict[str, Any]) -> None:
    gaps = []
    for name, op in operations(spec):
        if name not in PUBLIC:
            why = _problem_response(op, "401")
            if why:
                gaps.append(f"{name}: {why}")
        # An operation with no parameters and no body has no input to refuse.
        if op.get("parameters") or op.get("requestBody"):
            why = _problem_response(op, "422")
            if why:
                gaps.append(f"{name}: {why}")
    assert not gaps, "\n".join(gaps)


def test_every_request_body_has_an_example(spec: dict[str, Any]) -> None:
    gaps = []
    for name, op in operations(spec):
        body = op.get("requestBody")
        if body is None:
            continue
        for media_type, media in body.get("content", {}).items():
            if not _body_has_example(spec, media):
                schema = media.get("schema", {})
                gaps.append(f"{name} ({media_type}): {schema.get('$ref', schema)}")
    assert not gaps, "request bodies without any example (model or field):\n" + "\n".join(gaps)
