"""The graph's answer shapes."""

from __future__ import annotations

from pydantic import BaseModel


class GraphEntity(BaseModel):
    name: str
    type: str


class GraphRelation(BaseModel):
    source: str
    relationship: str
    destination: str
    valid: bool
    valid_from: str
    invalidated_at: str | None
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None


class Graph(BaseModel):
    entities: list[GraphEntity]
    relations: list[GraphRelation]
