"""Coalesces concurrent embedding requests into batched calls, with a bound on the calls in flight.

Ollama runs a few requests at a time and queues the rest; one batched /api/embed call costs it (and this process)
far less than many single ones, and a short client-side queue keeps the HTTP pool small."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

EmbedCall = Callable[[str, list[str]], Awaitable[list[list[float]]]]


@dataclass
class _Waiter:
    model: str
    texts: Sequence[str]
    future: asyncio.Future[list[list[float]]] = field(repr=False)


class EmbedBatcher:
    """`embed(model, texts)` answers the vectors for `texts`; requests waiting together share one call.

    With a free slot a request is sent on the loop's next turn (no added latency when idle); requests waiting
    together are spread over the free slots, and when none is free they wait for the next one and go out together,
    one model and at most `max_batch` texts per call. A failed call fails every request in it, with the same error."""

    def __init__(self, call: EmbedCall, *, max_in_flight: int, max_batch: int) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self._call = call
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self._waiting: deque[_Waiter] = deque()
        self._in_flight = 0
        self._dispatch_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while calls run

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        waiter = _Waiter(model, texts, loop.create_future())
        self._waiting.append(waiter)
        if not self._dispatch_scheduled:
            # On the loop's next turn: requests released together (one batch's replies) are all waiting by then
            # and get spread over the free calls instead of the first few taking them all.
            self._dispatch_scheduled = True
            loop.call_soon(self._dispatch)
        return await waiter.future

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        while self._in_flight < self.max_in_flight and self._waiting:
            free = self.max_in_flight - self._in_flight
            batch = self._take_batch(max_requests=math.ceil(len(self._waiting) / free))
            if not batch:
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._run(batch), name="embed-batch")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take_batch(self, max_requests: int) -> list[_Waiter]:
        """The oldest live request, then later ones for the same model while the batch has room."""
        batch: list[_Waiter] = []
        size = 0
        skipped: deque[_Waiter] = deque()
        while self._waiting:
            waiter = self._waiting.popleft()
            if waiter.future.done():  # its request was cancelled while it waited
                continue
            full = size + len(waiter.texts) > self.max_batch or len(batch) >= max_requests
            if batch and (waiter.model != batch[0].model or full):
                skipped.append(waiter)
                if waiter.model == batch[0].model:
                    break  # full; keep order for the rest
                continue
            batch.append(waiter)
            size += len(waiter.texts)
        skipped.extend(self._waiting)
        self._waiting = skipped
        return batch

    async def _run(self, batch: list[_Waiter]) -> None:
        try:
            texts = [text for waiter in batch for text in waiter.texts]
            vectors = await self._call(batch[0].model, texts)
            offset = 0
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_result(vectors[offset : offset + len(waiter.texts)])
                offset += len(waiter.texts)
        except Exception as error:  # noqa: BLE001 - handed to every request in the batch, which raise it
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(error)
        except BaseException:  # cancelled (shutdown): so are the requests waiting on this call
            for waiter in batch:
                waiter.future.cancel()
            raise
        finally:
            self._in_flight -= 1
            self._dispatch()
