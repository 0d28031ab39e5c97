"""Builds the application state once: validate, migrate, open the pool, warm the models; tears it down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from app.auth.rates import SYNC_S
from app.auth.repository import KeyRepository
from app.auth.service import KeyService
from app.background import PeriodicTask
from app.checks import run_checks, vector_column_dims, vector_tables
from app.config import Settings
from app.db.connect import resolve_conninfo
from app.db.embedded import release_embedded_postgres
from app.db.migrator import MigrationError, migrate
from app.db.pool import open_pool
from app.egress import EgressGuard
from app.errors import AppError, StartupError
from app.graph.projection.projector import Projector
from app.graph.repository import GraphRepository
from app.graph.service import GraphService
from app.hosted.service import HostedService
from app.idempotency.repository import IdempotencyRepository
from app.idempotency.service import IdempotencyService
from app.jobs.monitor import QueueMonitor
from app.jobs.repository import JobRepository
from app.jobs.service import JobService
from app.llm.client import CallObserver, OllamaClient, build_ollama_client
from app.memories.repository import MemoryRepository
from app.memories.service import MemoryService
from app.metrics import Metrics
from app.named_entities.repository import NamedEntityRepository
from app.named_entities.service import NamedEntityService
from app.scopes.repository import ScopeRepository
from app.scopes.service import ScopeService
from app.state import AppState, Readiness
from app.system.embedder_health import EmbedderHealth
from app.telemetry.backlog import Backlog
from app.telemetry.breaker import CircuitBreaker
from app.telemetry.service import Telemetry
from app.writes.service import WriteService
from app.writes.store import DraftStore
from app.writes.worker import JobWorkers

logger = logging.getLogger(__name__)


async def warm_up(settings: Settings, ollama: OllamaClient, metrics: Metrics) -> float:
    """Load both models before readiness so the first real request does not pay the load time; the seconds taken."""
    started = time.perf_counter()
    try:
        metrics.embedding_dims.labels("embedder").set(await ollama.probe_dims(settings.embedder_model, "warm-up"))
        await ollama.load_llm(settings.llm_model)
    except AppError as error:
        raise StartupError(f"warm-up failed: {error.message}") from None
    seconds = round(time.perf_counter() - started, 3)
    metrics.warmup_seconds.set(seconds)
    logger.info(
        "models warmed up",
        extra={"warmup_seconds": seconds, "llm": settings.llm_model, "embedder": settings.embedder_model},
    )
    return seconds


def observe_ollama(metrics: Metrics, telemetry: list[Telemetry], embedder: EmbedderHealth) -> CallObserver:
    """Metrics for every Ollama call, the embedder's health for /ready, and a telemetry event once telemetry
    exists (it needs the pool)."""

    def observe(operation: str, model: str, seconds: float, failure: BaseException | None, tokens: int | None) -> None:
        metrics.ollama_latency.labels(operation, model).observe(seconds)
        if failure is not None:
            metrics.ollama_errors.labels(operation, model).inc()
        if operation == "embed" and (failure is None or isinstance(failure, AppError)):
            # A cancelled call (its caller went away) says nothing about the embedder.
            embedder.record(None if failure is None else failure.message)
        for sink in telemetry:
            sink.emit(
                "ollama.call", op=operation, model=model, seconds=round(seconds, 4), ok=failure is None, tokens=tokens
            )

    return observe


def build_telemetry(settings: Settings, pool: AsyncConnectionPool, metrics: Metrics) -> Telemetry:
    spill_path = settings.data_dir.expanduser().resolve() / f"telemetry-backlog-{settings.port}.sqlite3"
    spill_path.parent.mkdir(parents=True, exist_ok=True)
    backlog = Backlog(
        settings.telemetry_queue_max, spill_path, settings.telemetry_spill_max, metrics.telemetry_dropped.inc
    )
    breaker = CircuitBreaker(settings.telemetry_breaker_failures, settings.telemetry_breaker_cooldown_s)
    return Telemetry(
        pool,
        backlog,
        breaker,
        metrics,
        batch_size=settings.telemetry_batch_size,
        interval_s=settings.telemetry_flush_interval_s,
        statement_timeout_ms=settings.telemetry_timeout_ms,
        retention_s=settings.telemetry_retention_s,
    )


async def record_column_dims(settings: Settings, pool: AsyncConnectionPool, metrics: Metrics) -> None:
    metrics.embedding_dims.labels("configured").set(settings.embedding_dims)
    async with pool.connection() as conn:
        columns = await vector_column_dims(conn, vector_tables(settings))
    for column, dims in columns.items():
        metrics.embedding_dims.labels(f"column {column}").set(dims)


def report_blocked_egress(guard: EgressGuard, telemetry: Telemetry) -> None:
    """Keep the guard's existing callback (metrics) and add a telemetry event per refused connection."""
    count_block = guard.on_block

    def on_block(host: str) -> None:
        if count_block is not None:
            count_block(host)
        telemetry.emit("egress.blocked", host=host)

    guard.on_block = on_block


async def require_authentication(settings: Settings, keys: KeyService) -> None:
    """Keys are required unless MEM0_AUTH_DISABLED says otherwise: a first start with none generates the admin key
    into a file and says where (never the key itself: logs are read by more people than the key should be)."""
    if settings.auth_disabled:
        logger.warning(
            "MEM0_AUTH_DISABLED=true: every route answers anyone who reaches the port; local development only"
        )
        return
    try:
        key_file = await keys.bootstrap()
    except OSError as error:
        raise StartupError(
            f"no API key exists and the generated admin key could not be written under MEM0_DATA_DIR ({error}): "
            "make it writable, or set MEM0_ADMIN_API_KEY (16+ characters)"
        ) from None
    if key_file is not None:
        logger.warning(
            "no API key existed: generated an admin key into %s (readable by its owner only); send it as "
            "`Authorization: Token <key>` or `X-API-Key: <key>`, and mint limited keys with `mem0-fixed keys create`",
            key_file,
            extra={"admin_key_file": str(key_file)},
        )


