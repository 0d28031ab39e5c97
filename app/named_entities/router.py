"""HTTP routes for named entities: parse, call the service, shape the answer. `/entities` is mem0's list of users,
agents and runs (app/entities), so the people, places, organizations and products live at `/named-entities`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.deps import AccessDep, StateDep, get_access, reject_unknown_query
from app.memories.schemas import IdentifierQuery, StatusMessage, query_identifiers
from app.named_entities.schemas import NamedEntityPage
from app.named_entities.service import NamedEntityService

router = APIRouter(tags=["named entities"], dependencies=[Depends(get_access), Depends(reject_unknown_query)])


async def get_named_entity_service(state: StateDep) -> NamedEntityService:
    return NamedEntityService(state.pool, state.memories.entities)


NamedEntityServiceDep = Annotated[NamedEntityService, Depends(get_named_entity_service)]
PageParam = Annotated[int, Query(ge=1, description="Page number, from 1.")]
PageSizeParam = Annotated[int, Query(ge=1, le=1000, description="Entities per page.")]


@router.get("/named-entities", response_model=NamedEntityPage, summary="List a scope's named entities")
async def list_named_entities(
    entities: NamedEntityServiceDep,
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
    count, results = await entities.list_entities(query_identifiers(user_id, agent_id, run_id), access, page, page_size)
    return {"count": count, "results": results}


@router.delete("/named-entities/{entity_id}", response_model=StatusMessage, summary="Delete a named entity")
async def delete_named_entity(entity_id: str, entities: NamedEntityServiceDep, access: AccessDep) -> dict[str, str]:
    """Deletes the entity and its links; the memories stay."""
    await entities.delete(entity_id, access)
    return {"message": "Entity deleted successfully"}
