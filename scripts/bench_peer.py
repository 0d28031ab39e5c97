"""Levels run side by side: `python -m scripts.bench --peer mem0` drives the same requests through our server and
through upstream mem0's own code path (scripts/mem0_peer.py) in the same run, and prints both with their ratio.

Each system has its own database in the same Postgres with the same 10,000 memories, and both talk to the same
Ollama stand-in. Levels alternate which system goes first, so drift (another process, autovacuum, a warming
cache) hits both. Per level and system: throughput, latency percentiles, overhead (p50 minus the stand-in's
configured embed latency), errors, server and Postgres CPU ms per request, embed calls per request, RSS after it.

`--levels write1-c32 --requests 100000` runs one long level (ours only without --peer); `--seconds` sets a
level's length (default 12 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from app.db.migrator import migrate
from scripts.bench import (
    DIMS,
    USERS,
    index_definition,
    load_memories,
    rebuild_index,
    run_level,
    search_request,
    sentence,
    settle,
    warm_buffers,
    write_report,
    write_request,
)
from tests.support.postgres import admin_uri, create_database
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess
from tests.support.standin_process import OllamaStandin

MEMORIES = 10_000
HIT_QUERIES = 20  # the repeated-search level's fixed set: one query for each of 20 users


@dataclass(frozen=True)
class Level:
    kind: str  # "write", "search" (a new query every request) or "search-hit" (the same queries again)
    concurrency: int
    messages: int = 1  # per write

    def make_request(self, seed: int) -> Any:
        if self.kind == "write":
            return write_request(self.messages, seed)
        if self.kind == "search":
            return search_request(False, seed)
        return repeated_search_request(seed)

    @property
    def warmup(self) -> int:
        # The repeated level's warm-up sends each of its queries once, so a result cache has them all.
        return HIT_QUERIES if self.kind == "search-hit" else 5


LEVELS = {
    "write1-c1": Level("write", 1),
    "write1-c8": Level("write", 8),
    "write1-c32": Level("write", 32),
    "write5-c8": Level("write", 8, messages=5),
    "search-c1": Level("search", 1),
    "search-c8": Level("search", 8),
    "search-c32": Level("search", 32),
    "search-hit-c8": Level("search-hit", 8),
}


def repeated_search_request(seed: int) -> Any:
    """Request n asks query n mod 20 for user n mod 20: after the warm-up (n = -1 .. -20) every one is a repeat."""
    queries = [f"{sentence(random.Random(seed * 1_000_003 + k))} #hit-{seed}-{k}" for k in range(HIT_QUERIES)]

    def make(n: int) -> tuple[str, str, dict[str, Any]]:
        k = n % HIT_QUERIES
        return "POST", "/search", {"query": queries[k], "user_id": f"user-{k % USERS}", "top_k": 10}

    return make


# -- measuring -----------------------------------------------------------------------------------------------------


def tree_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process (all its threads), its live descendants, and the children it has
    already reaped (Postgres backends that exited during a level still count, through the postmaster)."""
    process = psutil.Process(pid)
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # exited between the listing and the read
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


def tree_rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    rss = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            rss += child.memory_info().rss
    return round(rss / 2**20, 1)


def postmaster_pid(database: str) -> int | None:
    """The local postmaster (a backend's parent), or None when Postgres runs elsewhere or as another user."""
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        try:
            parent = psutil.Process(int(row[0])).parent()
            if parent is not None and "postgres" in parent.name():
                tree_cpu_s(parent.pid)  # readable, or psutil.AccessDenied here
                return int(parent.pid)
        except psutil.Error:
            pass
    return None


@dataclass
class System:
    name: str
    server: ServerProcess
    headers: dict[str, str]

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid


def summarise(raw: dict[str, Any], embed_latency_ms: float, rss_mb: float) -> dict[str, Any]:
    """Per-request figures from a level's raw counters."""
    n = max(1, raw["requests"])
    counters = raw.pop("counters")
    latency = raw["latency_ms"]
    raw["p95_over_p50"] = round(latency["p95"] / latency["p50"], 2) if latency["p50"] else None
    raw["overhead_p50_ms"] = round(latency["p50"] - embed_latency_ms, 2)
    raw["server_cpu_ms_per_request"] = round(counters["server_cpu_s"] * 1000 / n, 3)
    pg = counters.get("postgres_cpu_s")
    raw["postgres_cpu_ms_per_request"] = None if pg is None else round(pg * 1000 / n, 3)
    raw["embed_calls_per_request"] = round(counters["embed_calls"] / n, 3)
    raw["embed_texts_per_request"] = round(counters["embed_texts"] / n, 3)
    raw["rss_mb"] = rss_mb
    return raw


