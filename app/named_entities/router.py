"""HTTP routes for named entities: parse, call the service, shape the answer. `/entities` is mem0's list of users,
agents and runs (app/scopes), so the people, places, organizations and products live at `/named-entities`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.deps import AccessDep, KnownQueryRoute, NamedEntityServiceDep, get_access
from app.named_entities.schemas import NamedEntityPage
from app.params import IdentifierQuery, PageParam, PageSizeParam, StatusMessage, query_identifiers

router = APIRouter(tags=["named entities"], route_class=KnownQueryRoute, dependencies=[Depends(get_access)])


@router.get("/named-entities", response_model=NamedEntityPage, summary="List a scope's named entities")
async def list_named_entities(
    named_entities: NamedEntityServiceDep,
    access: AccessDep,
    user_id: IdentifierQuery = None,
    agent_id: IdentifierQuery = None,
    run_id: IdentifierQuery = None,
    page: PageParam = 1,
    page_size: PageSizeParam = 100,
) -> dict[str, Any]:
    """The people, places, organizations and products the scope's inferred memories name, each with the ids of
    the memories naming it (a search that names an entity boosts them). Deleting a memory unlinks it; an entity
    left with no memory is deleted."""
    count, results = await named_entities.list_page(
        query_identifiers(user_id, agent_id, run_id), access, page, page_size
    )
    return {"count": count, "results": results}


@router.delete("/named-entities/{entity_id}", response_model=StatusMessage, summary="Delete a named entity")
async def delete_named_entity(
    entity_id: str, named_entities: NamedEntityServiceDep, access: AccessDep
) -> dict[str, str]:
    """Deletes the entity and its links; the memories stay."""
    await named_entities.delete(entity_id, access)
    return {"message": "Entity deleted successfully"}
