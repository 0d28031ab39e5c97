"""SQL access for entities; every statement comes from queries.sql."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from psycopg import AsyncConnection

from app.db.queries import Queries
from app.memories.repository import Where


@dataclass(frozen=True)
class Entity:
    type: str  # user, agent or run
    name: str
    total_memories: int
    created_at: str | None
    updated_at: str | None


class EntityRepository:
    def __init__(self, collection: str) -> None:
        self.q = Queries.load("app.entities", collection=collection)

    async def page(self, conn: AsyncConnection, where: Where, limit: int, offset: int) -> list[Entity]:
        query = self.q["list_entities"].format(where=where.clause())
        cursor = await conn.execute(query, {**where.params, "limit": limit, "offset": offset})
        return [Entity(row[0], row[1], int(row[2]), row[3], row[4]) for row in await cursor.fetchall()]

    async def count(self, conn: AsyncConnection, where: Where) -> int:
        cursor = await conn.execute(self.q["count_entities"].format(where=where.clause()), where.params)
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


@cache
def repository_for(collection: str) -> EntityRepository:
    """One repository per table: the queries are read once, not on every request."""
    return EntityRepository(collection)
