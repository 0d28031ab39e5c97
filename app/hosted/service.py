"""mem0's hosted API as thin adapters: every call becomes one of this server's own use cases (WriteService,
MemoryService, ScopeService) under the caller's key; only the shapes differ. No storage of its own."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Sequence
from typing import Any

from app.auth.access import Access
from app.errors import AppError, InvalidInput, NotFound
from app.hosted.schemas import (
    CLIENT_CONFIG_FIELDS,
    BatchDelete,
    BatchUpdate,
    HostedAdd,
    HostedList,
    HostedSearch,
    HostedUpdate,
    flatten_filters,
    scope_only,
    validated,
)
from app.idempotency.schemas import KeyedRequest
from app.memories.schemas import MemoryCreate, MemoryUpdate, SearchRequest
from app.memories.service import Found, MemoryService
from app.metrics import Metrics
from app.params import SCOPE_KEYS
from app.scopes.service import ScopeService
from app.writes.results import WriteResult
from app.writes.service import WriteService

logger = logging.getLogger(__name__)

# What a client of the hosted API can use here; every other /v1, /v2 or /v3 route answers 501 naming these.
SUPPORTED_ROUTES = (
    "GET /v1/ping/",
    "POST /v3/memories/add/",
    "POST /v3/memories/",
    "POST /v3/memories/search/",
    "POST /v2/memories/",
    "POST /v2/memories/search/",
    "POST /v1/memories/search/",
    "GET|PUT|DELETE /v1/memories/{id}/",
    "GET /v1/memories/{id}/history/",
    "GET|POST|DELETE /v1/memories/",
    "GET /v1/entities/",
    "DELETE /v2/entities/{type}/{name}/",
    "PUT|DELETE /v1/batch/",
)
MAX_FILTERS_PARAM_CHARS = 4096
MAX_LOGGED_IGNORED = 10_000  # (key, field) pairs remembered as logged: bounded whatever the clients send
IGNORED_HEADER = "X-Mem0-Ignored-Fields"


class NotSupported(AppError):
    """A route or feature of mem0's hosted API that this server does not implement."""

    status_code = 501
    code = "not_supported"


def not_supported(what: str) -> NotSupported:
    return NotSupported(
        f"{what} is not supported by this server; its mem0 hosted-API routes are: {', '.join(SUPPORTED_ROUTES)}"
    )


def added_body(result: WriteResult) -> dict[str, Any]:
    """An add's answer: mem0's `{results}` once stored; while the inferred write's job runs, its id and status, also
    as the one event hosted clients read in `results` (GET /jobs/{job_id} follows it)."""
    if not result.queued:
        return result.body()
    job_id, status = str(result.job_id), result.job_status
    event = {"message": "the inferred write is queued; GET /jobs/{job_id} follows it", "status": status}
    return {"results": [{**event, "event_id": job_id}], "job_id": job_id, "status": status}


def delete_all_scope(params: dict[str, str]) -> dict[str, str]:
    """The scope of `DELETE /v1/memories/`: user_id / agent_id / run_id query parameters, or `filters` as a JSON
    object or the Python dict literal mem0's Python client puts there (`str(dict)`)."""
    unknown = sorted(set(params) - {*SCOPE_KEYS, "filters", *CLIENT_CONFIG_FIELDS})
    if unknown:
        raise InvalidInput(
            f"delete_all: parameters {', '.join(unknown)} are not supported; use user_id, agent_id, run_id, app_id"
        )
    identifiers = {k: params[k] for k in SCOPE_KEYS if params.get(k)}
    if "filters" in params:
        identifiers.update(scope_only(_parse_filters_param(params["filters"]), "delete_all"))
    return identifiers


