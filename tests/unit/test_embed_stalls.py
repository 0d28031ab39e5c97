"""A hung embedding call holds only the requests it carries (issue 22, item 3): past `stall_s` it frees its slot, a
later success (or the open-call cap) gives it up and its requests go out again."""

from __future__ import annotations

import asyncio

from app.llm.batcher import EmbedBatcher


class HangingEmbedder:
    """Hangs every call while `hung` is set; answers one vector per text otherwise. Counts open calls."""

    def __init__(self) -> None:
        self.hung = True
        self.calls = 0
        self.open = 0
        self.most_open = 0

    async def __call__(self, model: str, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            if self.hung:
                await asyncio.Event().wait()  # a call that started hung never answers; the batcher gives it up
            return [[float(len(text))] for text in texts]
        finally:
            self.open -= 1


async def test_a_request_after_a_hung_call_goes_out_on_its_own_call() -> None:
    calls: list[list[str]] = []

    async def first_hangs(model: str, texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        if texts == ["hung"]:
            await asyncio.sleep(3600)
        return [[1.0] for _ in texts]

    batcher = EmbedBatcher(first_hangs, max_in_flight=1, max_batch=8, stall_s=0.05)
    hung = asyncio.create_task(batcher.embed("m", ["hung"]))
    await asyncio.sleep(0.01)

    assert await asyncio.wait_for(batcher.embed("m", ["later"]), timeout=1) == [[1.0]]
    assert calls[:2] == [["hung"], ["later"]]
    hung.cancel()


async def test_once_a_later_call_succeeds_the_hung_calls_requests_are_sent_again() -> None:
    embedder = HangingEmbedder()
    batcher = EmbedBatcher(embedder, max_in_flight=1, max_batch=1, stall_s=0.05)
    first = asyncio.create_task(batcher.embed("m", ["abc"]))
    await asyncio.sleep(0.2)  # stalled; with max_batch 1 the next request needs a call of its own

    embedder.hung = False  # Ollama answers again; the first call stays hung on its old connection
    assert await asyncio.wait_for(batcher.embed("m", ["de"]), timeout=1) == [[2.0]]

    assert await asyncio.wait_for(first, timeout=1) == [[3.0]]
    assert batcher.given_up >= 1


async def test_open_calls_never_pass_the_cap_while_everything_hangs() -> None:
    embedder = HangingEmbedder()
    batcher = EmbedBatcher(embedder, max_in_flight=2, max_batch=1, stall_s=0.02, max_calls=3)
    requests = [asyncio.create_task(batcher.embed("m", [f"text {i}"])) for i in range(10)]
    await asyncio.sleep(0.5)

    assert embedder.most_open <= 3
    assert embedder.calls > 3  # the oldest stalled calls were given up for newer ones

    embedder.hung = False
    answers = await asyncio.wait_for(asyncio.gather(*requests), timeout=2)
    assert answers == [[[float(len(f"text {i}"))]] for i in range(10)]


async def test_a_slow_call_that_answers_keeps_its_requests() -> None:
    async def slow(model: str, texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0.2)
        return [[float(len(text))] for text in texts]

    batcher = EmbedBatcher(slow, max_in_flight=1, max_batch=8, stall_s=0.05)
    assert await batcher.embed("m", ["abcd"]) == [[4.0]]
    assert batcher.given_up == 0
