"""SQL access for the jobs table; every statement comes from queries.sql."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from app.db.queries import Queries

NOTIFY_CHANNEL = "mem0_jobs"


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    request: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class JobRecord:
    id: int
    status: str
    request: dict[str, Any]
    attempts: int
    max_attempts: int
    last_error: str | None
    model: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


def backoff_delay_s(attempts: int, base_s: float, cap_s: float = 300.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempts-1))]."""
    ceiling = min(cap_s, base_s * 2 ** max(attempts - 1, 0))
    return (rng or random).uniform(base_s / 2, max(ceiling, base_s / 2))


class JobRepository:
    def __init__(self, *, collection: str) -> None:
        self.q = Queries.load("app.jobs", collection=collection)

    async def insert(self, conn: AsyncConnection[Any], request: dict[str, Any], max_attempts: int) -> int:
        cur = await conn.execute(self.q["insert_job"], {"request": Jsonb(request), "max_attempts": max_attempts})
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(self.q["notify_job"], {"id": row[0]})  # delivered at commit
        return int(row[0])

    async def count_pending(self, conn: AsyncConnection[Any]) -> int:
        cur = await conn.execute(self.q["count_pending"])
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def release(self, conn: AsyncConnection[Any], job: ClaimedJob) -> None:
        await conn.execute(self.q["release_job"], {"id": job.id, "attempts": job.attempts})

    async def queue_stats(self, conn: AsyncConnection[Any]) -> tuple[int, float]:
        """Unfinished jobs and the age in seconds of the oldest of them."""
        cur = await conn.execute(self.q["queue_stats"])
        row = await cur.fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    async def claim(self, conn: AsyncConnection[Any], lease_s: float) -> ClaimedJob | None:
        cur = await conn.execute(self.q["claim_job"], {"lease_s": lease_s})
        row = await cur.fetchone()
        return ClaimedJob(int(row[0]), row[1], int(row[2]), int(row[3])) if row else None

    async def lock_running(self, conn: AsyncConnection[Any], job: ClaimedJob) -> bool:
        """True when this worker still owns the job (nobody re-claimed it after a lease expiry)."""
        cur = await conn.execute(self.q["lock_running_job"], {"id": job.id, "attempts": job.attempts})
        return await cur.fetchone() is not None

    async def complete(self, conn: AsyncConnection[Any], job_id: int, result: dict[str, Any], model: str) -> None:
        await conn.execute(self.q["complete_job"], {"id": job_id, "result": Jsonb(result), "model": model})

    async def retry_later(self, conn: AsyncConnection[Any], job: ClaimedJob, error: str, delay_s: float) -> None:
        await conn.execute(
            self.q["retry_later"], {"id": job.id, "attempts": job.attempts, "error": error, "delay_s": delay_s}
        )

    async def fail(self, conn: AsyncConnection[Any], job: ClaimedJob, error: str) -> None:
        await conn.execute(self.q["fail_job"], {"id": job.id, "attempts": job.attempts, "error": error})

    async def get(self, conn: AsyncConnection[Any], job_id: int) -> JobRecord | None:
        cur = await conn.execute(self.q["get_job"], {"id": job_id})
        row = await cur.fetchone()
        return JobRecord(*row) if row else None

    async def retry_failed(self, conn: AsyncConnection[Any], job_id: int) -> bool:
        cur = await conn.execute(self.q["retry_failed_job"], {"id": job_id})
        found = await cur.fetchone() is not None
        if found:
            await conn.execute(self.q["notify_job"], {"id": job_id})
        return found
