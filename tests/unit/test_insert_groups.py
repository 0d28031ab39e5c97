"""InsertGroups: plain writes waiting together go out as one statement, all committed or all failed together."""

from __future__ import annotations

import asyncio

import pytest

from app.writes.insert_groups import InsertGroups


class Statements:
    """Records each statement's rows; `release` lets the running statements finish (or fail)."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.release = asyncio.Event()
        self.failure: Exception | None = None

    async def insert(self, rows: list[str]) -> None:
        self.sent.append(rows)
        await self.release.wait()
        if self.failure is not None:
            raise self.failure


async def test_requests_waiting_together_share_one_statement_and_return_after_it() -> None:
    statements = Statements()
    groups = InsertGroups(statements.insert, max_in_flight=1, max_rows=10)
    first = asyncio.create_task(groups.insert(["a"]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(groups.insert([name])) for name in ("b", "c")]
    await asyncio.sleep(0)
    assert statements.sent == [["a"]] and not first.done()  # one statement in flight; b and c wait for it

    statements.release.set()
    await asyncio.gather(first, *waiting)
    assert statements.sent == [["a"], ["b", "c"]]


async def test_a_failed_statement_fails_every_request_of_its_group_with_its_error() -> None:
    statements = Statements()
    statements.failure = RuntimeError("storage unavailable")
    statements.release.set()
    groups = InsertGroups(statements.insert, max_in_flight=2, max_rows=10)
    results = await asyncio.gather(groups.insert(["a"]), groups.insert(["b", "c"]), return_exceptions=True)
    assert statements.sent == [["a", "b", "c"]]
    assert [str(result) for result in results] == ["storage unavailable", "storage unavailable"]


async def test_groups_keep_requests_whole_within_max_rows_and_skip_cancelled_ones() -> None:
    statements = Statements()
    statements.release.set()
    groups = InsertGroups(statements.insert, max_in_flight=1, max_rows=3)
    tasks = [asyncio.create_task(groups.insert(rows)) for rows in (["a", "b"], ["c", "d"], ["e"], ["big"] * 5)]
    cancelled = asyncio.create_task(groups.insert(["gone"]))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(*tasks)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert statements.sent == [["a", "b"], ["c", "d", "e"], ["big"] * 5]
