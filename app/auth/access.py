"""What a caller may touch: every memory (an admin key), or the memories whose identifiers match its key's
patterns. The same rule runs in Python (writes) and in SQL (reads, updates, deletes), from one pattern syntax."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql


def glob_to_like(pattern: str) -> str:
    """`team-a/*` -> `team-a/%`: only `*` is a wildcard; LIKE's own `%`, `_` and `\\` match themselves."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def glob_matches(pattern: str, value: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), value, re.DOTALL) is not None


@dataclass(frozen=True)
class Access:
    """`patterns` maps an identifier kind to the globs its value must match; kinds not named are unrestricted.
    `key_id` also scopes the caller's idempotency keys."""

    key_id: str
    admin: bool
    patterns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def allows(self, identifiers: Mapping[str, str]) -> bool:
        """May this caller write (or name) a memory with these identifiers?"""
        if self.admin:
            return True
        return all(
            kind in identifiers and any(glob_matches(p, identifiers[kind]) for p in globs)
            for kind, globs in self.patterns.items()
        )

    def excludes(self, identifiers: Mapping[str, str]) -> bool:
        """Does no memory with these identifiers lie within this caller's key? (An identifier left out may still
        overlap the key: `{agent_id: x}` names the key's own users' memories of that agent too.)"""
        return not self.admin and any(
            kind in identifiers and not any(glob_matches(p, identifiers[kind]) for p in globs)
            for kind, globs in self.patterns.items()
        )

    def restricted_values(self) -> dict[str, tuple[list[str], list[str]]]:
        """Per restricted kind, the exact values and the LIKE patterns (for globs) a row's value must match one of
        (empty for an admin). Exact values are kept apart because `= ANY` can use the identifier's index."""
        if self.admin:
            return {}
        return {
            kind: ([p for p in globs if "*" not in p], [glob_to_like(p) for p in globs if "*" in p])
            for kind, globs in self.patterns.items()
        }


EVERYTHING = Access("default", admin=True)
# Where the request's checked Access waits for the routes (the ASGI scope's state, set by app/key_gate.py).
ACCESS_STATE = "access"


def checked_access(scope: Mapping[str, Any]) -> Access:
    """The Access the key gate left in the request's scope."""
    access = scope.get("state", {}).get(ACCESS_STATE)
    if not isinstance(access, Access):  # only an app built without the key gate gets here
        raise RuntimeError(f"{scope.get('path')} needs a key but the key gate did not check one")
    return access


def restriction_sql(
    access: Access, field: Callable[[str], sql.Composable]
) -> tuple[list[sql.Composable], dict[str, Any]]:
    """The SQL conditions (and their parameters) that keep a query to the rows `access` may touch; `field(kind)`
    is the expression holding a row's identifier of that kind."""
    parts: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for kind, (exact, likes) in access.restricted_values().items():
        matches = []
        if exact:
            params[f"access_{kind}"] = exact
            matches.append(sql.SQL("{} = ANY({})").format(field(kind), sql.Placeholder(f"access_{kind}")))
        if likes:
            params[f"access_{kind}_like"] = likes
            matches.append(sql.SQL("{} LIKE ANY({})").format(field(kind), sql.Placeholder(f"access_{kind}_like")))
        parts.append(sql.SQL("({})").format(sql.SQL(" OR ").join(matches)))
    return parts, params
