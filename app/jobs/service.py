"""Jobs of inferred writes: waiting for one (sync mode), reading and retrying them, purging finished ones. Writes
queue them (app/writes)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from app.auth.access import EVERYTHING, Access
from app.config import Settings
from app.db.errors import storage_errors
from app.errors import Conflict, JobFailed, NoFactsFound, NotFound
from app.jobs.repository import FAILED, SUCCEEDED, JobRecord, JobRepository

WAIT_POLL_S = 0.1


class JobService:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, repository: JobRepository) -> None:
        self.settings = settings
        self.pool = pool
        self.repository = repository

    async def wait(self, job_id: UUID) -> JobRecord:
        """The job once it SUCCEEDED, or as it is after MEM0_INFER_WAIT_S; a FAILED job raises its error."""
        deadline = time.monotonic() + self.settings.infer_wait_s
        while True:
            job = await self._get(job_id, EVERYTHING)
            if job.status == SUCCEEDED:
                return job
            if job.status == FAILED:
                raise failure_of(job)
            if time.monotonic() >= deadline:
                return job
            await asyncio.sleep(WAIT_POLL_S)

    async def _get(self, job_id: UUID, access: Access) -> JobRecord:
        async with storage_errors(), self.pool.connection() as conn:
            job = await self.repository.get(conn, job_id, access)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    async def get(self, raw_id: str, access: Access) -> JobRecord:
        return await self._get(parse_job_id(raw_id), access)

    async def retry(self, raw_id: str, access: Access) -> JobRecord:
        job_id = parse_job_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            found = await self.repository.retry_failed(conn, job_id, access)
        if not found:
            job = await self._get(job_id, access)
            raise Conflict(f"job {job_id} is {job.status}; only FAILED jobs can be retried")
        return await self._get(job_id, access)

    async def purge_finished(self) -> int:
        """Delete jobs (and their raw messages) finished longer than MEM0_JOBS_RETENTION_S ago."""
        async with storage_errors(), self.pool.connection() as conn:
            return await self.repository.purge_finished(conn, self.settings.jobs_retention_s)


def failure_of(job: JobRecord) -> JobFailed | NoFactsFound:
    message = f"job {job.id} failed after {job.attempts} attempt(s): {job.last_error}"
    if job.error_code == NoFactsFound.code:
        return NoFactsFound(message, fields={"job_id": str(job.id)})
    return JobFailed(message, fields={"job_id": str(job.id)})


def parse_job_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"job {raw[:40]!r} not found; job ids are UUIDs") from None


def to_view(job: JobRecord) -> dict[str, Any]:
    result = job.result or {}
    return {
        "job_id": str(job.id),
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "error_code": job.error_code,
        "model": job.model,
        "results": result.get("results", []),
        "extracted": result.get("extracted"),
        "extraction": result.get("extraction"),
        "messages": job.request.get("body", {}).get("messages", []),
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }
