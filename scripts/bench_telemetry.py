"""Write latency with telemetry healthy vs. its table locked (an outage), and the replay afterwards.

python -m scripts.bench_telemetry [--writes 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--embed-latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-xdg-"))
    database = create_database(admin_uri(Path(tempfile.mkdtemp(prefix="bench-pg-"))), prefix="benchtel")
    standin = OllamaStandin().start(dims=768, embed_latency_ms=args.embed_latency_ms)
    env = {
        "DATABASE_URL": database,
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_LOG_LEVEL": "WARNING",
        "MEM0_TELEMETRY_BREAKER_COOLDOWN_S": "1",
    }
    report: dict[str, Any] = {
        "command": "python -m scripts.bench_telemetry",
        "writes": args.writes,
        "concurrency": args.concurrency,
    }
    try:
        with ServerProcess(env) as server:
            healthy = asyncio.run(run_level(server.url, args.concurrency, args.writes, write_request(1, 1)))
            with psycopg.connect(database) as locker:
                locker.execute("LOCK TABLE telemetry_events IN ACCESS EXCLUSIVE MODE")
                outage = asyncio.run(run_level(server.url, args.concurrency, args.writes, write_request(1, 2)))
                # Hold the outage until the breaker has opened, so the replay below comes after a real trip.
                deadline = time.monotonic() + 15
                while telemetry_values(server.url)["mem0_telemetry_breaker_state"] != 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
                during = telemetry_values(server.url)
                locker.rollback()
            started = time.monotonic()
            while telemetry_values(server.url)["mem0_telemetry_backlog"] > 0 and time.monotonic() - started < 60:
                time.sleep(0.2)
            after = telemetry_values(server.url)
            report["replay_seconds"] = round(time.monotonic() - started, 2)
            # Consecutive runs drift by ±20% on a small machine; a healthy run on each side of the outage
            # gives the baseline the outage is compared with.
            healthy_after = asyncio.run(run_level(server.url, args.concurrency, args.writes, write_request(1, 3)))
            while telemetry_values(server.url)["mem0_telemetry_backlog"] > 0:
                time.sleep(0.2)
            after = telemetry_values(server.url)
        with psycopg.connect(database) as conn:
            stored = conn.execute("SELECT count(*), count(DISTINCT id) FROM telemetry_events").fetchone()
    finally:
        standin.stop()
    assert stored is not None
    report.update(
        healthy=healthy,
        outage=outage,
        telemetry_during_outage=during,
        telemetry_after=after,
        rows_stored=stored[0],
        distinct_ids=stored[1],
    )
    baseline_p95 = (healthy["latency_ms"]["p95"] + healthy_after["latency_ms"]["p95"]) / 2
    report["baseline_p95_ms"] = round(baseline_p95, 2)
    report["p95_change_pct"] = round(100 * (outage["latency_ms"]["p95"] / baseline_p95 - 1), 1)
    print(json.dumps(report, indent=2))
    print(
        f"\nwrite p95: healthy {healthy['latency_ms']['p95']} ms before, "
        f"{healthy_after['latency_ms']['p95']} ms after; "
        f"outage {outage['latency_ms']['p95']} ms ({report['p95_change_pct']:+}% vs their mean); "
        f"breaker during outage {during['mem0_telemetry_breaker_state']:.0f} (2 = open); "
        f"replayed in {report['replay_seconds']} s; emitted {after['mem0_telemetry_emitted_total']:.0f}, "
        f"stored {stored[0]} ({stored[1]} distinct), dropped {after['mem0_telemetry_dropped_total']:.0f}"
    )


if __name__ == "__main__":
    main()
