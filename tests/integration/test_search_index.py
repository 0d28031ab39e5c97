"""The large-scope search query uses the ANN index (the binary-quantized HNSW of migration 0017), and its iterative
scan still fills the candidate list when a filter drops nearly every row the index yields (a large scope's
filtered search: the rows it keeps must stay reachable)."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from app.db.migrator import migrate
from app.db.pool import open_pool
from app.filters import Where
from app.memories.keywords import search_params
from app.memories.repository import MemoryRepository

DIMS = 64
ROWS = 3_000
RARE = 12


def _load(database: str) -> list[uuid.UUID]:
    vectors = np.random.default_rng(3).normal(size=(ROWS, DIMS)).astype(np.float32)
    rare: list[uuid.UUID] = []
    with psycopg.connect(database) as conn:
        register_vector(conn)
        with conn.cursor().copy("COPY memories (id, vector, payload) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "vector", "jsonb"])
            for i, vector in enumerate(vectors):
                memory_id = uuid.uuid4()
                topic = "rare" if i % (ROWS // RARE) == 0 else f"common-{i % 7}"
                if topic == "rare":
                    rare.append(memory_id)
                payload = {"data": f"row {i}", "text_lemmatized": f"row {i}", "user_id": "crowd", "topic": topic}
                copy.write_row((memory_id, vector, Jsonb(payload)))
        conn.execute("ANALYZE memories")
    return rare


def _where(topic: str) -> Where:
    # A filter on a key without an index of its own: the plan is the index scan, filtered, as for a large scope.
    where = Where()
    where.equals("topic", topic)
    return where


async def _plan_and_search(database: str) -> tuple[str, set[str]]:
    repository = MemoryRepository("memories")
    query = np.random.default_rng(4).normal(size=DIMS).astype(np.float32)
    ranking = search_params("zzz", threshold=0.0, top_k=20)
    # The server's pool: iterative scans, and an ef_search far below the scan needed to meet 12 rows in 3,000.
    pool = await open_pool(database, min_size=1, max_size=1, timeout_s=10, ef_search=10)
    try:
        async with pool.connection() as conn:
            where, entity_where = _where("rare"), Where("entity")
            statement = repository.q["search"].format(
                where=where.clause(),
                semantic=repository.semantic(where, dims=DIMS, exact=False),
                entity_where=entity_where.clause(),
            )
            params = {**where.params, **entity_where.params, **ranking, "vector": query}
            await conn.execute("SET enable_seqscan = off")  # 3,000 rows: the planner would rather scan them all
            cursor = await conn.execute(sql.SQL("EXPLAIN ") + statement, params)
            plan = "\n".join(str(row[0]) for row in await cursor.fetchall())
            hits = await repository.search(conn, where, entity_where, query, ranking, exact=False)
    finally:
        await pool.close()
    return plan, {row.id for row in hits.rows}


def test_the_index_query_scans_the_binary_hnsw_and_reaches_a_rare_scopes_rows(fresh_db):
    asyncio.run(migrate(fresh_db, collection="memories", dims=DIMS))
    rare = _load(fresh_db)

    plan, found = asyncio.run(_plan_and_search(fresh_db))

    assert "Index Scan using memories_hnsw_idx" in plan, plan
    assert "binary_quantize" in plan
    assert found == {str(memory_id) for memory_id in rare}
