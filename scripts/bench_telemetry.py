"""Write latency with telemetry healthy vs. its table locked (an outage), and the replay afterwards.

python -m scripts.bench_telemetry [--writes 200] [--concurrency 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from scripts.bench import run_level, write_request
from tests.support.postgres import admin_uri, create_database
from tests.support.server_process import ServerProcess
from tests.support.standin_process import OllamaStandin


def telemetry_values(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if "telemetry" in s.name}


def wait_for(url: str, name: str, wanted: float, timeout_s: float) -> float:
    """Polls a telemetry metric until it equals `wanted`; returns the seconds waited."""
    started = time.monotonic()
    while telemetry_values(url)[name] != wanted:
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"{name} did not reach {wanted} within {timeout_s}s")
        time.sleep(0.1)
    return round(time.monotonic() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="healthy/outage pairs, compared by their medians")
    parser.add_argument("--embed-latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-xdg-"))
    database = create_database(admin_uri(Path(tempfile.mkdtemp(prefix="bench-pg-"))), prefix="benchtel")
    standin = OllamaStandin().start(dims=768, embed_latency_ms=args.embed_latency_ms, extra_args=["--fast"])
    env = {
        "DATABASE_URL": database,
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_LOG_LEVEL": "WARNING",
        "MEM0_TELEMETRY_BREAKER_COOLDOWN_S": "1",
    }
    report: dict[str, Any] = {
        "command": "python -m scripts.bench_telemetry " + " ".join(sys.argv[1:]),
        "writes": args.writes,
        "concurrency": args.concurrency,
        "rounds": [],
    }
    try:
        with ServerProcess(env) as server:
            asyncio.run(run_level(server.url, args.concurrency, 50, write_request(1, 0)))  # warm-up
            wait_for(server.url, "mem0_telemetry_backlog", 0, 60)
            for number in range(args.rounds):
                # Healthy and outage runs alternate, so machine drift hits both sides alike.
                healthy = asyncio.run(
                    run_level(server.url, args.concurrency, args.writes, write_request(1, 100 + number))
                )
                wait_for(server.url, "mem0_telemetry_backlog", 0, 60)
                with psycopg.connect(database) as locker:
                    locker.execute("LOCK TABLE telemetry_events IN ACCESS EXCLUSIVE MODE")
                    outage = asyncio.run(
                        run_level(server.url, args.concurrency, args.writes, write_request(1, 200 + number))
                    )
                    # Hold the outage until the breaker has opened, so the replay comes after a real trip.
                    wait_for(server.url, "mem0_telemetry_breaker_state", 2, 15)
                    during = telemetry_values(server.url)
                    locker.rollback()
                replay_s = wait_for(server.url, "mem0_telemetry_backlog", 0, 60)
                report["rounds"].append(
                    {
                        "healthy_p95_ms": healthy["latency_ms"]["p95"],
                        "outage_p95_ms": outage["latency_ms"]["p95"],
                        "outage_errors": outage["errors"],
                        "backlog_during_outage": during["mem0_telemetry_backlog"],
                        "replay_s": replay_s,
                    }
                )
                print(json.dumps(report["rounds"][-1]), flush=True)
            after = telemetry_values(server.url)
        with psycopg.connect(database) as conn:
            stored = conn.execute("SELECT count(*), count(DISTINCT id) FROM telemetry_events").fetchone()
    finally:
        standin.stop()
    assert stored is not None
    healthy_p95 = statistics.median(r["healthy_p95_ms"] for r in report["rounds"])
    outage_p95 = statistics.median(r["outage_p95_ms"] for r in report["rounds"])
    report.update(
        telemetry_after=after,
        rows_stored=stored[0],
        distinct_ids=stored[1],
        healthy_p95_median_ms=healthy_p95,
        outage_p95_median_ms=outage_p95,
        p95_change_pct=round(100 * (outage_p95 / healthy_p95 - 1), 1),
    )
    print(json.dumps(report, indent=2))
    print(
        f"\nwrite p95 over {args.rounds} rounds of {args.writes} writes at c={args.concurrency}: healthy median "
        f"{healthy_p95} ms, outage median {outage_p95} ms ({report['p95_change_pct']:+}%); "
        f"failed writes during outages {sum(sum(r['outage_errors'].values()) for r in report['rounds'])}; "
        f"emitted {after['mem0_telemetry_emitted_total']:.0f}, stored {stored[0]} ({stored[1]} distinct), "
        f"dropped {after['mem0_telemetry_dropped_total']:.0f}"
    )


if __name__ == "__main__":
    main()
