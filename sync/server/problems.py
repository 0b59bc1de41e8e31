"""Errors as RFC 9457 problem details, and nothing internal in them.

Every refusal leaves the server as ``application/problem+json`` with a stable ``code``, the
HTTP status, one sentence for the person at the screen (``detail``) and, for invalid input,
the fields at fault (``errors``). The mapping from the domain's exceptions is here and
nowhere else:

=========================  ======  ==========================================
domain exception           status  meaning
=========================  ======  ==========================================
ValidationError            422     the input is wrong; nothing was saved
AuthenticationFailed       401     no, an unknown, expired or revoked token
PermissionDenied           403     the caller's role may not do this
NotFound                   404     no such record *that the caller may see*
InvalidTransition          409     not allowed from the record's current state
LimitExceeded, Conflict    409     a package limit, or an idempotency key reused
=========================  ======  ==========================================

An unexpected exception is logged with its traceback on the server and answered with a
generic 500: a stack trace, SQL or a file path never reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from sync.protocol import PROBLEM_MEDIA_TYPE, FieldError, Problem

log = logging.getLogger("stand.server")

PROBLEM_BASE = "https://stand-program.example/problems/"

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Server error",
    503: "Try again later",
}

_STATUS_OF: tuple[tuple[type[DomainError], int], ...] = (
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (InvalidTransition, 409),
    (LimitExceeded, 409),
    (Conflict, 409),
    (ValidationError, 422),
)


class TooManyAttempts(Exception):
    """Sign-ins for a user name are paused after too many wrong passwords."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many attempts")
        self.retry_after = retry_after


def status_of(exc: DomainError) -> int:
    for cls, status in _STATUS_OF:
        if isinstance(exc, cls):
            return status
    return 422


def problem_response(
    status: int,
    detail: str,
    *,
    code: str,
    instance: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    expected_seq: int | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_BASE + code,
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=instance,
        code=code,
        errors=list(errors),
        expected_seq=expected_seq,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude={"expected_seq"} if expected_seq is None else None),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _field_path(loc: Sequence[Any]) -> str:
    # FastAPI prefixes where the value came from ("body", "query"...); the client knows.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _error_field(err: dict[str, Any]) -> str:
    kind = err.get("type")
    if kind == "json_invalid":
        return "body"  # pydantic's location is a byte offset into the text
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = (err.get("ctx") or {}).get("discriminator", "")
        return str(discriminator).strip("'\"") or "body"
    return _field_path(err.get("loc", ()))


def _validation_message(err: dict[str, Any]) -> str:
    message = str(err.get("msg", "Invalid value"))
    # pydantic prefixes errors raised by our own validators with "Value error, ".
    return message.removeprefix("Value error, ")


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    status = status_of(exc)
    errors = [FieldError(field=exc.field, message=exc.message)] if exc.field else []
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem_response(
        status,
        exc.message,
        code=exc.code,
        instance=request.url.path,
        errors=errors if status in (404, 409, 422) else (),
        headers=headers,
        expected_seq=getattr(exc, "expected_seq", None),
    )


async def _on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(field=_error_field(e), message=_validation_message(e)) for e in exc.errors()
    ]
    if len(errors) == 1:
        detail = f"{errors[0].field}: {errors[0].message}."
    else:
        detail = f"{len(errors)} fields are invalid; see errors."
    return problem_response(
        422, detail, code="validation_error", instance=request.url.path, errors=errors
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(status, "Error")
    if status == 404 and detail == "Not Found":
        detail = f"There is no endpoint at {request.url.path}."
    elif status == 405:
        detail = f"{request.method} is not allowed at {request.url.path}."
    if status == 400 and "parsing the body" in detail:
        # A body that is not text in UTF-8: as invalid as malformed JSON, and answered alike.
        return problem_response(
            422,
            "body: The request body is not valid JSON in UTF-8.",
            code="validation_error",
            instance=request.url.path,
            errors=[
                FieldError(field="body", message="The request body is not valid JSON in UTF-8.")
            ],
        )
    code = {
        401: "authentication_failed",
        404: "not_found",
        405: "method_not_allowed",
        413: "request_too_large",
    }.get(status, "http_error")
    headers = dict(exc.headers or {})
    return problem_response(
        status, detail, code=code, instance=request.url.path, headers=headers or None
    )


#: PostgreSQL SQLSTATEs of a lost race (serialization failure, deadlock) and of a lock
#: or statement timeout: the request did nothing and may be sent again.
RETRY_LATER_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014"})


async def _on_database_busy(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if isinstance(exc, DataError):
        # A value the database cannot store (PostgreSQL refuses NUL characters in text):
        # the client's input, not a fault of the server. Nothing was saved.
        return problem_response(
            422,
            "The request holds a value the database cannot store (such as a NUL character).",
            code="validation_error",
            instance=request.url.path,
        )
    message = str(exc.orig).lower()
    busy = isinstance(exc, OperationalError) and ("locked" in message or "busy" in message)
    if busy or getattr(exc.orig, "sqlstate", None) in RETRY_LATER_SQLSTATES:
        return problem_response(
            503,
            "The database is busy; try again in a moment.",
            code="busy",
            instance=request.url.path,
            headers={"Retry-After": "1"},
        )
    return await _on_unexpected(request, exc)


async def _on_too_many_attempts(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TooManyAttempts)
    minutes = max(1, round(exc.retry_after / 60))
    return problem_response(
        429,
        f"Too many wrong passwords for this user; try again in about {minutes} min.",
        code="too_many_attempts",
        instance=request.url.path,
        headers={"Retry-After": str(exc.retry_after)},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error at %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        "Something went wrong on the server; it has been logged. Try again later.",
        code="internal_error",
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(DBAPIError, _on_database_busy)
    app.add_exception_handler(TooManyAttempts, _on_too_many_attempts)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem statuses a route can answer."""
    descriptions = {
        401: "No, an unknown, expired or revoked bearer token.",
        403: "The caller's role may not do this.",
        404: "No such record that the caller may see.",
        409: "Not allowed in the record's current state, or an idempotency key reused "
        "with another request.",
        413: "The request body is larger than the server accepts.",
        422: "The input is invalid; `errors` names the fields.",
        429: "Too many wrong passwords for this user name; retry after `Retry-After` seconds.",
        503: "The database is busy; retry after the `Retry-After` seconds.",
    }
    return {
        status: {
            "description": descriptions.get(status, TITLES.get(status, "Error")),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
