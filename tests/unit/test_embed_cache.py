"""The query-embedding LRU: bounded, least recently used evicted first, keyed by model and text."""

from app.llm.embed_cache import EmbedCache


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
