"""Startup validation shared by the server's boot and `mem0-fixed check`: each check reports, none guesses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from app.config import Settings
from app.errors import AppError, UpstreamTimeout, UpstreamUnavailable
from app.llm.client import OllamaClient, normalize_model_name

logger = logging.getLogger(__name__)
T = TypeVar("T")

# mem0's own telemetry collection: upstream creates it with a default (often wrong) dimension.
MEM0_TELEMETRY_TABLE = "mem0migrations"


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


@dataclass
class CheckReport:
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    def add(self, name: str, ok: bool, detail: str) -> None:
        result = CheckResult(name, ok, detail)
        self.results.append(result)
        (logger.info if ok else logger.error)("check %s", result.line())

    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.ok]


async def with_retries(
    settings: Settings, what: str, call: Callable[[], Awaitable[T]], retry_on: tuple[type[BaseException], ...]
) -> T:
    """Bounded retries with exponential backoff for dependencies that may still be booting."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.startup_retries),
        wait=wait_exponential(multiplier=settings.startup_backoff_s, max=10),
        retry=retry_if_exception_type(retry_on),
        reraise=True,
        before_sleep=lambda state: logger.warning("%s not ready (attempt %d), retrying", what, state.attempt_number),
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises")


def vector_tables(settings: Settings) -> list[str]:
    """Every table with a vector column the server reads or upstream mem0 leaves: all must share one dimension."""
    return [settings.collection_name, f"{settings.collection_name}_entities", MEM0_TELEMETRY_TABLE]


async def vector_column_dims(conn: AsyncConnection, tables: list[str]) -> dict[str, int]:
    """`table.column` -> N for every vector(N) column of the given tables that exist."""
    cursor = await conn.execute(
        """
        SELECT c.relname || '.' || a.attname, a.atttypmod
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE t.typname = 'vector' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
          AND c.relname = ANY(%s) AND c.relnamespace = 'public'::regnamespace
        """,
        (tables,),
    )
    return {str(name): int(typmod) for name, typmod in await cursor.fetchall()}


async def check_database(settings: Settings, conninfo: str, report: CheckReport) -> dict[str, int] | None:
    """Reachability and pgvector; returns the vector(N) of every column the server owns or upstream left."""

    async def connect() -> AsyncConnection:
        return await AsyncConnection.connect(
            conninfo, autocommit=True, connect_timeout=max(1, int(settings.db_timeout_s))
        )

    try:
        conn = await with_retries(settings, "postgres", connect, (psycopg.OperationalError,))
    except psycopg.Error as error:
        report.add(
            "postgres",
            False,
            f"unreachable after {settings.startup_retries} attempts: {str(error).strip()}; "
            "check POSTGRES_HOST/POSTGRES_PORT or DATABASE_URL",
        )
        return None
    async with conn:
        version = await (await conn.execute("SHOW server_version")).fetchone()
        report.add("postgres", True, f"reachable, server {version[0] if version else '?'}")
        row = await (
            await conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        ).fetchone()
        if row is None:
            report.add(
                "pgvector",
                False,
                "the 'vector' extension is not installed on this Postgres; use a pgvector image "
                "(e.g. pgvector/pgvector:pg17) or install the extension",
            )
            return None
        report.add("pgvector", True, f"available (version {row[0]})")
        return await vector_column_dims(conn, vector_tables(settings))


async def check_ollama(
    settings: Settings, client: OllamaClient, report: CheckReport, *, allow_pull: bool
) -> int | None:
    """Reachability and models; returns the dimension the embedder really produces."""
    try:
        version = await with_retries(
            settings,
            "ollama",
            lambda: client.version(settings.ollama_connect_timeout_s),
            (UpstreamUnavailable, UpstreamTimeout),
        )
        models = await client.list_models()
    except AppError as error:
        report.add(
            "ollama",
            False,
            f"{error.message} after {settings.startup_retries} attempts; start Ollama or fix OLLAMA_BASE_URL",
        )
        return None
    report.add("ollama", True, f"reachable at {settings.ollama_base_url}, version {version}")
    for variable, model in (("MEM0_LLM_MODEL", settings.llm_model), ("MEM0_EMBEDDER_MODEL", settings.embedder_model)):
        if normalize_model_name(model) in models:
            report.add(f"model {model}", True, "present")
            continue
        if not allow_pull:
            hint = "run `ollama pull " + model + "` or set MEM0_OLLAMA_PULL_MISSING=true"
            report.add(
                f"model {model}",
                False,
                f"{variable}={model} is not in Ollama (has: {', '.join(sorted(models)) or 'none'}); {hint}",
            )
            return None
        try:
            await client.pull(model, on_progress=lambda line: logger.info(line))
        except AppError as error:
            report.add(f"model {model}", False, f"pull failed: {error.message}")
            return None
        report.add(f"model {model}", True, "pulled")
    try:
        probed = await client.probe_dims(settings.embedder_model)
    except AppError as error:
        report.add("embedding dims", False, f"probe embedding failed: {error.message}")
        return None
    return probed


def check_dimensions(
    settings: Settings, probed: int | None, columns: dict[str, int] | None, report: CheckReport
) -> None:
    """Configured dims, the embedder's real output and every vector column must be one number."""
    seen = {"MEM0_EMBEDDING_DIMS": settings.embedding_dims}
    if probed is not None:
        seen[f"embedder {settings.embedder_model}"] = probed
    seen.update({f"column {column}": dims for column, dims in sorted((columns or {}).items())})
    listing = ", ".join(f"{source}={dims}" for source, dims in seen.items())
    if len(set(seen.values())) == 1:
        report.add("embedding dims", True, f"all agree: {listing}")
        return
    fixes = []
    if probed is not None and probed != settings.embedding_dims:
        fixes.append(f"set MEM0_EMBEDDING_DIMS={probed} to match the embedder")
    if any(dims != (probed or settings.embedding_dims) for dims in (columns or {}).values()):
        fixes.append(
            "point POSTGRES_COLLECTION_NAME at a new table, or re-embed into one (drop a stale mem0migrations)"
        )
    report.add("embedding dims", False, f"dimensions disagree: {listing}; {'; '.join(fixes)}")


async def run_checks(settings: Settings, conninfo: str, client: OllamaClient, *, allow_pull: bool) -> CheckReport:
    """Every startup check; each dependency is checked even when another failed, so one run shows all."""
    report = CheckReport()
    columns = await check_database(settings, conninfo, report)
    probed = await check_ollama(settings, client, report, allow_pull=allow_pull)
    if columns is not None or probed is not None:
        check_dimensions(settings, probed, columns, report)
    return report
