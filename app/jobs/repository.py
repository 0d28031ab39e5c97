"""SQL access for the jobs table; every statement comes from queries.sql."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from app.auth.access import Access, restriction_sql
from app.db.queries import Queries

NOTIFY_CHANNEL = "mem0_jobs"


PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker holds: `attempts` (this attempt's number) proves ownership in every later statement.
    `extraction` is a stored earlier attempt's extraction; `lease_expiries` counts attempts that died."""

    id: int
    public_id: UUID  # the id clients, logs and telemetry know the job by
    request: dict[str, Any]
    attempts: int
    max_attempts: int
    extraction: dict[str, Any] | None
    lease_expiries: int

    @property
    def ref(self) -> str:
        """The job as logs and telemetry name it: its public id."""
        return str(self.public_id)


@dataclass(frozen=True)
class JobRecord:
    id: UUID  # the public id; the sequential one stays inside the repository
    status: str
    request: dict[str, Any]
    attempts: int
    max_attempts: int
    last_error: str | None
    error_code: str | None
    model: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


def backoff_delay_s(attempts: int, base_s: float, cap_s: float = 300.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempts-1))]."""
    ceiling = min(cap_s, base_s * 2 ** max(attempts - 1, 0))
    return (rng or random).uniform(base_s / 2, max(ceiling, base_s / 2))


class JobRepository:
    def __init__(self) -> None:
        self.q = Queries.load("app.jobs")

    async def insert(self, conn: AsyncConnection[Any], request: dict[str, Any], max_attempts: int) -> UUID:
        """The new job's public id."""
        cur = await conn.execute(self.q["insert_job"], {"request": Jsonb(request), "max_attempts": max_attempts})
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(self.q["notify_job"], {"id": row[0]})  # delivered at commit
        return UUID(str(row[1]))

    async def lock_admission(self, conn: AsyncConnection[Any]) -> None:
        """Inside the caller's transaction: admissions to the queue take turns until it commits."""
        await conn.execute(self.q["lock_admission"])

    async def count_pending(self, conn: AsyncConnection[Any], key_id: str) -> tuple[int, int]:
        """Waiting jobs: all of them, and those `key_id` queued."""
        row = await (await conn.execute(self.q["count_pending"], {"key": key_id})).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def queue_stats(self, conn: AsyncConnection[Any]) -> tuple[int, float]:
        """Unfinished jobs and the age in seconds of the oldest of them."""
        cur = await conn.execute(self.q["queue_stats"])
        row = await cur.fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    async def claim(self, conn: AsyncConnection[Any], lease_s: float) -> ClaimedJob | None:
        cur = await conn.execute(self.q["claim_job"], {"lease_s": lease_s})
        row = await cur.fetchone()
        return ClaimedJob(int(row[0]), row[1], row[2], int(row[3]), int(row[4]), row[5], int(row[6])) if row else None

    async def renew_lease(self, conn: AsyncConnection[Any], job: ClaimedJob, lease_s: float) -> bool:
        cur = await conn.execute(self.q["renew_lease"], {**_owned(job), "lease_s": lease_s})
        return cur.rowcount == 1

    async def save_extraction(self, conn: AsyncConnection[Any], job: ClaimedJob, extraction: dict[str, Any]) -> None:
        await conn.execute(self.q["save_extraction"], {**_owned(job), "extraction": Jsonb(extraction)})

    async def lock_running(self, conn: AsyncConnection[Any], job: ClaimedJob) -> bool:
        """True when this worker still owns the job (nobody re-claimed it after a lease expiry)."""
        cur = await conn.execute(self.q["lock_running_job"], _owned(job))
        return await cur.fetchone() is not None

    async def complete(self, conn: AsyncConnection[Any], job: ClaimedJob, result: dict[str, Any], model: str) -> None:
        await conn.execute(self.q["complete_job"], {**_owned(job), "result": Jsonb(result), "model": model})

    async def retry_later(
        self, conn: AsyncConnection[Any], job: ClaimedJob, code: str, error: str, delay_s: float
    ) -> None:
        await conn.execute(self.q["retry_later"], {**_owned(job), "code": code, "error": error, "delay_s": delay_s})

    async def retry_within_window(
        self, conn: AsyncConnection[Any], job: ClaimedJob, code: str, error: str, delay_s: float, window_s: float
    ) -> str | None:
        """PENDING again after `delay_s` while the job's retry window lasts, else FAILED; None if not ours."""
        params = {**_owned(job), "code": code, "error": error, "delay_s": delay_s, "window_s": window_s}
        row = await (await conn.execute(self.q["retry_within_window"], params)).fetchone()
        return None if row is None else str(row[0])

    async def release_waiting_on(self, conn: AsyncConnection[Any], codes: Sequence[str]) -> int:
        cursor = await conn.execute(self.q["release_waiting_on_ollama"], {"codes": list(codes)})
        return cursor.rowcount

    async def fail(self, conn: AsyncConnection[Any], job: ClaimedJob, code: str, error: str) -> None:
        await conn.execute(self.q["fail_job"], {**_owned(job), "code": code, "error": error})

    async def release(self, conn: AsyncConnection[Any], job: ClaimedJob) -> None:
        await conn.execute(self.q["release_job"], _owned(job))

    async def get(self, conn: AsyncConnection[Any], public_id: UUID, access: Access) -> JobRecord | None:
        where, params = _within(access)
        cur = await conn.execute(self.q["get_job"].format(where=where), {**params, "public_id": public_id})
        row = await cur.fetchone()
        return JobRecord(*row) if row else None

    async def retry_failed(self, conn: AsyncConnection[Any], public_id: UUID, access: Access) -> bool:
        where, params = _within(access)
        cur = await conn.execute(self.q["retry_failed_job"].format(where=where), {**params, "public_id": public_id})
        row = await cur.fetchone()
        if row is not None:
            await conn.execute(self.q["notify_job"], {"id": row[0]})
        return row is not None

    async def delete_scope(self, conn: AsyncConnection[Any], identifiers: dict[str, str]) -> int:
        """Every job (raw messages included) of exactly these identifiers; a running one then stores nothing."""
        params = {key: identifiers.get(key) for key in ("user_id", "agent_id", "run_id")}
        cur = await conn.execute(self.q["delete_scope_jobs"], params)
        return cur.rowcount

    async def purge_finished(self, conn: AsyncConnection[Any], retention_s: float, batch: int = 5000) -> int:
        total = 0
        while True:
            cur = await conn.execute(self.q["purge_finished_jobs"], {"retention_s": retention_s, "batch": batch})
            total += cur.rowcount
            if cur.rowcount < batch:
                return total


def _within(access: Access) -> tuple[sql.Composable, dict[str, Any]]:
    """The jobs whose request names identifiers the caller's key may touch."""
    parts, params = restriction_sql(access, lambda kind: sql.SQL("request -> 'body' ->> {}").format(sql.Literal(kind)))
    return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")), params


def _owned(job: ClaimedJob) -> dict[str, int]:
    return {"id": job.id, "attempts": job.attempts}
