"""The MCP tools: thin adapters over WriteService, MemoryService and ScopeService, one per use case. Each
reads the caller's Access from the request the SDK hands it (app/mcp/auth.py) and passes it to the service, so a
key limited to some identities sees and changes only those, as on the REST routes.

Descriptions are written for the model that calls them: what the tool does, which identifiers to pass, what it
returns and when to use it rather than another tool."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError
from starlette.requests import Request

from app.errors import AppError, describe_problems
from app.graph.schemas import Graph
from app.mcp.auth import Caller, caller_of
from app.memories.schemas import MemoryCreate, MemoryItem, MemoryList, MemoryUpdate, Message, SearchRequest
from app.memories.service import DEFAULT_LIST_LIMIT, DEFAULT_TOP_K
from app.params import MAX_PAGE_SIZE, query_identifiers

ToolContext = Context[Any, Any]

UserId = Annotated[
    str | None,
    Field(
        description="The user the memories are about (e.g. the person you are talking to). Give the same value "
        "every time for the same person."
    ),
]
AgentId = Annotated[str | None, Field(description="The agent (assistant) the memories belong to, if any.")]
RunId = Annotated[str | None, Field(description="One conversation or session, for memories that only matter there.")]
MemoryId = Annotated[str, Field(description="The memory's `id` (a UUID) as returned by another memory tool.")]
Metadata = Annotated[
    dict[str, Any] | None,
    Field(
        description='Optional JSON object stored with the memory (e.g. {"category": "food"}); it can be '
        "used in search filters."
    ),
]

SCOPE_RULE = (
    "Pass at least one of user_id, agent_id, run_id: a memory matches when each identifier you give equals its "
    "own (identifiers you leave out are not compared)."
)


def _caller(ctx: ToolContext) -> Caller:
    request = ctx.request_context.request
    if not isinstance(request, Request):  # the endpoint serves HTTP only; another transport has no key
        raise ToolError("this server's tools are served over HTTP at /mcp only")
    return caller_of(request.scope)


def _memory(item: dict[str, Any]) -> dict[str, Any]:
    """The REST routes' shape (their response model): the same fields, and metadata stored too deep clipped."""
    return MemoryItem.model_validate(item).model_dump(mode="json")


def _memories(items: list[dict[str, Any]]) -> dict[str, Any]:
    return MemoryList.model_validate({"results": items}).model_dump(mode="json")


Tool = Callable[..., Awaitable[dict[str, Any]]]


def reported(tool: Tool) -> Tool:
    """The tool with its failures as what the model reads: the API's error code and message, or the invalid
    arguments (names and reasons, not the values sent). The SDK reads the signature through functools.wraps."""

    @functools.wraps(tool)
    async def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return await tool(*args, **kwargs)
        except AppError as error:
            raise ToolError(f"{error.code}: {error.message}") from None
        except ValidationError as error:
            raise ToolError(f"invalid_input: {describe_problems(error.errors(), 'arguments')}") from None

    return run


async def add_memory(
    ctx: ToolContext,
    text: Annotated[
        str | None,
        Field(
            description='The fact to remember, as one short self-contained sentence (e.g. "Prefers tea over '
            'coffee"). Give this or messages.'
        ),
    ] = None,
    messages: Annotated[
        list[Message] | None,
        Field(
            description="Conversation turns ({role: user|assistant|system, content}) to store instead of text; "
            "each non-system turn becomes one memory, or, with infer true, facts are extracted from them."
        ),
    ] = None,
    user_id: UserId = None,
    agent_id: AgentId = None,
    run_id: RunId = None,
    metadata: Metadata = None,
    infer: Annotated[
        bool,
        Field(
            description="false (default): store the text as given, at once. true: let the server's LLM extract "
            "facts from it and skip facts already stored; this takes longer (seconds), and if it does not finish "
            "within the server's wait the answer is a job_id and status while it completes in the background."
        ),
    ] = False,
) -> dict[str, Any]:
    caller = _caller(ctx)
    if (text is None) == (messages is None):
        raise ToolError("invalid_input: give either text or messages (exactly one)")
    turns = messages if messages is not None else [Message(role="user", content=text or "")]
    # Sync even when MEM0_INFER_MODE=async: no tool polls jobs, so an inferred write waits for its job (at most
    # MEM0_INFER_WAIT_S) as POST /memories does in sync mode; a job still running then goes on by itself.
    request = MemoryCreate(
        messages=turns,
        user_id=user_id,
        agent_id=agent_id,
        run_id=run_id,
        metadata=metadata,
        infer=infer,
        async_mode=False,
    )
    result = await caller.services.writes.accept(request, caller.access)
    if result.queued:
        return result.body() | {"message": "still extracting; the memories are stored when the job finishes"}
    return result.body()


