"""HTTP routes for memories: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from app.deps import AccessDep, JobServiceDep, MemoryServiceDep, get_access, reject_unknown_query
from app.errors import InvalidInput
from app.idempotency.schemas import REPLAYED_HEADER, KeyedRequest, request_fingerprint, resolve_key
from app.memories.schemas import (
    AddResponse,
    HistoryEntry,
    IdentifierQuery,
    MemoryCreate,
    MemoryItem,
    MemoryList,
    MemoryUpdate,
    SearchRequest,
    StatusMessage,
    query_identifiers,
)
from app.memories.writes import write_memories

# Every route here needs a key: one added later without thinking of auth is covered too.
router = APIRouter(tags=["memories"], dependencies=[Depends(get_access), Depends(reject_unknown_query)])


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
    service: MemoryServiceDep,
    jobs: JobServiceDep,
    access: AccessDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", description=IDEMPOTENCY_KEY_DOC)] = None,
) -> Any:
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
    key = resolve_key(idempotency_key, body.idempotency_key)
    keyed = None
    if key is not None:
        fingerprint = request_fingerprint(request.method, request.url.path, await request.json())
        keyed = KeyedRequest(access.key_id, key, fingerprint)
    outcome = await write_memories(service, jobs, body, access, keyed)
    return Response(
        outcome.response.body,
        status_code=outcome.response.status,
        media_type="application/json",
        headers={REPLAYED_HEADER: "true"} if outcome.replayed else None,
    )


@router.get("/memories", response_model=MemoryList, summary="List memories")
async def list_memories(
    service: MemoryServiceDep,
    access: AccessDep,
    user_id: IdentifierQuery = None,
    agent_id: IdentifierQuery = None,
    run_id: IdentifierQuery = None,
    top_k: int | None = Query(None, description="How many memories, newest first (default 20, as mem0)."),
    limit: int | None = Query(None, description="Older name for top_k."),
    show_expired: bool = Query(False, description="Include memories past their expiration_date."),
) -> dict[str, Any]:
    if top_k is not None and limit is not None and top_k != limit:
        raise InvalidInput(f"top_k ({top_k}) and limit ({limit}) differ; send one of them")
    identifiers = query_identifiers(user_id, agent_id, run_id)
    found = await service.list_memories(identifiers, top_k or limit, access, show_expired=show_expired)
    return {"results": found}


@router.get("/memories/{memory_id}", response_model=MemoryItem, summary="Get a memory")
async def get_memory(memory_id: str, service: MemoryServiceDep, access: AccessDep) -> dict[str, Any]:
    return await service.get(memory_id, access)


@router.put("/memories/{memory_id}", response_model=MemoryItem, summary="Update a memory")
async def update_memory(
    memory_id: str, body: MemoryUpdate, service: MemoryServiceDep, access: AccessDep
) -> dict[str, Any]:
    """Replace the text (embedded again) and/or the metadata; records an UPDATE in history."""
    return await service.update(memory_id, body, access)


@router.get("/memories/{memory_id}/history", response_model=list[HistoryEntry], summary="Get memory history")
async def memory_history(memory_id: str, service: MemoryServiceDep, access: AccessDep) -> list[dict[str, Any]]:
    return await service.history(memory_id, access)


@router.delete("/memories/{memory_id}", response_model=StatusMessage, summary="Delete a memory")
async def delete_memory(memory_id: str, service: MemoryServiceDep, access: AccessDep) -> dict[str, str]:
    await service.delete(memory_id, access)
    return {"message": "Memory deleted successfully"}


@router.delete("/memories", response_model=StatusMessage, summary="Delete all memories of a scope")
async def delete_memories(
    service: MemoryServiceDep,
    access: AccessDep,
    user_id: IdentifierQuery = None,
    agent_id: IdentifierQuery = None,
    run_id: IdentifierQuery = None,
) -> dict[str, str]:
    deleted = await service.delete_scope(query_identifiers(user_id, agent_id, run_id), access)
    return {"message": f"All relevant memories deleted ({deleted})"}


@router.post("/search", response_model=MemoryList, summary="Search memories")
async def search_memories(body: SearchRequest, service: MemoryServiceDep, access: AccessDep) -> dict[str, Any]:
    """A scope's memories ranked as mem0 2.x ranks them: semantic score (1 - cosine distance) plus, when the scope
    has full-text hits for the query, a keyword score, divided by the largest possible sum; `explain` shows both."""
    return {"results": await service.search(body, access)}


@router.post("/reset", response_model=StatusMessage, summary="Reset all memories")
async def reset(service: MemoryServiceDep, access: AccessDep) -> dict[str, str]:
    """Deletes every memory and history row. Admin keys only, and disabled unless MEM0_ALLOW_RESET=true."""
    await service.reset(access)
    return {"message": "All memories reset"}
