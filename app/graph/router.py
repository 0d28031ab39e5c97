"""HTTP route for a scope's graph: parse, call the service, shape the answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query

from app.deps import AccessDep, GraphServiceDep, KnownQueryRoute, get_access
from app.graph.schemas import Graph
from app.params import MAX_PAGE_SIZE, IdentifierQuery, query_identifiers

router = APIRouter(tags=["graph"], route_class=KnownQueryRoute, dependencies=[Depends(get_access)])


@router.get("/graph", response_model=Graph, summary="A scope's graph: entities and relations, as it is or was")
async def get_graph(
    graph: GraphServiceDep,
    access: AccessDep,
    user_id: IdentifierQuery = None,
    agent_id: IdentifierQuery = None,
    run_id: IdentifierQuery = None,
    as_of: datetime | None = Query(None, description="ISO time: the relations valid then (default: all, ended too)."),
    limit: int = Query(MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Most relations, oldest first."),
) -> dict[str, Any]:
    """Every relation of the scope with `valid`, `valid_from` and `invalidated_at` (an ended relation stays as
    history), or with `as_of` those valid at that time; the entities at their ends. 422 while the graph is off."""
    return await graph.graph(query_identifiers(user_id, agent_id, run_id), access, as_of, limit)
