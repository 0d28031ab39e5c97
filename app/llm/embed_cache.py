"""An LRU cache of query embeddings keyed by (model, text), so a repeated search skips Ollama."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable


class EmbedCache:
    """Bounded LRU; size 0 disables it. Only search uses it: writes always embed fresh."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, model: str, text: str) -> list[float] | None:
        vector = self._entries.get((model, text))
        if vector is None:
            self.misses += 1
            return None
        self._entries.move_to_end((model, text))
        self.hits += 1
        return vector

    def put(self, model: str, text: str, vector: list[float]) -> None:
        if self.max_size <= 0:
            return
        self._entries[(model, text)] = vector
        self._entries.move_to_end((model, text))
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    async def get_or_embed(self, model: str, text: str, embed: Callable[[], Awaitable[list[float]]]) -> list[float]:
        cached = self.get(model, text)
        if cached is not None:
            return cached
        vector = await embed()
        self.put(model, text, vector)
        return vector
