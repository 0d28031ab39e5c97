"""Memory use cases: every write embeds in one call and commits in one transaction, or fails whole."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, Rollback
from psycopg_pool import AsyncConnectionPool

from app.config import Settings
from app.db.errors import storage_errors
from app.errors import AppError, Forbidden, InvalidInput, NotFound
from app.llm.client import OllamaClient
from app.llm.embed_cache import EmbedCache
from app.memories.repository import HistoryEvent, MemoryRepository, NewMemory, StoredMemory, scope_where
from app.memories.schemas import IDENTIFIER_KEYS, RESERVED_PAYLOAD_KEYS, MemoryCreate, MemoryUpdate, SearchRequest
from app.memories.scope_sizes import ScopeSizes, scope_key
from app.metrics import Metrics
from app.telemetry.service import Telemetry

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 10
DEFAULT_LIST_LIMIT = 100
_PROMOTED_KEYS = (*IDENTIFIER_KEYS, "actor_id", "role")
# Extra statements a caller runs inside a write's transaction, after the rows and before commit, given the
# results the write will answer with (idempotency keys complete here, so rows and key commit together).
BeforeCommit = Callable[[AsyncConnection, list[dict[str, Any]]], Awaitable[None]]
# Like BeforeCommit, but answers whether to commit (False rolls the write back).
Finish = Callable[[AsyncConnection, list[dict[str, Any]]], Awaitable[bool]]


def _then_commit(before_commit: BeforeCommit) -> Finish:
    async def finish(conn: AsyncConnection, results: list[dict[str, Any]]) -> bool:
        await before_commit(conn, results)
        return True

    return finish


def memory_hash(text: str) -> str:
    """mem0's content hash (md5 of the text), kept so upstream deduplication reads our rows the same way."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


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


@dataclass(frozen=True)
class PreparedMemory:
    text: str
    payload: dict[str, Any]
    role: str
    actor_id: str | None


