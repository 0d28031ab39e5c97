"""Graph memory's use cases: the relations a write records (a plain step inside the write's transaction), the
relations a search or a list shows, a scope's graph as it is or was, and what deletes take with them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from app.auth.access import Access
from app.config import Settings
from app.db.errors import storage_errors
from app.errors import InvalidInput
from app.filters import Where, scope_where
from app.graph.names import Relation, mentioned_names
from app.graph.repository import GraphRepository, StoredRelation, TypedRelation

GRAPH_IS_OFF = "graph memory is off on this server (NEO4J_URI is not set)"
GRAPH_OFF = f"{GRAPH_IS_OFF}; send enable_graph: false or leave it out"


@dataclass(frozen=True)
class GraphDrafts:
    """What an inferred write's extraction says about the graph: relations it states, known ones it ends."""

    relations: list[TypedRelation] = field(default_factory=list)
    ended: list[Relation] = field(default_factory=list)


@dataclass(frozen=True)
class GraphChanges:
    added: list[Relation]
    ended: list[Relation]

    def body(self) -> dict[str, list[dict[str, str]]]:
        """mem0's `relations` of an add: what the write added and what it ended (`target` is mem0's name here)."""
        return {
            "added_entities": [list_item(r) for r in self.added],
            "deleted_entities": [list_item(r) for r in self.ended],
        }


def list_item(relation: Relation) -> dict[str, str]:
    return {"source": relation.source, "relationship": relation.relationship, "target": relation.destination}


def search_item(relation: Relation) -> dict[str, str]:
    return {"source": relation.source, "relationship": relation.relationship, "destination": relation.destination}


def graph_wanted(settings: Settings, enable_graph: bool | None) -> bool:
    """Does this request use the graph? `enable_graph: true` on a server without one is the client's mistake."""
    if enable_graph and not settings.graph_enabled:
        raise InvalidInput(GRAPH_OFF)
    return settings.graph_enabled and enable_graph is not False


async def record_relations(
    conn: AsyncConnection,
    repository: GraphRepository,
    identifiers: Mapping[str, str],
    drafts: GraphDrafts,
    memory_ids: list[UUID],
) -> GraphChanges:
    """Ends the relations the write ends, then adds (or re-sources) those it states; the scope's projection falls
    behind when anything changed. Runs inside the write's transaction."""
    ended = [relation for relation in drafts.ended if await repository.end_relation(conn, identifiers, relation)]
    added = [
        relation.relation
        for relation in drafts.relations
        if await repository.add_relation(conn, identifiers, relation, memory_ids)
    ]
    if ended or drafts.relations:
        await repository.mark_changed(conn, identifiers)
    return GraphChanges(added, ended)


async def forget_memories(conn: AsyncConnection, repository: GraphRepository, memory_ids: Sequence[UUID]) -> None:
    """Inside a delete's transaction: the memories stop being sources; relations left with none go."""
    for identifiers in await repository.forget_memories(conn, memory_ids):
        await repository.mark_changed(conn, identifiers)


async def clear_graph(conn: AsyncConnection, repository: GraphRepository, where: Where) -> None:
    """Inside a scope delete's (or a reset's) transaction: the scope's relations go, and Neo4j follows."""
    for identifiers in await repository.clear(conn, where):
        await repository.mark_changed(conn, identifiers)


class GraphService:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, repository: GraphRepository) -> None:
        self.settings = settings
        self.pool = pool
        self.repository = repository

    async def known_relations(self, identifiers: Mapping[str, str], text: str) -> list[Relation]:
        """The scope's valid relations among the names `text` mentions: what the extraction prompt shows."""
        async with storage_errors(), self.pool.connection() as conn:
            return await self.repository.known_relations(
                conn, identifiers, mentioned_names(text), self.settings.graph_max_relations
            )

    async def related(self, where: Where, query: str) -> list[Relation]:
        """The valid relations the caller may see around the entities `query` names, MEM0_GRAPH_HOPS deep."""
        limit = self.settings.graph_max_relations
        found: dict[Relation, None] = {}
        frontier = set(mentioned_names(query))
        seen: set[str] = set()
        async with storage_errors(), self.pool.connection() as conn:
            for _ in range(self.settings.graph_hops):
                if not frontier or len(found) >= limit:
                    break
                seen |= frontier
                for relation in await self.repository.related(conn, where, sorted(frontier), limit - len(found)):
                    found.setdefault(relation)
                frontier = {name for r in found for name in (r.source, r.destination)} - seen
        return list(found)

    async def valid_relations(self, where: Where) -> list[Relation]:
        async with storage_errors(), self.pool.connection() as conn:
            return await self.repository.valid_relations(conn, where, self.settings.graph_max_relations)

    async def graph(
        self, identifiers: dict[str, str], access: Access, as_of: datetime | None, limit: int
    ) -> dict[str, Any]:
        """A scope's entities and relations: every relation with its validity, or those valid at `as_of`."""
        if not self.settings.graph_enabled:
            raise InvalidInput(f"{GRAPH_IS_OFF}; there is no graph to read")
        if not identifiers:
            raise InvalidInput("at least one identifier (user_id, agent_id or run_id) is required to read a graph")
        async with storage_errors(), self.pool.connection() as conn:
            stored = await self.repository.graph(conn, scope_where(access, identifiers), as_of, limit)
        return {"entities": _entities(stored), "relations": [_graph_item(item) for item in stored]}


def _entities(stored: Sequence[StoredRelation]) -> list[dict[str, str]]:
    entities: dict[tuple[str, str], None] = {}
    for item in stored:
        entities.setdefault((item.relation.source, item.relation.source_type))
        entities.setdefault((item.relation.destination, item.relation.destination_type))
    return [{"name": name, "type": kind} for name, kind in sorted(entities)]


def _graph_item(item: StoredRelation) -> dict[str, Any]:
    relation = item.relation
    return {
        "source": relation.source,
        "relationship": relation.relationship,
        "destination": relation.destination,
        "valid": item.invalidated_at is None,
        "valid_from": item.valid_from.isoformat(),
        "invalidated_at": item.invalidated_at.isoformat() if item.invalidated_at else None,
        **item.identifiers,
    }
