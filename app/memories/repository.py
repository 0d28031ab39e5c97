"""SQL access for memories and their history; every statement comes from queries.sql."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pgvector import Vector
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from app.db.queries import Queries
from app.filters import Where
from app.llm.embedding import Embedding
from app.memories.keywords import ScoredRow
from app.memories.search_cache import ScopeVersions


@dataclass(frozen=True)
class StoredMemory:
    id: UUID
    payload: dict[str, Any]
    distance: float | None = None


@dataclass(frozen=True)
class SearchHits:
    """The search query's ranked rows, and whether the scope had any keyword hit, or any entity the query names."""

    rows: list[ScoredRow]
    any_keyword_hit: bool
    any_entity: bool


@dataclass(frozen=True)
class NewMemory:
    """A row to insert; text, actor_id and role also go into its ADD history event."""

    id: UUID
    vector: Embedding
    payload: dict[str, Any]
    text: str
    actor_id: str | None
    role: str | None


@dataclass(frozen=True)
class HistoryEvent:
    memory_id: UUID
    event: str
    old_memory: str | None
    new_memory: str | None
    actor_id: str | None = None
    role: str | None = None
    is_deleted: bool = False


class MemoryRepository:
    def __init__(self, collection: str) -> None:
        self.q = Queries.load("app.memories", collection=collection)

    def _with_where(self, name: str, where: Where) -> sql.Composed:
        return self.q[name].format(where=where.clause())

    async def insert_with_history(self, conn: AsyncConnection, memories: Sequence[NewMemory]) -> None:
        await conn.execute(
            self.q["insert_memories_with_history"],
            {
                "ids": [m.id for m in memories],
                "vectors": [Vector(m.vector) for m in memories],
                "payloads": [Jsonb(m.payload) for m in memories],
                "texts": [m.text for m in memories],
                "actor_ids": [m.actor_id for m in memories],
                "roles": [m.role for m in memories],
            },
        )

    async def add_history(self, conn: AsyncConnection, events: Sequence[HistoryEvent]) -> None:
        async with conn.cursor() as cursor:
            await cursor.executemany(
                self.q["insert_history"],
                [
                    {
                        "memory_id": e.memory_id,
                        "old_memory": e.old_memory,
                        "new_memory": e.new_memory,
                        "event": e.event,
                        "is_deleted": e.is_deleted,
                        "actor_id": e.actor_id,
                        "role": e.role,
                    }
                    for e in events
                ],
            )

    async def get(
        self, conn: AsyncConnection, memory_id: UUID, where: Where, *, lock: bool = False
    ) -> StoredMemory | None:
        query = self._with_where("lock_memory" if lock else "get_memory", where)
        cursor = await conn.execute(query, {**where.params, "id": memory_id})
        row = await cursor.fetchone()
        return None if row is None else StoredMemory(row[0], row[1] or {})

    async def list_scope(self, conn: AsyncConnection, where: Where, limit: int) -> list[StoredMemory]:
        cursor = await conn.execute(self._with_where("list_memories", where), {**where.params, "limit": limit})
        return [StoredMemory(row[0], row[1] or {}) for row in await cursor.fetchall()]

    async def lock_scope(self, conn: AsyncConnection, identifiers: Mapping[str, str]) -> None:
        """A transaction-scoped advisory lock on one scope, so concurrent writers de-duplicate against each other."""
        scope = json.dumps(dict(sorted(identifiers.items())), separators=(",", ":"))
        await conn.execute(self.q["lock_scope"], {"scope": scope})

    async def existing_hashes(self, conn: AsyncConnection, where: Where, hashes: Sequence[str]) -> dict[str, UUID]:
        """Of these content hashes, those the scope holds, each with one memory that has it."""
        query = self._with_where("existing_hashes", where)
        cursor = await conn.execute(query, {**where.params, "hashes": list(hashes)})
        return {str(row[0]): row[1] for row in await cursor.fetchall()}

    async def count_scope(self, conn: AsyncConnection, where: Where, cap: int) -> int:
        cursor = await conn.execute(self._with_where("count_scope_capped", where), {**where.params, "cap": cap})
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    def semantic(self, where: Where, *, dims: int, exact: bool) -> sql.Composed:
        """search's semantic candidates: the exact scan of a small scope, or the index query of a large one (which
        names the vectors' dimensions, as the index's expression does)."""
        return self.q["semantic_exact" if exact else "semantic_index"].format(
            where=where.clause(), dims=sql.Literal(int(dims))
        )

    async def search(
        self,
        conn: AsyncConnection,
        where: Where,
        entity_where: Where,
        vector: Embedding,
        ranking: Mapping[str, Any],
        *,
        exact: bool,
    ) -> SearchHits:
        """mem0's hybrid ranking in one statement; `ranking` holds its parameters (keywords.search_params), and
        `entity_where` picks the entities that may boost (the scope's, within the caller's key)."""
        semantic = self.semantic(where, dims=len(vector), exact=exact)
        query = self.q["search"].format(where=where.clause(), semantic=semantic, entity_where=entity_where.clause())
        params = {**where.params, **entity_where.params, **ranking, "vector": Vector(vector)}
        rows = await (await conn.execute(query, params)).fetchall()
        return SearchHits(
            [ScoredRow(str(row[0]), row[1], float(row[2]), float(row[3]), float(row[4])) for row in rows],
            bool(rows and rows[0][5]),
            bool(rows and rows[0][6]),
        )

    async def scope_versions(self, conn: AsyncConnection, rows: Sequence[tuple[str, str]]) -> ScopeVersions:
        """The versions of these scope_versions rows (kind, value), in order, and what else a cached search
        result is valid under."""
        params = {"kinds": [kind for kind, _ in rows], "values": [value for _, value in rows]}
        row = await (await conn.execute(self.q["scope_versions"], params)).fetchone()
        assert row is not None  # a SELECT without FROM returns its one row
        return ScopeVersions(row[0], row[1], tuple(row[2]))

    async def update(
        self, conn: AsyncConnection, memory_id: UUID, payload: dict[str, Any], vector: Embedding | None
    ) -> None:
        if vector is None:
            await conn.execute(self.q["update_payload"], {"id": memory_id, "payload": Jsonb(payload)})
        else:
            params = {"id": memory_id, "payload": Jsonb(payload), "vector": Vector(vector)}
            await conn.execute(self.q["update_vector_and_payload"], params)

    async def delete(self, conn: AsyncConnection, memory_id: UUID, where: Where) -> list[UUID]:
        """The memory and a DELETE history event; its id if it was there (and visible through `where`)."""
        cursor = await conn.execute(self._with_where("delete_memory", where), {**where.params, "id": memory_id})
        return [row[0] for row in await cursor.fetchall()]

    async def delete_scope(self, conn: AsyncConnection, where: Where) -> list[UUID]:
        cursor = await conn.execute(self._with_where("delete_scope", where), where.params)
        return [row[0] for row in await cursor.fetchall()]

    async def history(self, conn: AsyncConnection, memory_id: UUID, where: Where) -> list[dict[str, Any]]:
        """Every event of the memory; with a restricted `where`, only while the memory itself is visible."""
        query = self._with_where("history_in_scope", where) if where.parts else self.q["history"]
        cursor = await conn.execute(query, {**where.params, "memory_id": memory_id})
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]

    async def written_elsewhere(self, conn: AsyncConnection, memory_id: UUID, where: Where) -> StoredMemory | None:
        """The memory, if another client wrote it (and `where` shows it)."""
        cursor = await conn.execute(
            self._with_where("written_elsewhere", where), {**where.params, "memory_id": memory_id}
        )
        row = await cursor.fetchone()
        return StoredMemory(row[0], row[1]) if row else None

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(self.q["reset_all"])
