"""Search results are served only under the token they were made under (scope versions, the expiry day, the
database server's start), bounded by entries and bytes, and keyed by everything that changes an answer."""

from __future__ import annotations

from datetime import UTC, datetime

from app.memories.search_cache import (
    EVERY_SCOPE,
    CachedSearch,
    ScopeVersions,
    SearchCache,
    scope_rows,
    search_key,
)

STARTED = datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = ScopeVersions("2026-12-07", STARTED, (3, 1))


def _entry(text: str = "tea") -> CachedSearch:
    return CachedSearch(TOKEN, ({"id": "1", "memory": text},), exact=True, keyword=False, entity=False)


def test_an_entry_is_served_under_its_own_token_only() -> None:
    cache = SearchCache(10)
    cache.put(b"k", _entry())

    assert cache.get(b"k", TOKEN) is not None
    assert cache.get(b"k", ScopeVersions("2026-12-07", STARTED, (3, 2))) is None
    assert len(cache) == 0  # a stale entry leaves at once


def test_an_entry_of_another_day_or_another_database_start_is_stale() -> None:
    cache = SearchCache(10)
    for other in (ScopeVersions("2026-12-08", STARTED, (3, 1)), ScopeVersions("2026-12-07", datetime.now(UTC), (3, 1))):
        cache.put(b"k", _entry())
        assert cache.get(b"k", other) is None


def test_the_least_recently_used_entry_goes_first_when_full() -> None:
    cache = SearchCache(2)
    cache.put(b"a", _entry())
    cache.put(b"b", _entry())
    cache.get(b"a", TOKEN)
    cache.put(b"c", _entry())

    assert cache.get(b"b", TOKEN) is None
    assert cache.get(b"a", TOKEN) is not None and cache.get(b"c", TOKEN) is not None


def test_the_byte_budget_bounds_the_entries() -> None:
    small = _entry()
    cache = SearchCache(1000, max_bytes=3 * small.size)
    for key in (b"a", b"b", b"c", b"d"):
        cache.put(key, _entry())

    assert len(cache) == 3 and cache.bytes_used <= 3 * small.size
    cache.put(b"huge", _entry(text="x" * 100_000))
    assert cache.get(b"huge", TOKEN) is None


def test_size_zero_stores_nothing() -> None:
    cache = SearchCache(0)
    cache.put(b"k", _entry())
    assert not cache.enabled and len(cache) == 0


def test_a_scope_depends_on_each_of_its_identifiers_and_on_reset() -> None:
    assert scope_rows({"user_id": "u", "agent_id": "a"}) == [("agent_id", "a"), ("user_id", "u"), EVERY_SCOPE]


def test_the_key_changes_with_every_input_that_changes_the_answer() -> None:
    base = {"query": "tea", "filters": {}, "top_k": 10, "threshold": 0.1, "explain": False, "show_expired": False}
    key = search_key("model", {}, {"user_id": "u"}, **base)

    changed = [
        search_key("other-model", {}, {"user_id": "u"}, **base),
        search_key("model", {"user_id": (["u"], [])}, {"user_id": "u"}, **base),
        search_key("model", {}, {"user_id": "v"}, **base),
        search_key("model", {}, {"user_id": "u", "agent_id": "a"}, **base),
    ] + [
        search_key("model", {}, {"user_id": "u"}, **(base | {name: value}))
        for name, value in {
            "query": "coffee",
            "filters": {"kind": "x"},
            "top_k": 5,
            "threshold": 0.2,
            "explain": True,
            "show_expired": True,
        }.items()
    ]

    assert key not in changed and len(set(changed)) == len(changed)
    assert search_key("model", {}, {"user_id": "u"}, **dict(reversed(base.items()))) == key


def test_a_filter_with_an_integer_past_64_bits_has_a_key_of_its_own() -> None:
    def key(value: int) -> bytes:
        return search_key("model", {}, {"user_id": "u"}, query="tea", filters={"n": value})

    assert key(2**70) == key(2**70) and key(2**70) != key(2**70 + 1) != key(1)
