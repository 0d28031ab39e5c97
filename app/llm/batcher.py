"""Coalesces concurrent embedding requests into batched calls, with a bound on the calls in flight.

Ollama runs a few requests at a time and queues the rest; one batched /api/embed call costs it (and this process)
far less than many single ones, and a short client-side queue keeps the HTTP pool small.

A call that hangs holds only the requests it carries: after `stall_s` it stops holding a slot, so later requests
go out on calls of their own; and once a later call succeeds (Ollama answers again), or when `max_calls` are open,
the stalled calls are given up and their requests sent again, each within its own deadline (the caller's)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from app.llm.embedding import Embedding

EmbedCall = Callable[[str, list[str]], Awaitable[list[Embedding]]]


@dataclass
class _Waiter:
    model: str
    texts: Sequence[str]
    future: asyncio.Future[list[Embedding]] = field(repr=False)


@dataclass(eq=False)
class _Call:
    batch: list[_Waiter]
    started: float
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    stalled: bool = False
    given_up: bool = False


class EmbedBatcher:
    """`embed(model, texts)` answers the vectors for `texts`; requests waiting together share one call.

    With a free slot a request is sent on the loop's next turn (no added latency when idle); requests waiting
    together are spread over the free slots, and when none is free they wait for the next one and go out together,
    one model and at most `max_batch` texts per call. A failed call fails every request in it, with the same error.
    Without `stall_s` a call holds its slot until it ends."""

    def __init__(
        self,
        call: EmbedCall,
        *,
        max_in_flight: int,
        max_batch: int,
        stall_s: float | None = None,
        max_calls: int | None = None,
    ) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self._call = call
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self.stall_s = stall_s
        self.max_calls = max(max_calls or 2 * max_in_flight, max_in_flight)
        self._waiting: deque[_Waiter] = deque()
        self._calls: list[_Call] = []  # open calls, oldest first
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each call's task ends
        self._dispatch_scheduled = False
        self.given_up = 0  # stalled calls given up (their requests sent again), for tests and logs
        self._answered_since = float("-inf")  # when the latest call that succeeded was sent

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def _in_flight(self) -> int:
        return sum(not call.stalled for call in self._calls)

    async def embed(self, model: str, texts: Sequence[str]) -> list[Embedding]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        waiter = _Waiter(model, texts, loop.create_future())
        self._waiting.append(waiter)
        self._schedule_dispatch()
        return await waiter.future

    def _schedule_dispatch(self) -> None:
        if not self._dispatch_scheduled:
            # On the loop's next turn: requests released together (one batch's replies) are all waiting by then
            # and get spread over the free calls instead of the first few taking them all.
            self._dispatch_scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        while self._in_flight < self.max_in_flight and self._waiting:
            if len(self._calls) >= self.max_calls and not self._give_up_oldest_stalled():
                return
            free = self.max_in_flight - self._in_flight
            batch = self._take_batch(max_requests=math.ceil(len(self._waiting) / free))
            if not batch:
                continue
            call = _Call(batch, time.monotonic())
            self._calls.append(call)
            call.task = asyncio.create_task(self._run(call), name="embed-batch")
            self._tasks.add(call.task)
            call.task.add_done_callback(self._tasks.discard)
            if self.stall_s is not None:
                asyncio.get_running_loop().call_later(self.stall_s, self._stall, call)

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

    def _stall(self, call: _Call) -> None:
        """The call outlived `stall_s`: it keeps its requests but no longer its slot; if a call sent after it has
        already been answered, it is hung, not slow, and is given up."""
        if call in self._calls and not call.stalled:
            call.stalled = True
            if self._answered_since > call.started:
                self._give_up(call)
            self._schedule_dispatch()

    def _give_up_oldest_stalled(self) -> bool:
        stalled = next((call for call in self._calls if call.stalled and not call.given_up), None)
        if stalled is None:
            return False
        self._give_up(stalled)
        return True

    def _give_up(self, call: _Call) -> None:
        """Cancels a stalled call and puts its live requests back at the head of the queue, in order."""
        call.given_up = True
        self.given_up += 1
        self._calls.remove(call)
        self._waiting.extendleft(reversed([waiter for waiter in call.batch if not waiter.future.done()]))
        if call.task is not None:
            call.task.cancel()
        self._schedule_dispatch()

    async def _run(self, call: _Call) -> None:
        batch = call.batch
        try:
            texts = [text for waiter in batch for text in waiter.texts]
            vectors = await self._call(batch[0].model, texts)
            offset = 0
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_result(vectors[offset : offset + len(waiter.texts)])
                offset += len(waiter.texts)
            # Ollama answers: the calls stalled since before this one are hung, not slow; send theirs again.
            self._answered_since = max(self._answered_since, call.started)
            for older in [c for c in self._calls if c.stalled and c.started < call.started]:
                self._give_up(older)
        except Exception as error:  # noqa: BLE001 - handed to every request in the batch, which raise it
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(error)
        except BaseException:
            if not call.given_up:  # cancelled (shutdown): so are the requests waiting on this call
                for waiter in batch:
                    waiter.future.cancel()
                raise
        finally:
            if call in self._calls:
                self._calls.remove(call)
            self._dispatch()
