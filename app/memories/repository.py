"""SQL access for memories and their history; every statement comes from queries.sql."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pgvector import Vector
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from app.auth.access import Access, restriction_sql
from app.db.queries import Queries
from app.errors import InvalidInput
from app.memories.keywords import ScoredRow

_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_LOGICAL = ("AND", "OR", "NOT")
# Payload keys holding ISO dates or timestamps: range filters on them compare instants.
DATE_KEYS = frozenset({"created_at", "updated_at", "expiration_date"})


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
    vector: list[float]
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


class Where:
    """A parameterised WHERE clause over payload keys: keys are quoted literals, values are placeholders."""

    def __init__(self, prefix: str = "w") -> None:
        self.parts: list[sql.Composable] = []
        self.params: dict[str, Any] = {}
        self.prefix = prefix  # two clauses in one statement need distinct placeholder names

    def _param(self, value: Any) -> sql.Placeholder:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def equals(self, key: str, value: Any) -> None:
        self.parts.append(self._equals(key, value))

    def _equals(self, key: str, value: Any) -> sql.Composable:
        return sql.SQL("payload ->> {} = {}").format(sql.Literal(key), self._param(_as_text(value)))

    def exclude_expired(self) -> None:
        """mem0's expiry: a memory whose expiration_date (YYYY-MM-DD) is before today (UTC) is left out."""
        today = sql.SQL("to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
        self.parts.append(sql.SQL("coalesce(payload ->> 'expiration_date', '9999-12-31') >= {}").format(today))

    def add_filters(self, filters: Mapping[str, Any]) -> None:
        if filters:
            self.parts.append(self._all_of(filters, "filters"))

    def _all_of(self, filters: Mapping[str, Any], path: str) -> sql.Composable:
        """Every condition of a filter object: {key: value}, {key: "*"}, {key: {op: value}}, and AND / OR / NOT
        holding lists of filter objects."""
        parts: list[sql.Composable] = []
        for key, condition in filters.items():
            logical = key.upper()
            if logical in _LOGICAL:
                if not isinstance(condition, list) or not condition or not all(isinstance(c, dict) for c in condition):
                    raise InvalidInput(f"{path}.{key} needs a non-empty list of filter objects")
                inner = [self._all_of(c, f"{path}.{key}") for c in condition]
                joined = sql.SQL(" OR " if logical != "AND" else " AND ").join(inner)
                parts.append(sql.SQL("NOT ({})" if logical == "NOT" else "({})").format(joined))
            elif key.startswith("$"):
                raise InvalidInput(f"{path}: unknown logical operator {key!r}; use AND, OR or NOT")
            else:
                parts.append(self._key_condition(key, condition, f"{path}.{key}"))
        if not parts:
            raise InvalidInput(f"{path}: an empty filter object matches nothing; give a condition")
        return sql.SQL("({})").format(sql.SQL(" AND ").join(parts))

    def _key_condition(self, key: str, condition: Any, path: str) -> sql.Composable:
        if condition == "*":
            return sql.SQL("payload ? {}").format(sql.Literal(key))
        if isinstance(condition, list):
            raise InvalidInput(f'{path}: use {{"in": [...]}} to match one of several values')
        if not isinstance(condition, dict):
            return self._equals(key, condition)
        if not condition:
            raise InvalidInput(f"{path}: an empty operator object matches nothing; give an operator")
        return sql.SQL(" AND ").join(
            self._operator(key, operator, value, path) for operator, value in condition.items()
        )

    def _operator(self, key: str, operator: str, value: Any, path: str) -> sql.Composable:
        field = sql.SQL("payload ->> {}").format(sql.Literal(key))
        if operator == "eq":
            return self._equals(key, value)
        if operator == "ne":
            return sql.SQL("{} IS DISTINCT FROM {}").format(field, self._param(_as_text(value)))
        if operator in ("in", "nin"):
            if not isinstance(value, list) or not value:
                raise InvalidInput(f"{path}.{operator} needs a non-empty list")
            test = sql.SQL("{} = ANY({})").format(field, self._param([_as_text(item) for item in value]))
            return test if operator == "in" else sql.SQL("NOT coalesce({}, false)").format(test)
        if operator in _COMPARISONS:
            comparison = sql.SQL(_COMPARISONS[operator])
            if isinstance(value, str) and key in DATE_KEYS:
                # ISO dates and timestamps compare as instants; a stored value that is not one matches nothing.
                instant = sql.SQL(
                    "CASE WHEN payload ->> {} ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}' THEN (payload ->> {})::timestamptz END"
                ).format(sql.Literal(key), sql.Literal(key))
                return sql.SQL("{} {} {}").format(instant, comparison, self._param(_instant(value, path, operator)))
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(
                    f"{path}.{operator} needs a number (or an ISO date for {', '.join(sorted(DATE_KEYS))})"
                )
            # Only JSON numbers compare; a string value would make the cast fail for the whole query.
            number = sql.SQL(
                "CASE WHEN jsonb_typeof(payload -> {}) = 'number' THEN (payload ->> {})::numeric END"
            ).format(sql.Literal(key), sql.Literal(key))
            return sql.SQL("{} {} {}").format(number, comparison, self._param(value))
        if operator in ("contains", "icontains"):
            if not isinstance(value, str):
                raise InvalidInput(f"{path}.{operator} needs a string")
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = sql.SQL("LIKE" if operator == "contains" else "ILIKE")
            return sql.SQL("{} {} {}").format(field, like, self._param(f"%{escaped}%"))
        raise InvalidInput(
            f"{path}: unknown operator {operator!r}; use eq, ne, in, nin, gt, gte, lt, lte, contains or icontains"
        )

    def restrict(self, access: Access) -> None:
        """Only rows the caller's key may touch: each restricted identifier matches one of its patterns."""
        parts, params = restriction_sql(access, lambda kind: sql.SQL("payload ->> {}").format(sql.Literal(kind)))
        self.parts += parts
        self.params.update(params)

    def clause(self) -> sql.Composable:
        return sql.SQL(" AND ").join(self.parts) if self.parts else sql.SQL("true")


def access_where(access: Access, prefix: str = "w") -> Where:
    where = Where(prefix)
    where.restrict(access)
    return where


def scope_where(
    access: Access,
    identifiers: Mapping[str, str],
    filters: Mapping[str, Any] | None = None,
    *,
    show_expired: bool = True,
    prefix: str = "w",
) -> Where:
    where = access_where(access, prefix)
    for key, value in identifiers.items():
        where.equals(key, value)
    where.add_filters({key: condition for key, condition in (filters or {}).items() if key not in identifiers})
    if not show_expired:
        where.exclude_expired()
    return where


def _instant(value: str, path: str, operator: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{path}.{operator}: {value[:40]!r} is not an ISO date or timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_text(value: Any) -> str:
    # payload ->> 'k' yields JSON text: booleans read 'true'/'false', numbers their JSON spelling.
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        raise InvalidInput("filter values must be strings, numbers or booleans")
    return str(value)


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

    async def existing_hashes(self, conn: AsyncConnection, where: Where, hashes: Sequence[str]) -> set[str]:
        query = self._with_where("existing_hashes", where)
        cursor = await conn.execute(query, {**where.params, "hashes": list(hashes)})
        return {str(row[0]) for row in await cursor.fetchall()}

    async def count_scope(self, conn: AsyncConnection, where: Where, cap: int) -> int:
        cursor = await conn.execute(self._with_where("count_scope_capped", where), {**where.params, "cap": cap})
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def search(
        self,
        conn: AsyncConnection,
        where: Where,
        entity_where: Where,
        vector: Sequence[float],
        ranking: Mapping[str, Any],
        *,
        exact: bool,
    ) -> SearchHits:
        """mem0's hybrid ranking in one statement; `ranking` holds its parameters (keywords.search_params), and
        `entity_where` picks the entities that may boost (the scope's, within the caller's key)."""
        semantic = self._with_where("semantic_exact" if exact else "semantic_index", where)
        query = self.q["search"].format(where=where.clause(), semantic=semantic, entity_where=entity_where.clause())
        params = {**where.params, **entity_where.params, **ranking, "vector": Vector(list(vector))}
        rows = await (await conn.execute(query, params)).fetchall()
        return SearchHits(
            [ScoredRow(str(row[0]), row[1], float(row[2]), float(row[3]), float(row[4])) for row in rows],
            bool(rows and rows[0][5]),
            bool(rows and rows[0][6]),
        )

    async def update(
        self, conn: AsyncConnection, memory_id: UUID, payload: dict[str, Any], vector: Sequence[float] | None
    ) -> None:
        if vector is None:
            await conn.execute(self.q["update_payload"], {"id": memory_id, "payload": Jsonb(payload)})
        else:
            params = {"id": memory_id, "payload": Jsonb(payload), "vector": Vector(list(vector))}
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

    async def reset(self, conn: AsyncConnection) -> None:
        await conn.execute(self.q["reset_all"])
