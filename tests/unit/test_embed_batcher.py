"""The embedding batcher: idle requests go out at once, concurrent ones share calls, failures reach every request."""

from __future__ import annotations

import asyncio

import pytest

from app.llm.batcher import EmbedBatcher


class RecordingEmbedder:
    """An embed call that answers one vector per text after `release` is set, and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self, model: str, texts: list[str]) -> list[list[float]]:
        self.calls.append((model, list(texts)))
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return [[float(len(text)), float(index)] for index, text in enumerate(texts)]


async def test_an_idle_batcher_sends_a_request_at_once() -> None:
    embedder = RecordingEmbedder()
    embedder.release.set()
    batcher = EmbedBatcher(embedder, max_in_flight=2, max_batch=8)

    assert await batcher.embed("m", ["abc"]) == [[3.0, 0.0]]
    assert embedder.calls == [("m", ["abc"])]


async def test_requests_waiting_for_a_slot_share_the_next_call_and_get_their_own_vectors() -> None:
    embedder = RecordingEmbedder()
    batcher = EmbedBatcher(embedder, max_in_flight=1, max_batch=8)

    first = asyncio.create_task(batcher.embed("m", ["a"]))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(batcher.embed("m", [text, text + "!"])) for text in ("bb", "ccc", "dddd")]
    await asyncio.sleep(0)
    embedder.release.set()

    assert await first == [[1.0, 0.0]]
    results = await asyncio.gather(*waiting)
    assert embedder.calls == [("m", ["a"]), ("m", ["bb", "bb!", "ccc", "ccc!", "dddd", "dddd!"])]
    assert results == [[[2.0, 0.0], [3.0, 1.0]], [[3.0, 2.0], [4.0, 3.0]], [[4.0, 4.0], [5.0, 5.0]]]


async def test_requests_arriving_together_are_spread_over_the_free_calls() -> None:
    embedder = RecordingEmbedder()
    embedder.release.set()
    batcher = EmbedBatcher(embedder, max_in_flight=4, max_batch=64)

    await asyncio.gather(*(batcher.embed("m", [str(n)]) for n in range(8)))

    assert sorted(embedder.calls) == [("m", ["0", "1"]), ("m", ["2", "3"]), ("m", ["4", "5"]), ("m", ["6", "7"])]


async def test_a_batch_holds_one_model_and_at_most_max_batch_texts() -> None:
    embedder = RecordingEmbedder()
    batcher = EmbedBatcher(embedder, max_in_flight=1, max_batch=3)

    blocker = asyncio.create_task(batcher.embed("m", ["x"]))
    await asyncio.sleep(0)
    tasks = [
        asyncio.create_task(batcher.embed(model, texts))
        for model, texts in (("m", ["1", "2"]), ("other", ["o"]), ("m", ["3"]), ("m", ["4", "5"]))
    ]
    await asyncio.sleep(0)
    embedder.release.set()
    await asyncio.gather(blocker, *tasks)

    assert embedder.calls == [("m", ["x"]), ("m", ["1", "2", "3"]), ("other", ["o"]), ("m", ["4", "5"])]


async def test_a_failed_call_fails_every_request_in_it_and_the_next_call_still_runs() -> None:
    embedder = RecordingEmbedder()
    batcher = EmbedBatcher(embedder, max_in_flight=1, max_batch=8)
    embedder.error = RuntimeError("ollama is down")

    blocker = asyncio.create_task(batcher.embed("m", ["x"]))
    await asyncio.sleep(0)
    batched = [asyncio.create_task(batcher.embed("m", [text])) for text in ("a", "b")]
    await asyncio.sleep(0)
    embedder.release.set()
    for task in (blocker, *batched):
        with pytest.raises(RuntimeError, match="ollama is down"):
            await task

    embedder.error = None
    assert await batcher.embed("m", ["ok"]) == [[2.0, 0.0]]


async def test_a_request_cancelled_while_waiting_is_left_out_of_the_call() -> None:
    embedder = RecordingEmbedder()
    batcher = EmbedBatcher(embedder, max_in_flight=1, max_batch=8)

    blocker = asyncio.create_task(batcher.embed("m", ["x"]))
    await asyncio.sleep(0)
    abandoned = asyncio.create_task(batcher.embed("m", ["gone"]))
    kept = asyncio.create_task(batcher.embed("m", ["kept"]))
    await asyncio.sleep(0)
    abandoned.cancel()
    await asyncio.sleep(0)
    embedder.release.set()

    assert await kept == [[4.0, 0.0]]
    await blocker
    assert embedder.calls == [("m", ["x"]), ("m", ["kept"])]
    assert batcher.waiting == 0


def test_limits_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EmbedBatcher(RecordingEmbedder(), max_in_flight=0, max_batch=8)