async def start(settings: Settings, metrics: Metrics) -> AppState:
    conninfo = await resolve_conninfo(settings)
    ollama = build_ollama_client(settings)
    telemetry_sink: list[Telemetry] = []
    readiness = Readiness(EmbedderHealth(max_age_s=settings.ready_embed_max_age_s))
    ollama.observer = observe_ollama(metrics, telemetry_sink, readiness.embedder)
    try:
        report = await run_checks(settings, conninfo, ollama, allow_pull=settings.ollama_pull_missing)
        if not report.ok:
            raise StartupError("; ".join(result.line() for result in report.failures()))
        try:
            await migrate(conninfo, collection=settings.collection_name, dims=settings.embedding_dims)
        except MigrationError as error:
            raise StartupError(f"migrations: {error}") from None
        if settings.warmup:
            readiness.warmup_seconds = await warm_up(settings, ollama, metrics)
        pool = await open_pool(
            conninfo,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout_s=settings.db_timeout_s,
            ef_search=settings.hnsw_ef_search,
        )
        await record_column_dims(settings, pool, metrics)
        keys = KeyService(settings, pool, KeyRepository())
        try:
            await require_authentication(settings, keys)
            projector = await Projector.open_for_server(settings, pool, metrics) if settings.graph_enabled else None
        except BaseException:
            await pool.close()
            raise
    except BaseException:
        await ollama.close()
        raise
    telemetry = build_telemetry(settings, pool, metrics)
    telemetry_sink.append(telemetry)
    for result in report.results:
        telemetry.emit("startup.check", name=result.name, ok=result.ok)
    telemetry.start()
    idempotency = IdempotencyService(
        pool, IdempotencyRepository(), lease_s=settings.idempotency_lease_s, ttl_s=settings.idempotency_ttl_s
    )
    job_repository = JobRepository()
    memory_repository = MemoryRepository(settings.collection_name)
    named_entity_repository = NamedEntityRepository(settings.collection_name)
    jobs = JobService(settings, pool, job_repository)
    graph_repository = GraphRepository()
    graph = GraphService(settings, pool, graph_repository)
    store = DraftStore(
        settings, pool, ollama, memory_repository, named_entity_repository, graph_repository, job_repository
    )
    writes = WriteService(settings, pool, store, idempotency, job_repository, jobs, metrics, telemetry)
    memories = MemoryService(
        settings, pool, ollama, memory_repository, named_entity_repository, job_repository, graph, metrics, telemetry
    )
    scopes = ScopeService(pool, ScopeRepository(settings.collection_name), memories)
    named_entities = NamedEntityService(pool, named_entity_repository)
    hosted = HostedService(writes, memories, scopes, metrics)

    async def purge_expired_rows() -> None:
        await idempotency.purge_expired()
        await jobs.purge_finished()
        if keys.rates is not None:
            await keys.rates.drop_ended_windows()

    purger = PeriodicTask("expired-rows-purger", settings.idempotency_purge_interval_s, purge_expired_rows)
    purger.start()
    workers = JobWorkers(settings, pool, conninfo, ollama, store, job_repository, graph, metrics, telemetry)
    workers.start()
    metrics.job_workers_alive.set_function(workers.alive)
    queue_monitor = PeriodicTask("jobs-queue-monitor", 5.0, QueueMonitor(pool, job_repository, metrics).refresh)
    queue_monitor.start()
    rate_sync = PeriodicTask("rate-limit-sync", SYNC_S, keys.rates.sync) if keys.rates else None
    if rate_sync is not None:
        rate_sync.start()
    if projector is not None:
        projector.start()
    return AppState(
        settings=settings,
        pool=pool,
        ollama=ollama,
        writes=writes,
        memories=memories,
        scopes=scopes,
        named_entities=named_entities,
        graph=graph,
        hosted=hosted,
        readiness=readiness,
        metrics=metrics,
        telemetry=telemetry,
        idempotency=idempotency,
        keys=keys,
        purger=purger,
        jobs=jobs,
        workers=workers,
        queue_monitor=queue_monitor,
        rate_sync=rate_sync,
        graph_projector=projector,
    )


async def stop(state: AppState) -> None:
    await state.queue_monitor.stop()
    if state.rate_sync is not None:
        await state.rate_sync.stop()
    await state.workers.stop()  # in-flight jobs keep their lease; another worker reclaims them after it expires
    await state.purger.stop()
    if state.graph_projector is not None:
        await state.graph_projector.stop()
    await state.telemetry.stop()
    await state.pool.close()
    await state.ollama.close()
    if state.settings.uses_embedded_postgres:
        await asyncio.to_thread(release_embedded_postgres, state.settings.data_dir)


def build_lifespan(settings: Settings, metrics: Metrics) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            state = await start(settings, metrics)
        except StartupError as error:
            app.state.startup_error = str(error)
            logger.critical("startup failed: %s", error)
            raise
        app.state.services = state
        if app.state.egress_guard is not None:
            report_blocked_egress(app.state.egress_guard, state.telemetry)
        logger.info("ready to serve", extra={"embedding_dims": settings.embedding_dims})
        try:
            yield
        finally:
            await stop(state)

    return lifespan
