"""mem0's hosted-API routes (what `MemoryClient(host=...)`, `AsyncMemoryClient` and the `mem0ai` TypeScript client
call), as thin adapters over this server's services. Anything else under /v1, /v2 or /v3 answers 501, not 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.routing import APIRoute

from app.deps import AccessDep, HostedServiceDep, get_access
from app.errors import MethodNotAllowed
from app.hosted.schemas import (
    DEFAULT_PAGE_SIZE,
    BatchDelete,
    BatchUpdate,
    HostedAdd,
    HostedList,
    HostedSearch,
    HostedUpdate,
    MemoryPage,
    Ping,
    Queued,
)
from app.hosted.service import added_body, not_supported
from app.memories.schemas import AddResponse, HistoryEntry, MemoryItem, SearchResults
from app.params import PageParam, PageSizeParam, StatusMessage
from app.scopes.schemas import ScopePage
from app.writes.results import QUEUED_STATUS, STORED_STATUS
from app.writes.router import json_answer, keyed_request

# Every route here needs a key, the catch-all too: an unknown route does not tell a caller without one anything.
router = APIRouter(tags=["mem0 hosted API"], dependencies=[Depends(get_access)])

LOCAL_ORG_ID = "mem0-fixed"
LOCAL_PROJECT_ID = "default"
# mem0's hosted API deletes the memories this one superseded; no memory supersedes another here, so there are none.
DeleteLinkedParam = Annotated[bool, Query(description="Accepted; no memory supersedes another here.")]


def _paged(request: Request, count: int, page: int, page_size: int, body: dict[str, Any]) -> dict[str, Any]:
    """The hosted API's page: `next` / `previous` are this URL with another page number, null at the ends."""

    def link(number: int) -> str:
        return str(request.url.include_query_params(page=number, page_size=page_size))

    return {
        "count": count,
        "next": link(page + 1) if page * page_size < count else None,
        "previous": link(page - 1) if page > 1 else None,
        **body,
    }


@router.get("/v1/ping/", response_model=Ping, summary="Check the API key (client construction)")
async def ping(access: AccessDep) -> dict[str, Any]:
    """What mem0's clients call when they are constructed; a 200 means the key is valid. The Python client refuses
    to construct without an organisation and a project; this server has neither, so both are fixed names."""
    return {
        "status": "ok",
        "message": "API key is valid",
        "org_id": LOCAL_ORG_ID,
        "project_id": LOCAL_PROJECT_ID,
        "user_email": None,
    }


