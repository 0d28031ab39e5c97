"""mem0's hosted API as thin adapters: every call becomes one of this server's own use cases (MemoryService,
JobService, EntityService) under the caller's key; only the shapes differ. No storage of its own."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

from app.auth.access import Access
from app.db.errors import storage_errors
from app.entities.service import EntityService
from app.errors import AppError, InvalidInput
from app.hosted.schemas import (
    APP_ID_REFUSAL,
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
from app.jobs.service import JobService
from app.memories.repository import scope_where
from app.memories.responses import json_bytes
from app.memories.schemas import IDENTIFIER_KEYS, MemoryCreate, MemoryUpdate, SearchRequest
from app.memories.service import MemoryService
from app.memories.writes import write_memories

# What a client of the hosted API can use here; every other /v1, /v2 or /v3 route answers 501 naming these.
SUPPORTED_ROUTES = (
    "GET /v1/ping/",
    "POST /v3/memories/add/",
    "POST /v3/memories/",
    "POST /v3/memories/search/",
    "GET|PUT|DELETE /v1/memories/{id}/",
    "GET /v1/memories/{id}/history/",
    "DELETE /v1/memories/",
    "GET /v1/entities/",
    "DELETE /v2/entities/{type}/{name}/",
    "PUT|DELETE /v1/batch/",
)
MAX_FILTERS_PARAM_CHARS = 4096


class NotSupported(AppError):
    """A route or feature of mem0's hosted API that this server does not implement."""

    status_code = 501
    code = "not_supported"


def not_supported(what: str) -> NotSupported:
    return NotSupported(
        f"{what} is not supported by this server; its mem0 hosted-API routes are: {', '.join(SUPPORTED_ROUTES)}"
    )


@dataclass(frozen=True)
class Answer:
    """A write's answer as exact bytes: the same body an idempotency key stores and replays."""

    status: int
    body: bytes
    replayed: bool = False


def queued(job_id: str, status: str, *, replayed: bool = False) -> Answer:
    """202: the inferred write is a job that has not finished; hosted clients read `results`, GET /jobs/{id} follows
    it."""
    event = {"message": "the inferred write is queued; GET /jobs/{job_id} follows it", "status": status}
    body = {"results": [{**event, "event_id": job_id}], "job_id": job_id, "status": status}
    return Answer(202, json_bytes(body), replayed)


def delete_all_scope(params: dict[str, str]) -> dict[str, str]:
    """The scope of `DELETE /v1/memories/`: user_id / agent_id / run_id query parameters, or `filters` as a JSON
    object or the Python dict literal mem0's Python client puts there (`str(dict)`)."""
    unknown = sorted(set(params) - {*IDENTIFIER_KEYS, "filters"})
    if "app_id" in unknown:
        raise InvalidInput(APP_ID_REFUSAL)
    if unknown:
        raise InvalidInput(
            f"delete_all: parameters {', '.join(unknown)} are not supported; use user_id, agent_id, run_id"
        )
    identifiers = {k: params[k] for k in IDENTIFIER_KEYS if params.get(k)}
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
    if not isinstance(parsed, dict):
        raise InvalidInput('filters must be a JSON object such as {"user_id": "alice"}')
    return parsed


class HostedService:
    def __init__(self, memories: MemoryService, jobs: JobService, entities: EntityService) -> None:
        self.memories = memories
        self.jobs = jobs
        self.entities = entities

    async def add(self, body: HostedAdd, access: Access, key: KeyedRequest | None) -> Answer:
        """The REST write path: `infer: false` stores each message; `infer: true` is a job, waited for in sync
        mode (MEM0_INFER_MODE) unless keyed or `async_mode`, as `POST /memories` does."""
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
            },
        )
        outcome = await write_memories(self.memories, self.jobs, create, access, key)
        if outcome.response.status != 202:
            return Answer(outcome.response.status, outcome.response.body, outcome.replayed)
        accepted = json.loads(outcome.response.body)
        return queued(accepted["job_id"], accepted["status"], replayed=outcome.replayed)

    async def list_page(
        self, body: HostedList, page: int, page_size: int, access: Access
    ) -> tuple[int, list[dict[str, Any]]]:
        """One page of a scope's memories (newest first) and the scope's size. Pages are read through the list
        use case, so the deepest reachable memory is MEM0_MAX_LIST_LIMIT."""
        identifiers = scope_only(body.filters, "get_all")
        limit = self.memories.settings.max_list_limit
        if page * page_size > limit:
            raise InvalidInput(
                f"page {page} of size {page_size} reaches past memory {limit} (MEM0_MAX_LIST_LIMIT); "
                "narrow the scope or use larger pages"
            )
        items = await self.memories.list_memories(identifiers, page * page_size, access)
        async with storage_errors(), self.memories.pool.connection() as conn:
            count = await self.memories.repository.count_scope(conn, scope_where(access, identifiers), 2**62)
        return count, items[(page - 1) * page_size :]

    async def search(self, body: HostedSearch, access: Access) -> list[dict[str, Any]]:
        request = validated(
            SearchRequest,
            {
                "query": body.query,
                "filters": flatten_filters(body.filters),
                "top_k": body.top_k,
                "threshold": body.threshold,
                "show_expired": body.show_expired,
            },
        )
        return await self.memories.search(request, access)

    async def update(self, memory_id: str, body: HostedUpdate, access: Access) -> dict[str, Any]:
        return await self.memories.update(
            memory_id, validated(MemoryUpdate, body.model_dump(exclude_unset=True)), access
        )

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

    async def delete_entity(self, entity_type: str, name: str, access: Access) -> int:
        if entity_type == "app":
            raise InvalidInput(APP_ID_REFUSAL)
        return await self.entities.delete_entity(entity_type, name, access)
