"""Named SQL queries kept as SQL in a package's `queries.sql`: blocks that start with `-- name: <query_name>`."""

from __future__ import annotations

import re
from importlib import resources

from psycopg import sql

_NAME_LINE = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
QUERIES_FILE_NAME = "queries.sql"


def parse_named_queries(text: str) -> dict[str, str]:
    """Split a .sql file into {name: statement}; text before the first name line is ignored."""
    parts = _NAME_LINE.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";")
    return queries


def read_queries_file(package: str) -> str:
    """The text of `package`'s queries.sql, read as package data so an installed copy finds it too."""
    return resources.files(package).joinpath(QUERIES_FILE_NAME).read_text(encoding="utf-8")


class Queries:
    """The named queries of one package's queries.sql, with the memories table's name bound in where used."""

    def __init__(self, queries: dict[str, sql.SQL]) -> None:
        self._queries = queries

    @classmethod
    def load(cls, package: str, *, collection: str | None = None) -> Queries:
        """`Queries.load("app.memories", collection="memories")`; `{collection}` needs a collection."""
        raw = parse_named_queries(read_queries_file(package))
        if collection is not None:
            # Settings restricts the collection name to [a-z0-9_], and the SQL files write it quoted
            # ("{collection}"), so plain substitution is safe even for reserved words.
            raw = {name: text.replace("{collection}", collection) for name, text in raw.items()}
        unbound = sorted(name for name, text in raw.items() if "{collection}" in text)
        if unbound:
            raise ValueError(f"{package} queries {', '.join(unbound)} use {{collection}}; pass collection=")
        return cls({name: sql.SQL(text) for name, text in raw.items()})

    def __getitem__(self, name: str) -> sql.SQL:
        return self._queries[name]
