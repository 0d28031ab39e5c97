"""What graph memory adds to an inferred write (issue 23): the extraction prompt's extra characters, the write's
latency with the graph on against off (the relations' Postgres statements and the known-relations read), and the
projection lag to a real Neo4j (from the write's 200 until Neo4j shows its relation), p50 and p95.

One server process per mode against the Ollama stand-in and an embedded Postgres; a real Neo4j 5.26 for the graph.
`python -m scripts.bench_graph [--writes 40]` prints one JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from neo4j import GraphDatabase

from app.graph.names import Relation
from app.llm.extraction import Ask, build_chat_messages
from tests.support.neo4j_process import Neo4jProcess
from tests.support.postgres import admin_uri, create_database
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess
from tests.support.standin_process import OllamaStandin

TEXT = "{person} works at {company}. {company} is located in {city}."


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1), "p95_ms": round(p95 * 1000, 1)}


def prompt_characters() -> dict[str, int]:
    conversation = [{"role": "user", "content": TEXT.format(person="Alice", company="Acme", city="Berlin")}]
    known = [Relation("alice", "works_at", f"company_{i}") for i in range(10)]
    plain = sum(len(m["content"]) for m in build_chat_messages(conversation))
    graph = sum(len(m["content"]) for m in build_chat_messages(conversation, Ask(known=[])))
    with_known = sum(len(m["content"]) for m in build_chat_messages(conversation, Ask(known=known)))
    return {"without_graph": plain, "graph_rules": graph - plain, "per_known_relation": (with_known - graph) // 10}


def timed_writes(url: str, writes: int, neo4j: Neo4jProcess | None) -> dict[str, Any]:
    latencies, lags = [], []
    driver = GraphDatabase.driver(neo4j.uri, auth=neo4j.auth) if neo4j else None
    with httpx.Client(base_url=url, headers={"X-API-Key": TEST_ADMIN_KEY}, timeout=60) as client:
        for index in range(writes):
            user = f"bench-{uuid.uuid4().hex[:8]}"
            text = TEXT.format(person=f"Person{index}", company=f"Company{index}", city="Berlin")
            body = {"messages": [{"role": "user", "content": text}], "user_id": user, "async_mode": False}
            started = time.perf_counter()
            response = client.post("/memories", json=body)
            answered = time.perf_counter()
            assert response.status_code == 200, response.text
            latencies.append(answered - started)
            if driver is None:
                continue
            while True:
                records, _, _ = driver.execute_query(
                    "MATCH (:__Entity__ {user_id: $user})-[r]->() RETURN count(r) AS n", user=user
                )
                if records[0]["n"] >= 2:
                    break
                time.sleep(0.005)
            lags.append(time.perf_counter() - answered)
    if driver is not None:
        driver.close()
    report: dict[str, Any] = {"write": percentiles_ms(latencies)}
    if lags:
        report["projection_lag"] = percentiles_ms(lags)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-xdg-"))
    admin = admin_uri(Path(tempfile.mkdtemp(prefix="bench-pg-")))
    standin = OllamaStandin().start(dims=768, embed_latency_ms=20, chat_latency_ms=200)
    report: dict[str, Any] = {"command": "python -m scripts.bench_graph " + " ".join(sys.argv[1:])}
    report["prompt_characters"] = prompt_characters()
    base = {
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_LOG_LEVEL": "WARNING",
        "MEM0_ADMIN_API_KEY": TEST_ADMIN_KEY,
        "MEM0_RATE_LIMIT": "",
        "MEM0_INFER_WAIT_S": "60",
    }
    try:
        with Neo4jProcess(Path(tempfile.mkdtemp(prefix="bench-neo4j-"))) as neo4j:
            graph = {"NEO4J_URI": neo4j.uri, "NEO4J_USERNAME": neo4j.user, "NEO4J_PASSWORD": neo4j.password}
            for mode, extra in (("graph_off", {}), ("graph_on", graph)):
                env = {**base, "DATABASE_URL": create_database(admin, prefix=mode), **extra}
                with ServerProcess(env) as server:
                    timed_writes(server.url, 3, None)  # warm-up
                    report[mode] = timed_writes(server.url, args.writes, neo4j if extra else None)
    finally:
        standin.stop()
    off, on = report["graph_off"]["write"], report["graph_on"]["write"]
    report["extra_write_ms"] = {key: round(on[key] - off[key], 1) for key in off}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
