"""Response shapes of named entities."""

from __future__ import annotations

from pydantic import BaseModel, Field


class NamedEntityItem(BaseModel):
    id: str
    name: str = Field(description="As the model spelled it in the first memory that named it.")
    type: str = Field(description="person, place, organization or product (mem0's own rows may hold others).")
    linked_memory_ids: list[str] = Field(description="The memories that name it; a search naming it boosts them.")
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None


class NamedEntityPage(BaseModel):
    """`count` is the number of the scope's entities over all pages."""

    count: int
    results: list[NamedEntityItem]
