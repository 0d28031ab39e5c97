"""mem0's hosted-API routes (what `MemoryClient(host=...)`, `AsyncMemoryClient` and the `mem0ai` TypeScript client
call), as thin adapters over this server's services. Anything else under /v1, /v2 or /v3 answers 501, not 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.auth.access import Access
from app.deps import AccessDep, HostedServiceDep, get_access
from app.errors import MethodNotAllowed
from app.hosted.schemas import (
    CLIENT_CONFIG_FIELDS,
    DEFAULT_PAGE_SIZE,
    BatchDelete,
    BatchUpdate,
    HostedAdd,
    HostedList,
    HostedModel,
    HostedSearch,
    HostedUpdate,
    MemoryPage,
    PageQuery,
    Ping,
    Queued,
    validated,
)
from app.hosted.service import IGNORED_HEADER, HostedService, added_body, not_supported
from app.memories.schemas import AddResponse, HistoryEntry, MemoryItem, MemoryList, SearchResults
from app.memories.service import Found
from app.params import PageParam, PageSizeParam, StatusMessage
from app.scopes.schemas import ScopePage
from app.writes.results import QUEUED_STATUS, STORED_STATUS
from app.writes.router import json_answer, keyed_request


async def client_configuration(
    request: Request, response: Response, hosted: HostedServiceDep, access: AccessDep
) -> None:
    """Client configuration in the query string (mem0ai 1.x and the npm client 2.x put org_id and project_id in
    every one): counted, and named in the answer, by this for routes answering data and by `_note` for the rest."""
    in_query = sorted(key for key in request.query_params if key in CLIENT_CONFIG_FIELDS)
    request.state.ignored_in_query = in_query
    hosted.note_ignored(in_query, access)
    if in_query:
        response.headers[IGNORED_HEADER] = ", ".join(in_query)


# Every route here needs a key, the catch-all too: an unknown route does not tell a caller without one anything.
router = APIRouter(tags=["mem0 hosted API"], dependencies=[Depends(get_access), Depends(client_configuration)])

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
@router.post(
    "/v1/memories/",
    response_model=AddResponse | list[dict[str, Any]],
    summary="Add memories (hosted API v1: a list unless output_format is v1.1)",
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
    answer = added_body(result)
    if _as_list(request, body.output_format):
        answer = answer["results"]
    status = QUEUED_STATUS if result.queued else STORED_STATUS
    return _noted(json_answer(answer, status, replayed=result.replayed), request, hosted, access, body)


@router.post("/v3/memories/", response_model=MemoryPage, summary="List memories, paged (hosted API)")
async def list_memories(
    body: HostedList,
    request: Request,
    response: Response,
    hosted: HostedServiceDep,
    access: AccessDep,
    page: PageParam = 1,
    page_size: PageSizeParam = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    _note(response, request, hosted, access, body)
    count, found = await hosted.list_page(body, page, page_size, access)
    return _paged(request, count, page, page_size, found.list_body())


@router.post(
    "/v2/memories/",
    response_model=MemoryPage | list[MemoryItem],
    summary="List memories (hosted API v2: a list, or a page when page and page_size are given)",
)
async def list_memories_v2(body: HostedList, request: Request, hosted: HostedServiceDep, access: AccessDep) -> Response:
    return await _listed(body, request, hosted, access)


@router.get(
    "/v1/memories/",
    response_model=MemoryPage | MemoryList | list[MemoryItem],
    summary="List memories (hosted API v1: the scope as query parameters)",
)
async def list_memories_v1(request: Request, hosted: HostedServiceDep, access: AccessDep) -> Response:
    skipped = {"page", "page_size", *CLIENT_CONFIG_FIELDS}  # client configuration: noted by client_configuration
    params = {k: v for k, v in request.query_params.items() if k not in skipped}
    return await _listed(validated(HostedList, params), request, hosted, access)


async def _listed(body: HostedList, request: Request, hosted: HostedService, access: Access) -> Response:
    """The v1 / v2 list: a page (`{count, next, previous, results}`) when the client asked for one, else mem0's
    `{results}` (output_format v1.1) or a bare list."""
    page, page_size = request.query_params.get("page"), request.query_params.get("page_size")
    if page is not None and page_size is not None:
        number, size = validated(PageQuery, {"page": page, "page_size": page_size}).numbers()
        count, found = await hosted.list_page(body, number, size, access)
        answer: Any = MemoryPage.model_validate(_paged(request, count, number, size, found.list_body()))
    else:
        found = await hosted.list_memories(body, access)
        answer = (
            _items(found) if _as_list(request, body.output_format) else MemoryList.model_validate(found.list_body())
        )
    return _noted(JSONResponse(jsonable_encoder(answer)), request, hosted, access, body)


@router.post("/v3/memories/search/", response_model=SearchResults, summary="Search memories (hosted API)")
@router.post(
    "/v1/memories/search/",
    response_model=SearchResults | list[MemoryItem],
    summary="Search memories (hosted API v1: a list unless output_format is v1.1)",
)
@router.post(
    "/v2/memories/search/",
    response_model=SearchResults | list[MemoryItem],
    summary="Search memories (hosted API v2: a list unless output_format is v1.1)",
)
async def search(body: HostedSearch, request: Request, hosted: HostedServiceDep, access: AccessDep) -> Response:
    found = await hosted.search(body, access)
    as_list = _as_list(request, body.output_format)
    answer: Any = _items(found) if as_list else SearchResults.model_validate(found.search_body())
    return _noted(JSONResponse(jsonable_encoder(answer)), request, hosted, access, body)


def _items(found: Found) -> list[MemoryItem]:
    """The answer's memories as their response model shows them (the bare-list answers have no response model)."""
    return [MemoryItem.model_validate(item) for item in found.results]


