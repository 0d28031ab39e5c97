"""Remembers how many rows a search scope holds, so a repeated search skips the count query."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from cachetools import TTLCache


def scope_key(
    identifiers: Mapping[str, str], filters: Mapping[str, Any], restriction: Mapping[str, Any] | None = None
) -> bytes:
    """A fixed-size digest of the scope (and of the caller key's restriction): the filters' text is not kept."""
    canonical = json.dumps([identifiers, filters, restriction or {}], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).digest()


class ScopeSizes:
    """A bounded LRU of scope sizes that expire after `ttl_s` (0 disables it). The size only chooses between an
    exact scan and the HNSW index, so a stale one can cost speed for up to `ttl_s`, never a wrong answer.
    Every entry is a 32-byte digest and an int, so the entry bound is a byte bound too (about 200 bytes each)."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._entries: TTLCache[bytes, int] = TTLCache(maxsize=max_entries, ttl=ttl_s, timer=clock)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> int | None:
        self._entries.expire()  # expired entries leave now, not at the next put
        return self._entries.get(key)

    def put(self, key: bytes, size: int) -> None:
        if self.ttl_s > 0:
            self._entries[key] = size
