"""Coalesces the statements of concurrent requests into one.

Requests released together (one batched embed call's writes, the repeated searches of many clients) reach their
statement together; sent one by one, each is a round trip and, for a write, a commit and its WAL flush. Waiting
together, they go out as one statement: a write's group is committed all or none (a failure fails every request of
the group with the same error, and no request is answered before the statement ends). At most `max_in_flight`
statements run at once; requests arriving meanwhile form the next group, so a request's statement is always sent
after it arrived: it reads everything committed before it was made."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Waiter(Generic[Item, Result]):
    items: Sequence[Item]
    future: asyncio.Future[list[Result]] = field(repr=False)


class StatementGroups(Generic[Item, Result]):
    """`run(items)` is one statement for the items of a whole group; it answers one result per item, in order."""

    def __init__(
        self, run: Callable[[list[Item]], Awaitable[Sequence[Result]]], *, max_in_flight: int, max_items: int
    ) -> None:
        if max_in_flight < 1 or max_items < 1:
            raise ValueError("max_in_flight and max_items must be at least 1")
        self._run_statement = run
        self.max_in_flight = max_in_flight
        self.max_items = max_items
        self._waiting: deque[_Waiter[Item, Result]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each statement's task ends
        self._dispatch_scheduled = False

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """The results for `items`, once their group's statement has ended."""
        waiter: _Waiter[Item, Result] = _Waiter(items, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        if not self._dispatch_scheduled:
            # On the loop's next turn: the requests released together are all waiting by then.
            self._dispatch_scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)
        return await waiter.future

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        while self._in_flight < self.max_in_flight and self._waiting:
            group = self._take_group()
            if not group:
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._run(group), name="statement-group")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take_group(self) -> list[_Waiter[Item, Result]]:
        """The oldest live requests, whole, while the group stays within `max_items` (a larger request goes alone)."""
        group: list[_Waiter[Item, Result]] = []
        size = 0
        while self._waiting:
            waiter = self._waiting[0]
            if waiter.future.done():  # cancelled while it waited: nothing of it is sent
                self._waiting.popleft()
                continue
            if group and size + len(waiter.items) > self.max_items:
                break
            group.append(self._waiting.popleft())
            size += len(waiter.items)
        return group

    async def _run(self, group: list[_Waiter[Item, Result]]) -> None:
        try:
            results = await self._run_statement([item for waiter in group for item in waiter.items])
            if len(results) != sum(len(waiter.items) for waiter in group):
                raise RuntimeError(f"a grouped statement answered {len(results)} results for its items")
        except Exception as error:  # noqa: BLE001 - handed to every request of the group, which raise it
            for waiter in group:
                if not waiter.future.done():
                    waiter.future.set_exception(error)
        except BaseException:
            for waiter in group:  # cancelled (shutdown): so are the requests waiting on this statement
                waiter.future.cancel()
            raise
        else:
            offset = 0
            for waiter in group:
                if not waiter.future.done():
                    waiter.future.set_result(list(results[offset : offset + len(waiter.items)]))
                offset += len(waiter.items)
        finally:
            self._in_flight -= 1
            self._dispatch()
