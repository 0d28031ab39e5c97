"""`Annotated` dependency aliases: routes ask for what they need, the lifespan-built state provides it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.auth.access import Access
from app.config import Settings
from app.egress import EgressGuard
from app.errors import Forbidden
from app.jobs.service import JobService
from app.memories.service import MemoryService
from app.state import AppState

# Dependencies are coroutines on purpose: FastAPI runs plain `def` dependencies in a thread pool, a thread hop
# per request for a single attribute lookup.


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.services
    return state


async def get_state(request: Request) -> AppState:
    return _state(request)


async def get_settings(request: Request) -> Settings:
    return _state(request).settings


async def get_memory_service(request: Request) -> MemoryService:
    return _state(request).memories


async def get_access(request: Request) -> Access:
    """The caller's API key, checked (401 without a valid one) and counted against its rate limit (429)."""
    return await _state(request).keys.authenticate(request.headers)


async def require_admin(access: Annotated[Access, Depends(get_access)]) -> Access:
    if not access.admin:
        raise Forbidden("this route needs an admin key")
    return access


async def get_egress_guard(request: Request) -> EgressGuard | None:
    guard: EgressGuard | None = request.app.state.egress_guard
    return guard


async def get_job_service(request: Request) -> JobService:
    return _state(request).jobs


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MemoryServiceDep = Annotated[MemoryService, Depends(get_memory_service)]
AccessDep = Annotated[Access, Depends(get_access)]
AdminDep = Annotated[Access, Depends(require_admin)]
EgressGuardDep = Annotated[EgressGuard | None, Depends(get_egress_guard)]
JobServiceDep = Annotated[JobService, Depends(get_job_service)]
