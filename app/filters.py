"""The filter language: mem0's filters and a caller's key as one parameterised WHERE clause over a payload.

Keys become quoted literals and values placeholders, so no filter, identifier or model reply reaches the SQL text.
Memories, named entities and scopes all select rows with it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from psycopg import sql

from app.auth.access import Access, restriction_sql
from app.errors import InvalidInput
from app.params import SCOPE_KEYS

_COMPARISONS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_LOGICAL = ("AND", "OR", "NOT")
# Payload keys holding ISO dates or timestamps: range filters on them compare instants.
DATE_KEYS = frozenset({"created_at", "updated_at", "expiration_date"})
# Payload keys holding a list of names (mem0's categories): a value matches when the list holds it.
LIST_KEYS = frozenset({"categories"})


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

    def _key(self, key: str) -> sql.Composable:
        """A payload key in the statement: a quoted literal, so an expression index on it is used; a key holding `%`
        (psycopg's placeholder mark) goes in as a parameter instead."""
        return self._param(key) if "%" in key else sql.Literal(key)

    def equals(self, key: str, value: Any) -> None:
        self.parts.append(self._equals(key, value))

    def _equals(self, key: str, value: Any) -> sql.Composable:
        if key in LIST_KEYS:
            return sql.SQL("coalesce(payload -> {} ? {}, false)").format(self._key(key), self._param(_as_text(value)))
        return sql.SQL("payload ->> {} = {}").format(self._key(key), self._param(_as_text(value)))

    def exclude_expired(self) -> None:
        """mem0's expiry: a memory whose expiration_date (YYYY-MM-DD) is before today (UTC) is left out."""
        # The search cache's scope_versions query (app/memories/queries.sql) reads this same day: what it shows
        # changes only when the day does, so a cached result is served only on the day it was made.
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
            if not isinstance(key, str):
                raise InvalidInput(f"{path}: filter keys are strings; got {key!r:.40}")
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
            return sql.SQL("payload ? {}").format(self._key(key))
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
        field = sql.SQL("payload ->> {}").format(self._key(key))
        if operator == "eq":
            return self._equals(key, value)
        if operator == "ne":
            return sql.SQL("{} IS DISTINCT FROM {}").format(field, self._param(_as_text(value)))
        if operator in ("in", "nin"):
            if not isinstance(value, list) or not value:
                raise InvalidInput(f"{path}.{operator} needs a non-empty list")
            values = self._param([_as_text(item) for item in value])
            if key in LIST_KEYS:
                test = sql.SQL("payload -> {} ?| {}").format(self._key(key), values)
            else:
                test = sql.SQL("{} = ANY({})").format(field, values)
            return test if operator == "in" else sql.SQL("NOT coalesce({}, false)").format(test)
        if operator in _COMPARISONS:
            comparison = sql.SQL(_COMPARISONS[operator])
            if isinstance(value, str) and key in DATE_KEYS:
                # ISO dates and timestamps compare as instants; a stored value that is not one matches nothing.
                instant = sql.SQL(
                    "CASE WHEN payload ->> {} ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}' THEN (payload ->> {})::timestamptz END"
                ).format(self._key(key), self._key(key))
                return sql.SQL("{} {} {}").format(instant, comparison, self._param(_instant(value, path, operator)))
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(
                    f"{path}.{operator} needs a number (or an ISO date for {', '.join(sorted(DATE_KEYS))})"
                )
            # Only JSON numbers compare; a string value would make the cast fail for the whole query.
            number = sql.SQL(
                "CASE WHEN jsonb_typeof(payload -> {}) = 'number' THEN (payload ->> {})::numeric END"
            ).format(self._key(key), self._key(key))
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


def names_scopes(filters: Mapping[str, Any]) -> bool:
    """Does a filter name its scopes explicitly: an identifier as a value, `"*"` (every user, agent or run the key
    may read) or `{"in": [...]}`, or an OR / AND of filters that each do? An operator such as `ne` does not: it
    would widen a request to every scope by accident."""
    for key, condition in filters.items():
        if key in ("AND", "OR") and isinstance(condition, list) and condition:
            if all(isinstance(c, dict) and names_scopes(c) for c in condition):
                return True
        elif key in SCOPE_KEYS and (
            isinstance(condition, str) or (isinstance(condition, dict) and set(condition) <= {"eq", "in"})
        ):
            return True
    return False


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
