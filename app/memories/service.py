"""Memory use cases: every write embeds in one call and commits in one transaction, or fails whole."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.auth.access import EVERYTHING, Access
from app.config import Settings
from app.db.errors import storage_errors
from app.errors import AppError, Forbidden, InvalidInput, NotFound
from app.idempotency.repository import Claim
from app.idempotency.schemas import KeyedRequest, StoredResponse
from app.idempotency.service import IdempotencyService, Outcome
from app.jobs.repository import JobRepository
from app.llm.client import OllamaClient
from app.llm.embed_cache import EmbedCache
from app.llm.extraction import ExtractedEntity
from app.memories.keywords import DEFAULT_THRESHOLD, finish, lemmatize_for_bm25, search_params
from app.memories.payloads import MemoryDraft, drafts_from_messages, memory_hash, now_iso
from app.memories.repository import (
    HistoryEvent,
    MemoryRepository,
    NewMemory,
    StoredMemory,
    access_where,
    scope_where,
)
from app.memories.responses import added_response
from app.memories.schemas import IDENTIFIER_KEYS, RESERVED_PAYLOAD_KEYS, MemoryCreate, MemoryUpdate, SearchRequest
from app.memories.scope_sizes import ScopeSizes, scope_key
from app.metrics import Metrics
from app.named_entities.repository import NamedEntityRepository, NewEntity
from app.telemetry.service import Telemetry

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 10
DEFAULT_LIST_LIMIT = 20  # upstream mem0's default page
_PROMOTED_KEYS = (*IDENTIFIER_KEYS, "actor_id", "role", "expiration_date")


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


class MemoryService:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        ollama: OllamaClient,
        repository: MemoryRepository,
        entities: NamedEntityRepository,
        jobs: JobRepository,
        idempotency: IdempotencyService,
        metrics: Metrics | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.idempotency = idempotency
        self.jobs = jobs
        self.metrics = metrics
        self.telemetry = telemetry
        self.pool = pool
        self.ollama = ollama
        self.repository = repository
        self.entities = entities
        self.query_embeddings = EmbedCache(settings.embed_cache_size)
        self.scope_sizes = ScopeSizes(settings.scope_size_ttl_s)

    def check_limits(self, request: MemoryCreate, access: Access) -> None:
        """Refuses, before anything runs, a write outside the caller's key or over the request limits."""
        if not access.allows(request.identifiers()):
            raise Forbidden(f"this API key may not write memories for {request.identifiers()}; use a key for them")
        if len(request.messages) > self.settings.max_messages:
            raise InvalidInput(
                f"{len(request.messages)} messages sent; "
                f"at most {self.settings.max_messages} (MEM0_MAX_MESSAGES) per request"
            )
        for index, message in enumerate(request.messages):
            if len(message.content) > self.settings.max_message_chars:
                raise InvalidInput(
                    f"messages.{index}.content has {len(message.content)} characters; "
                    f"at most {self.settings.max_message_chars} (MEM0_MAX_MESSAGE_CHARS); split it"
                )
        copies = request.metadata_copies_bytes()
        if copies > self.settings.max_write_metadata_bytes:
            raise InvalidInput(
                f"metadata: {copies:,} bytes would be stored (it is copied into every memory of the write); at most "
                f"{self.settings.max_write_metadata_bytes:,} (MEM0_MAX_WRITE_METADATA_BYTES); send less metadata "
                "or fewer messages per request"
            )

    async def add(self, request: MemoryCreate, access: Access, key: KeyedRequest | None = None) -> Outcome:
        """The deterministic write (infer: false): each non-system message becomes one memory. Embeds first,
        then stores the rows, their ADD history and the completed idempotency key in one transaction.
        Inferred writes go through the job queue (app/jobs)."""
        self.check_limits(request, access)
        if self.telemetry is not None:
            self.telemetry.emit("write.accepted", messages=len(request.messages), infer=False)
        claim: Claim | None = None
        if key is not None:
            claimed = await self.idempotency.claim(key)
            if isinstance(claimed, StoredResponse):
                return Outcome(claimed, replayed=True)
            claim = claimed
        try:
            async with self.idempotency.held(claim):
                rows = await self.embed(drafts_from_messages(request))
                response = added_response(rows)
                async with storage_errors(), self.pool.connection() as conn:
                    if claim is None:
                        await self.insert(conn, rows)  # one statement: atomic without a transaction
                    else:
                        async with conn.transaction():
                            await self.insert(conn, rows)
                            await self.idempotency.complete(conn, claim, response)
        except Exception as error:
            if not isinstance(error, AppError) or error.status_code >= 500:
                self.record_write("failed", 0, getattr(error, "code", type(error).__name__))
            raise
        self.record_write("persisted", len(rows))
        return Outcome(response, replayed=False)

    async def embed(self, drafts: Sequence[MemoryDraft]) -> list[NewMemory]:
        """The rows to insert: every draft's text embedded in one call, ids chosen here."""
        if not drafts:
            return []
        vectors = await self.ollama.embed(
            self.settings.embedder_model, [d.text for d in drafts], dims=self.settings.embedding_dims
        )
        return [
            NewMemory(uuid.uuid4(), vector, d.payload, d.text, d.actor_id, d.role)
            for d, vector in zip(drafts, vectors, strict=True)
        ]

    async def insert(self, conn: AsyncConnection, rows: Sequence[NewMemory]) -> list[NewMemory]:
        """The rows and their ADD history, in one statement (inside the caller's transaction, if any)."""
        if rows:
            await self.repository.insert_with_history(conn, rows)
        return list(rows)

    async def insert_unseen(
        self, conn: AsyncConnection, identifiers: dict[str, str], rows: Sequence[NewMemory]
    ) -> list[NewMemory]:
        """Inside the caller's transaction: insert the rows whose text (mem0's hash) the scope does not hold
        yet, and return them. The scope's advisory lock makes two writers of one fact store it once."""
        if not rows:
            return []
        await self.repository.lock_scope(conn, identifiers)
        stored = await self.repository.existing_hashes(
            conn, scope_where(EVERYTHING, identifiers), [row.payload["hash"] for row in rows]
        )
        return await self.insert(conn, [row for row in rows if row.payload["hash"] not in stored])

    async def embed_entities(self, entities: Sequence[ExtractedEntity]) -> list[NewEntity]:
        """Each entity's name embedded, in one call: mem0's entity collection keeps a vector per entity."""
        if not entities:
            return []
        vectors = await self.ollama.embed(
            self.settings.embedder_model, [e.name for e in entities], dims=self.settings.embedding_dims
        )
        return [NewEntity(e.name, e.type, vector) for e, vector in zip(entities, vectors, strict=True)]

    async def link_entities(
        self,
        conn: AsyncConnection,
        identifiers: dict[str, str],
        stored: Sequence[NewMemory],
        entities: Sequence[NewEntity],
    ) -> None:
        """Inside the caller's transaction, after insert_unseen (whose scope lock it relies on): each new memory
        linked to the entities its text names."""
        await self.entities.link(conn, identifiers, stored, entities)

    def record_write(self, outcome: str, memories: int, error: str | None = None) -> None:
        if self.metrics is not None:
            self.metrics.writes.labels(outcome).inc()
            self.metrics.memories_persisted.inc(memories)
        if self.telemetry is not None:
            self.telemetry.emit(f"write.{outcome}", memories=memories, error=error)

    async def get(self, raw_id: str, access: Access) -> dict[str, Any]:
        memory_id = parse_memory_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn:
            memory = await self.repository.get(conn, memory_id, access_where(access))
        if memory is None:
            raise NotFound(f"no memory with id {memory_id}")
        return to_item(memory)

    async def list_memories(
        self, identifiers: dict[str, str], limit: int | None, access: Access, *, show_expired: bool = False
    ) -> list[dict[str, Any]]:
        if not identifiers:
            raise InvalidInput("at least one identifier (user_id, agent_id or run_id) is required")
        limit = self._bounded(limit, DEFAULT_LIST_LIMIT, self.settings.max_list_limit, "limit")
        async with storage_errors(), self.pool.connection() as conn:
            memories = await self.repository.list_scope(
                conn, scope_where(access, identifiers, show_expired=show_expired), limit
            )
        return [to_item(memory) for memory in memories]

    async def search(self, request: SearchRequest, access: Access) -> list[dict[str, Any]]:
        filters = dict(request.filters or {})
        identifiers = request.identifiers()
        for key in IDENTIFIER_KEYS:
            if key not in identifiers and isinstance(filters.get(key), str) and filters[key] != "*":
                identifiers[key] = filters.pop(key)
        if not identifiers:
            # An operator on an identifier ({"user_id": {"ne": ""}}) would widen the search to every scope.
            raise InvalidInput(
                "at least one identifier (user_id, agent_id or run_id) is required as a plain value, "
                "top-level or in filters; operators on identifiers do not name a scope"
            )
        top_k = self._bounded(request.top_k or request.limit, DEFAULT_TOP_K, self.settings.max_top_k, "top_k")
        where = scope_where(access, identifiers, filters, show_expired=request.show_expired)
        vector = await self.query_embeddings.get_or_embed(
            self.settings.embedder_model, request.query, lambda: self._embed_one(request.query)
        )
        cap = self.settings.exact_search_max_rows + 1
        size_key = scope_key(identifiers, filters, access.like_patterns())
        threshold = DEFAULT_THRESHOLD if request.threshold is None else request.threshold
        ranking = search_params(request.query, threshold=threshold, top_k=top_k)
        entity_where = scope_where(access, identifiers, prefix="entity")
        async with storage_errors(), self.pool.connection() as conn:
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
        if self.telemetry is not None:
            self.telemetry.emit(
                "search",
                results=len(items),
                exact=exact,
                top_k=top_k,
                keyword=hits.any_keyword_hit,
                entity=hits.any_entity,
            )
        return items

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
                await self.entities.unlink(conn, [memory_id], kept_text=request.text)
            event = HistoryEvent(
                memory_id, "UPDATE", old_text, payload.get("data"), payload.get("actor_id"), payload.get("role")
            )
            await self.repository.add_history(conn, [event])
        return to_item(StoredMemory(memory_id, payload))

    async def history(self, raw_id: str, access: Access) -> list[dict[str, Any]]:
        memory_id = parse_memory_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn:
            rows = await self.repository.history(conn, memory_id, access_where(access))
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
            await self.entities.unlink(conn, deleted)
        if not deleted:
            raise NotFound(f"no memory with id {memory_id}")

    async def delete_scope(self, identifiers: dict[str, str], access: Access) -> int:
        """The scope's memories, and its jobs with the raw conversations they keep. A scope outside the caller's
        key holds nothing for it: 0 deleted."""
        if not identifiers:
            raise InvalidInput("at least one identifier (user_id, agent_id or run_id) is required to delete memories")
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            deleted = await self.repository.delete_scope(conn, scope_where(access, identifiers))
            await self.entities.unlink(conn, deleted)
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
        logger.warning("all memories were reset")

    async def _embed_one(self, text: str) -> list[float]:
        [vector] = await self.ollama.embed(self.settings.embedder_model, [text], dims=self.settings.embedding_dims)
        return vector

    @staticmethod
    def _bounded(value: int | None, default: int, maximum: int, name: str) -> int:
        if value is None:
            return default
        if not 1 <= value <= maximum:
            raise InvalidInput(f"{name} must be between 1 and {maximum}, got {value}")
        return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
