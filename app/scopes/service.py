"""Scope use cases: list the user, agent and run ids the caller's key can see; delete one with its memories."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from app.auth.access import Access
from app.db.errors import storage_errors
from app.errors import InvalidInput
from app.filters import access_where
from app.memories.service import MemoryService
from app.params import MAX_IDENTIFIER_CHARS, MAX_PAGE_SIZE
from app.scopes.repository import ScopeRepository

# The identifier each scope type names; mem0's hosted API also has "app", which this server does not scope by.
SCOPE_KEYS = {"user": "user_id", "agent": "agent_id", "run": "run_id"}


def scope_of(scope_type: str, name: str) -> dict[str, str]:
    key = SCOPE_KEYS.get(scope_type)
    if key is None:
        raise InvalidInput(f"type {scope_type[:32]!r} is not supported; use one of {', '.join(SCOPE_KEYS)}")
    if not name or len(name) > MAX_IDENTIFIER_CHARS:
        raise InvalidInput(f"the {scope_type} id must be 1-{MAX_IDENTIFIER_CHARS} characters")
    return {key: name}


class ScopeService:
    def __init__(self, pool: AsyncConnectionPool, repository: ScopeRepository, memories: MemoryService) -> None:
        self.pool = pool
        self.repository = repository
        self.memories = memories

    async def list_page(self, access: Access, page: int, page_size: int) -> tuple[int, list[dict[str, Any]]]:
        """How many scopes the caller can see, and one page of them (type, id, memory count, first and last
        write), ordered by type and id."""
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"page must be at least 1 and page_size between 1 and {MAX_PAGE_SIZE}")
        where = access_where(access)
        async with storage_errors(), self.pool.connection() as conn:
            total = await self.repository.count(conn, where)
            scopes = await self.repository.page(conn, where, page_size, (page - 1) * page_size)
        return total, [
            {
                "id": scope.name,
                "name": scope.name,
                "type": scope.type,
                "total_memories": scope.total_memories,
                "created_at": scope.created_at,
                "updated_at": scope.updated_at,
            }
            for scope in scopes
        ]

    async def delete(self, scope_type: str, name: str, access: Access) -> int:
        """Deletes the scope's memories (and jobs): the same use case as deleting them by identifier."""
        return await self.memories.delete_scope(scope_of(scope_type, name), access)
