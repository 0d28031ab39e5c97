"""Named SQL queries kept as SQL in `.sql` files: blocks that start with `-- name: <query_name>`."""

from __future__ import annotations

import re
from pathlib import Path

from psycopg import sql

_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_named_queries(text: str) -> dict[str, str]:
    """Split a .sql file into {name: statement}; text before the first name line is ignored."""
    parts = _NAME_LINE.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";")
    return queries


class Queries:
    """The named queries of one .sql file, with the memories table's name bound in."""

    def __init__(self, path: Path, *, collection: str) -> None:
        # Settings restricts the collection name to [a-z0-9_], and the SQL files write it quoted
        # ("{collection}"), so plain substitution is safe even for reserved words.
        raw = parse_named_queries(path.read_text(encoding="utf-8"))
        self._queries = {name: sql.SQL(text.replace("{collection}", collection)) for name, text in raw.items()}

    def __getitem__(self, name: str) -> sql.SQL:
        return self._queries[name]
