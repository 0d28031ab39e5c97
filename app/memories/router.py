"""HTTP routes for memories once written (`POST /memories` is app/writes): parse, call the service, shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from app.deps import AccessDep, KnownQueryRoute, MemoryServiceDep, get_access
from app.errors import InvalidInput
from app.memories.schemas import HistoryEntry, MemoryItem, MemoryList, MemoryUpdate, SearchRequest, SearchResults
from app.memories.service import Found
from app.params import IdentifierQuery, StatusMessage, query_identifiers

# Every route here needs a key: one added later without thinking of auth is covered too.
router = APIRouter(tags=["memories"], route_class=KnownQueryRoute, dependencies=[Depends(get_access)])


@router.post("/search", response_model=SearchResults, summary="Search memories")
async def search_memories(body: SearchRequest, service: MemoryServiceDep, access: AccessDep) -> Response:
    """A scope's memories ranked as mem0 2.x ranks them: semantic score (1 - cosine distance) plus, when the scope
    has full-text hits for the query, a keyword score, divided by the largest possible sum; `explain` shows both."""
    found = await service.search(body, access)
    return Response(found.rendered("search", _search_json), media_type="application/json")


def _search_json(found: Found) -> bytes:
    """What `response_model=SearchResults` would send: the body validated and serialised by the model."""
    return SearchResults.model_validate(found.search_body()).model_dump_json().encode()


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
    enable_graph: bool | None = Query(None, description="Add the scope's relations (default: with the graph)."),
) -> dict[str, Any]:
    if top_k is not None and limit is not None and top_k != limit:
        raise InvalidInput(f"top_k ({top_k}) and limit ({limit}) differ; send one of them")
    identifiers = query_identifiers(user_id, agent_id, run_id)
    found = await service.list_memories(
        identifiers, top_k or limit, access, show_expired=show_expired, enable_graph=enable_graph
    )
    return found.list_body()


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


@router.post("/reset", response_model=StatusMessage, summary="Reset all memories")
async def reset(service: MemoryServiceDep, access: AccessDep) -> dict[str, str]:
    """Deletes every memory and history row. Admin keys only, and disabled unless MEM0_ALLOW_RESET=true."""
    await service.reset(access)
    return {"message": "All memories reset"}
