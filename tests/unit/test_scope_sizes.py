"""Scope sizes are remembered per scope for a while, bounded in number, keyed by a fixed-size digest, and not at all
with a zero TTL."""

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
    sizes.put(b"alice", 120)

    clock.now += 29.9
    assert sizes.get(b"alice") == 120
    clock.now += 0.1
    assert sizes.get(b"alice") is None
    assert len(sizes) == 0


def test_the_least_recently_used_scope_goes_first_when_full() -> None:
    sizes = ScopeSizes(ttl_s=30, max_entries=2, clock=Clock())
    sizes.put(b"a", 1)
    sizes.put(b"b", 2)
    assert sizes.get(b"a") == 1
    sizes.put(b"c", 3)

    assert sizes.get(b"b") is None
    assert (sizes.get(b"a"), sizes.get(b"c")) == (1, 3)


def test_a_zero_ttl_remembers_nothing() -> None:
    sizes = ScopeSizes(ttl_s=0, clock=Clock())
    sizes.put(b"a", 1)
    assert sizes.get(b"a") is None


def test_the_key_is_the_same_for_the_same_scope_in_any_key_order() -> None:
    first = scope_key({"user_id": "u", "agent_id": "a"}, {"topic": {"in": ["x"]}})
    second = scope_key({"agent_id": "a", "user_id": "u"}, {"topic": {"in": ["x"]}})
    assert first == second
    assert first != scope_key({"user_id": "u"}, {"topic": {"in": ["x"]}})


def test_the_key_is_a_digest_however_long_the_filters_are() -> None:
    key = scope_key({"user_id": "u"}, {"topic": "x" * 2_000_000})

    assert len(key) == 32
