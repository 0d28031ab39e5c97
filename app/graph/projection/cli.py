"""`mem0-fixed graph rebuild [--user-id U]`: makes Neo4j show every scope's relations (or one user's) again, e.g.
after Neo4j lost its data. Postgres holds the relations; the rebuild marks the matching scopes behind and projects
them until none is, next to any running server (the claim keeps projectors off each other's scope).

Resumable: the marks are in Postgres, so a rebuild that stops (Neo4j failing, ^C) is continued by running it again:
while matching scopes are still behind, a rerun projects those instead of marking them all again."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg
from psycopg_pool import AsyncConnectionPool

from app.config import Settings
from app.db.connect import resolve_conninfo
from app.db.migrator import MigrationError, migrate
from app.errors import StartupError
from app.metrics import build_metrics

if TYPE_CHECKING:
    from app.graph.projection.projector import Projector

EXIT_FAILED = 1
EXIT_GRAPH_OFF = 2
PROGRESS_EVERY_S = 1.0
WAIT_S = 0.5  # for the scopes a server's projector holds, or that are not due yet


def add_graph_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    graph = commands.add_parser("graph", help="graph memory's Neo4j projection")
    actions = graph.add_subparsers(dest="graph_command", required=True)
    rebuild = actions.add_parser(
        "rebuild", help="project every scope (or one user's) into Neo4j again, e.g. after it lost its data; resumable"
    )
    rebuild.add_argument("--user-id", help="only the scopes with this user_id")
    rebuild.add_argument(
        "--restart", action="store_true", help="mark every matching scope again, even while some are still behind"
    )


@dataclass
class Progress:
    total: int
    started: float = field(default_factory=time.monotonic)
    printed: float = 0.0

    def line(self, behind: int) -> str:
        done = max(self.total - behind, 0)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        eta = behind / rate if rate else 0.0
        percent = 100 * done // max(self.total, 1)
        return f"{done}/{self.total} scopes ({percent}%): {rate:.1f} scopes/s, ETA {eta:.0f}s"

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.printed < PROGRESS_EVERY_S:
            return False
        self.printed = now
        return True


async def run_graph(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.graph_enabled:
        print(
            "graph rebuild: graph memory is off (NEO4J_URI is not set); set NEO4J_URI (and NEO4J_USERNAME / "
            "NEO4J_PASSWORD) to the Neo4j to rebuild",
            file=sys.stderr,
        )
        return EXIT_GRAPH_OFF
    # Here, not at the top: every other command starts without loading the Neo4j driver.
    from app.graph.projection.projector import Projector

    try:
        conninfo = await resolve_conninfo(settings)
        await migrate(conninfo, collection=settings.collection_name, dims=settings.embedding_dims)
        async with AsyncConnectionPool(conninfo, min_size=1, max_size=1, open=False) as pool:
            projector = await Projector.open(settings, pool, build_metrics())
            try:
                return await rebuild(projector, args.user_id, restart=args.restart)
            finally:
                await projector.stop()
    except (StartupError, MigrationError, psycopg.Error) as error:
        print(f"graph rebuild stopped: {error}; run it again to continue", file=sys.stderr)
        return EXIT_FAILED


async def rebuild(projector: Projector, user_id: str | None, *, restart: bool) -> int:
    """Projects the matching scopes until none is behind; exit 1 when Neo4j fails (run it again to continue)."""
    repository = projector.repository
    async with projector.pool.connection() as conn:
        behind = await repository.count_behind(conn, user_id)
        if behind and not restart:
            await repository.release_waiting(conn, user_id)
            print(f"continuing: {behind} matching scopes are still behind (an earlier rebuild, or recent writes)")
            total = behind
        else:
            total = await repository.mark_behind(conn, user_id)
            print(f"marked {total} scopes{'' if user_id is None else ' of that user_id'} for projection")
    progress = Progress(total)
    while behind := await _behind(projector, user_id):
        projection = await projector.project_one(user_id)
        if projection is not None and projection.error is not None:
            print(progress.line(behind))
            print(
                f"graph rebuild stopped: {projection.error}; what was projected stays, run it again to continue",
                file=sys.stderr,
            )
            return EXIT_FAILED
        if progress.due():
            print(progress.line(behind), flush=True)
        if projection is None:
            await asyncio.sleep(WAIT_S)
    print(progress.line(0))
    print(f"rebuilt: Neo4j shows the relations of all {total} scopes in {time.monotonic() - progress.started:.1f}s")
    return 0


async def _behind(projector: Projector, user_id: str | None) -> int:
    async with projector.pool.connection() as conn:
        return await projector.repository.count_behind(conn, user_id)
