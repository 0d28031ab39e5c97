"""Coalesces the inserts of concurrent plain writes into one statement.

The requests that one batched embed call releases reach their insert together; sent one by one, each is a round
trip, a commit and its WAL flush. Waiting together, they go out as one autocommitted statement: one commit for all
of them, all or none of them stored (a failure fails every request of the group with the same error, and no request
is answered before its rows are committed). At most `max_in_flight` statements run at once; requests arriving
meanwhile form the next group."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Row = TypeVar("Row")


@dataclass
class _Waiter(Generic[Row]):
    rows: Sequence[Row]
    future: asyncio.Future[None] = field(repr=False)


class InsertGroups(Generic[Row]):
    def __init__(self, insert: Callable[[list[Row]], Awaitable[None]], *, max_in_flight: int, max_rows: int) -> None:
        if max_in_flight < 1 or max_rows < 1:
            raise ValueError("max_in_flight and max_rows must be at least 1")
        self._insert = insert
        self.max_in_flight = max_in_flight
        self.max_rows = max_rows
        self._waiting: deque[_Waiter[Row]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each statement's task ends
        self._dispatch_scheduled = False

    async def insert(self, rows: Sequence[Row]) -> None:
        """Returns once `rows` are committed (with the rest of their group)."""
        waiter = _Waiter(rows, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        if not self._dispatch_scheduled:
            # On the loop's next turn: the requests one embed answer released are all waiting by then.
            self._dispatch_scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)
        await waiter.future

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        while self._in_flight < self.max_in_flight and self._waiting:
            group = self._take_group()
            if not group:
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._run(group), name="insert-group")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take_group(self) -> list[_Waiter[Row]]:
        """The oldest live requests, whole, while the group stays within `max_rows` (a larger request goes alone)."""
        group: list[_Waiter[Row]] = []
        size = 0
        while self._waiting:
            waiter = self._waiting[0]
            if waiter.future.done():  # cancelled while it waited: nothing of it is sent
                self._waiting.popleft()
                continue
            if group and size + len(waiter.rows) > self.max_rows:
                break
            group.append(self._waiting.popleft())
            size += len(waiter.rows)
        return group

    async def _run(self, group: list[_Waiter[Row]]) -> None:
        try:
            await self._insert([row for waiter in group for row in waiter.rows])
        except Exception as error:  # noqa: BLE001 - handed to every request of the group, which raise it
            for waiter in group:
                if not waiter.future.done():
                    waiter.future.set_exception(error)
        except BaseException:
            for waiter in group:  # cancelled (shutdown): so are the requests waiting on this statement
                waiter.future.cancel()
            raise
        else:
            for waiter in group:
                if not waiter.future.done():
                    waiter.future.set_result(None)
        finally:
            self._in_flight -= 1
            self._dispatch()
