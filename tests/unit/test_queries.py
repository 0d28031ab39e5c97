"""Named SQL queries and the WHERE builder render parameterised SQL, never interpolated values."""

from __future__ import annotations

import pytest

from app.auth.access import EVERYTHING
from app.db.migrator import load_migrations
from app.db.queries import Queries, parse_named_queries, read_queries_file
from app.errors import InvalidInput
from app.filters import scope_where
from app.memories.repository import MemoryRepository


def test_named_queries_are_split_by_name_lines():
    text = "-- header\n-- name: first\nSELECT 1;\n\n-- name: second\nSELECT 2\n"

    assert parse_named_queries(text) == {"first": "SELECT 1", "second": "SELECT 2"}


def test_a_query_name_used_twice_is_an_error():
    with pytest.raises(ValueError, match="defined twice"):
        parse_named_queries("-- name: a\nSELECT 1\n-- name: a\nSELECT 2")


def test_every_memories_query_loads_with_the_collection_bound():
    repository = MemoryRepository("my_memories")

    text = repository.q["get_memory"].as_string()

    assert text == 'SELECT id, payload FROM "my_memories" WHERE id = %(id)s AND {where}'
    assert "{collection}" in read_queries_file("app.memories")


def test_queries_that_name_the_collection_need_one():
    with pytest.raises(ValueError, match="pass collection="):
        Queries.load("app.memories")


def test_scope_values_become_placeholders_and_keys_quoted_literals():
    where = scope_where(
        EVERYTHING, {"user_id": "alice'; drop table x; --"}, {"kind": "a", "n": {"gte": 3}, "tag": {"in": ["x", "y"]}}
    )

    rendered = where.clause().as_string()

    assert "alice" not in rendered
    assert "payload ->> 'user_id' = %(w0)s" in rendered
    assert where.params == {"w0": "alice'; drop table x; --", "w1": "a", "w2": 3, "w3": ["x", "y"]}


def test_boolean_filters_match_json_spelling():
    assert scope_where(EVERYTHING, {"user_id": "u"}, {"done": True}).params["w1"] == "true"


@pytest.mark.parametrize(
    "filters",
    [{"k": {"regex": "x"}}, {"k": {"in": "x"}}, {"k": {"gt": "3"}}, {"k": ["a"]}, {"$or": []}, {"k": {}}, {"k": None}],
)
def test_unsupported_filters_are_client_errors(filters):
    with pytest.raises(InvalidInput):
        scope_where(EVERYTHING, {"user_id": "u"}, filters)


def test_migrations_are_numbered_and_load_in_order():
    versions = [m.version for m in load_migrations()]

    assert versions == sorted(versions) and versions[:2] == [1, 2]


def test_migration_rendering_binds_collection_and_dims():
    first = load_migrations()[0]

    rendered = first.render(collection="mem", dims=768)

    assert 'CREATE TABLE IF NOT EXISTS "mem"' in rendered and "vector(768)" in rendered and "{" not in rendered
