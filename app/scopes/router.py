"""HTTP routes for scopes at mem0's paths (`/entities`, as upstream's self-hosted server has them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.deps import AccessDep, KnownQueryRoute, ScopeServiceDep, get_access
from app.params import PageParam, PageSizeParam, StatusMessage
from app.scopes.schemas import ScopePage

router = APIRouter(tags=["scopes"], route_class=KnownQueryRoute, dependencies=[Depends(get_access)])


@router.get("/entities", response_model=ScopePage, summary="List users, agents and runs")
async def list_scopes(
    scopes: ScopeServiceDep, access: AccessDep, page: PageParam = 1, page_size: PageSizeParam = 100
) -> dict[str, Any]:
    """Every user, agent and run id with memories the key can see: `type`, `name`, `total_memories`, first and
    last write; `count` is the number over all pages."""
    count, results = await scopes.list_page(access, page, page_size)
    return {"count": count, "results": results}


@router.delete("/entities/{scope_type}/{scope_id}", response_model=StatusMessage, summary="Delete a user, agent or run")
async def delete_scope(scope_type: str, scope_id: str, scopes: ScopeServiceDep, access: AccessDep) -> dict[str, str]:
    """Deletes every memory (and pending job) of the user, agent or run: `scope_type` is user, agent or run."""
    deleted = await scopes.delete(scope_type, scope_id, access)
    return {"message": f"Entity deleted successfully ({deleted} memories)"}
