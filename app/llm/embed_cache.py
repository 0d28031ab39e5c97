"""An LRU cache of query embeddings, so a repeated search skips Ollama; bounded by entries and by bytes."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Awaitable, Callable

from cachetools import LRUCache

from app.llm.embedding import Embedding

# The byte budget holds the default 1,024 entries of a 768-dimension model (about 3 kB each as float32) many times
# over, and caps a larger model's entries before they cost more memory than that.
MAX_BYTES = 64 * 1024 * 1024
_KEY_BYTES = sys.getsizeof(b"\0" * hashlib.sha256().digest_size)


def cache_key(model: str, text: str) -> bytes:
    """A fixed-size digest, so a long query costs the cache 32 bytes, not its text."""
    return hashlib.sha256(f"{model}\0{text}".encode()).digest()


def entry_bytes(vector: Embedding) -> int:
    return _KEY_BYTES + sys.getsizeof(vector)


class EmbedCache:
    """`max_entries` 0 disables it. Only search uses it: writes always embed fresh."""

    def __init__(self, max_entries: int, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self._entries: LRUCache[bytes, Embedding] = LRUCache(maxsize=max_bytes, getsizeof=entry_bytes)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return int(self._entries.currsize)

    def get(self, model: str, text: str) -> Embedding | None:
        return self._entries.get(cache_key(model, text))

    def put(self, model: str, text: str, vector: Embedding) -> None:
        if self.max_entries <= 0 or entry_bytes(vector) > self._entries.maxsize:
            return
        self._entries[cache_key(model, text)] = vector  # evicts the least recently used past the byte budget
        while len(self._entries) > self.max_entries:
            self._entries.popitem()

    async def get_or_embed(self, model: str, text: str, embed: Callable[[], Awaitable[Embedding]]) -> Embedding:
        cached = self.get(model, text)
        if cached is not None:
            return cached
        vector = await embed()
        self.put(model, text, vector)
        return vector