def _as_list(request: Request, output_format: str | None) -> bool:
    """mem0's v1 and v2 routes answer a bare list (output_format v1.0, their default); v1.1 and v3 an object."""
    return not request.url.path.startswith("/v3/") and output_format != "v1.1"


def _noted(response: Response, request: Request, hosted: HostedService, access: Access, body: HostedModel) -> Response:
    _note(response, request, hosted, access, body)
    return response


def _note(response: Response, request: Request, hosted: HostedService, access: Access, body: HostedModel) -> None:
    """Counts the client configuration a body carried and names it, with the query string's, in the answer."""
    in_body = body.ignored_fields
    hosted.note_ignored(in_body, access)
    named = sorted({*request.state.ignored_in_query, *in_body})
    if named:
        response.headers[IGNORED_HEADER] = ", ".join(named)


@router.get("/v1/memories/{memory_id}/", response_model=MemoryItem, summary="Get a memory (hosted API)")
async def get_memory(memory_id: str, hosted: HostedServiceDep, access: AccessDep) -> dict[str, Any]:
    return await hosted.get(memory_id, access)


@router.put("/v1/memories/{memory_id}/", response_model=MemoryItem, summary="Update a memory (hosted API)")
async def update_memory(
    memory_id: str,
    body: HostedUpdate,
    request: Request,
    response: Response,
    hosted: HostedServiceDep,
    access: AccessDep,
) -> dict[str, Any]:
    _note(response, request, hosted, access, body)
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
async def batch_update(
    body: BatchUpdate, request: Request, response: Response, hosted: HostedServiceDep, access: AccessDep
) -> dict[str, str]:
    _note(response, request, hosted, access, body)
    return {"message": f"Successfully updated {await hosted.batch_update(body, access)} memories"}


@router.delete("/v1/batch/", response_model=StatusMessage, summary="Delete up to 1000 memories (hosted API)")
async def batch_delete(
    body: BatchDelete, request: Request, response: Response, hosted: HostedServiceDep, access: AccessDep
) -> dict[str, str]:
    _note(response, request, hosted, access, body)
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