async def search_memories(
    ctx: ToolContext,
    query: Annotated[str, Field(description='What to look for, in natural language (e.g. "food preferences").')],
    user_id: UserId = None,
    agent_id: AgentId = None,
    run_id: RunId = None,
    filters: Annotated[
        dict[str, Any] | None,
        Field(
            description='Optional conditions on metadata: {key: value} for equality, {key: "*"} for any value, '
            "{key: {op: value}} with op one of eq, ne, in, nin, gt, gte, lt, lte, contains, icontains, and "
            '{"AND" | "OR" | "NOT": [conditions]} to combine them.'
        ),
    ] = None,
    limit: Annotated[
        int | None, Field(ge=1, description=f"How many results at most (default {DEFAULT_TOP_K}).")
    ] = None,
    threshold: Annotated[
        float | None,
        Field(
            ge=0.0,
            le=1.0,
            description="Drop results whose score is below this (0 to 1); 0 keeps every match, omitted: the "
            "server's default.",
        ),
    ] = None,
) -> dict[str, Any]:
    caller = _caller(ctx)
    request = SearchRequest(
        query=query,
        user_id=user_id,
        agent_id=agent_id,
        run_id=run_id,
        filters=filters,
        limit=limit,
        threshold=threshold,
    )
    return _memories((await caller.services.memories.search(request, caller.access)).results)


async def get_memories(
    ctx: ToolContext,
    user_id: UserId = None,
    agent_id: AgentId = None,
    run_id: RunId = None,
    limit: Annotated[
        int | None, Field(ge=1, description=f"How many memories at most, newest first (default {DEFAULT_LIST_LIMIT}).")
    ] = None,
) -> dict[str, Any]:
    caller = _caller(ctx)
    identifiers = query_identifiers(user_id, agent_id, run_id)
    return _memories((await caller.services.memories.list_memories(identifiers, limit, caller.access)).results)


async def get_memory(ctx: ToolContext, memory_id: MemoryId) -> dict[str, Any]:
    caller = _caller(ctx)
    return _memory(await caller.services.memories.get(memory_id, caller.access))


async def update_memory(
    ctx: ToolContext,
    memory_id: MemoryId,
    text: Annotated[str | None, Field(description="The new text; it replaces the old text entirely.")] = None,
    metadata: Annotated[
        dict[str, Any] | None,
        Field(description="New metadata; it replaces the memory's metadata entirely (identifiers are kept)."),
    ] = None,
) -> dict[str, Any]:
    caller = _caller(ctx)
    update = MemoryUpdate(text=text, metadata=metadata)
    return _memory(await caller.services.memories.update(memory_id, update, caller.access))


async def delete_memory(ctx: ToolContext, memory_id: MemoryId) -> dict[str, Any]:
    caller = _caller(ctx)
    await caller.services.memories.delete(memory_id, caller.access)
    return {"message": "Memory deleted successfully", "id": memory_id}


async def delete_all_memories(
    ctx: ToolContext, user_id: UserId = None, agent_id: AgentId = None, run_id: RunId = None
) -> dict[str, Any]:
    caller = _caller(ctx)
    deleted = await caller.services.memories.delete_scope(query_identifiers(user_id, agent_id, run_id), caller.access)
    return {"message": f"All relevant memories deleted ({deleted})", "deleted": deleted}


async def get_graph(
    ctx: ToolContext,
    user_id: UserId = None,
    agent_id: AgentId = None,
    run_id: RunId = None,
    as_of: Annotated[
        datetime | None, Field(description="ISO time: the relations valid then (default: every one, ended too).")
    ] = None,
) -> dict[str, Any]:
    caller = _caller(ctx)
    identifiers = query_identifiers(user_id, agent_id, run_id)
    found = await caller.services.graph.graph(identifiers, caller.access, as_of, MAX_PAGE_SIZE)
    return Graph.model_validate(found).model_dump(mode="json")


async def list_entities(
    ctx: ToolContext,
    page: Annotated[int, Field(ge=1, description="Page number, from 1 (default 1).")] = 1,
    page_size: Annotated[
        int, Field(ge=1, le=MAX_PAGE_SIZE, description="Users, agents and runs per page (default 100).")
    ] = 100,
) -> dict[str, Any]:
    caller = _caller(ctx)
    count, results = await caller.services.scopes.list_page(caller.access, page, page_size)
    return {"count": count, "results": results}


