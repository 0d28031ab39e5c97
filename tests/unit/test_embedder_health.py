"""The embedder's health for /ready: recent outcomes are trusted, stale ones cost one probe however many ask."""

from __future__ import annotations

import asyncio

from app.errors import UpstreamError
from app.system.embedder_health import EmbedderHealth


class Probe:
    def __init__(self, error: str | None = None) -> None:
        self.calls = 0
        self.error = error

    async def __call__(self) -> None:
        self.calls += 1
        await asyncio.sleep(0.05)
        if self.error is not None:
            raise UpstreamError(self.error)


async def test_concurrent_checks_of_a_stale_outcome_share_one_probe():
    health = EmbedderHealth(max_age_s=60)
    probe = Probe()

    problems = await asyncio.gather(*(health.problem(probe) for _ in range(5)))

    assert problems == [None] * 5 and probe.calls == 1


async def test_a_recent_failure_is_reported_without_a_probe_until_it_is_stale():
    health = EmbedderHealth(max_age_s=0.1)
    probe = Probe()
    health.record("Ollama embed answered HTTP 500: boom")

    assert await health.problem(probe) == "embeddings are failing: Ollama embed answered HTTP 500: boom"
    assert probe.calls == 0

    await asyncio.sleep(0.15)
    assert await health.problem(probe) is None and probe.calls == 1


async def test_a_failing_probe_is_the_reason():
    health = EmbedderHealth(max_age_s=60)

    assert (
        await health.problem(Probe(error="Ollama embed timed out")) == "embeddings are failing: Ollama embed timed out"
    )
