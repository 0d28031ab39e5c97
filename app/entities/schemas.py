"""Response shapes of entities."""

from __future__ import annotations

from pydantic import BaseModel


class EntityItem(BaseModel):
    id: str
    name: str
    type: str
    total_memories: int
    created_at: str | None
    updated_at: str | None


class EntityPage(BaseModel):
    """`count` is the number of entities over all pages; `next` / `previous` (hosted API) are URLs or null."""

    count: int
    next: str | None = None
    previous: str | None = None
    results: list[EntityItem]
