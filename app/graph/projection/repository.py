"""SQL access for the projection's state (graph_projection); every statement comes from queries.sql."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection

from app.db.queries import Queries
from app.params import IDENTIFIER_KEYS


@dataclass(frozen=True)
class ClaimedScope:
    scope_key: str
    identifiers: dict[str, str]
    version: int  # what Neo4j shows once this projection completes


@dataclass(frozen=True)
class Backlog:
    behind: int
    lag_s: float  # since the oldest change Neo4j has not seen
    failing: int  # scopes behind whose latest projection failed


class ProjectionRepository:
    def __init__(self) -> None:
        self.q = Queries.load("app.graph.projection")

    async def claim(self, conn: AsyncConnection, user_id: str | None = None) -> ClaimedScope | None:
        """Inside a transaction: the scope is locked until it ends."""
        cursor = await conn.execute(self.q["claim_scope"], {"user_id": user_id})
        claimed = await cursor.fetchone()
        if claimed is None:
            return None
        scope_key, payload = str(claimed[0]), claimed[1]
        cursor = await conn.execute(self.q["locked_version"], {"scope_key": scope_key})
        locked = await cursor.fetchone()
        if locked is None:
            return None
        identifiers = {kind: str(payload[kind]) for kind in IDENTIFIER_KEYS if payload.get(kind) is not None}
        return ClaimedScope(scope_key, identifiers, int(locked[0]))

    async def complete(self, conn: AsyncConnection, scope: ClaimedScope) -> None:
        await conn.execute(self.q["complete_scope"], {"scope_key": scope.scope_key, "version": scope.version})

    async def fail(
        self, conn: AsyncConnection, scope: ClaimedScope, error: str, *, backoff_s: float, backoff_max_s: float
    ) -> None:
        params = {"scope_key": scope.scope_key, "error": error, "backoff_s": backoff_s, "backoff_max_s": backoff_max_s}
        await conn.execute(self.q["fail_scope"], params)

    async def release_waiting(self, conn: AsyncConnection, user_id: str | None = None) -> int:
        cursor = await conn.execute(self.q["release_waiting"], {"user_id": user_id})
        return cursor.rowcount

    async def backlog(self, conn: AsyncConnection) -> Backlog:
        cursor = await conn.execute(self.q["backlog"])
        row = await cursor.fetchone()
        return Backlog(int(row[0]), float(row[1]), int(row[2])) if row else Backlog(0, 0.0, 0)

    async def count_behind(self, conn: AsyncConnection, user_id: str | None = None) -> int:
        cursor = await conn.execute(self.q["count_behind"], {"user_id": user_id})
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def mark_behind(self, conn: AsyncConnection, user_id: str | None = None) -> int:
        cursor = await conn.execute(self.q["mark_behind"], {"user_id": user_id})
        row = await cursor.fetchone()
        return int(row[0]) if row else 0