class MemoryService:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        ollama: OllamaClient,
        repository: MemoryRepository,
        metrics: Metrics | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.telemetry = telemetry
        self.pool = pool
        self.ollama = ollama
        self.repository = repository
        self.query_embeddings = EmbedCache(settings.embed_cache_size)
        self.scope_sizes = ScopeSizes(settings.scope_size_ttl_s)

    def check_limits(self, request: MemoryCreate) -> None:
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

    def prepare_raw(self, request: MemoryCreate) -> list[PreparedMemory]:
        """One memory per non-system message, payload laid out as mem0 writes it."""
        created_at = now_iso()
        base = {**(request.metadata or {}), **request.identifiers()}
        prepared = []
        for message in request.messages:
            if message.role == "system":
                continue
            payload = {
                **base,
                "data": message.content,
                "hash": memory_hash(message.content),
                "role": message.role,
                "created_at": created_at,
                "updated_at": created_at,
            }
            if message.name:
                payload["actor_id"] = message.name
            prepared.append(PreparedMemory(message.content, payload, message.role, message.name))
        if not prepared:
            raise InvalidInput(
                "every message has role 'system', so there is nothing to store; send user or assistant messages"
            )
        return prepared

    async def add(self, request: MemoryCreate, *, before_commit: BeforeCommit | None = None) -> list[dict[str, Any]]:
        """The deterministic write (infer: false); inferred writes go through the job queue (app/jobs)."""
        self.check_limits(request)
        if self.telemetry is not None:
            self.telemetry.emit("write.accepted", messages=len(request.messages), infer=False)
        return await self.store(self.prepare_raw(request), before_commit=before_commit)

    async def store(
        self, prepared: list[PreparedMemory], *, before_commit: BeforeCommit | None = None
    ) -> list[dict[str, Any]]:
        """Embed all texts in one call, then insert memories and ADD history in one transaction."""
        try:
            results = await self._store(prepared, before_commit)
        except Exception as error:
            if not isinstance(error, AppError) or error.status_code >= 500:
                self._record_write("failed", 0, getattr(error, "code", type(error).__name__))
            raise
        self._record_write("persisted", len(results))
        return results

    def _record_write(self, outcome: str, memories: int, error: str | None = None) -> None:
        if self.metrics is not None:
            self.metrics.writes.labels(outcome).inc()
            self.metrics.memories_persisted.inc(memories)
        if self.telemetry is not None:
            self.telemetry.emit(f"write.{outcome}", memories=memories, error=error)

    async def _store(self, prepared: list[PreparedMemory], before_commit: BeforeCommit | None) -> list[dict[str, Any]]:
        results = await self.store_then(prepared, None if before_commit is None else _then_commit(before_commit))
        assert results is not None, "only a finish that answers False discards the write"
        return results

    async def drop_already_stored(
        self, identifiers: dict[str, str], prepared: list[PreparedMemory]
    ) -> list[PreparedMemory]:
        """The memories whose exact text (mem0's hash) is not stored in this scope yet."""
        if not prepared:
            return prepared
        async with storage_errors(), self.pool.connection() as conn:
            stored = await self.repository.existing_hashes(
                conn, scope_where(identifiers), [p.payload["hash"] for p in prepared]
            )
        return [p for p in prepared if p.payload["hash"] not in stored]

    async def store_then(
        self,
        prepared: list[PreparedMemory],
        finish: Finish | None,
    ) -> list[dict[str, Any]] | None:
        """Like store, but `finish` runs in the same transaction (the job queue marks its job done there);
        when it answers False (the job is no longer ours) the transaction rolls back and nothing is stored.
        Without `finish` the write is one autocommitted statement: one round trip, still all or nothing."""
        vectors = (
            await self.ollama.embed(
                self.settings.embedder_model, [p.text for p in prepared], dims=self.settings.embedding_dims
            )
            if prepared
            else []
        )
        rows = [
            NewMemory(uuid.uuid4(), vector, p.payload, p.text, p.actor_id, p.role)
            for p, vector in zip(prepared, vectors, strict=True)
        ]
        results = [
            {"id": str(row.id), "memory": row.text, "event": "ADD", "role": row.role, "actor_id": row.actor_id}
            for row in rows
        ]
        owned = True
        async with storage_errors(), self.pool.connection() as conn:
            if finish is None:
                if rows:
                    await self.repository.insert_with_history(conn, rows)
                return results
            async with conn.transaction():
                if rows:
                    await self.repository.insert_with_history(conn, rows)
                if not await finish(conn, results):
                    owned = False
                    raise Rollback()  # psycopg rolls the block back and does not propagate this
        return results if owned else None

    async def get(self, raw_id: str) -> dict[str, Any]:
        memory_id = parse_memory_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn:
            memory = await self.repository.get(conn, memory_id)
        if memory is None:
            raise NotFound(f"no memory with id {memory_id}")
        return to_item(memory)

    async def list_memories(self, identifiers: dict[str, str], limit: int | None) -> list[dict[str, Any]]:
        if not identifiers:
            raise InvalidInput("at least one identifier (user_id, agent_id or run_id) is required")
        limit = self._bounded(limit, DEFAULT_LIST_LIMIT, self.settings.max_list_limit, "limit")
        async with storage_errors(), self.pool.connection() as conn:
            memories = await self.repository.list_scope(conn, scope_where(identifiers), limit)
        return [to_item(memory) for memory in memories]

    async def search(self, request: SearchRequest) -> list[dict[str, Any]]:
        filters = dict(request.filters or {})
        identifiers = request.identifiers()
        for key in IDENTIFIER_KEYS:
            if key not in identifiers and isinstance(filters.get(key), str):
                identifiers[key] = filters.pop(key)
        top_k = self._bounded(request.top_k or request.limit, DEFAULT_TOP_K, self.settings.max_top_k, "top_k")
        where = scope_where(identifiers, filters)
        vector = await self.query_embeddings.get_or_embed(
            self.settings.embedder_model, request.query, lambda: self._embed_one(request.query)
        )
        cap = self.settings.exact_search_max_rows + 1
        size_key = scope_key(identifiers, filters)
        async with storage_errors(), self.pool.connection() as conn:
            size = self.scope_sizes.get(size_key)
            if size is None:
                size = await self.repository.count_scope(conn, where, cap)
                self.scope_sizes.put(size_key, size)
            exact = size < cap
            memories = await self.repository.search(conn, where, vector, top_k, exact=exact)
        items = [to_item(memory, with_score=True) for memory in memories]
        if request.threshold is not None:
            items = [item for item in items if item["score"] >= request.threshold]
        if self.telemetry is not None:
            self.telemetry.emit("search", results=len(items), exact=exact, top_k=top_k)
        return items

    async def update(self, raw_id: str, request: MemoryUpdate) -> dict[str, Any]:
        memory_id = parse_memory_id(raw_id)
        vector = None
        if request.text is not None:
            [vector] = await self.ollama.embed(
                self.settings.embedder_model, [request.text], dims=self.settings.embedding_dims
            )
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            memory = await self.repository.get(conn, memory_id, lock=True)
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
            payload["updated_at"] = now_iso()
            await self.repository.update(conn, memory_id, payload, vector)
            event = HistoryEvent(
                memory_id, "UPDATE", old_text, payload.get("data"), payload.get("actor_id"), payload.get("role")
            )
            await self.repository.add_history(conn, [event])
        return to_item(StoredMemory(memory_id, payload))

    async def history(self, raw_id: str) -> list[dict[str, Any]]:
        memory_id = parse_memory_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn:
            rows = await self.repository.history(conn, memory_id)
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

    async def delete(self, raw_id: str) -> None:
        memory_id = parse_memory_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            deleted = await self.repository.delete(conn, memory_id)
        if not deleted:
            raise NotFound(f"no memory with id {memory_id}")

    async def delete_scope(self, identifiers: dict[str, str]) -> int:
        if not identifiers:
            raise InvalidInput("at least one identifier (user_id, agent_id or run_id) is required to delete memories")
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            return await self.repository.delete_scope(conn, scope_where(identifiers))

    async def reset(self) -> None:
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
