"""Remembers how many rows a search scope holds, so a repeated search skips the count query."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any


def scope_key(identifiers: Mapping[str, str], filters: Mapping[str, Any]) -> str:
    return json.dumps([identifiers, filters], sort_keys=True, default=str)


class ScopeSizes:
    """A bounded LRU of scope sizes that expire after `ttl_s` (0 disables it). The size only chooses between an
    exact scan and the HNSW index, so a stale one can cost speed for up to `ttl_s`, never a wrong answer."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> int | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        counted_at, size = entry
        if self._clock() - counted_at >= self.ttl_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return size

    def put(self, key: str, size: int) -> None:
        if self.ttl_s <= 0:
            return
        self._entries[key] = (self._clock(), size)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
