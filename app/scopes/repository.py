"""SQL access for scopes; every statement comes from queries.sql."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection

from app.db.queries import Queries
from app.filters import Where


@dataclass(frozen=True)
class Scope:
    type: str  # user, agent or run
    name: str
    total_memories: int
    created_at: str | None
    updated_at: str | None


class ScopeRepository:
    def __init__(self, collection: str) -> None:
        self.q = Queries.load("app.scopes", collection=collection)

    async def page(self, conn: AsyncConnection, where: Where, limit: int, offset: int) -> list[Scope]:
        query = self.q["list_scopes"].format(where=where.clause())
        cursor = await conn.execute(query, {**where.params, "limit": limit, "offset": offset})
        return [Scope(row[0], row[1], int(row[2]), row[3], row[4]) for row in await cursor.fetchall()]

    async def count(self, conn: AsyncConnection, where: Where) -> int:
        cursor = await conn.execute(self.q["count_scopes"].format(where=where.clause()), where.params)
        row = await cursor.fetchone()
        return int(row[0]) if row else 0
