"""StatementGroups: requests waiting together go out as one statement, each answered its own results, all failed
together."""

from __future__ import annotations

import asyncio

import pytest

from app.db.statement_groups import StatementGroups


class Statements:
    """Records each statement's rows; `release` lets the running statements finish (or fail)."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.release = asyncio.Event()
        self.failure: Exception | None = None

    async def run(self, rows: list[str]) -> list[str]:
        self.sent.append(rows)
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        return [row.upper() for row in rows]


async def test_requests_waiting_together_share_one_statement_and_return_after_it() -> None:
    statements = Statements()
    groups = StatementGroups(statements.run, max_in_flight=1, max_items=10)
    first = asyncio.create_task(groups.submit(["a"]))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(groups.submit([name])) for name in ("b", "c")]
    await asyncio.sleep(0)
    assert statements.sent == [["a"]] and not first.done()  # one statement in flight; b and c wait for it

    statements.release.set()
    assert await asyncio.gather(first, *waiting) == [["A"], ["B"], ["C"]]  # each its own items' results
    assert statements.sent == [["a"], ["b", "c"]]


async def test_a_failed_statement_fails_every_request_of_its_group_with_its_error() -> None:
    statements = Statements()
    statements.failure = RuntimeError("storage unavailable")
    statements.release.set()
    groups = StatementGroups(statements.run, max_in_flight=2, max_items=10)
    results = await asyncio.gather(groups.submit(["a"]), groups.submit(["b", "c"]), return_exceptions=True)
    assert statements.sent == [["a", "b", "c"]]
    assert [str(result) for result in results] == ["storage unavailable", "storage unavailable"]


async def test_groups_keep_requests_whole_within_max_items_and_skip_cancelled_ones() -> None:
    statements = Statements()
    statements.release.set()
    groups = StatementGroups(statements.run, max_in_flight=1, max_items=3)
    tasks = [asyncio.create_task(groups.submit(rows)) for rows in (["a", "b"], ["c", "d"], ["e"], ["big"] * 5)]
    cancelled = asyncio.create_task(groups.submit(["gone"]))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(*tasks)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert statements.sent == [["a", "b"], ["c", "d", "e"], ["big"] * 5]


async def test_a_statement_answering_the_wrong_number_of_results_fails_its_group() -> None:
    async def short(items: list[str]) -> list[str]:
        return items[:1]

    groups = StatementGroups(short, max_in_flight=1, max_items=10)
    results = await asyncio.gather(groups.submit(["a"]), groups.submit(["b"]), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