def _parse_filters_param(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_FILTERS_PARAM_CHARS:
        raise InvalidInput(f"filters: at most {MAX_FILTERS_PARAM_CHARS} characters")
    parsed: Any = None
    try:
        parsed = json.loads(raw)
    except ValueError:
        try:
            parsed = ast.literal_eval(raw)  # literals only: no name, call or attribute is evaluated
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
    if not isinstance(parsed, dict) or not all(isinstance(key, str) for key in parsed):
        raise InvalidInput('filters must be a JSON object with string keys, such as {"user_id": "alice"}')
    return parsed


def search_filters(body: HostedSearch) -> dict[str, Any]:
    """`filters` with the top-level identifiers, and `metadata` as equality conditions on the metadata's keys (mem0's
    layout keeps them at the top of each memory's payload, where filters look)."""
    conditions = body.merged(flatten_filters(body.filters), "search")
    for key, value in (body.metadata or {}).items():
        if key in conditions and conditions[key] != value:
            raise InvalidInput(f"search: metadata.{key} and filters.{key} differ; send one condition")
        conditions[key] = value
    return conditions


class HostedService:
    def __init__(self, writes: WriteService, memories: MemoryService, scopes: ScopeService, metrics: Metrics) -> None:
        self.writes = writes
        self.memories = memories
        self.scopes = scopes
        self.metrics = metrics
        self._logged_ignored: set[tuple[str, str]] = set()

    def note_ignored(self, fields: Sequence[str], access: Access) -> str | None:
        """Client configuration a request carried: counted by field, logged once per key and field; the header
        value that names it back (None when there was none)."""
        for field in fields:
            self.metrics.ignored_fields.labels(field).inc()
            if (access.key_id, field) not in self._logged_ignored and len(self._logged_ignored) < MAX_LOGGED_IGNORED:
                self._logged_ignored.add((access.key_id, field))
                logger.info("client configuration ignored", extra={"field": field, "key_id": access.key_id})
        return ", ".join(fields) or None

    async def add(self, body: HostedAdd, access: Access, key: KeyedRequest | None) -> WriteResult:
        """The REST write: `infer: false` stores each message; `infer: true` is a job, waited for in sync mode
        (MEM0_INFER_MODE) unless keyed or `async_mode`, as `POST /memories` does."""
        create = validated(
            MemoryCreate,
            {
                "messages": [message.model_dump(exclude_none=True) for message in body.messages],
                **body.identifiers(),
                "metadata": body.metadata,
                "infer": body.infer,
                "async_mode": body.async_mode,
                "expiration_date": body.expiration_date,
                "prompt": body.custom_instructions,
                "enable_graph": body.enable_graph,
                "timestamp": body.timestamp,
                "immutable": body.immutable,
                "includes": body.includes,
                "excludes": body.excludes,
                "custom_categories": body.custom_categories,
            },
        )
        return await self.writes.accept(create, access, key)

    async def list_page(self, body: HostedList, page: int, page_size: int, access: Access) -> tuple[int, Found]:
        """The scope's size and one page of its memories, newest first."""
        identifiers, filters = body.scope()
        return await self.memories.list_page(
            identifiers, access, (page - 1) * page_size, page_size, body.enable_graph, filters
        )

    async def list_memories(self, body: HostedList, access: Access) -> Found:
        """The v1 / v2 list without pages: the newest `limit` memories of the scope."""
        identifiers, filters = body.scope()
        return await self.memories.list_memories(
            identifiers, body.limit, access, enable_graph=body.enable_graph, filters=filters
        )

    async def search(self, body: HostedSearch, access: Access) -> Found:
        request = validated(
            SearchRequest,
            {
                "query": body.query,
                "filters": search_filters(body),
                "top_k": body.top_k or body.limit,
                "threshold": body.threshold,
                "show_expired": body.show_expired,
                "enable_graph": body.enable_graph,
                "categories": body.categories,
            },
        )
        return await self.memories.search(request, access)

    async def get(self, memory_id: str, access: Access) -> dict[str, Any]:
        return await self.memories.get(memory_id, access)

    async def history(self, memory_id: str, access: Access) -> list[dict[str, Any]]:
        return await self.memories.history(memory_id, access)

    async def update(self, memory_id: str, body: HostedUpdate, access: Access) -> dict[str, Any]:
        return await self.memories.update(
            memory_id, validated(MemoryUpdate, body.model_dump(exclude_unset=True)), access
        )

    async def delete(self, memory_id: str, access: Access) -> None:
        await self.memories.delete(memory_id, access)

    async def delete_all(self, params: dict[str, str], access: Access) -> int:
        return await self.memories.delete_scope(delete_all_scope(params), access)

    async def batch_update(self, body: BatchUpdate, access: Access) -> int:
        """Every listed memory is checked first (a missing one is a 404 before anything changes), then each is
        updated as `PUT /memories/{id}` does."""
        updates = [
            (item.memory_id, validated(MemoryUpdate, item.model_dump(exclude={"memory_id"}, exclude_none=True)))
            for item in body.memories
        ]
        for memory_id, _ in updates:
            await self.memories.get(memory_id, access)
        for memory_id, update in updates:
            await self.memories.update(memory_id, update, access)
        return len(updates)

    async def batch_delete(self, body: BatchDelete, access: Access) -> int:
        """Every listed memory is checked first (a missing one is a 404 before anything is deleted)."""
        ids = list(dict.fromkeys(item.memory_id for item in body.memories))
        for memory_id in ids:
            await self.memories.get(memory_id, access)
        for memory_id in ids:
            await self.memories.delete(memory_id, access)
        return len(ids)

    async def list_scopes(self, access: Access, page: int, page_size: int) -> tuple[int, list[dict[str, Any]]]:
        return await self.scopes.list_page(access, page, page_size)

    async def delete_scope(self, scope_type: str, name: str, access: Access) -> int:
        """mem0's answer says the user, agent or run was deleted: so one that had no memories is a 404."""
        if scope_type == "app":
            raise InvalidInput("an app is deleted with its memories: DELETE /v1/memories/?app_id=<app>")
        deleted = await self.scopes.delete(scope_type, name, access)
        if not deleted:
            raise NotFound(f"no memories of {scope_type} {name[:64]!r} to delete")
        return deleted
