"""Feeds the job-queue gauges (depth, oldest unfinished job's age) from the jobs table every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app.jobs.repository import JobRepository
from app.metrics import Metrics

logger = logging.getLogger(__name__)


class QueueMonitor:
    def __init__(
        self, pool: AsyncConnectionPool, repository: JobRepository, metrics: Metrics, interval_s: float
    ) -> None:
        self.pool = pool
        self.repository = repository
        self.metrics = metrics
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        async with self.pool.connection() as conn:
            depth, oldest_age_s = await self.repository.queue_stats(conn)
        self.metrics.job_queue_depth.set(depth)
        self.metrics.job_oldest_age.set(oldest_age_s)

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (psycopg.Error, PoolTimeout) as error:
                logger.warning("job queue gauges not refreshed: %s", type(error).__name__)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobs-queue-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
