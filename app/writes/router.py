"""`POST /memories`: parse, accept the write, render its result."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from app.auth.access import Access
from app.deps import AccessDep, KnownQueryRoute, WriteServiceDep, get_access
from app.idempotency.schemas import REPLAYED_HEADER, KeyedRequest, request_fingerprint, resolve_key
from app.memories.schemas import AddResponse, MemoryCreate
from app.writes.results import QUEUED_STATUS, STORED_STATUS

router = APIRouter(tags=["memories"], route_class=KnownQueryRoute, dependencies=[Depends(get_access)])


async def keyed_request(
    request: Request, access: Access, header: str | None, body_field: str | None
) -> KeyedRequest | None:
    """The request's idempotency key, bound to its method, path and body, among the caller's keys."""
    key = resolve_key(header, body_field)
    if key is None:
        return None
    return KeyedRequest(access.key_id, key, request_fingerprint(request.method, request.url.path, await request.json()))


def json_answer(body: Any, status: int, *, replayed: bool) -> Response:
    return JSONResponse(body, status_code=status, headers={REPLAYED_HEADER: "true"} if replayed else None)


IDEMPOTENCY_KEY_DOC = (
    "Makes retries safe: the first request with a key runs once; a repeat with the same body answers the stored "
    "status and body byte-for-byte with `Idempotent-Replayed: true`, without storing or calling Ollama again. "
    'Quoted (`"abc"`, RFC 9651 String) or bare; 1-255 characters, no control characters. '
    "The body field `idempotency_key` is accepted too."
)
_ERROR_SHAPE = "`{error, message, request_id}`"


@router.post(
    "/memories",
    response_model=AddResponse,
    summary="Create memories",
    responses={
        200: {"headers": {REPLAYED_HEADER: {"description": "`true` when the answer replays a stored result."}}},
        202: {
            "description": "An inferred write became a job: `{job_id, status}`; follow `GET /jobs/{job_id}`.",
            "headers": {REPLAYED_HEADER: {"description": "`true` when the answer replays a stored result."}},
        },
        400: {
            "description": f"Bad Idempotency-Key (empty, too long, control characters, header and body differ). "
            f"{_ERROR_SHAPE}"
        },
        409: {"description": f"A request with the same key is in flight; see `Retry-After`. {_ERROR_SHAPE}"},
        422: {"description": f"Invalid body, or the key was used for a different request. {_ERROR_SHAPE}"},
    },
)
async def add_memories(
    body: MemoryCreate,
    request: Request,
    writes: WriteServiceDep,
    access: AccessDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", description=IDEMPOTENCY_KEY_DOC)] = None,
) -> Response:
    """Store memories. With `infer: false` each non-system message becomes one memory; a 200 means every
    returned id is committed. With `infer: true` the request becomes a durable job: 202 {job_id, status}
    in async mode, or the extracted results once the job is done (202 with the job id if it takes longer
    than MEM0_INFER_WAIT_S). Any failure answers an error and stores nothing.

    **Idempotency.** Send `Idempotency-Key` (or the body field `idempotency_key`) to retry without
    duplicates. The key is bound to this method, path and JSON body (the key field excluded) and completes
    in the same transaction as the memories. A repeat of a completed key answers the stored status and body
    byte-for-byte with `Idempotent-Replayed: true` and stores nothing; the same key with a different body
    answers 422; while the first request still runs, 409 with `Retry-After`. A failed write (any 4xx or 5xx)
    releases the key, so a retry runs again; the key of a server that died mid-write is retakeable after
    `MEM0_IDEMPOTENCY_LEASE_S`. Keys expire after `MEM0_IDEMPOTENCY_TTL_S` (24 h by default). A keyed
    `infer: true` request always answers 202 with its job id, and replays return that same job id."""
    keyed = await keyed_request(request, access, idempotency_key, body.idempotency_key)
    result = await writes.accept(body, access, keyed)
    return json_answer(result.body(), QUEUED_STATUS if result.queued else STORED_STATUS, replayed=result.replayed)
