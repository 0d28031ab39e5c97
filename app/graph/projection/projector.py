"""The projector: makes Neo4j show what Postgres holds, one scope at a time, in the background.

Writers bump a scope's `graph_projection.version` in the transaction that changes its relations; the projector
claims the scope whose change is oldest, reads all its relations and replaces the scope's part of the graph, then
records the version it read. Neo4j failing never fails a write: the scope stays behind, is retried with capped
backoff, and the graph reports `degraded` until it catches up. One projector runs per process; replicas share the
work through the claim (queries.sql)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Literal

from psycopg_pool import AsyncConnectionPool

from app.background import PeriodicTask
from app.config import Settings
from app.graph.projection.graph_store import TRANSACTION_TIMEOUT_S, UNREACHABLE, Neo4jGraph
from app.graph.projection.layout import ScopeGraph
from app.graph.projection.repository import ClaimedScope, ProjectionRepository
from app.graph.repository import GraphRepository
from app.metrics import Metrics

logger = logging.getLogger(__name__)
GraphState = Literal["ok", "degraded", "off"]
POLL_S = 0.5  # how soon a change is projected when the projector is idle
MONITOR_S = 1.0  # Neo4j ping and backlog gauges
PING_TIMEOUT_S = 2.0
BACKOFF_S = 0.5
BACKOFF_MAX_S = 30.0
# A bound on one scope's projection past Neo4j's own transaction timeout (a connection that hangs unanswered).
PROJECTION_TIMEOUT_S = TRANSACTION_TIMEOUT_S + 10.0
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Projection:
    """One claimed scope's outcome: `error` is None when Neo4j now shows the claimed version."""

    scope: ClaimedScope
    error: str | None = None
    unreachable: bool = False  # the error says Neo4j cannot be reached now


class GraphHealth:
    """`degraded` while this process cannot reach Neo4j, or a scope's latest projection failed (on any replica:
    read from graph_projection); else `ok`."""

    def __init__(self) -> None:
        self.unreachable: str | None = None
        self.failing_scopes = 0

    @property
    def state(self) -> GraphState:
        return "degraded" if self.unreachable is not None or self.failing_scopes else "ok"

    def set_unreachable(self, reason: str | None) -> None:
        if (reason is None) != (self.unreachable is None):
            if reason is None:
                logger.info("neo4j answers again; the graph projection catches up")
            else:
                logger.warning("graph degraded: neo4j unreachable, the projection waits: %s", reason)
        self.unreachable = reason


def describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    return text[:MAX_ERROR_CHARS]


class Projector:
    def __init__(self, pool: AsyncConnectionPool, graph: Neo4jGraph, metrics: Metrics) -> None:
        self.pool = pool
        self.graph = graph
        self.metrics = metrics
        self.health = GraphHealth()
        metrics.graph_degraded.set_function(lambda: float(self.health.state == "degraded"))
        self.repository = ProjectionRepository()
        self.relations = GraphRepository()
        self._loop: asyncio.Task[None] | None = None
        self._monitor = PeriodicTask("graph-projection-monitor", MONITOR_S, self.monitor)

    @classmethod
    async def open(cls, settings: Settings, pool: AsyncConnectionPool, metrics: Metrics) -> Projector:
        """Connects to Neo4j (StartupError when it is unreachable, too old or refuses the credentials) and
        creates its indexes; `start()` then runs the projection."""
        return cls(pool, await Neo4jGraph.open(settings), metrics)

    @classmethod
    async def open_for_server(cls, settings: Settings, pool: AsyncConnectionPool, metrics: Metrics) -> Projector:
        """As `open`, but a Neo4j still unreachable after the startup retries (still starting after a host reboot
        or a `compose restart`) leaves the graph `degraded` instead of stopping the server: the monitor prepares it
        once it answers, and the projection catches up. Bad credentials or a too-old Neo4j still stop the start."""
        projector = cls(pool, Neo4jGraph.connect(settings), metrics)
        try:
            await projector.graph.prepare(settings.startup_retries, settings.startup_backoff_s)
        except UNREACHABLE as error:
            projector.health.set_unreachable(describe(error))
        except BaseException:
            await projector.graph.close()
            raise
        return projector

    @property
    def state(self) -> GraphState:
        return self.health.state

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="graph-projector")
        self._monitor.start()

    async def stop(self) -> None:
        """A projection cut short rolls back in Postgres, so its scope stays behind for the next projector."""
        await self._monitor.stop()
        task, self._loop = self._loop, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.graph.close()

    async def _run(self) -> None:
        while True:
            worked = False
            if self.health.unreachable is None:  # else the monitor's ping says when Neo4j is back
                try:
                    worked = await self.project_one() is not None
                except Exception:
                    logger.exception("graph projection step failed; the projector goes on")
            if not worked:
                await asyncio.sleep(POLL_S)

    async def project_one(self, user_id: str | None = None) -> Projection | None:
        """Projects the scope behind longest (of `user_id`, if given); None when no scope is due."""
        async with self.pool.connection() as conn, conn.transaction():
            scope = await self.repository.claim(conn, user_id)
            if scope is None:
                return None
            relations = await self.relations.scope_relations(conn, scope.identifiers)
            layout = ScopeGraph.of(relations)
            try:
                async with asyncio.timeout(PROJECTION_TIMEOUT_S):
                    await self.graph.replace_scope(scope.identifiers, layout)
            except Exception as error:  # noqa: BLE001 - any Neo4j failure is recorded on the scope and retried
                projection = Projection(scope, describe(error), isinstance(error, UNREACHABLE))
                await self.repository.fail(
                    conn, scope, describe(error), backoff_s=BACKOFF_S, backoff_max_s=BACKOFF_MAX_S
                )
            else:
                await self.repository.complete(conn, scope)
                projection = Projection(scope)
        if projection.error is not None:
            self.metrics.graph_projection_failures.inc()
            if projection.unreachable:
                self.health.set_unreachable(projection.error)
            else:
                self.health.failing_scopes = max(self.health.failing_scopes, 1)
                logger.warning("graph projection of a scope failed; retried with backoff: %s", projection.error)
            return projection
        self.metrics.graph_projected_scopes.inc()
        self.metrics.graph_relations_dropped.inc(layout.dropped)
        self.health.set_unreachable(None)
        return projection

    async def monitor(self) -> None:
        """Pings Neo4j, or prepares it when the server started without it (an idle projector notices an outage, a
        waiting one its end: then the scopes waiting out a backoff are due at once, so the graph catches up without
        waiting up to BACKOFF_MAX_S) and refreshes the backlog gauges and the failing-scope count."""
        try:
            if self.graph.prepared:
                async with asyncio.timeout(PING_TIMEOUT_S):
                    await self.graph.ping()
            else:
                await self.graph.prepare(attempts=1, backoff_s=0)
        except Exception as error:  # noqa: BLE001 - whatever keeps Neo4j from answering makes the graph degraded
            self.health.set_unreachable(describe(error))
        else:
            if self.health.unreachable is not None:
                async with self.pool.connection() as conn:
                    await self.repository.release_waiting(conn)
                self.health.set_unreachable(None)
        async with self.pool.connection() as conn:
            backlog = await self.repository.backlog(conn)
        self.metrics.graph_scopes_behind.set(backlog.behind)
        self.metrics.graph_projection_lag.set(backlog.lag_s)
        self.health.failing_scopes = backlog.failing


def graph_state(projector: Projector | None) -> GraphState:
    """What /health and /ready report: `off` when NEO4J_URI is unset."""
    return "off" if projector is None else projector.state