def run_one(
    system: System, level: Level, seed: int, args: Any, standin: OllamaStandin, postmaster: int | None
) -> dict[str, Any]:
    def sample() -> dict[str, float]:
        stats = standin.stats()
        counters = {
            "server_cpu_s": tree_cpu_s(system.pid),
            "embed_calls": float(stats["counts"].get("embed", 0) + stats["counts"].get("embeddings", 0)),
            "embed_texts": float(stats["embed_inputs"]),
        }
        if postmaster is not None:
            counters["postgres_cpu_s"] = tree_cpu_s(postmaster)
        return counters

    seconds = None if args.requests else args.seconds
    raw = asyncio.run(
        run_level(
            system.server.url,
            level.concurrency,
            args.requests,
            level.make_request(seed),
            warmup=level.warmup,
            seconds=seconds,
            headers=system.headers,
            sample=sample,
        )
    )
    return summarise(raw, args.embed_latency_ms, tree_rss_mb(system.pid))


def idle_cpu_ms_per_s(systems: list[System], postmaster: int | None, seconds: float = 3.0) -> dict[str, float]:
    """What each server (and Postgres) burns with no requests (background loops, pool checks): part of every
    level's CPU per request, most visible at c=1 where the fewest requests share it."""
    pids = {s.name: s.pid for s in systems} | ({"postgres": postmaster} if postmaster else {})
    before = {name: tree_cpu_s(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    return {name: round((tree_cpu_s(pid) - before[name]) * 1000 / seconds, 1) for name, pid in pids.items()}


# -- setup ---------------------------------------------------------------------------------------------------------


def prepare(database: str, args: Any) -> None:
    """The same 10,000 memories (same texts, users and vectors) in either layout, indexed (each system's own ANN
    index: ours from our migrations, mem0's as its library created it) and settled."""
    definition = index_definition(database)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS memories_hnsw_idx")  # COPY first, then one index build
    load_memories(database, MEMORIES, start=0, seed=MEMORIES)
    rebuild_index(database, definition, args.hnsw_m, args.hnsw_ef_construction)
    settle(database)
    warm_buffers(database)


def create_mem0_table(database: str) -> None:
    """mem0 lays out its table itself (id, vector, payload; an HNSW index named memories_hnsw_idx with pgvector's
    defaults, m 16 and ef_construction 64; a GIN full-text index): created here by mem0's own code."""
    os.environ["MEM0_TELEMETRY"] = "False"  # before mem0's first import: no PostHog from this process either
    from mem0.vector_stores.pgvector import PGVector

    store = PGVector(
        dbname=None,
        collection_name="memories",
        embedding_model_dims=DIMS,
        user=None,
        password=None,
        host=None,
        port=None,
        diskann=False,
        hnsw=True,
        connection_string=database,
    )
    try:
        store.create_col()
    finally:
        store.connection_pool.close()


def our_server(database: str, standin: OllamaStandin, args: Any) -> System:
    env = {
        "DATABASE_URL": database,
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_LOG_LEVEL": "WARNING",
        "MEM0_INFER_MODE": "async",  # as `make bench` runs it
        "MEM0_ADMIN_API_KEY": TEST_ADMIN_KEY,
        "MEM0_RATE_LIMIT": "",  # one key sends every request: the per-key limit would answer 429s instead
    }
    if args.ef_search is not None:
        env["MEM0_HNSW_EF_SEARCH"] = str(args.ef_search)
    return System("ours", ServerProcess(env), {"X-API-Key": TEST_ADMIN_KEY})


def mem0_server(database: str, standin: OllamaStandin, scratch: Path) -> System:
    server = ServerProcess(
        {
            "PEER_DATABASE_URL": database,
            "PEER_OLLAMA_URL": standin.url,
            "PEER_HISTORY_DB": str(scratch / "mem0-history.db"),
            "PEER_DIMS": str(DIMS),
            "MEM0_DIR": str(scratch / "mem0-dir"),  # mem0's ~/.mem0 (its config file) away from the home directory
            "MEM0_TELEMETRY": "False",  # scripts/mem0_peer.py sets it too; belt and braces
        },
        module="scripts.mem0_peer",
    )
    server.env["PEER_PORT"] = str(server.port)
    return System("mem0", server, {})


# -- report --------------------------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def print_table(report: dict[str, Any]) -> None:
    columns = ("n", "rps", "p50", "p95", "p99", "p95/p50", "ovh p50", "cpu ms", "pg ms", "embeds", "RSS MB", "err")
    print(f"{'level':<15}{'system':<11}" + "".join(f"{c:>9}" for c in columns))
    for name, systems in report["levels"].items():
        for system, r in systems.items():
            lat = r["latency_ms"]
            cells = (r["requests"], r["throughput_rps"], lat["p50"], lat["p95"], lat["p99"], r["p95_over_p50"])
            cells += (r["overhead_p50_ms"], r["server_cpu_ms_per_request"], r["postgres_cpu_ms_per_request"])
            cells += (r["embed_calls_per_request"], r["rss_mb"], sum(r["errors"].values()))
            print(f"{name:<15}{system:<11}" + "".join(f"{'-' if c is None else c:>9}" for c in cells))
        if "ratio" in report and name in report["ratio"]:
            q = report["ratio"][name]
            print(
                f"{name:<15}{'ours/mem0':<11}{'':>9}{q['throughput']:>9}{'':>9}{q['p95']:>9}{'':>9}{'':>9}"
                f"{q['overhead_p50']:>9}{q['server_cpu']:>9}"
            )
    print(f"CPU with no requests, ms per second: {report['idle_cpu_ms_per_s']}")
    print(
        f"ovh p50: p50 minus the stand-in's configured {report['standin_embed_latency_ms']} ms embed latency; "
        "cpu ms / pg ms: server process / all Postgres processes, CPU per request; embeds: embed calls per request"
    )
    if "ratio" in report:
        print("ours/mem0 rows: throughput ratio (higher: ours faster); p95, overhead, CPU (lower: ours cheaper)")


def main(args: Any) -> None:
    names = args.levels.split(",") if args.levels else list(LEVELS)
    unknown = [name for name in names if name not in LEVELS]
    if unknown:
        sys.exit(f"unknown level(s) {', '.join(unknown)}; known: {', '.join(LEVELS)}")
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-xdg-"))
    scratch = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    admin = args.database_url or admin_uri(scratch, {"shared_buffers": args.shared_buffers})
    standin = OllamaStandin().start(dims=DIMS, embed_latency_ms=args.embed_latency_ms, extra_args=["--fast"])
    systems: list[System] = []
    try:
        ours_db = create_database(admin, prefix="bench")
        asyncio.run(migrate(ours_db, collection="memories", dims=DIMS))
        print(f"loading {MEMORIES} memories for ours ...", flush=True)
        prepare(ours_db, args)
        systems.append(our_server(ours_db, standin, args))
        if args.peer == "mem0":
            peer_db = create_database(admin, prefix="peer")
            create_mem0_table(peer_db)
            print(f"loading {MEMORIES} memories for mem0 ...", flush=True)
            prepare(peer_db, args)
            systems.append(mem0_server(peer_db, standin, scratch))
        for system in systems:
            system.server.start().wait_ready(90)
        postmaster = postmaster_pid(ours_db)
        report: dict[str, Any] = {
            "idle_cpu_ms_per_s": idle_cpu_ms_per_s(systems, postmaster),
            "command": "python -m scripts.bench " + " ".join(sys.argv[1:]),
            "machine": {"cpus": os.cpu_count()},
            "standin_embed_latency_ms": args.embed_latency_ms,
            "memories": MEMORIES,
            "level_seconds": None if args.requests else args.seconds,
            "level_requests": args.requests,
            "levels": {},
        }
        for index, name in enumerate(names):
            level = LEVELS[name]
            # Alternate who goes first; both get the same seed, so the same request bodies.
            order = systems if index % 2 == 0 else systems[::-1]
            seed = 100 + index
            results = {s.name: run_one(s, level, seed, args, standin, postmaster) for s in order}
            report["levels"][name] = {s.name: results[s.name] for s in systems}
            print(f"{name}: " + ", ".join(f"{s} {r['throughput_rps']} rps" for s, r in results.items()), flush=True)
        if len(systems) == 2:
            report["ratio"] = {
                name: {
                    "throughput": ratio(r["ours"]["throughput_rps"], r["mem0"]["throughput_rps"]),
                    "p95": ratio(r["ours"]["latency_ms"]["p95"], r["mem0"]["latency_ms"]["p95"]),
                    "overhead_p50": ratio(r["ours"]["overhead_p50_ms"], r["mem0"]["overhead_p50_ms"]),
                    "server_cpu": ratio(r["ours"]["server_cpu_ms_per_request"], r["mem0"]["server_cpu_ms_per_request"]),
                }
                for name, r in report["levels"].items()
            }
    finally:
        for system in systems:
            system.server.stop()
        standin.stop()
    write_report(report, args.out, "bench-peer" if args.peer else "bench-levels")
    print_table(report)
