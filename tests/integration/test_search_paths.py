"""Scopes above MEM0_EXACT_SEARCH_MAX_ROWS take the index query, smaller ones the exact scan, and both give the
same answers where the index is exact (a handful of rows)."""

from __future__ import annotations

import time

import psycopg

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer

FACTS = [
    "I play the cello every evening",
    "My sister lives in Lisbon",
    "I am allergic to peanuts",
    "I drive an old red bicycle to work",
    "My favourite food is ramen",
    "I work as a nurse at night",
    "I adopted a grey cat named Miso",
    "I am learning Portuguese",
]
QUERIES = ["playing the cello", "my sister in Lisbon", "peanuts", "a grey cat"]
FAST_TELEMETRY = {"MEM0_TELEMETRY_FLUSH_INTERVAL_S": "0.1"}


def _search_paths(database: str) -> list[bool]:
    """The `exact` flag of every search event stored so far, oldest first."""
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT (attributes ->> 'exact')::boolean FROM telemetry_events WHERE kind = 'search' ORDER BY occurred_at"
        ).fetchall()
    return [row[0] for row in rows]


def _answers(client) -> list[list[str]]:
    answers = []
    for query in QUERIES:
        response = client.post("/search", json={"query": query, "user_id": "paths", "top_k": 3})
        assert response.status_code == 200, response.text
        answers.append([item["memory"] for item in response.json()["results"]])
    return answers


def _wait_for_events(database: str, count: int) -> list[bool]:
    deadline = time.monotonic() + 15
    while len(paths := _search_paths(database)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return paths


def test_a_scope_over_the_exact_limit_takes_the_index_query_with_the_same_answers(fresh_db, standin):
    with InProcessServer(server_env(fresh_db, standin, **FAST_TELEMETRY)) as app, app.client() as client:
        for fact in FACTS:
            client.post(
                "/memories",
                json={"messages": [{"role": "user", "content": fact}], "user_id": "paths", "infer": False},
            ).raise_for_status()
        exact = _answers(client)
        assert _wait_for_events(fresh_db, len(QUERIES)) == [True] * len(QUERIES)

    env = server_env(fresh_db, standin, MEM0_EXACT_SEARCH_MAX_ROWS="3", MEM0_SCOPE_SIZE_TTL_S="0", **FAST_TELEMETRY)
    with InProcessServer(env) as app, app.client() as client:
        indexed = _answers(client)
        assert _wait_for_events(fresh_db, 2 * len(QUERIES))[len(QUERIES) :] == [False] * len(QUERIES)

    assert indexed == exact
    assert exact[0][0] == "I play the cello every evening"
