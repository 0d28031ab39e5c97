"""Memory use cases after a write (app/writes): read, list, search, update, history and delete. Each change embeds
first and commits in one transaction, or fails whole."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from app.auth.access import Access
from app.config import Settings
from app.db.errors import storage_errors
from app.db.statement_groups import StatementGroups
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.filters import access_where, names_scopes, scope_where
from app.graph.names import Relation
from app.graph.service import GraphService, clear_graph, forget_memories, graph_wanted, list_item, search_item
from app.jobs.repository import JobRepository
from app.llm.client import OllamaClient
from app.llm.embed_cache import EmbedCache
from app.llm.embedding import Embedding
from app.memories.keywords import DEFAULT_THRESHOLD, finish, lemmatize_for_bm25, search_params
from app.memories.payloads import memory_hash, now_iso
from app.memories.repository import HistoryEvent, MemoryRepository, StoredMemory
from app.memories.schemas import RESERVED_PAYLOAD_KEYS, MemoryUpdate, SearchRequest
from app.memories.scope_sizes import ScopeSizes, scope_key
from app.memories.search_cache import CachedSearch, ScopeVersions, SearchCache, scope_rows, search_key
from app.metrics import Metrics
from app.named_entities.repository import NamedEntityRepository
from app.params import SCOPE_KEYS
from app.telemetry.service import Telemetry

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 10
DEFAULT_LIST_LIMIT = 20  # upstream mem0's default page
UNCAPPED = 2**62  # a count_scope cap no scope reaches
VERSION_READS_IN_FLIGHT = 2
VERSION_READ_MAX_SEARCHES = 256
_PROMOTED_KEYS = (*SCOPE_KEYS, "actor_id", "role", "expiration_date", "categories", "immutable")


def parse_memory_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(f"memory id {raw[:64]!r} is not a UUID") from None


def to_item(memory: StoredMemory, *, with_score: bool = False) -> dict[str, Any]:
    """mem0's memory shape: core fields, identifiers promoted, the rest as metadata."""
    payload = memory.payload
    item: dict[str, Any] = {
        "id": str(memory.id),
        "memory": payload.get("data", ""),
        "hash": payload.get("hash"),
        "metadata": {k: v for k, v in payload.items() if k not in RESERVED_PAYLOAD_KEYS} or None,
        "created_at": payload.get("created_at"),
        "updated_at": payload.get("updated_at"),
    }
    item.update({key: payload[key] for key in _PROMOTED_KEYS if payload.get(key) is not None})
    if with_score and memory.distance is not None:
        item["score"] = max(0.0, 1.0 - memory.distance)
    return item


SCOPE_REQUIRED = (
    "name the scope: an identifier (user_id, agent_id or run_id) as a plain value, top-level or in filters, or "
    'in filters "*" (every one your key may read), {"in": [...]} or an OR of them; other operators on identifiers '
    "do not name a scope"
)


@dataclass(frozen=True)
class Found:
    """Memories a list or a search found and, when the request uses graph memory, the relations around them."""

    results: list[dict[str, Any]]
    relations: list[Relation] | None = None
    renderings: dict[str, bytes] | None = None  # a cached search's: see `rendered`

    def rendered(self, shape: str, render: Callable[[Found], bytes]) -> bytes:
        """The body `render` makes of this answer; for a cached search result, made once and kept with it."""
        if self.renderings is None:
            return render(self)
        body = self.renderings.get(shape)
        if body is None:
            body = self.renderings[shape] = render(self)
        return body

    def search_body(self) -> dict[str, Any]:
        """mem0's search answer: relations as {source, relationship, destination}."""
        if self.relations is None:
            return {"results": self.results}
        return {"results": self.results, "relations": [search_item(r) for r in self.relations]}

    def list_body(self) -> dict[str, Any]:
        """mem0's get_all answer: relations as {source, relationship, target}."""
        if self.relations is None:
            return {"results": self.results}
        return {"results": self.results, "relations": [list_item(r) for r in self.relations]}


