"""Accepting inferred writes as jobs, waiting for them in sync mode, and reading / retrying jobs."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from psycopg_pool import AsyncConnectionPool

from app.config import Settings
from app.db.errors import storage_errors
from app.errors import Conflict, InvalidInput, JobFailed, NotFound, QueueFull
from app.idempotency.service import BeforeCommit
from app.jobs.repository import JobRecord, JobRepository
from app.memories.schemas import MemoryCreate

WAIT_POLL_S = 0.1
_JOB_ID = re.compile(r"[0-9]{1,18}")


class JobService:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool, repository: JobRepository) -> None:
        self.settings = settings
        self.pool = pool
        self.repository = repository

    async def submit(
        self, request: MemoryCreate, *, before_commit: BeforeCommit[dict[str, Any]] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Store the job (raw messages kept) and answer (status, body): 202 pending or 200 results.

        `before_commit` runs in the job's transaction with the 202 acceptance body: an idempotency key completes
        there, so a keyed request always answers (and replays) 202 with the same job id.
        """
        body = request.model_dump(mode="json", exclude_none=True, exclude={"idempotency_key"})
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            pending = await self.repository.count_pending(conn)
            if pending >= self.settings.queue_max:
                raise QueueFull(
                    f"{pending} inferred writes are waiting (MEM0_QUEUE_MAX={self.settings.queue_max}); retry later",
                    headers={"Retry-After": "5"},
                )
            job_id = await self.repository.insert(conn, {"body": body}, self.settings.infer_max_attempts)
            accepted = {"job_id": str(job_id), "status": "PENDING"}
            if before_commit is not None:
                await before_commit(conn, accepted)
        async_mode = request.async_mode if request.async_mode is not None else self.settings.infer_mode == "async"
        if async_mode or before_commit is not None:
            return 202, accepted
        return await self.wait(job_id)

    async def wait(self, job_id: int) -> tuple[int, dict[str, Any]]:
        deadline = time.monotonic() + self.settings.infer_wait_s
        while True:
            job = await self._get(job_id)
            if job.status == "SUCCEEDED":
                return 200, {**(job.result or {}), "job_id": str(job.id)}
            if job.status == "FAILED":
                if job.last_error and job.last_error.startswith("the model found no facts"):
                    raise InvalidInput(f"job {job.id}: {job.last_error}")
                raise JobFailed(f"job {job.id} failed after {job.attempts} attempt(s): {job.last_error}")
            if time.monotonic() >= deadline:
                return 202, {"job_id": str(job.id), "status": job.status}
            await asyncio.sleep(WAIT_POLL_S)

    async def _get(self, job_id: int) -> JobRecord:
        async with storage_errors(), self.pool.connection() as conn:
            job = await self.repository.get(conn, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        return job

    async def get(self, raw_id: str) -> dict[str, Any]:
        return to_view(await self._get(parse_job_id(raw_id)))

    async def retry(self, raw_id: str) -> dict[str, Any]:
        job_id = parse_job_id(raw_id)
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            found = await self.repository.retry_failed(conn, job_id)
        if not found:
            job = await self._get(job_id)
            raise Conflict(f"job {job_id} is {job.status}; only FAILED jobs can be retried")
        return to_view(await self._get(job_id))


def parse_job_id(raw: str) -> int:
    if _JOB_ID.fullmatch(raw) is None:
        raise NotFound(f"job {raw[:32]!r} not found; job ids are decimal integers")
    return int(raw)


def to_view(job: JobRecord) -> dict[str, Any]:
    result = job.result or {}
    return {
        "job_id": str(job.id),
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "model": job.model,
        "results": result.get("results", []),
        "extracted": result.get("extracted"),
        "extraction": result.get("extraction"),
        "messages": job.request.get("body", {}).get("messages", []),
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }
