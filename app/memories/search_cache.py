"""Finished search results, reused while nothing they were computed from has changed: a repeated search then costs
one small statement instead of an embed call and the hybrid statement. Bounded by entries and by bytes.

An entry is valid only under the token it was computed under: the versions of the scopes it names (bumped by
Postgres triggers in every writer's transaction, migration 0016), the day the expiry filter compares with, and the
database server's start time (memories/queries.sql scope_versions says why each)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from cachetools import LRUCache

from app.json_codec import canonical_dumps

# The row TRUNCATE bumps (reset): it changes every scope, so every token holds it.
EVERY_SCOPE = ("*", "*")
# As the query-embedding cache: room for the default 1,024 entries of ten memories each, with a cap on a few
# huge ones (top_k 1,000 of long texts).
MAX_BYTES = 64 * 1024 * 1024
_KEY_BYTES = sys.getsizeof(b"\0" * hashlib.sha256().digest_size)
# Python holds a small memory as a dict about four times its JSON size (fewer for long texts): an estimate that
# keeps the byte bound honest without walking every object.
_PYTHON_PER_JSON_BYTE = 4


@dataclass(frozen=True)
class ScopeVersions:
    """What an entry is valid under, as the scope_versions query reads it."""

    day: str
    server_started: datetime
    versions: tuple[int, ...]


@dataclass(frozen=True)
class CachedSearch:
    """A search's finished items and what its telemetry event reports. Entries are shared between requests, so the
    items are handed out as a new list each time and never changed in place."""

    token: ScopeVersions | None  # None: computed without the cache (not stored)
    items: tuple[dict[str, Any], ...]
    exact: bool
    keyword: bool
    entity: bool
    # Response bodies rendered from these items, by answer shape: serialised once, sent on every hit.
    renderings: dict[str, bytes] = field(default_factory=dict, compare=False)

    @cached_property
    def size(self) -> int:
        """Its bytes, estimated when it is stored (a search that is not stored never encodes its items)."""
        return _KEY_BYTES + _PYTHON_PER_JSON_BYTE * len(canonical_dumps(self.items))


def scope_rows(identifiers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The scope_versions rows a search over these identifiers depends on: every row it returns carries each of
    them, so a change to such a row bumps all of them; and the row TRUNCATE bumps."""
    return [*sorted(identifiers.items()), EVERY_SCOPE]


def search_key(model: str, restriction: Mapping[str, Any], identifiers: Mapping[str, str], **options: Any) -> bytes:
    """A fixed-size digest of everything a search's result depends on besides the data: the caller key's
    restriction (its only part in the WHERE), the scope, the filters and options, and the embedding model."""
    return hashlib.sha256(canonical_dumps([model, restriction, identifiers, options])).digest()


class SearchCache:
    """`max_entries` 0 disables it."""

    def __init__(self, max_entries: int, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self._entries: LRUCache[bytes, CachedSearch] = LRUCache(maxsize=max_bytes, getsizeof=lambda e: e.size)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    @property
    def bytes_used(self) -> int:
        return int(self._entries.currsize)

    def get(self, key: bytes, token: ScopeVersions) -> CachedSearch | None:
        """The entry, if it was computed under `token`; a stale one is dropped."""
        cached = self._entries.get(key)
        if cached is None or cached.token == token:
            return cached
        del self._entries[key]
        return None

    def put(self, key: bytes, cached: CachedSearch) -> None:
        if not self.enabled or cached.size > self._entries.maxsize:
            return
        self._entries[key] = cached  # evicts the least recently used past the byte budget
        while len(self._entries) > self.max_entries:
            self._entries.popitem()
