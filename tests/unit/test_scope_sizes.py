"""Scope sizes are remembered per scope for a while, bounded in number, and not at all with a zero TTL."""

from __future__ import annotations

from app.memories.scope_sizes import ScopeSizes, scope_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_size_is_remembered_until_the_ttl_runs_out() -> None:
    clock = Clock()
    sizes = ScopeSizes(ttl_s=30, clock=clock)
    sizes.put("alice", 120)

    clock.now += 29.9
    assert sizes.get("alice") == 120
    clock.now += 0.1
    assert sizes.get("alice") is None
    assert len(sizes) == 0


def test_the_least_recently_used_scope_goes_first_when_full() -> None:
    sizes = ScopeSizes(ttl_s=30, max_entries=2, clock=Clock())
    sizes.put("a", 1)
    sizes.put("b", 2)
    assert sizes.get("a") == 1
    sizes.put("c", 3)

    assert sizes.get("b") is None
    assert (sizes.get("a"), sizes.get("c")) == (1, 3)


def test_a_zero_ttl_remembers_nothing() -> None:
    sizes = ScopeSizes(ttl_s=0, clock=Clock())
    sizes.put("a", 1)
    assert sizes.get("a") is None


def test_the_key_is_the_same_for_the_same_scope_in_any_key_order() -> None:
    first = scope_key({"user_id": "u", "agent_id": "a"}, {"topic": {"in": ["x"]}})
    second = scope_key({"agent_id": "a", "user_id": "u"}, {"topic": {"in": ["x"]}})
    assert first == second
    assert first != scope_key({"user_id": "u"}, {"topic": {"in": ["x"]}})
