"""HTTP routes for inferred-write jobs: status and retry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.deps import AccessDep, JobServiceDep, KnownQueryRoute, get_access
from app.jobs.service import to_view

router = APIRouter(tags=["jobs"], route_class=KnownQueryRoute, dependencies=[Depends(get_access)])


@router.get("/jobs/{job_id}", summary="Get an inferred-write job")
async def get_job(job_id: str, jobs: JobServiceDep, access: AccessDep) -> dict[str, Any]:
    """Status (PENDING, RUNNING, SUCCEEDED, FAILED), attempts, last error and its code, raw messages and
    stored memories."""
    return to_view(await jobs.get(job_id, access))


@router.post("/jobs/{job_id}/retry", summary="Retry a failed job")
async def retry_job(job_id: str, jobs: JobServiceDep, access: AccessDep) -> dict[str, Any]:
    return to_view(await jobs.retry(job_id, access))
