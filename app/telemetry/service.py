"""Emit events without waiting; a background flusher stores them in batches behind a circuit breaker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app.background import PeriodicTask
from app.db.queries import Queries
from app.metrics import Metrics
from app.telemetry.backlog import Backlog, Event
from app.telemetry.breaker import CircuitBreaker

logger = logging.getLogger(__name__)

RETENTION_BATCH = 1000  # rows per DELETE, so pruning a large backlog of old events never holds locks for long
RETENTION_INTERVAL_S = 600.0


class Telemetry:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        backlog: Backlog,
        breaker: CircuitBreaker,
        metrics: Metrics,
        *,
        batch_size: int,
        interval_s: float,
        statement_timeout_ms: int,
        retention_s: float,
    ) -> None:
        self.pool = pool
        self.backlog = backlog
        self.breaker = breaker
        self.metrics = metrics
        self.batch_size = batch_size
        self.statement_timeout_ms = statement_timeout_ms
        self.retention_s = retention_s
        self.queries = Queries.load("app.telemetry")
        self._flusher = PeriodicTask("telemetry-flusher", interval_s, self.flush)
        self._pruner = PeriodicTask("telemetry-pruner", RETENTION_INTERVAL_S, self.delete_expired)
        metrics.telemetry_backlog.set_function(lambda: len(self.backlog))
        metrics.telemetry_breaker.set_function(lambda: int(self.breaker.state))

    def emit(self, kind: str, **attributes: Any) -> None:
        """Never blocks and never raises into the caller: a request's outcome cannot depend on telemetry."""
        self.backlog.append(Event(secrets.token_hex(16), kind, datetime.now(UTC).isoformat(), attributes))
        self.metrics.telemetry_emitted.inc()

    async def flush(self) -> int:
        """Store what is pending, oldest first, until empty or a failure; returns how many were stored."""
        stored = 0
        while len(self.backlog) and self.breaker.allow():
            from_file = self.backlog.spilled > 0
            batch = (
                await asyncio.to_thread(self.backlog.read_spilled, self.batch_size)
                if from_file
                else self.backlog.memory_batch(self.batch_size)
            )
            try:
                await self._insert(batch)
            except (psycopg.Error, PoolTimeout, OSError) as error:
                self.breaker.record_failure()
                self.metrics.telemetry_flush_failures.inc()
                logger.warning("telemetry flush failed; events kept for replay", extra={"error": type(error).__name__})
                break
            self.breaker.record_success()
            if from_file:
                await asyncio.to_thread(self.backlog.remove_spilled, len(batch))
            else:
                self.backlog.remove_memory(len(batch))
            self.metrics.telemetry_flushed.inc(len(batch))
            stored += len(batch)
        if self.backlog.needs_spill():
            await asyncio.to_thread(self.backlog.write_spill, self.backlog.take_overflow())
        return stored

    async def _insert(self, batch: list[Event]) -> None:
        """One JSON document for the whole batch: a flush runs every half second under write load, and per-event
        parameters cost more than the events themselves. Not pipelined: psycopg waits on a pipeline by polling
        the socket for writing too, which spins this process's CPU for as long as Postgres runs the insert."""
        events = [
            {"id": event.id, "kind": event.kind, "occurred_at": event.occurred_at, "attributes": event.attributes}
            for event in batch
        ]
        timeout = f"{int(self.statement_timeout_ms)}ms"
        async with self.pool.connection(timeout=self.statement_timeout_ms / 1000) as conn, conn.transaction():
            # Short timeouts: a locked or slow table must fail this flush fast, not pile up connections.
            await conn.execute(
                "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                (timeout, timeout),
            )
            await conn.execute(self.queries["insert_events"], {"events": Jsonb(events)})

    async def delete_expired(self) -> int:
        """Delete the events older than the retention, one batch per statement; returns how many."""
        deleted = 0
        while True:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(
                    self.queries["delete_expired_events"], {"retention_s": self.retention_s, "batch": RETENTION_BATCH}
                )
            deleted += cursor.rowcount
            if cursor.rowcount < RETENTION_BATCH:
                return deleted

    def start(self) -> None:
        self._flusher.start()
        self._pruner.start()

    async def stop(self) -> None:
        await self._pruner.stop()
        await self._flusher.stop()
        with contextlib.suppress(psycopg.Error, PoolTimeout, OSError):
            await self.flush()
        if self.backlog.spill is not None and self.backlog.memory:
            # Whatever could not be stored survives the restart in the spill file.
            self.backlog.memory_max = 0
            await asyncio.to_thread(self.backlog.write_spill, self.backlog.take_overflow())
        self.backlog.close()
