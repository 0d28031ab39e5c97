"""HTTP routes for entities, as upstream mem0's self-hosted server has them: parse, call the service, shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.deps import AccessDep, StateDep, get_access, reject_unknown_query
from app.entities.repository import repository_for
from app.entities.schemas import EntityPage
from app.entities.service import EntityService
from app.memories.schemas import StatusMessage

router = APIRouter(tags=["entities"], dependencies=[Depends(get_access), Depends(reject_unknown_query)])


async def get_entity_service(state: StateDep) -> EntityService:
    return EntityService(state.pool, repository_for(state.settings.collection_name), state.memories)


EntityServiceDep = Annotated[EntityService, Depends(get_entity_service)]
PageParam = Annotated[int, Query(ge=1, description="Page number, from 1.")]
PageSizeParam = Annotated[int, Query(ge=1, le=1000, description="Entities per page.")]


@router.get("/entities", response_model=EntityPage, summary="List entities")
async def list_entities(
    entities: EntityServiceDep, access: AccessDep, page: PageParam = 1, page_size: PageSizeParam = 100
) -> dict[str, Any]:
    """Every user, agent and run id with memories the key can see: `type`, `name`, `total_memories`, first and
    last write; `count` is the number of entities over all pages."""
    count, results = await entities.list_entities(access, page, page_size)
    return {"count": count, "results": results}


@router.delete("/entities/{entity_type}/{entity_id}", response_model=StatusMessage, summary="Delete an entity")
async def delete_entity(
    entity_type: str, entity_id: str, entities: EntityServiceDep, access: AccessDep
) -> dict[str, str]:
    """Deletes every memory (and pending job) of the user, agent or run: `entity_type` is user, agent or run."""
    deleted = await entities.delete_entity(entity_type, entity_id, access)
    return {"message": f"Entity deleted successfully ({deleted} memories)"}
