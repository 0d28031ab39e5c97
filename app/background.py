"""A periodic background task: one step every interval until stopped; a failing step is logged, not fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

logger = logging.getLogger(__name__)


class PeriodicTask:
    """`wait_first` sleeps one interval before the first step: a lease renewer has nothing to renew at once.
    Also usable as `async with`, for work that runs only while a block does (renewing a lease)."""

    def __init__(
        self, name: str, interval_s: float, step: Callable[[], Awaitable[object]], *, wait_first: bool = False
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.step = step
        self.wait_first = wait_first
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> PeriodicTask:
        self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        if self.wait_first:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self.step()
            except Exception:
                logger.exception("background step failed", extra={"task": self.name})
            await asyncio.sleep(self.interval_s)
