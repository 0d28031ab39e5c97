"""`Annotated` dependency aliases: routes ask for what they need, the lifespan-built state provides it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.auth.access import Access, checked_access
from app.config import Settings
from app.egress import EgressGuard
from app.errors import Forbidden, InvalidInput
from app.graph.service import GraphService
from app.hosted.service import HostedService
from app.jobs.service import JobService
from app.memories.service import MemoryService
from app.named_entities.service import NamedEntityService
from app.scopes.service import ScopeService
from app.state import AppState
from app.writes.service import WriteService

# Dependencies are coroutines on purpose: FastAPI runs plain `def` dependencies in a thread pool, a thread hop
# per request for a single attribute lookup.


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.services
    return state


async def get_state(request: Request) -> AppState:
    return _state(request)


async def get_settings(request: Request) -> Settings:
    return _state(request).settings


async def get_write_service(request: Request) -> WriteService:
    return _state(request).writes


async def get_memory_service(request: Request) -> MemoryService:
    return _state(request).memories


async def get_job_service(request: Request) -> JobService:
    return _state(request).jobs


async def get_scope_service(request: Request) -> ScopeService:
    return _state(request).scopes


async def get_named_entity_service(request: Request) -> NamedEntityService:
    return _state(request).named_entities


async def get_graph_service(request: Request) -> GraphService:
    return _state(request).graph


async def get_hosted_service(request: Request) -> HostedService:
    return _state(request).hosted


async def get_access(request: Request) -> Access:
    """The caller's API key, checked before the body was read (app/key_gate.py: 401 without a valid one, 429 past
    its rate limit)."""
    return checked_access(request.scope)


def _dependants(route: APIRoute) -> Iterator[Dependant]:
    """The route's own dependant and every dependency under it."""
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        yield dependant
        pending.extend(dependant.dependencies)


def needs_key(route: APIRoute) -> bool:
    """Does the route (or a dependency of it) ask for the caller's key?"""
    return any(dependant.call is get_access for dependant in _dependants(route))


async def require_admin(access: Annotated[Access, Depends(get_access)]) -> Access:
    if not access.admin:
        raise Forbidden("this route needs an admin key")
    return access


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters the route and its dependencies declare."""
    return frozenset(param.alias for dependant in _dependants(route) for param in dependant.query_params)


class KnownQueryRoute(APIRoute):
    """A route that refuses a query parameter it does not take: a misspelt one (`?limt=5`) is a 422 naming it, not
    a silently different answer. Checked in the route's handler, with the names read once, so a request without
    a query string pays nothing for it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        known = _query_names(self)
        listed = ", ".join(sorted(known)) or "none"

        async def checked(request: Request) -> Response:
            if request.scope["query_string"]:
                unknown = sorted(set(request.query_params) - known)
                if unknown:
                    raise InvalidInput(
                        f"unknown query parameter(s) {', '.join(unknown)[:200]}; this route takes: {listed}"
                    )
            return await handle(request)

        return checked


async def get_egress_guard(request: Request) -> EgressGuard | None:
    guard: EgressGuard | None = request.app.state.egress_guard
    return guard


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
AccessDep = Annotated[Access, Depends(get_access)]
EgressGuardDep = Annotated[EgressGuard | None, Depends(get_egress_guard)]
WriteServiceDep = Annotated[WriteService, Depends(get_write_service)]
MemoryServiceDep = Annotated[MemoryService, Depends(get_memory_service)]
JobServiceDep = Annotated[JobService, Depends(get_job_service)]
ScopeServiceDep = Annotated[ScopeService, Depends(get_scope_service)]
NamedEntityServiceDep = Annotated[NamedEntityService, Depends(get_named_entity_service)]
GraphServiceDep = Annotated[GraphService, Depends(get_graph_service)]
HostedServiceDep = Annotated[HostedService, Depends(get_hosted_service)]