class MemoryService:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        ollama: OllamaClient,
        repository: MemoryRepository,
        named_entities: NamedEntityRepository,
        jobs: JobRepository,
        graph: GraphService,
        metrics: Metrics,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.jobs = jobs
        self.telemetry = telemetry
        self.pool = pool
        self.ollama = ollama
        self.repository = repository
        self.named_entities = named_entities
        self.query_embeddings = EmbedCache(settings.embed_cache_size)
        self.scope_sizes = ScopeSizes(settings.scope_size_ttl_s)
        self.search_cache = SearchCache(settings.search_cache_size)
        # The cache checks of concurrent searches share one statement: a repeated search costs a fraction of one.
        self.version_reads: StatementGroups[Sequence[tuple[str, str]], ScopeVersions] = StatementGroups(
            self._read_versions, max_in_flight=VERSION_READS_IN_FLIGHT, max_items=VERSION_READ_MAX_SEARCHES
        )
        self.metrics = metrics

    async def get(self, raw_id: str, access: Access) -> dict[str, Any]:
        memory_id = parse_memory_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn:
            memory = await self.repository.get(conn, memory_id, access_where(access))
        if memory is None:
            raise NotFound(f"no memory with id {memory_id}")
        return to_item(memory)

    async def list_memories(
        self,
        identifiers: dict[str, str],
        limit: int | None,
        access: Access,
        *,
        show_expired: bool = False,
        enable_graph: bool | None = None,
        filters: dict[str, Any] | None = None,
    ) -> Found:
        if not identifiers and not names_scopes(filters or {}):
            raise InvalidInput(SCOPE_REQUIRED)
        limit = self._bounded(limit, DEFAULT_LIST_LIMIT, self.settings.max_list_limit, "limit")
        uses_graph = graph_wanted(self.settings, enable_graph)
        async with storage_errors(), self.pool.connection() as conn:
            memories = await self.repository.list_scope(
                conn, scope_where(access, identifiers, filters, show_expired=show_expired), limit
            )
        relations = await self.graph.valid_relations(scope_where(access, identifiers)) if uses_graph else None
        return Found([to_item(memory) for memory in memories], relations)

    async def list_page(
        self,
        identifiers: dict[str, str],
        access: Access,
        offset: int,
        limit: int,
        enable_graph: bool | None = None,
        filters: dict[str, Any] | None = None,
    ) -> tuple[int, Found]:
        """The scope's size and the `limit` memories after the newest `offset` (newest first); the deepest
        reachable memory is MEM0_MAX_LIST_LIMIT."""
        if not identifiers and not names_scopes(filters or {}):
            raise InvalidInput(SCOPE_REQUIRED)
        deepest = self.settings.max_list_limit
        if offset + limit > deepest:
            raise InvalidInput(
                f"memories {offset + 1} to {offset + limit} reach past memory {deepest} (MEM0_MAX_LIST_LIMIT); "
                "narrow the scope or use larger pages"
            )
        uses_graph = graph_wanted(self.settings, enable_graph)
        where = scope_where(access, identifiers, filters)
        async with storage_errors(), self.pool.connection() as conn:
            count = await self.repository.count_scope(conn, where, UNCAPPED)
            memories = await self.repository.list_scope(conn, where, offset + limit)
        relations = await self.graph.valid_relations(scope_where(access, identifiers)) if uses_graph else None
        return count, Found([to_item(memory) for memory in memories[offset:]], relations)

    async def search(self, request: SearchRequest, access: Access) -> Found:
        uses_graph = graph_wanted(self.settings, request.enable_graph)
        filters = dict(request.filters or {})
        if request.categories is not None:
            if "categories" in filters:
                raise InvalidInput("give categories in the body or in filters, not both")
            filters["categories"] = {"in": request.categories}
        identifiers = request.identifiers()
        for key in SCOPE_KEYS:
            if key not in identifiers and isinstance(filters.get(key), str) and filters[key] != "*":
                identifiers[key] = filters.pop(key)
        if not identifiers and not names_scopes(filters):
            raise InvalidInput(SCOPE_REQUIRED)
        top_k = self._bounded(request.top_k or request.limit, DEFAULT_TOP_K, self.settings.max_top_k, "top_k")
        threshold = DEFAULT_THRESHOLD if request.threshold is None else request.threshold
        # Scopes named only by "*", {"in": [...]} or an OR have no one version row to check: they run uncached.
        cacheable = self.search_cache.enabled and bool(identifiers)
        # Every SearchRequest field is here, in `identifiers` / `filters`, or changes no item (enable_graph).
        cache_key = (
            search_key(
                self.settings.embedder_model,
                access.restricted_values(),
                identifiers,
                query=request.query,
                filters=filters,
                top_k=top_k,
                threshold=threshold,
                explain=request.explain,
                show_expired=request.show_expired,
            )
            if cacheable
            else None
        )
        token = cached = None
        # Only an entry to check is worth a statement before the embed call; without one (a new query), the
        # versions are read on the search's own connection.
        if cache_key is not None and cache_key in self.search_cache:
            [token] = await self.version_reads.submit([scope_rows(identifiers)])
            cached = self.search_cache.get(cache_key, token)
        outcome = "hit" if cached is not None else "miss" if cacheable else "bypass"
        if cached is None:
            cached = await self._search_now(
                request, access, identifiers, filters, top_k, threshold, token, read_token=cacheable
            )
            if cache_key is not None:
                self.search_cache.put(cache_key, cached)
        self.metrics.search_cache.labels(outcome).inc()
        if self.telemetry is not None:
            self.telemetry.emit(
                "search",
                results=len(cached.items),
                exact=cached.exact,
                top_k=top_k,
                keyword=cached.keyword,
                entity=cached.entity,
                cached=outcome == "hit",
            )
        items = list(cached.items)
        if not uses_graph:
            return Found(items, renderings=cached.renderings)
        return Found(items, await self.graph.related(scope_where(access, identifiers), request.query))

    async def _read_versions(self, scopes: list[Sequence[tuple[str, str]]]) -> list[ScopeVersions]:
        """Each search's token, from one statement over the scope rows any of them names."""
        rows = list(dict.fromkeys(row for scope in scopes for row in scope))
        async with storage_errors(), self.pool.connection() as conn:
            read = await self.repository.scope_versions(conn, rows)
        version = dict(zip(rows, read.versions, strict=True))
        return [ScopeVersions(read.day, read.server_started, tuple(version[row] for row in scope)) for scope in scopes]

    async def _search_now(
        self,
        request: SearchRequest,
        access: Access,
        identifiers: dict[str, str],
        filters: dict[str, Any],
        top_k: int,
        threshold: float,
        token: ScopeVersions | None,
        *,
        read_token: bool,
    ) -> CachedSearch:
        """Embed the query (or take it from the embedding cache), then mem0's hybrid search and ranking; the result
        carries `token`, or with `read_token` the versions read here, on the search's own connection."""
        where = scope_where(access, identifiers, filters, show_expired=request.show_expired)
        vector = await self.query_embeddings.get_or_embed(
            self.settings.embedder_model, request.query, lambda: self._embed_one(request.query)
        )
        cap = self.settings.exact_search_max_rows + 1
        size_key = scope_key(identifiers, filters, access.restricted_values())
        ranking = search_params(request.query, threshold=threshold, top_k=top_k)
        entity_where = scope_where(access, identifiers, prefix="entity")
        async with storage_errors(), self.pool.connection() as conn:
            if read_token and token is None:
                # Read before searching: a write committing during the search then makes the entry stale, never
                # wrongly current.
                token = await self.repository.scope_versions(conn, scope_rows(identifiers))
            size = self.scope_sizes.get(size_key)
            if size is None:
                size = await self.repository.count_scope(conn, where, cap)
                self.scope_sizes.put(size_key, size)
            exact = size < cap
            hits = await self.repository.search(conn, where, entity_where, vector, ranking, exact=exact)
        ranked = finish(
            hits.rows,
            any_keyword_hit=hits.any_keyword_hit,
            any_entity=hits.any_entity,
            threshold=threshold,
            top_k=top_k,
        )
        items = []
        for result in ranked:
            item = to_item(StoredMemory(uuid.UUID(result.id), result.payload)) | {"score": result.score}
            if request.explain:
                item["score_details"] = result.details
            items.append(item)
        return CachedSearch(token, tuple(items), exact=exact, keyword=hits.any_keyword_hit, entity=hits.any_entity)

    async def update(self, raw_id: str, request: MemoryUpdate, access: Access) -> dict[str, Any]:
        memory_id = parse_memory_id(raw_id)
        vector = None
        if request.text is not None:
            [vector] = await self.ollama.embed(
                self.settings.embedder_model, [request.text], dims=self.settings.embedding_dims
            )
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            memory = await self.repository.get(conn, memory_id, access_where(access), lock=True)
            if memory is None:
                raise NotFound(f"no memory with id {memory_id}")
            if memory.payload.get("immutable") is True:
                raise Conflict(f"memory {memory_id} was stored immutable; delete it and add a new one instead")
            old_text = memory.payload.get("data")
            payload = (
                {k: v for k, v in memory.payload.items() if k in RESERVED_PAYLOAD_KEYS}
                if request.metadata is not None
                else dict(memory.payload)
            )
            payload.update(request.metadata or {})
            if request.text is not None:
                payload["data"] = request.text
                payload["hash"] = memory_hash(request.text)
                payload["text_lemmatized"] = lemmatize_for_bm25(request.text)
            if "expiration_date" in request.model_fields_set:
                payload.pop("expiration_date", None)
                if request.expiration_date is not None:
                    payload["expiration_date"] = request.expiration_date.isoformat()
            payload["updated_at"] = now_iso()
            await self.repository.update(conn, memory_id, payload, vector)
            if request.text is not None:
                # mem0 re-extracts a rewritten memory's entities; without a model call, it keeps those still named.
                await self.named_entities.unlink(conn, [memory_id], kept_text=request.text)
            event = HistoryEvent(
                memory_id, "UPDATE", old_text, payload.get("data"), payload.get("actor_id"), payload.get("role")
            )
            await self.repository.add_history(conn, [event])
        return to_item(StoredMemory(memory_id, payload))

    async def history(self, raw_id: str, access: Access) -> list[dict[str, Any]]:
        memory_id = parse_memory_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn:
            rows = await self.repository.history(conn, memory_id, access_where(access))
            other = None if rows else await self.repository.written_elsewhere(conn, memory_id, access_where(access))
        if other is not None:
            rows = [added_by_another_client(other)]
        if not rows:
            raise NotFound(f"no history for memory id {memory_id}")
        return [
            {
                **row,
                "id": str(row["id"]),
                "memory_id": str(row["memory_id"]),
                "created_at": _iso(row["created_at"]),
                "updated_at": _iso(row["updated_at"]),
            }
            for row in rows
        ]

    async def delete(self, raw_id: str, access: Access) -> None:
        memory_id = parse_memory_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            deleted = await self.repository.delete(conn, memory_id, access_where(access))
            await self.named_entities.unlink(conn, deleted)
            await forget_memories(conn, self.graph.repository, deleted)
        if not deleted:
            raise NotFound(f"no memory with id {memory_id}")

    async def delete_scope(self, identifiers: dict[str, str], access: Access) -> int:
        """The scope's memories the caller's key may touch, and its jobs with the raw conversations they keep; 403
        for a scope wholly outside the key."""
        if not identifiers:
            raise InvalidInput("at least one identifier (user_id, agent_id or run_id) is required to delete memories")
        if access.excludes(identifiers):
            raise Forbidden(f"this API key may not delete memories of {identifiers}; use a key for them")
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            deleted = await self.repository.delete_scope(conn, scope_where(access, identifiers))
            await self.named_entities.unlink(conn, deleted)
            await clear_graph(conn, self.graph.repository, scope_where(access, identifiers))
            if access.allows(identifiers):
                await self.jobs.delete_scope(conn, identifiers)
        return len(deleted)

    async def reset(self, access: Access) -> None:
        if not access.admin:
            raise Forbidden("reset deletes every memory; only an admin key may call it")
        if not self.settings.allow_reset:
            raise Forbidden("reset deletes every memory and is disabled; set MEM0_ALLOW_RESET=true to enable it")
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            await self.repository.reset(conn)
            await clear_graph(conn, self.graph.repository, access_where(access))
        logger.warning("all memories were reset")

    async def _embed_one(self, text: str) -> Embedding:
        [vector] = await self.ollama.embed(self.settings.embedder_model, [text], dims=self.settings.embedding_dims)
        return vector

    @staticmethod
    def _bounded(value: int | None, default: int, maximum: int, name: str) -> int:
        if value is None:
            return default
        if not 1 <= value <= maximum:
            raise InvalidInput(f"{name} must be between 1 and {maximum}, got {value}")
        return value


def added_by_another_client(memory: StoredMemory) -> dict[str, Any]:
    """The ADD of a memory another client (mem0's own library) wrote on this table, rebuilt from the memory itself:
    that client keeps its history elsewhere. Its id is the memory's."""
    payload = memory.payload
    return {
        "id": memory.id,
        "memory_id": memory.id,
        "old_memory": None,
        "new_memory": payload.get("data"),
        "event": "ADD",
        "created_at": _parsed(payload.get("created_at")),
        "updated_at": None,
        "is_deleted": False,
        "actor_id": payload.get("actor_id"),
        "role": payload.get("role"),
    }


def _parsed(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
