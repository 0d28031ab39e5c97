"""The query-embedding LRU: bounded by entries and by bytes, least recently used evicted first, keyed by a digest
of model and text."""

import sys

from app.llm.embed_cache import EmbedCache, entry_bytes


def test_least_recently_used_entry_is_evicted():
    cache = EmbedCache(2)
    cache.put("m", "a", [1.0])
    cache.put("m", "b", [2.0])
    assert cache.get("m", "a") == [1.0]  # "a" is now the most recent
    cache.put("m", "c", [3.0])
    assert cache.get("m", "b") is None
    assert cache.get("m", "a") == [1.0]
    assert len(cache) == 2


def test_the_model_is_part_of_the_key():
    cache = EmbedCache(4)
    cache.put("model-a", "text", [1.0])
    assert cache.get("model-b", "text") is None


def test_size_zero_stores_nothing():
    cache = EmbedCache(0)
    cache.put("m", "a", [1.0])
    assert len(cache) == 0


def test_the_byte_budget_evicts_before_the_entry_count_does():
    vector = [0.5] * 768
    cache = EmbedCache(1_000, max_bytes=3 * entry_bytes(vector))

    for text in "abcde":
        cache.put("m", text, list(vector))

    assert len(cache) == 3
    assert cache.bytes_used <= 3 * entry_bytes(vector)
    assert cache.get("m", "a") is None and cache.get("m", "e") == vector


def test_a_vector_larger_than_the_budget_is_not_cached():
    cache = EmbedCache(10, max_bytes=1_000)
    cache.put("m", "a", [0.0] * 1_000)
    assert len(cache) == 0


def test_a_long_query_costs_the_cache_a_digest_not_its_text():
    cache = EmbedCache(10)
    query = "q" * 2_000_000

    cache.put("m", query, [1.0])

    assert cache.bytes_used == entry_bytes([1.0])
    assert cache.bytes_used < sys.getsizeof(query) // 1000
    assert cache.get("m", query) == [1.0]