async def delete_entities(
    ctx: ToolContext,
    user_id: Annotated[str | None, Field(description="Delete this user and all its memories.")] = None,
    agent_id: Annotated[str | None, Field(description="Delete this agent and all its memories.")] = None,
    run_id: Annotated[str | None, Field(description="Delete this run and all its memories.")] = None,
) -> dict[str, Any]:
    caller = _caller(ctx)
    named = {"user": user_id, "agent": agent_id, "run": run_id}
    if all(value is None for value in named.values()):
        raise ToolError("invalid_input: name the user, agent or run to delete: user_id, agent_id or run_id")
    deleted = []
    for scope_type, name in named.items():
        if name is not None:
            count = await caller.services.scopes.delete(scope_type, name, caller.access)
            deleted.append({"type": scope_type, "id": name, "deleted_memories": count})
    return {"results": deleted}


READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTROYS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

# (function, annotations, description)
TOOLS: list[tuple[Callable[..., Any], ToolAnnotations, str]] = [
    (
        add_memory,
        WRITES,
        "Remember something for later: store a fact, preference or detail worth recalling in future "
        f"conversations. {SCOPE_RULE} Use user_id for facts about a person. Store one fact per call as a short "
        "sentence in `text`, or pass conversation turns as `messages`. Returns {results: [{id, memory, event}]}: "
        "the stored memories and their ids.",
    ),
    (
        search_memories,
        READ_ONLY,
        "Find stored memories relevant to a question or topic (semantic search, best match first). Use it before "
        f"answering anything that may depend on what you were told earlier. {SCOPE_RULE} Returns {{results: "
        "[{id, memory, score, metadata, created_at, ...}]}; a higher score is a better match.",
    ),
    (
        get_memories,
        READ_ONLY,
        "List the memories of one scope, newest first, without a query: to review everything known about a user, "
        f"agent or run. {SCOPE_RULE} Returns {{results: [{{id, memory, metadata, created_at, ...}}]}}; use "
        "search_memories instead when looking for something specific.",
    ),
    (
        get_memory,
        READ_ONLY,
        "Fetch one memory by its id (from add_memory, search_memories or get_memories). Returns {id, memory, "
        "metadata, user_id/agent_id/run_id, created_at, updated_at}; an error if no such memory is visible to you.",
    ),
    (
        update_memory,
        WRITES,
        "Correct or replace one memory by its id, e.g. when the user says a stored fact changed. Give the new "
        "`text` and/or `metadata`; each replaces the old value. Returns the updated memory. Prefer this over "
        "adding a contradicting memory.",
    ),
    (
        delete_memory,
        DESTROYS,
        "Delete one memory by its id, e.g. when the user asks you to forget it or it is wrong. Cannot be undone. "
        "Returns a confirmation; an error if no such memory is visible to you.",
    ),
    (
        delete_all_memories,
        DESTROYS,
        f"Delete every memory of one scope (all of a user's, an agent's or a run's memories). {SCOPE_RULE} Cannot "
        "be undone: only when the user clearly asks to forget everything. Returns how many were deleted.",
    ),
    (
        get_graph,
        READ_ONLY,
        "Read the graph memory of one scope: who and what relates to whom, as the conversations stated it. "
        f"{SCOPE_RULE} Returns {{entities: [{{name, type}}], relations: [{{source, relationship, destination, valid, "
        "valid_from, invalidated_at}}]}}: an ended relation stays with valid false; `as_of` shows the graph as it was "
        "then. An error when the server has no graph memory.",
    ),
    (
        list_entities,
        READ_ONLY,
        "List the users, agents and runs that have memories you may see, by type and id, a page at a time. Returns "
        "{count (all pages), results: [{type: user|agent|run, id, name, total_memories, created_at, updated_at}]}; "
        "use the ids as user_id / agent_id / run_id in the other tools.",
    ),
    (
        delete_entities,
        DESTROYS,
        "Delete a user, agent or run entirely: every memory stored for it (where that identifier is set, whatever "
        "the others are). Give the user_id, agent_id and/or run_id to delete. Cannot be undone. Returns how many "
        "memories were deleted for each.",
    ),
]


def register_tools(server: MCPServer[Any]) -> None:
    for function, hints, description in TOOLS:
        server.add_tool(reported(function), description=description, annotations=hints)
