"""SQL access for graph memory; every statement comes from queries.sql."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from app.db.queries import Queries
from app.filters import Where
from app.graph.names import Relation
from app.params import IDENTIFIER_KEYS


@dataclass(frozen=True)
class TypedRelation:
    """A relation the model stated, with the types of the entities at its ends."""

    source: str
    source_type: str
    relationship: str
    destination: str
    destination_type: str

    @property
    def relation(self) -> Relation:
        return Relation(self.source, self.relationship, self.destination)


@dataclass(frozen=True)
class StoredRelation:
    relation: TypedRelation
    valid_from: datetime
    invalidated_at: datetime | None
    mentions: int
    identifiers: dict[str, str]


def scope_key(identifiers: Mapping[str, str]) -> str:
    """One text per exact scope: the projection's row and the advisory lock's name."""
    return json.dumps({k: identifiers[k] for k in IDENTIFIER_KEYS if k in identifiers}, sort_keys=True)


def exact_scope(identifiers: Mapping[str, str]) -> tuple[sql.Composable, dict[str, Any]]:
    """Rows of exactly this scope: each identifier given equal, the others absent (mem0 keys nodes the same way)."""
    parts: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for kind in IDENTIFIER_KEYS:
        field = sql.SQL("payload ->> {}").format(sql.Literal(kind))
        if kind in identifiers:
            parts.append(sql.SQL("{} = {}").format(field, sql.Placeholder(f"scope_{kind}")))
            params[f"scope_{kind}"] = identifiers[kind]
        else:
            parts.append(sql.SQL("{} IS NULL").format(field))
    return sql.SQL(" AND ").join(parts), params


def _relations(rows: Sequence[tuple[Any, ...]]) -> list[Relation]:
    return [Relation(row[0], row[1], row[2]) for row in rows]


class GraphRepository:
    def __init__(self) -> None:
        self.q = Queries.load("app.graph")

    async def known_relations(
        self, conn: AsyncConnection, identifiers: Mapping[str, str], names: Sequence[str], limit: int
    ) -> list[Relation]:
        scope, params = exact_scope(identifiers)
        query = self.q["known_relations"].format(scope=scope)
        cursor = await conn.execute(query, {**params, "names": list(names), "limit": limit})
        return _relations(await cursor.fetchall())

    async def add_relation(
        self, conn: AsyncConnection, identifiers: Mapping[str, str], relation: TypedRelation, memory_ids: list[UUID]
    ) -> bool:
        """True when the relation is new to the scope (not already valid there)."""
        params = {
            "scope": Jsonb(dict(identifiers)),
            "source": relation.source,
            "source_type": relation.source_type,
            "relationship": relation.relationship,
            "destination": relation.destination,
            "destination_type": relation.destination_type,
            "memory_ids": memory_ids,
        }
        cursor = await conn.execute(self.q["add_relation"], params)
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def end_relation(self, conn: AsyncConnection, identifiers: Mapping[str, str], relation: Relation) -> bool:
        scope, params = exact_scope(identifiers)
        cursor = await conn.execute(
            self.q["end_relation"].format(scope=scope),
            {
                **params,
                "source": relation.source,
                "relationship": relation.relationship,
                "destination": relation.destination,
            },
        )
        return await cursor.fetchone() is not None

    async def mark_changed(self, conn: AsyncConnection, identifiers: Mapping[str, str]) -> None:
        params = {"scope_key": scope_key(identifiers), "scope": Jsonb(dict(identifiers))}
        await conn.execute(self.q["mark_changed"], params)

    async def scope_relations(self, conn: AsyncConnection, identifiers: Mapping[str, str]) -> list[StoredRelation]:
        scope, params = exact_scope(identifiers)
        cursor = await conn.execute(self.q["scope_relations"].format(scope=scope), params)
        return [
            StoredRelation(TypedRelation(*row[:5]), row[5], row[6], int(row[7]), dict(identifiers))
            for row in await cursor.fetchall()
        ]

    async def related(self, conn: AsyncConnection, where: Where, names: Sequence[str], limit: int) -> list[Relation]:
        cursor = await conn.execute(
            self.q["related"].format(where=where.clause()), {**where.params, "names": list(names), "limit": limit}
        )
        return _relations(await cursor.fetchall())

    async def valid_relations(self, conn: AsyncConnection, where: Where, limit: int) -> list[Relation]:
        cursor = await conn.execute(
            self.q["valid_relations"].format(where=where.clause()), {**where.params, "limit": limit}
        )
        return _relations(await cursor.fetchall())

    async def graph(
        self, conn: AsyncConnection, where: Where, as_of: datetime | None, limit: int
    ) -> list[StoredRelation]:
        cursor = await conn.execute(
            self.q["graph_relations"].format(where=where.clause()), {**where.params, "as_of": as_of, "limit": limit}
        )
        return [
            StoredRelation(
                TypedRelation(*row[:5]),
                row[5],
                row[6],
                0,
                {kind: value for kind, value in zip(IDENTIFIER_KEYS, row[7:10], strict=True) if value is not None},
            )
            for row in await cursor.fetchall()
        ]

    async def forget_memories(self, conn: AsyncConnection, memory_ids: Sequence[UUID]) -> list[dict[str, str]]:
        """Drops the memories as sources; the scopes that lost a relation (their projection must catch up)."""
        cursor = await conn.execute(self.q["forget_memories"], {"memory_ids": list(memory_ids)})
        return [row[0] for row in await cursor.fetchall()]

    async def clear(self, conn: AsyncConnection, where: Where) -> list[dict[str, str]]:
        cursor = await conn.execute(self.q["clear"].format(where=where.clause()), where.params)
        return [row[0] for row in await cursor.fetchall()]
