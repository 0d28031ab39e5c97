"""Memory under hostile searches: does the server's RSS stay bounded? (issue 11: 400 searches with 2 MB filters
took it from 78 MB to 1.49 GB, held after the TTL).

    python -m scripts.bench_memory [--searches 400] [--concurrency 8]

Starts an embedded Postgres, the Ollama stand-in and one server process, then sends, each phase with every request
distinct (so no cache entry is reused): searches with 2 MB filters (refused now: filters are capped at 64 KiB),
searches with filters just under the cap and 20,000-character queries (accepted: they fill the scope-size and
embedding caches), and writes with 12 MB bodies (413). Prints the server's RSS after each phase and its peak
(VmHWM). Measures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support.postgres import create_database, running_postgres
from tests.support.server_process import ServerProcess
from tests.support.standin_process import OllamaStandin

MB = 1024 * 1024


def big_filters(index: int) -> dict[str, Any]:
    values = [f"{index}-{n}-" + "t" * 990 for n in range(2048)]  # about 2 MB of JSON
    return {"query": f"tea {index}", "user_id": "bench", "filters": {"topic": {"in": values}}}


def capped_filters(index: int) -> dict[str, Any]:
    values = [f"{index}-{n}-" + "t" * 90 for n in range(600)]  # about 60 KB, under the 64 KiB cap
    return {"query": f"{index} " + "q" * 19_990, "user_id": "bench", "filters": {"topic": {"in": values}}}


def huge_write(index: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"{index}" + "x" * (12 * MB)}], "user_id": "bench"}


def rss_mb(process: psutil.Process) -> tuple[float, float]:
    """(current RSS, peak RSS) in MB."""
    peak_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    return process.memory_info().rss / MB, peak_kb / 1024


async def phase(
    url: str, path: str, make: Callable[[int], dict[str, Any]], count: int, concurrency: int
) -> Counter[int]:
    statuses: Counter[int] = Counter()
    queue = list(range(count))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            index = queue.pop()
            body = json.dumps(make(index)).encode()
            response = await client.post(path, content=body, headers={"content-type": "application/json"})
            statuses[response.status_code] += 1

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searches", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with running_postgres(Path(tempfile.mkdtemp(prefix="bench-mem-pg-"))) as admin:
        database = create_database(admin, prefix="benchmem")
        standin = OllamaStandin().start(dims=768)
        try:
            env = {"DATABASE_URL": database, "OLLAMA_BASE_URL": standin.url}
            with ServerProcess(env) as server:
                assert server.process is not None
                process = psutil.Process(server.process.pid)
                print(f"server RSS at start: {rss_mb(process)[0]:.1f} MB")
                phases = [
                    ("searches with 2 MB filters", "/search", big_filters, args.searches),
                    ("searches with 60 KB filters and 20,000-char queries", "/search", capped_filters, args.searches),
                    ("writes with 12 MB bodies", "/memories", huge_write, 50),
                ]
                for name, path, make, count in phases:
                    started = time.monotonic()
                    statuses = asyncio.run(phase(server.url, path, make, count, args.concurrency))
                    rss, peak = rss_mb(process)
                    seconds = time.monotonic() - started
                    print(
                        f"{count} {name}: statuses {dict(statuses)}, {seconds:.1f} s; "
                        f"RSS after {rss:.1f} MB, peak so far {peak:.1f} MB"
                    )
        finally:
            standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
