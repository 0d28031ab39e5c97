"""The backlog keeps events oldest-first across memory and spill file, and counts every drop."""

from __future__ import annotations

from app.telemetry.backlog import Backlog, Event
from app.telemetry.breaker import BreakerState, CircuitBreaker


def _event(n: int) -> Event:
    return Event(f"{n:032x}", "test", "2026-01-01T00:00:00+00:00", {"n": n})


def test_spilled_events_come_back_before_newer_ones_in_order(tmp_path):
    drops: list[int] = []
    backlog = Backlog(4, tmp_path / "spill.sqlite3", 100, drops.append)
    for n in range(8):
        backlog.append(_event(n))
    backlog.write_spill(backlog.take_overflow())

    order = []
    while backlog.spilled:
        batch = backlog.read_spilled(2)
        order += [e.attributes["n"] for e in batch]
        backlog.remove_spilled(len(batch))
    order += [e.attributes["n"] for e in backlog.memory_batch(10)]

    assert order == list(range(8)) and drops == []


def test_a_full_backlog_drops_the_oldest_and_counts_them(tmp_path):
    drops: list[int] = []
    backlog = Backlog(2, tmp_path / "spill.sqlite3", 3, drops.append)
    for n in range(5):
        backlog.append(_event(n))  # memory holds 2 x 2 until the flusher spills: event 0 is dropped
    backlog.write_spill(backlog.take_overflow())  # events 1, 2 to the file
    for n in range(5, 9):
        backlog.append(_event(n))  # memory again past 2 x 2: events 3, 4 are dropped
    backlog.write_spill(backlog.take_overflow())  # 5, 6 to the file: 4 lines > 3, so event 1 goes

    assert sum(drops) == 4
    assert [e.attributes["n"] for e in backlog.read_spilled(10)] == [2, 5, 6]
    assert [e.attributes["n"] for e in backlog.memory_batch(10)] == [7, 8]


def test_the_spill_file_survives_a_restart(tmp_path):
    first = Backlog(2, tmp_path / "spill.sqlite3", 10, lambda n: None)
    for n in range(4):
        first.append(_event(n))
    first.write_spill(first.take_overflow())

    again = Backlog(2, tmp_path / "spill.sqlite3", 10, lambda n: None)

    assert again.spilled == 2 and [e.attributes["n"] for e in again.read_spilled(5)] == [0, 1]
    first.close()
    again.close()


def test_the_breaker_opens_after_n_failures_and_probes_after_the_cooldown():
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=0.0)
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN

    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_an_open_breaker_refuses_until_the_cooldown():
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=60)
    breaker.record_failure()

    assert not breaker.allow()


def test_a_backlog_that_never_spills_leaves_no_file(tmp_path):
    backlog = Backlog(4, tmp_path / "spill.sqlite3", 10, lambda n: None)
    for n in range(4):
        backlog.append(_event(n))

    assert backlog.read_spilled(10) == [] and len(backlog) == 4
    assert not (tmp_path / "spill.sqlite3").exists()
