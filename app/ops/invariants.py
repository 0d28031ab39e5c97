"""The database invariants a deploy, a rollback or an import must keep, checked and reported line by line."""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import AsyncConnection, sql

from app.checks import CheckReport, vector_column_dims, vector_tables
from app.config import Settings
from app.db.migrator import load_migrations
from app.db.queries import Queries
from app.errors import AppError
from app.llm.client import OllamaClient


@dataclass
class Invariants:
    report: CheckReport = field(default_factory=CheckReport)
    row_counts: dict[str, int] = field(default_factory=dict)
    migrations: list[int] = field(default_factory=list)
    dims: dict[str, int] = field(default_factory=dict)


async def check_invariants(settings: Settings, conn: AsyncConnection, ollama: OllamaClient | None) -> Invariants:
    """Dimensions everywhere agree, applied migrations are this version's and unedited, every memory has its
    ADD, every entity link points at a memory, no job is stuck past its lease. `ollama` None skips asking the
    embedder (an offline check)."""
    q = Queries.load("app.ops", collection=settings.collection_name)
    found = Invariants()
    found.dims = await vector_column_dims(conn, vector_tables(settings))
    if ollama is not None:
        try:
            found.dims["embedder"] = await ollama.probe_dims(settings.embedder_model, "invariants")
        except AppError as error:
            found.report.add("embedder", False, f"could not probe {settings.embedder_model}: {error.message}")
    wrong = {name: dims for name, dims in found.dims.items() if dims != settings.embedding_dims}
    found.report.add(
        "dimensions",
        not wrong,
        f"all {settings.embedding_dims}" if not wrong else f"expected {settings.embedding_dims}, found {wrong}",
    )

    cursor = await conn.execute(q["recorded_migrations"])
    recorded = {int(version): str(checksum) for version, checksum in await cursor.fetchall()}
    known = {migration.version: migration.checksum for migration in load_migrations()}
    found.migrations = sorted(recorded)
    unknown = sorted(set(recorded) - set(known))
    edited = sorted(v for v in recorded if v in known and recorded[v] != known[v])
    pending = sorted(set(known) - set(recorded))
    problems = [
        f"applied but unknown to this version: {unknown} (restore the backup taken before them)" if unknown else "",
        f"checksums differ: {edited}" if edited else "",
        f"not applied yet: {pending}" if pending else "",
    ]
    found.report.add("migrations", not any(problems), "; ".join(p for p in problems if p) or f"{len(recorded)} applied")

    cursor = await conn.execute(q["memories_without_add"])
    missing_add, other_clients = map(int, await cursor.fetchone() or (0, 0))
    found.report.add(
        "history",
        missing_add == 0,
        f"{missing_add} memories without their ADD event; {other_clients} written by another client (mem0's "
        "library keeps their history elsewhere)",
    )
    dangling = await _count(conn, q["dangling_entity_links"])
    found.report.add("entities", dangling == 0, f"{dangling} entity links to memories that do not exist")
    stuck = await _count(conn, q["stuck_jobs"])
    found.report.add("jobs", stuck == 0, f"{stuck} running jobs a minute past their lease")

    cursor = await conn.execute(q["row_counts"])
    row = await cursor.fetchone()
    assert row is not None
    found.row_counts = dict(zip(("memories", "memory_history", "jobs", "api_keys"), map(int, row), strict=True))
    return found


async def _count(conn: AsyncConnection, query: sql.SQL) -> int:
    cursor = await conn.execute(query)
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