@router.post(
    "/v3/memories/add/",
    response_model=AddResponse,
    summary="Add memories (hosted API)",
    responses={202: {"model": Queued, "description": "An inferred write whose job has not finished."}},
)
async def add(
    body: HostedAdd,
    request: Request,
    hosted: HostedServiceDep,
    access: AccessDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """`POST /memories` with the hosted shapes: identifiers top-level or in `filters`; 200 with `results`, or 202
    with the job's id when an inferred write has not finished."""
    result = await hosted.add(body, access, await keyed_request(request, access, idempotency_key, None))
    return json_answer(added_body(result), QUEUED_STATUS if result.queued else STORED_STATUS, replayed=result.replayed)


@router.post("/v3/memories/", response_model=MemoryPage, summary="List memories, paged (hosted API)")
async def list_memories(
    body: HostedList,
    request: Request,
    hosted: HostedServiceDep,
    access: AccessDep,
    page: PageParam = 1,
    page_size: PageSizeParam = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    count, found = await hosted.list_page(body, page, page_size, access)
    return _paged(request, count, page, page_size, found.list_body())


@router.post("/v3/memories/search/", response_model=SearchResults, summary="Search memories (hosted API)")
async def search(body: HostedSearch, hosted: HostedServiceDep, access: AccessDep) -> dict[str, Any]:
    return (await hosted.search(body, access)).search_body()


@router.get("/v1/memories/{memory_id}/", response_model=MemoryItem, summary="Get a memory (hosted API)")
async def get_memory(memory_id: str, hosted: HostedServiceDep, access: AccessDep) -> dict[str, Any]:
    return await hosted.get(memory_id, access)


@router.put("/v1/memories/{memory_id}/", response_model=MemoryItem, summary="Update a memory (hosted API)")
async def update_memory(
    memory_id: str, body: HostedUpdate, hosted: HostedServiceDep, access: AccessDep
) -> dict[str, Any]:
    return await hosted.update(memory_id, body, access)


@router.delete("/v1/memories/{memory_id}/", response_model=StatusMessage, summary="Delete a memory (hosted API)")
async def delete_memory(
    memory_id: str,
    hosted: HostedServiceDep,
    access: AccessDep,
    delete_linked: Annotated[
        bool, Query(description="No memory supersedes another here: nothing more to delete.")
    ] = False,
) -> dict[str, str]:
    await hosted.delete(memory_id, access)
    return {"message": "Memory deleted successfully!"}


@router.get(
    "/v1/memories/{memory_id}/history/", response_model=list[HistoryEntry], summary="A memory's history (hosted API)"
)
async def memory_history(memory_id: str, hosted: HostedServiceDep, access: AccessDep) -> list[dict[str, Any]]:
    return await hosted.history(memory_id, access)


@router.delete("/v1/memories/", response_model=StatusMessage, summary="Delete a scope's memories (hosted API)")
async def delete_memories(request: Request, hosted: HostedServiceDep, access: AccessDep) -> dict[str, str]:
    """The scope is `user_id` / `agent_id` / `run_id` query parameters or `filters`; one is required."""
    deleted = await hosted.delete_all(dict(request.query_params), access)
    return {"message": f"Memories deleted successfully! ({deleted})"}


@router.get("/v1/entities/", response_model=ScopePage, summary="List users, agents and runs (hosted API)")
async def list_scopes(
    request: Request,
    hosted: HostedServiceDep,
    access: AccessDep,
    page: PageParam = 1,
    page_size: PageSizeParam = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    count, results = await hosted.list_scopes(access, page, page_size)
    return _paged(request, count, page, page_size, {"results": results})


@router.delete(
    "/v2/entities/{scope_type}/{name}/",
    response_model=StatusMessage,
    summary="Delete a user, agent or run (hosted API)",
)
@router.delete(
    "/v1/entities/{scope_type}/{name}/",
    response_model=StatusMessage,
    summary="Delete a user, agent or run (hosted API, older path)",
)
async def delete_scope(scope_type: str, name: str, hosted: HostedServiceDep, access: AccessDep) -> dict[str, str]:
    await hosted.delete_scope(scope_type, name, access)
    return {"message": "Entity deleted successfully!"}


@router.put("/v1/batch/", response_model=StatusMessage, summary="Update up to 1000 memories (hosted API)")
async def batch_update(body: BatchUpdate, hosted: HostedServiceDep, access: AccessDep) -> dict[str, str]:
    return {"message": f"Successfully updated {await hosted.batch_update(body, access)} memories"}


@router.delete("/v1/batch/", response_model=StatusMessage, summary="Delete up to 1000 memories (hosted API)")
async def batch_delete(body: BatchDelete, hosted: HostedServiceDep, access: AccessDep) -> dict[str, str]:
    return {"message": f"Successfully deleted {await hosted.batch_delete(body, access)} memories"}


@router.post("/v1/feedback/", include_in_schema=False)
async def feedback() -> None:
    raise not_supported("feedback on memories (POST /v1/feedback/)")


# Registered last: only what no route above serves reaches these. /api/v1 holds the hosted API's organisation,
# project and webhook routes.
HOSTED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@router.api_route("/v1/{rest:path}", methods=HOSTED_METHODS, include_in_schema=False)
@router.api_route("/v2/{rest:path}", methods=HOSTED_METHODS, include_in_schema=False)
@router.api_route("/v3/{rest:path}", methods=HOSTED_METHODS, include_in_schema=False)
@router.api_route("/api/v1/{rest:path}", methods=HOSTED_METHODS, include_in_schema=False)
async def unsupported(request: Request) -> None:
    allowed = _declared_methods(request.url.path)
    if allowed:
        methods = ", ".join(sorted(allowed))
        raise MethodNotAllowed(f"{request.method} is not allowed here; use {methods}", headers={"Allow": methods})
    raise not_supported(f"{request.method} {request.url.path}")


def _declared_methods(path: str) -> set[str]:
    """The methods the routes above serve at `path` (none: a route this server does not have)."""
    return {
        method
        for route in router.routes
        if isinstance(route, APIRoute)
        and route.endpoint not in (unsupported, feedback)
        and route.path_regex.match(path)
        for method in route.methods or ()
    }
