"""Response shapes of scopes (mem0's entity list: `type`, `id`, `name`, memory count)."""

from __future__ import annotations

from pydantic import BaseModel


class ScopeItem(BaseModel):
    id: str
    name: str
    type: str
    total_memories: int
    created_at: str | None
    updated_at: str | None


class ScopePage(BaseModel):
    """`count` is the number of scopes over all pages; `next` / `previous` (hosted API) are URLs or null."""

    count: int
    next: str | None = None
    previous: str | None = None
    results: list[ScopeItem]
