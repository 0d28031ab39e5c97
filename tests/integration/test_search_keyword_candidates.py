"""The index query's semantic candidates include the scope's keyword hits at their exact distance: a hit the HNSW
scan missed is still ranked, with the scores the exact scan gives it."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
from pgvector.psycopg import register_vector, register_vector_async
from psycopg.types.json import Jsonb

from app.db.migrator import migrate
from app.filters import Where
from app.memories.keywords import search_params
from app.memories.repository import MemoryRepository

QUERY = [1.0, 0.0, 0.0]
NEAREST = uuid.UUID(int=1)
KEYWORD_HIT = uuid.UUID(int=2)


def _load(database: str) -> None:
    rows = [(NEAREST, QUERY, "nothing to see here"), (KEYWORD_HIT, [0.5, 0.866, 0.0], "my locker code is 7319")]
    rows += [(uuid.UUID(int=10 + i), [1.0, 0.1 * i, 0.3], f"filler number {i}") for i in range(8)]
    with psycopg.connect(database) as conn:
        register_vector(conn)
        for memory_id, vector, text in rows:
            payload = {"data": text, "text_lemmatized": text, "user_id": "u"}
            conn.execute(
                "INSERT INTO memories (id, vector, payload) VALUES (%s, %s::vector, %s)",
                (memory_id, str(vector), Jsonb(payload)),
            )


async def _search(database: str, *, exact: bool) -> dict[str, tuple[float, float]]:
    repository = MemoryRepository("memories")
    where = Where()  # no scope: with one, the planner scans this small table by the user_id index, not HNSW
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        await register_vector_async(conn)
        # The HNSW scan at its narrowest: one row, no iterative scan, and the index even on a table this small.
        await conn.execute("SET hnsw.iterative_scan = off")
        await conn.execute("SET hnsw.ef_search = 1")
        await conn.execute("SET enable_seqscan = off")
        if not exact:
            cursor = await conn.execute(
                "SELECT id FROM memories ORDER BY binary_quantize(vector)::bit(3) <~> binary_quantize(%s::vector)"
                " LIMIT 240",
                (str(QUERY),),
            )
            assert [row[0] for row in await cursor.fetchall()] == [NEAREST]  # the scan misses the keyword hit
        ranking = search_params("7319", threshold=0.1, top_k=10)
        hits = await repository.search(conn, where, Where("entity"), QUERY, ranking, exact=exact)
    assert hits.any_keyword_hit
    return {row.id: (row.semantic, row.bm25) for row in hits.rows}


def test_a_keyword_hit_the_index_scan_missed_is_ranked_as_the_exact_scan_ranks_it(fresh_db):
    asyncio.run(migrate(fresh_db, collection="memories", dims=3))
    _load(fresh_db)

    exact = asyncio.run(_search(fresh_db, exact=True))
    indexed = asyncio.run(_search(fresh_db, exact=False))

    assert list(indexed) == [str(NEAREST), str(KEYWORD_HIT)]  # the scan's one row, then the keyword hit
    assert indexed[str(KEYWORD_HIT)] == exact[str(KEYWORD_HIT)]
    assert indexed[str(KEYWORD_HIT)][1] > 0
