"""A user who holds 5 of 100,000 rows still gets all 5 back from search, ordered by distance."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from app.db.migrator import migrate
from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.ollama_standin import embed_text
from tests.support.postgres import create_database

DIMS = 32  # small vectors keep the 100,000-row HNSW index quick to build on two cores
OTHER_ROWS = 100_000
# In-process, but loading and indexing 100,000 rows takes longer than `make test-fast` can spend on one test.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crowded_db(pg_admin: str) -> str:
    database = create_database(pg_admin)
    asyncio.run(migrate(database, collection="memories", dims=DIMS))
    vectors = np.random.default_rng(7).normal(size=(OTHER_ROWS, DIMS)).astype(np.float32)
    with psycopg.connect(database) as conn:
        register_vector(conn)
        # Loading first and indexing after (the migrations' own index definition) is several times faster than
        # inserting through the index.
        definition = conn.execute("SELECT pg_get_indexdef('memories_hnsw_idx'::regclass)").fetchone()[0]
        conn.execute("DROP INDEX memories_hnsw_idx")
        with conn.cursor().copy("COPY memories (id, vector, payload) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "vector", "jsonb"])
            for i, vector in enumerate(vectors):
                copy.write_row((uuid.uuid4(), vector, Jsonb({"data": f"noise {i}", "user_id": f"other-{i % 1000}"})))
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(definition)
        conn.execute("ANALYZE memories")
    return database


def test_a_rare_users_memories_are_all_found_in_distance_order(crowded_db, standin):
    texts = ["I play the cello", "I grow tomatoes", "My dog is called Rex", "I work night shifts", "I hate olives"]
    standin.control(dims=DIMS)  # the `standin` fixture sets the session's dimensions back for the next test
    env = server_env(crowded_db, standin, MEM0_EMBEDDING_DIMS=str(DIMS))

    with InProcessServer(env) as app, app.client() as client:
        created = client.post(
            "/memories",
            json={"messages": [{"role": "user", "content": t} for t in texts], "user_id": "rare", "infer": False},
        ).json()["results"]
        results = client.post(
            "/search", json={"query": "cello music", "user_id": "rare", "top_k": 10, "threshold": 0}
        ).json()["results"]

    assert {r["id"] for r in results} == {c["id"] for c in created}
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    query_vector = np.array(embed_text("cello music", DIMS), dtype=np.float32)
    with psycopg.connect(crowded_db) as conn:
        register_vector(conn)
        rows = conn.execute(
            "SELECT id FROM memories WHERE payload->>'user_id' = 'rare' ORDER BY vector <=> %s", (query_vector,)
        ).fetchall()
    assert [r["id"] for r in results] == [str(row[0]) for row in rows]
    assert results[0]["memory"] == "I play the cello"
