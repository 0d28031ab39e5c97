"""Listing scopes for a key limited to named ids reads the identifier's index, not the whole table (issue 22,
item 7: 121 ms at 35k rows for a key that sees 2)."""

from __future__ import annotations

import psycopg
import pytest

from app.auth.access import Access
from app.filters import access_where
from app.scopes.repository import ScopeRepository


def listing_plan(database_url: str, access: Access) -> str:
    where = access_where(access)
    query = ScopeRepository("memories").q["list_scopes"].format(where=where.clause())
    with psycopg.connect(database_url, autocommit=True) as conn:
        # No cost tips it to a scan on a small table: a plan that can use the index must.
        conn.execute("SET enable_seqscan = off")
        rows = conn.execute(b"EXPLAIN " + query.as_string(conn).encode(), {**where.params, "limit": 10, "offset": 0})
        return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize("users", [("alice",), ("alice", "bob")])
def test_a_key_limited_to_named_users_lists_its_scopes_through_the_index(app_server, module_db, users):
    plan = listing_plan(module_db, Access("key:limited", admin=False, patterns={"user_id": users}))
    assert "memories_user_id_idx" in plan, plan


def test_a_key_limited_by_a_glob_and_a_name_lists_the_scopes_of_both(app_api, app_server, module_db):
    for user in ("team-a/1", "team-a/2", "team-b/1"):
        body = {"messages": [{"role": "user", "content": f"{user} likes tea"}], "user_id": user, "infer": False}
        assert app_api.post("/memories", json=body).status_code == 200
    with psycopg.connect(module_db, autocommit=True) as conn:
        where = access_where(Access("key:team-a", admin=False, patterns={"user_id": ("team-a/*", "team-b/1")}))
        query = ScopeRepository("memories").q["list_scopes"].format(where=where.clause())
        rows = conn.execute(query, {**where.params, "limit": 10, "offset": 0}).fetchall()
    assert sorted(name for kind, name, *_ in rows if kind == "user") == ["team-a/1", "team-a/2", "team-b/1"]
