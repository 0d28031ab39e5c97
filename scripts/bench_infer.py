"""Benchmark (not a test): the extraction prompt's size and call time against the Ollama stand-in, vs mem0's prompt."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.llm.client import OllamaClient
from app.llm.extraction import build_chat_messages, estimate_tokens, extract_facts
from tests.support.standin_process import OllamaStandin

MESSAGES = [
    {"role": "user", "content": "Hi, I'm Ana. I moved to Lyon last year and I work as a baker."},
    {"role": "assistant", "content": "Nice! You could try the sourdough class at the market."},
    {"role": "user", "content": "Maybe. I'm allergic to peanuts, so I avoid most pastries."},
]
RUNS = 20


async def main() -> None:
    chat = build_chat_messages(MESSAGES)
    ours_chars = sum(len(m["content"]) for m in chat)
    print(f"our extraction prompt: {ours_chars} chars, ~{estimate_tokens(chat)} tokens (estimate, 3 chars/token)")
    try:
        from mem0.configs.prompts import ADDITIVE_EXTRACTION_PROMPT

        print(
            f"mem0 ADDITIVE_EXTRACTION_PROMPT: {len(ADDITIVE_EXTRACTION_PROMPT)} chars, "
            f"~{len(ADDITIVE_EXTRACTION_PROMPT) // 4} tokens at 4 chars/token"
        )
    except ImportError as error:
        print(f"mem0 not installed, no comparison: {error}")
    with OllamaStandin() as standin:
        client = OllamaClient(
            standin.url, connect_timeout_s=5, embed_timeout_s=30, llm_timeout_s=60, pull_timeout_s=60, keep_alive="30m"
        )
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            result = await extract_facts(client, "mistral:7b-instruct-q5_K_M", MESSAGES, num_predict=512, max_ctx=8192)
            times.append((time.perf_counter() - started) * 1000)
        await client.close()
        last_chat = next(r for r in reversed(standin.stats()["requests"]) if r["op"] == "chat")
    print(f"num_ctx chosen: {last_chat['options']['num_ctx']}; facts: {result.facts}")
    print(
        f"extraction call against the stand-in ({RUNS} runs): median {statistics.median(times):.1f} ms, "
        f"max {max(times):.1f} ms"
    )


def acceptance(writes: int = 20, chat_latency_ms: int = 5000) -> None:
    """Async inferred writes against a slow model: how fast they are accepted, and how long the jobs take."""
    import os
    import tempfile

    from tests.support.postgres import admin_uri, create_database
    from tests.support.server_process import ServerProcess

    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-xdg-"))
    database = create_database(admin_uri(Path(tempfile.mkdtemp(prefix="bench-pg-"))), prefix="benchinfer")
    with OllamaStandin() as standin:
        standin.control(chat_latency_ms=chat_latency_ms)
        env = {
            "DATABASE_URL": database,
            "OLLAMA_BASE_URL": standin.url,
            "MEM0_INFER_WORKERS": "2",
            "MEM0_LOG_LEVEL": "WARNING",
        }
        with ServerProcess(env) as server, server.client(timeout=60) as client:
            accepted_ms, job_ids = [], []
            started_all = time.perf_counter()
            for i in range(writes):
                body = {
                    "messages": [{"role": "user", "content": f"My locker number is {i}."}],
                    "user_id": "bench",
                    "infer": True,
                    "async_mode": True,
                }
                started = time.perf_counter()
                response = client.post("/memories", json=body)
                accepted_ms.append((time.perf_counter() - started) * 1000)
                job_ids.append(response.json()["job_id"])
            statuses = []
            for job_id in job_ids:
                while (job := client.get(f"/jobs/{job_id}").json())["status"] not in ("SUCCEEDED", "FAILED"):
                    time.sleep(0.2)
                statuses.append(job["status"])
            total_s = time.perf_counter() - started_all
    accepted_ms.sort()
    p95 = accepted_ms[max(0, int(len(accepted_ms) * 0.95) - 1)]
    print(
        f"{writes} async inferred writes, chat latency {chat_latency_ms} ms, 2 workers: acceptance p50 "
        f"{statistics.median(accepted_ms):.1f} ms, p95 {p95:.1f} ms, max {accepted_ms[-1]:.1f} ms; "
        f"all jobs done in {total_s:.1f} s; {statuses.count('SUCCEEDED')}/{writes} SUCCEEDED"
    )


if __name__ == "__main__":
    asyncio.run(main())
    acceptance()
