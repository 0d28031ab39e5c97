"""Named-entity use cases: list a scope's entities, delete one (its links go with it)."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from app.auth.access import Access
from app.db.errors import storage_errors
from app.errors import InvalidInput, NotFound
from app.filters import access_where, scope_where
from app.named_entities.repository import NamedEntityRepository, StoredEntity


def to_item(entity: StoredEntity) -> dict[str, Any]:
    payload = entity.payload
    linked = payload.get("linked_memory_ids")
    return {
        "id": str(entity.id),
        "name": payload.get("data", ""),
        "type": payload.get("entity_type", ""),
        "linked_memory_ids": [str(memory_id) for memory_id in linked] if isinstance(linked, list) else [],
        **{key: payload[key] for key in ("user_id", "agent_id", "run_id") if isinstance(payload.get(key), str)},
    }


class NamedEntityService:
    def __init__(self, pool: AsyncConnectionPool, repository: NamedEntityRepository) -> None:
        self.pool = pool
        self.repository = repository

    async def list_page(
        self, identifiers: dict[str, str], access: Access, page: int, page_size: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """The entities of the scope (mem0's: every entity whose identifiers include these), ordered by name."""
        if not identifiers:
            raise InvalidInput("at least one identifier (user_id, agent_id or run_id) is required to list entities")
        where = scope_where(access, identifiers)
        async with storage_errors(), self.pool.connection() as conn:
            total = await self.repository.count(conn, where)
            entities = await self.repository.page(conn, where, page_size, (page - 1) * page_size)
        return total, [to_item(entity) for entity in entities]

    async def delete(self, raw_id: str, access: Access) -> None:
        try:
            entity_id = uuid.UUID(raw_id)
        except ValueError:
            raise InvalidInput(f"entity id {raw_id[:64]!r} is not a UUID") from None
        async with storage_errors(), self.pool.connection() as conn:
            deleted = await self.repository.delete(conn, entity_id, access_where(access))
        if not deleted:
            raise NotFound(f"no entity with id {entity_id}")
