"""Feeds the job-queue gauges (depth, oldest unfinished job's age) from the jobs table; run periodically."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from app.jobs.repository import JobRepository
from app.metrics import Metrics


class QueueMonitor:
    def __init__(self, pool: AsyncConnectionPool, repository: JobRepository, metrics: Metrics) -> None:
        self.pool = pool
        self.repository = repository
        self.metrics = metrics

    async def refresh(self) -> None:
        async with self.pool.connection() as conn:
            depth, oldest_age_s = await self.repository.queue_stats(conn)
        self.metrics.job_queue_depth.set(depth)
        self.metrics.job_oldest_age.set(oldest_age_s)
