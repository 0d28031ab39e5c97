"""Hybrid search (mem0's semantic + keyword ranking) under load, and its recall through the HNSW index.

`python -m scripts.bench_hybrid` loads 10,000 memories as scripts/bench.py does (`--large`: then 100,000), then:

- searches one user's memories (100 or 1,000 rows: the exact scan) with queries of one or two vocabulary words, so
  the full-text half finds hits (`keyword`), and with whole sentences plus a unique tag, which it never does
  (`no hit`), at concurrency 1, 8 and 32. The server runs with MEM0_EMBED_CACHE_SIZE=0 and MEM0_SEARCH_CACHE_SIZE=0,
  so every search pays its embed call and overhead is latency minus the stand-in's configured 20 ms, as in
  scripts/bench.py.
- recall@10 of the hybrid ranking whose semantic candidates come from the HNSW index (ef_search 800, iterative
  scan, what the server runs above MEM0_EXACT_SEARCH_MAX_ROWS) against the same ranking over an exact scan, over
  the whole table, for the same two kinds of query. Both rankings are the server's own queries and score_and_rank.
  Also split by whether the query's keyword signal was on (the scope had a full-text hit): a two-word query whose
  words never meet in one memory has it off, and its recall is the index's plain nearest-neighbour recall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg import sql

from app.db.migrator import migrate
from app.filters import Where
from app.memories.keywords import DEFAULT_THRESHOLD, search_params
from app.memories.repository import MemoryRepository
from scripts.bench import (
    CONCURRENCY,
    DIMS,
    USERS,
    index_definition,
    load_memories,
    rebuild_index,
    run_level,
    sentence,
    standin_round_trip_ms,
    warm_buffers,
    with_overhead,
    write_report,
)
from tests.support.ollama_standin import embed_text
from tests.support.postgres import admin_uri, create_database
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess
from tests.support.standin_process import OllamaStandin

EF_SEARCH = 800


def keyword_query(rng: random.Random) -> str:
    """One or two words of a sentence drawn like the stored ones: common words hit many rows, rare ones few."""
    words = sentence(rng).split()
    start = rng.randrange(len(words) - 1)
    return " ".join(words[start : start + rng.randint(1, 2)])


def search_request(keyword: bool, seed: int) -> Any:
    def make(n: int) -> tuple[str, str, dict[str, Any]]:
        rng = random.Random(seed * 1_000_003 + n)
        query = keyword_query(rng) if keyword else f"{sentence(rng)} #{seed}-{n}"
        return "POST", "/search", {"query": query, "user_id": f"user-{n % USERS}", "top_k": 10}

    return make


def hybrid_recall(database: str, queries: list[str], ef_search: int = EF_SEARCH) -> dict[str, Any]:
    """The server's search query over the whole table (its ranking is in the SQL), composed with each of its two
    semantic parts as the repository composes it: the index variant against the exact one."""
    repository = MemoryRepository("memories")
    everything = sql.SQL("true")
    statements = {
        exact: repository.q["search"].format(
            where=everything,
            semantic=repository.semantic(Where(), dims=DIMS, exact=exact),
            entity_where=everything,
        )
        for exact in (True, False)
    }
    # By whether the exact ranking had a keyword hit (the keyword signal was on): queries, ids both rankings
    # returned, ids the exact ranking returned.
    counts: dict[bool, list[int]] = {True: [0, 0, 0], False: [0, 0, 0]}
    timings: dict[bool, list[float]] = {True: [], False: []}
    with psycopg.connect(database, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("SET hnsw.iterative_scan = 'strict_order'")
        conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        # Above ef_search 300 the planner may cost a 10,000-row seq scan lower; the pass must measure the index.
        conn.execute("SET enable_seqscan = off")
        probe = {"vector": Vector(embed_text("plan", DIMS)), **search_params("plan", threshold=0.1, top_k=10)}
        plan = " ".join(row[0] for row in conn.execute(sql.SQL("EXPLAIN ") + statements[False], probe))
        if "memories_hnsw_idx" not in plan:
            raise RuntimeError(f"the index query does not use the HNSW index: {plan[:300]}")
        for query in queries:
            params = {
                "vector": Vector(embed_text(query, DIMS)),
                **search_params(query, threshold=DEFAULT_THRESHOLD, top_k=10),
            }
            ranked: dict[bool, list[str]] = {}
            keyword_on = False
            for exact, statement in statements.items():
                started = time.perf_counter()
                rows = conn.execute(statement, params).fetchall()
                timings[exact].append((time.perf_counter() - started) * 1000)
                ranked[exact] = [str(row[0]) for row in rows]
                if exact:
                    keyword_on = bool(rows and rows[0][5])  # search's any_hit column
            counts[keyword_on][0] += 1
            counts[keyword_on][1] += len(set(ranked[True]) & set(ranked[False]))
            counts[keyword_on][2] += len(ranked[True])

    def recall(hits: int, total: int) -> float | None:
        return round(hits / total, 4) if total else None

    return {
        "queries": len(queries),
        "keyword_signal_on": counts[True][0],
        "recall_at_10": recall(counts[True][1] + counts[False][1], counts[True][2] + counts[False][2]),
        # Where the signal was off the ranking is the semantic one alone: its misses are the index's plain kNN misses.
        "recall_at_10_signal_on": recall(*counts[True][1:]),
        "recall_at_10_signal_off": recall(*counts[False][1:]),
        "exact_query_ms_p50": round(statistics.median(timings[True]), 2),
        "index_query_ms_p50": round(statistics.median(timings[False]), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="also measure at 100,000 memories")
    parser.add_argument("--requests", type=int, default=300, help="requests per concurrency level")
    parser.add_argument("--embed-latency-ms", type=float, default=20.0)
    parser.add_argument("--out", default="", help="JSON file; '-' prints JSON; default bench-results/")
    parser.add_argument(
        "--recall-ef-search", default=str(EF_SEARCH), help="comma-separated hnsw.ef_search values for the recall pass"
    )
    args = parser.parse_args()

    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-xdg-"))
    admin = admin_uri(Path(tempfile.mkdtemp(prefix="bench-pg-")), {"shared_buffers": "1GB"})
    database = create_database(admin, prefix="bench")
    asyncio.run(migrate(database, collection="memories", dims=DIMS))
    standin = OllamaStandin().start(dims=DIMS, embed_latency_ms=args.embed_latency_ms, extra_args=["--fast"])
    measured = asyncio.run(standin_round_trip_ms(standin.url))
    report: dict[str, Any] = {
        "command": "python -m scripts.bench_hybrid " + " ".join(sys.argv[1:]),
        "standin_embed_latency_ms": args.embed_latency_ms,
        "standin_round_trip_ms": measured,
        "operations": {},
        "recall": {},
    }
    env = {
        "DATABASE_URL": database,
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_LOG_LEVEL": "WARNING",
        "MEM0_ADMIN_API_KEY": TEST_ADMIN_KEY,  # scripts.bench's load generator sends it
        "MEM0_RATE_LIMIT": "",  # one key sends every request: the per-key limit would answer 429s instead
        "MEM0_EMBED_CACHE_SIZE": "0",  # repeated one-word queries must not skip their embed call
        "MEM0_SEARCH_CACHE_SIZE": "0",  # nor the search itself
    }
    server = ServerProcess(env)
    loaded = 0
    definition = index_definition(database)
    try:
        for size in [10_000, 100_000] if args.large else [10_000]:
            print(f"loading {size - loaded} memories ...", flush=True)
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute("DROP INDEX IF EXISTS memories_hnsw_idx")
            load_memories(database, size - loaded, start=loaded, seed=size)
            loaded = size
            rebuild_index(database, definition)
            warm_buffers(database)
            rng = random.Random(7000 + size)
            queries = [keyword_query(rng) for _ in range(100)] + [sentence(rng) for _ in range(100)]
            report["recall"][str(size)] = {
                f"ef_search {ef}": {
                    "keyword": hybrid_recall(database, queries[:100], ef),
                    "sentence": hybrid_recall(database, queries[100:], ef),
                }
                for ef in (int(value) for value in args.recall_ef_search.split(","))
            }
            print(f"recall at {size}: {json.dumps(report['recall'][str(size)])}", flush=True)
            if server.process is None:
                server.start().wait_ready(60)
            for keyword in (True, False):
                name = f"search {size} {'keyword' if keyword else 'no hit'}"
                report["operations"][name] = [
                    with_overhead(
                        asyncio.run(
                            run_level(server.url, c, args.requests, search_request(keyword, size + 10 * c + keyword))
                        ),
                        args.embed_latency_ms,
                        measured["p50"],
                    )
                    for c in CONCURRENCY
                ]
                print(f"{name}: done", flush=True)
    finally:
        server.stop()
        standin.stop()

    write_report(report, args.out, "bench-hybrid")
    header = f"{'c':>4}{'rps':>8}{'p50':>8}{'p95':>8}{'ovh p50':>9}{'ovh p95':>9}{'ovh* p50':>9}{'err':>5}"
    print(f"{'operation':<28}{header}")
    for name, levels in report["operations"].items():
        for level in levels:
            lat, ovh, own = level["latency_ms"], level["overhead_ms"], level["overhead_vs_measured_ms"]
            print(
                f"{name:<28}{level['concurrency']:>4}{level['throughput_rps']:>8}{lat['p50']:>8}{lat['p95']:>8}"
                f"{ovh['p50']:>9}{ovh['p95']:>9}{own['p50']:>9}{sum(level['errors'].values()):>5}"
            )


if __name__ == "__main__":
    main()
