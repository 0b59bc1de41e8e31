"""The sync endpoints: ``POST /sync/push``, ``GET /sync/pull`` and ``GET /sync/bootstrap``
(docs/sync-design.md §3 and §4).

They are thin: the rules live in :mod:`app.services.sync_server`. A push is one write
transaction (retried whole on a serialization failure or a unique race); its answers'
feed numbers are read after the commit. A pull is one read transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.services import apply, feed, snapshot, sync_server
from sync import protocol as p
from sync.server.auth import current_caller, server_of
from sync.server.context import Caller, Server
from sync.server.problems import problem_responses

router = APIRouter(prefix="/sync", tags=["sync"])


def _ops(body: p.PushRequest) -> list[sync_server.PushedOp]:
    return [
        sync_server.PushedOp(
            apply.Op(
                op_id=o.op_id,
                op_type=o.op_type,
                entity_id=o.entity_id,
                payload=o.payload,
                actor=o.actor,
                actor_role=o.actor_role.value if o.actor_role else None,
                created_at=o.created_at,
                base_seq=o.base_seq,
                pending_from_seq=o.pending_from_seq,
                device_id=body.device_id,
                device_seq=o.device_seq,
            ),
            o.schema_version,
        )
        for o in body.ops
    ]


async def push_request(request: Request) -> p.PushRequest:
    """The push body, parsed and checked straight from its JSON text
    (:func:`sync.protocol.from_json_text`): for 500 ops about a third of the time FastAPI's
    way takes (``json.loads``, then the dicts validated and walked for NUL). Refusals are
    the same 422 problems as for any other body."""
    kind = request.headers.get("content-type")
    if kind is not None:
        media = kind.split(";", 1)[0].strip().lower()
        if not (media == "application/json" or media.endswith("+json")):
            raise RequestValidationError(
                [
                    {
                        "type": "model_attributes_type",
                        "loc": ("body",),
                        "msg": "Send the changes as JSON (Content-Type: application/json).",
                        "input": None,
                    }
                ]
            )
    try:
        return p.from_json_text(p.PushRequest, await request.body())
    except PydanticValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


#: The push body as the document shows it (the route reads it with :func:`push_request`).
PUSH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PushRequest"}}},
}


@router.post(
    "/push",
    summary="Push a batch of one device's changes",
    response_model=p.PushResponse,
    responses=problem_responses(401, 403, 409, 413, 422, 503),
    openapi_extra={"requestBody": PUSH_BODY},
)
def push(
    caller: Annotated[Caller, Depends(current_caller)],
    server: Annotated[Server, Depends(server_of)],
    body: Annotated[p.PushRequest, Depends(push_request)],  # read after the caller is known
) -> p.PushResponse:
    """Apply the ops in one transaction and answer each: `applied`, `duplicate` (with the
    outcome it had the first time) or `rejected` with the reason. A batch that skips
    sequence numbers is refused whole (409 `sequence_gap` with `expected_seq`). 5xx means
    only "retry later": send the same ops again."""
    ops = _ops(body)
    result = server.write(lambda s: sync_server.push(s, caller.principal, body.device_id, ops))
    return p.PushResponse(
        results=[
            p.OpResult(
                op_id=a.op_id,
                device_seq=a.device_seq,
                status=a.status,
                outcome=a.outcome,
                server_seq=a.received.server_seq,
                reason=a.received.reason,
                code=a.received.reason_code,
                field=a.received.field,
                amended=a.received.amended,
                payload=dict(a.payload) if a.payload is not None else None,
            )
            for a in result.answers
        ],
        high_water=result.high_water,
        max_ops=sync_server.MAX_PUSH_OPS,
    )


@router.get(
    "/pull",
    summary="Pull the changes after a cursor",
    response_model=p.PullResponse,
    responses=problem_responses(401, 403, 422, 503),
)
def pull(
    caller: Annotated[Caller, Depends(current_caller)],
    server: Annotated[Server, Depends(server_of)],
    since: Annotated[
        int, Query(ge=0, le=2**62, description="The cursor of the last page applied.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=sync_server.MAX_PULL_LIMIT)] = 1000,
) -> p.PullResponse:
    """The changes the caller may see (by role and scope, at pull time), in server order.
    The cursor is a feed sequence number, never a clock."""

    def read(session: Session) -> p.PullResponse:
        page = sync_server.pull(session, caller.principal, since, limit)
        return p.PullResponse(
            ops=[
                p.FeedOp(
                    seq=r.device_seq,
                    op_id=r.op_id,
                    op_type=r.op_type,
                    entity_id=r.entity_id,
                    payload=json.loads(r.payload),
                    schema_version=r.schema_version,
                    actor=r.actor,
                    actor_role=r.actor_role,
                    origin_device_id=r.origin_device_id,
                    amended=r.amended,
                    created_at=r.created_at,
                )
                for r in page.ops
            ],
            cursor=page.cursor,
            more=page.more,
            head=page.head,
        )

    return server.read(read)


@router.get(
    "/bootstrap",
    summary="Download a snapshot of what the caller may see",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "NDJSON, one message per line: `{snapshot_seq, scope}`, then "
            "pages `{table, rows, last_key}`: the catalog, then partner by partner (each "
            "closed by `{partner_done}`), then candidates; last `{done: true}`.",
            "content": {"application/x-ndjson": {}},
        },
        **problem_responses(401, 403, 422, 503),
    },
)
def bootstrap(
    caller: Annotated[Caller, Depends(current_caller)],
    server: Annotated[Server, Depends(server_of)],
    scope: Annotated[
        str,
        Query(
            max_length=80,
            description="`all`, or one of `stand:<id>`, `partner:<id>`, `product:<id>`, "
            "`candidate:<id>` (a refresh after a rejected change).",
        ),
    ] = "all",
    after_partner: Annotated[
        str | None,
        Query(max_length=36, description="Resume: the last `partner_done` received."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=snapshot.PAGE_ROWS)] = snapshot.PAGE_ROWS,
) -> StreamingResponse:
    """A consistent snapshot (one read transaction; repeatable read on PostgreSQL) of every
    synced row the caller may see, by role and scope as the feed is. Pull from
    `snapshot_seq` afterwards. After an interruption, resume with `after_partner`: the
    device then pulls from the oldest `snapshot_seq` it received."""
    target = snapshot.Target.parse(scope)
    access = sync_server.pull_scope(caller.principal)
    if after_partner is not None and target.kind != "all":
        raise ValidationError("Only a download of everything resumes.", field="after_partner")

    def lines() -> Iterator[bytes]:
        with server.reader() as session, session.begin():
            if server.dialect == "postgresql":
                session.connection(
                    execution_options={
                        "isolation_level": "REPEATABLE READ",
                        "postgresql_readonly": True,
                    }
                )
            head = feed.head(session)
            for message in snapshot.stream(
                session, access, target, head=head, after_partner=after_partner, limit=limit
            ):
                yield snapshot.encode_line(message)

    return StreamingResponse(lines(), media_type="application/x-ndjson")
