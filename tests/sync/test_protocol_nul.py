"""NUL characters are refused anywhere in a request, however deep, and nothing else is:
text that merely reads like the JSON escape for NUL is a person's text."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from sync.protocol import Model, Nested, PushRequest, from_json_text
from sync.server.app import create_app

DEVICE = "0190a1c2-7e4b-7c3d-9a1b-2c3d4e5f6a70"


def _push(payload: dict[str, Any], actor: str = "rep.anna") -> dict[str, Any]:
    return {
        "device_id": DEVICE,
        "ops": [
            {
                "op_id": "0190a1c2-7e4b-7c3d-9a1b-2c3d4e5f6a71",
                "device_seq": 1,
                "op_type": "sale.record",
                "entity_id": "0190a1c2-7e4b-7c3d-9a1b-2c3d4e5f6a72",
                "payload": payload,
                "schema_version": 2,
                "actor": actor,
                "created_at": "2026-11-24T10:00:00+00:00",
            }
        ],
    }


@pytest.mark.parametrize(
    ("payload", "actor"),
    [
        ({"note": "a\x00b"}, "rep.anna"),
        ({"order": {"items": [{"note": "deep \x00"}]}}, "rep.anna"),
        ({"key\x00": 1}, "rep.anna"),
        ({"note": "fine"}, "rep.\x00anna"),
    ],
)
def test_a_nul_anywhere_is_refused(payload: dict[str, Any], actor: str) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        PushRequest.model_validate(_push(payload, actor))


def test_text_that_reads_like_the_escape_is_kept() -> None:
    note = "typed \\u0000 by hand"
    request = PushRequest.model_validate(_push({"note": note, "n": [1, 2.5, None, True]}))
    assert request.ops[0].payload["note"] == note


def test_a_request_parsed_from_json_text_is_checked_the_same() -> None:
    request = _push({"n": "x"})
    body = json.dumps(request).replace('"x"', '"x\\u0000"')
    assert "\\u0000" in body
    with pytest.raises(ValidationError, match="NUL"):
        PushRequest.model_validate_json(body)


def test_a_push_read_from_its_text_is_checked_the_same() -> None:
    """from_json_text (the push route's reader) reads the text for the NUL escape instead
    of walking the values: a NUL anywhere is refused, text that reads like it is kept."""
    body = json.dumps(_push({"n": "x", "deep": [{"k": "v"}]}))
    assert from_json_text(PushRequest, body.encode()).ops[0].payload["n"] == "x"
    for nul in ('"x"', '"v"', '"k"', '"rep.anna"'):
        bad = body.replace(nul, nul[:-1] + '\\u0000"')
        with pytest.raises(ValidationError, match="NUL"):
            from_json_text(PushRequest, bad.encode())
    note = "typed \\u0000 by hand"
    typed = json.dumps(_push({"note": note}))
    assert "\\\\u0000" in typed
    assert from_json_text(PushRequest, typed.encode()).ops[0].payload["note"] == note


def _api_routes(routes: typing.Iterable[Any]) -> typing.Iterator[APIRoute]:
    """The API routes, inside included routers too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def test_every_request_body_is_checked_for_nul(tmp_path: Path) -> None:
    """A route's body is a :class:`Model` (whose check covers its parts), never a
    :class:`Nested` part on its own (which is not checked again)."""
    app = create_app(f"sqlite:///{tmp_path / 'spec.db'}")
    try:
        bodies = []
        for route in _api_routes(app.routes):
            for name, kind in typing.get_type_hints(route.endpoint).items():
                if isinstance(kind, type) and issubclass(kind, BaseModel) and name != "return":
                    bodies.append(kind)
    finally:
        app.state.server.engine.dispose()
    assert PushRequest in bodies
    assert all(issubclass(kind, Model) for kind in bodies), bodies
    assert not any(issubclass(kind, Nested) for kind in bodies)
