"""SQL access for the entity collection; every statement comes from queries.sql."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pgvector import Vector
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from app.db.queries import Queries
from app.filters import Where
from app.llm.embedding import Embedding


@dataclass(frozen=True)
class NewEntity:
    """An entity the model found, with the embedding of its name (mem0's layout keeps one per entity)."""

    name: str
    type: str
    vector: Embedding


@dataclass(frozen=True)
class StoredEntity:
    id: UUID
    payload: dict[str, Any]


class NamedEntityRepository:
    def __init__(self, collection: str) -> None:
        self.q = Queries.load("app.named_entities", collection=collection)

    async def link(
        self,
        conn: AsyncConnection,
        identifiers: Mapping[str, str],
        memories: Mapping[UUID, str],
        entities: Sequence[NewEntity],
    ) -> None:
        """Inside the caller's transaction, under the scope's lock: each memory (id: text) linked to the entities
        its text names."""
        if not memories or not entities:
            return
        params = {
            "names": [e.name for e in entities],
            "types": [e.type for e in entities],
            "vectors": [Vector(e.vector) for e in entities],
            "memory_ids": [str(memory_id) for memory_id in memories],
            "texts": list(memories.values()),
            "user_id": identifiers.get("user_id"),
            "agent_id": identifiers.get("agent_id"),
            "run_id": identifiers.get("run_id"),
            "scope": Jsonb(dict(identifiers)),
        }
        await conn.execute(self.q["link_memories"], params)

    async def unlink(self, conn: AsyncConnection, memory_ids: Sequence[UUID], kept_text: str | None = None) -> None:
        """Inside the caller's transaction: the memories leave their entities (those `kept_text` still names keep
        them), and entities linked to nothing more are deleted."""
        if not memory_ids:
            return
        params = {"memory_ids": [str(memory_id) for memory_id in memory_ids], "kept_text": kept_text}
        await conn.execute(self.q["delete_orphaned_entities"], params)
        await conn.execute(self.q["unlink_memories"], params)

    async def page(self, conn: AsyncConnection, where: Where, limit: int, offset: int) -> list[StoredEntity]:
        query = self.q["list_entities"].format(where=where.clause())
        cursor = await conn.execute(query, {**where.params, "limit": limit, "offset": offset})
        return [StoredEntity(row[0], row[1] or {}) for row in await cursor.fetchall()]

    async def count(self, conn: AsyncConnection, where: Where) -> int:
        cursor = await conn.execute(self.q["count_entities"].format(where=where.clause()), where.params)
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def delete(self, conn: AsyncConnection, entity_id: UUID, where: Where) -> int:
        query = self.q["delete_entity"].format(where=where.clause())
        cursor = await conn.execute(query, {**where.params, "id": entity_id})
        return cursor.rowcount
