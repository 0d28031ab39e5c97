"""HTTP routes for memories: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from app.deps import JobServiceDep, MemoryServiceDep
from app.memories.schemas import (
    AddResponse,
    HistoryEntry,
    MemoryCreate,
    MemoryItem,
    MemoryList,
    MemoryUpdate,
    SearchRequest,
    StatusMessage,
)

router = APIRouter(tags=["memories"])

IdentifierParam = Annotated[str | None, Query(min_length=1, max_length=255)]


def _identifiers(user_id: str | None, agent_id: str | None, run_id: str | None) -> dict[str, str]:
    return {k: v for k, v in (("user_id", user_id), ("agent_id", agent_id), ("run_id", run_id)) if v is not None}


@router.post("/memories", response_model=AddResponse, summary="Create memories")
async def add_memories(body: MemoryCreate, service: MemoryServiceDep, jobs: JobServiceDep) -> Any:
    """Store memories. With `infer: false` each non-system message becomes one memory; a 200 means every
    returned id is committed. With `infer: true` the request becomes a durable job: 202 {job_id, status}
    in async mode, or the extracted results once the job is done (202 with the job id if it takes longer
    than MEM0_INFER_WAIT_S). Any failure answers an error."""
    if body.infer:
        service.check_limits(body)
        status, content = await jobs.submit(body)
        return JSONResponse(status_code=status, content=content)
    return {"results": await service.add(body)}


@router.get("/memories", response_model=MemoryList, summary="List memories")
async def list_memories(
    service: MemoryServiceDep,
    user_id: IdentifierParam = None,
    agent_id: IdentifierParam = None,
    run_id: IdentifierParam = None,
    limit: int | None = Query(None, description="How many memories (default 100)."),
) -> dict[str, Any]:
    return {"results": await service.list_memories(_identifiers(user_id, agent_id, run_id), limit)}


@router.get("/memories/{memory_id}", response_model=MemoryItem, summary="Get a memory")
async def get_memory(memory_id: str, service: MemoryServiceDep) -> dict[str, Any]:
    return await service.get(memory_id)


@router.put("/memories/{memory_id}", response_model=MemoryItem, summary="Update a memory")
async def update_memory(memory_id: str, body: MemoryUpdate, service: MemoryServiceDep) -> dict[str, Any]:
    """Replace the text (embedded again) and/or the metadata; records an UPDATE in history."""
    return await service.update(memory_id, body)


@router.get("/memories/{memory_id}/history", response_model=list[HistoryEntry], summary="Get memory history")
async def memory_history(memory_id: str, service: MemoryServiceDep) -> list[dict[str, Any]]:
    return await service.history(memory_id)


@router.delete("/memories/{memory_id}", response_model=StatusMessage, summary="Delete a memory")
async def delete_memory(memory_id: str, service: MemoryServiceDep) -> dict[str, str]:
    await service.delete(memory_id)
    return {"message": "Memory deleted successfully"}


@router.delete("/memories", response_model=StatusMessage, summary="Delete all memories of a scope")
async def delete_memories(
    service: MemoryServiceDep,
    user_id: IdentifierParam = None,
    agent_id: IdentifierParam = None,
    run_id: IdentifierParam = None,
) -> dict[str, str]:
    deleted = await service.delete_scope(_identifiers(user_id, agent_id, run_id))
    return {"message": f"All relevant memories deleted ({deleted})"}


@router.post("/search", response_model=MemoryList, summary="Search memories")
async def search_memories(body: SearchRequest, service: MemoryServiceDep) -> dict[str, Any]:
    """Nearest memories of a scope, ordered by cosine distance; each result has a `score` (1 - distance)."""
    return {"results": await service.search(body)}


@router.post("/reset", response_model=StatusMessage, summary="Reset all memories")
async def reset(service: MemoryServiceDep) -> dict[str, str]:
    """Deletes every memory and history row. Disabled unless MEM0_ALLOW_RESET=true."""
    await service.reset()
    return {"message": "All memories reset"}
