"""Entity use cases: list the identifiers the caller's key can see, delete one as the memories' scope."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from app.auth.access import Access
from app.db.errors import storage_errors
from app.entities.repository import EntityRepository
from app.errors import InvalidInput
from app.memories.repository import access_where
from app.memories.service import MemoryService

# The identifier each entity type names; mem0's hosted API also has "app", which this server does not scope by.
ENTITY_KINDS = {"user": "user_id", "agent": "agent_id", "run": "run_id"}
MAX_PAGE_SIZE = 1000


def scope_of(entity_type: str, name: str) -> dict[str, str]:
    kind = ENTITY_KINDS.get(entity_type)
    if kind is None:
        raise InvalidInput(f"entity type {entity_type[:32]!r} is not supported; use one of {', '.join(ENTITY_KINDS)}")
    if not name or len(name) > 255:
        raise InvalidInput("the entity name must be 1-255 characters")
    return {kind: name}


class EntityService:
    def __init__(self, pool: AsyncConnectionPool, repository: EntityRepository, memories: MemoryService) -> None:
        self.pool = pool
        self.repository = repository
        self.memories = memories

    async def list_entities(self, access: Access, page: int, page_size: int) -> tuple[int, list[dict[str, Any]]]:
        """How many entities the caller can see, and one page of them (type, name, memory count, first and last
        write), ordered by type and name."""
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidInput(f"page must be at least 1 and page_size between 1 and {MAX_PAGE_SIZE}")
        where = access_where(access)
        async with storage_errors(), self.pool.connection() as conn:
            total = await self.repository.count(conn, where)
            entities = await self.repository.page(conn, where, page_size, (page - 1) * page_size)
        return total, [
            {
                "id": entity.name,
                "name": entity.name,
                "type": entity.type,
                "total_memories": entity.total_memories,
                "created_at": entity.created_at,
                "updated_at": entity.updated_at,
            }
            for entity in entities
        ]

    async def delete_entity(self, entity_type: str, name: str, access: Access) -> int:
        """Deleting an entity deletes its memories (and jobs): the same use case as deleting the scope."""
        return await self.memories.delete_scope(scope_of(entity_type, name), access)
