"""HTTP routes for inferred-write jobs: status and retry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import JobServiceDep
from app.jobs.service import to_view

router = APIRouter(tags=["jobs"])


@router.get("/jobs/{job_id}", summary="Get an inferred-write job")
async def get_job(job_id: str, jobs: JobServiceDep) -> dict[str, Any]:
    """Status (PENDING, RUNNING, SUCCEEDED, FAILED), attempts, last error and its code, raw messages and
    stored memories."""
    return to_view(await jobs.get(job_id))


@router.post("/jobs/{job_id}/retry", summary="Retry a failed job")
async def retry_job(job_id: str, jobs: JobServiceDep) -> dict[str, Any]:
    return to_view(await jobs.retry(job_id))
