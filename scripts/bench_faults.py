"""Measures what Ollama's failures and abusive clients cost (issue 22's three numbers), on one server process against
the Ollama stand-in and an embedded Postgres:

1. `/health` p50 while two clients without a key send 9 MB bodies;
2. write latency in the first second after a 10 s hang of Ollama's embedding calls;
3. the share of inferred writes that succeed when Ollama is away for 15 s while they arrive.

`python -m scripts.bench_faults` prints one JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.jobs import infer_write
from tests.support.postgres import admin_uri, create_database
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess
from tests.support.standin_process import OllamaStandin

BODY_9MB = b'{"query": "' + b"x" * 9_000_000 + b'", "user_id": "alice"}'


def p50_ms(samples_s: list[float]) -> float:
    return round(statistics.median(samples_s) * 1000, 2)


def health_under_keyless_bodies(url: str, seconds: float) -> dict[str, Any]:
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                client.post("/search", content=BODY_9MB, headers={"Content-Type": "application/json"})
                sent[0] += 1

    floods = [threading.Thread(target=flood) for _ in range(2)]
    quiet, loaded = [], []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(50):
            started = time.perf_counter()
            client.get("/health")
            quiet.append(time.perf_counter() - started)
        for thread in floods:
            thread.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            client.get("/health")
            loaded.append(time.perf_counter() - started)
            time.sleep(0.02)
    stop.set()
    for thread in floods:
        thread.join()
    return {"health_p50_ms_idle": p50_ms(quiet), "health_p50_ms_under_flood": p50_ms(loaded), "bodies_sent": sent[0]}


def writes_after_an_embed_hang(url: str, standin: OllamaStandin, hang_s: float) -> dict[str, Any]:
    def write(client: httpx.Client, text: str) -> float:
        body = {"messages": [{"role": "user", "content": text}], "user_id": "bench-hang", "infer": False}
        started = time.perf_counter()
        assert client.post("/memories", json=body).status_code == 200
        return time.perf_counter() - started

    headers = {"X-API-Key": TEST_ADMIN_KEY}
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        standin.set_fault("embed", kind="hang", seconds=3600)
        during = [threading.Thread(target=write, args=(client, f"during {i}")) for i in range(8)]
        for thread in during:
            thread.start()
        time.sleep(hang_s)
        standin.clear_faults()
        back = time.monotonic()
        first_second = []
        while time.monotonic() - back < 1.0:
            first_second.append(write(client, f"after {len(first_second)}"))
        for thread in during:
            thread.join()
    return {
        "hang_s": hang_s,
        "writes_in_first_second": len(first_second),
        "write_p50_ms": p50_ms(first_second),
        "write_max_ms": round(max(first_second) * 1000, 2),
    }


def inferred_writes_across_an_outage(url: str, standin: OllamaStandin, outage_s: float, writes: int) -> dict[str, Any]:
    headers = {"X-API-Key": TEST_ADMIN_KEY}
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        job_ids = []
        spacing = (outage_s + 10) / writes
        outage_from: float | None = None
        for index in range(writes):
            if index == writes // 3:
                standin.control(down=True)
                outage_from = time.monotonic()
            elif outage_from is not None and time.monotonic() - outage_from >= outage_s:
                standin.control(down=False)
                outage_from = None
            body = infer_write(f"bench-{uuid.uuid4().hex[:8]}", f"I have {index} cats.", async_mode=True)
            job_ids.append(client.post("/memories", json=body).json()["job_id"])
            time.sleep(spacing)
        standin.control(down=False)
        deadline = time.monotonic() + 300
        statuses: list[str] = []
        while time.monotonic() < deadline:
            statuses = [client.get(f"/jobs/{job_id}").json()["status"] for job_id in job_ids]
            if all(status in ("SUCCEEDED", "FAILED") for status in statuses):
                break
            time.sleep(1)
    succeeded = statuses.count("SUCCEEDED")
    return {"outage_s": outage_s, "writes": writes, "succeeded": succeeded, "success_rate": succeeded / writes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--hang-seconds", type=float, default=10.0)
    parser.add_argument("--outage-seconds", type=float, default=15.0)
    parser.add_argument("--inferred-writes", type=int, default=60)
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-xdg-"))
    database = create_database(admin_uri(Path(tempfile.mkdtemp(prefix="bench-pg-"))), prefix="faults")
    standin = OllamaStandin().start(dims=768, embed_latency_ms=20, chat_latency_ms=200)
    env = {
        "DATABASE_URL": database,
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_LOG_LEVEL": "WARNING",
        "MEM0_ADMIN_API_KEY": TEST_ADMIN_KEY,
        "MEM0_RATE_LIMIT": "",
    }
    report: dict[str, Any] = {"command": "python -m scripts.bench_faults " + " ".join(sys.argv[1:])}
    try:
        with ServerProcess(env) as server:
            report["keyless_9mb_bodies"] = health_under_keyless_bodies(server.url, args.flood_seconds)
            report["embed_hang"] = writes_after_an_embed_hang(server.url, standin, args.hang_seconds)
            report["ollama_outage"] = inferred_writes_across_an_outage(
                server.url, standin, args.outage_seconds, args.inferred_writes
            )
    finally:
        standin.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
