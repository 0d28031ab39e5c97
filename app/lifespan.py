"""Builds the application state once: validate, migrate, open the pool, warm the models; tears it down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from app.checks import run_checks
from app.config import Settings
from app.db.embedded import start_embedded_postgres
from app.db.migrator import MigrationError, migrate
from app.db.pool import open_pool
from app.errors import AppError
from app.jobs.repository import JobRepository
from app.jobs.service import JobService
from app.jobs.worker import JobWorkers
from app.llm.client import OllamaClient
from app.memories.repository import MemoryRepository
from app.memories.service import MemoryService
from app.state import AppState, Readiness

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """The server cannot serve; the message names the cause and the fix."""


def build_ollama_client(settings: Settings) -> OllamaClient:
    return OllamaClient(
        settings.ollama_base_url,
        connect_timeout_s=settings.ollama_connect_timeout_s,
        embed_timeout_s=settings.embed_timeout_s,
        llm_timeout_s=settings.llm_timeout_s,
        pull_timeout_s=settings.pull_timeout_s,
        keep_alive=settings.ollama_keep_alive,
        max_connections=settings.ollama_max_connections,
    )


async def resolve_conninfo(settings: Settings) -> str:
    if not settings.uses_embedded_postgres:
        return settings.conninfo()
    try:
        uri = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
    except Exception as error:  # any failure of the bundled server is fatal and must say why
        raise StartupError(f"embedded postgres failed to start under {settings.data_dir}: {error}") from error
    return settings.conninfo(uri)


async def warm_up(settings: Settings, ollama: OllamaClient, readiness: Readiness) -> None:
    """Load both models before readiness so the first real request does not pay the load time."""
    started = time.perf_counter()
    try:
        await ollama.probe_dims(settings.embedder_model, "warm-up")
        await ollama.load_llm(settings.llm_model)
    except AppError as error:
        raise StartupError(f"warm-up failed: {error.message}") from None
    readiness.warmup_seconds = round(time.perf_counter() - started, 3)
    readiness.warmed_up = True
    logger.info(
        "models warmed up",
        extra={
            "warmup_seconds": readiness.warmup_seconds,
            "llm": settings.llm_model,
            "embedder": settings.embedder_model,
        },
    )


async def start(settings: Settings) -> AppState:
    conninfo = await resolve_conninfo(settings)
    ollama = build_ollama_client(settings)
    try:
        report = await run_checks(settings, conninfo, ollama, allow_pull=settings.ollama_pull_missing)
        if not report.ok:
            raise StartupError("; ".join(result.line() for result in report.failures()))
        try:
            await migrate(conninfo, collection=settings.collection_name, dims=settings.embedding_dims)
        except MigrationError as error:
            raise StartupError(f"migrations: {error}") from None
        readiness = Readiness(migrated=True, checks_passed=True)
        if settings.warmup:
            await warm_up(settings, ollama, readiness)
        else:
            readiness.warmed_up = True
        pool = await open_pool(
            conninfo,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout_s=settings.db_timeout_s,
            ef_search=settings.hnsw_ef_search,
        )
    except BaseException:
        await ollama.close()
        raise
    memories = MemoryService(settings, pool, ollama, MemoryRepository(settings.collection_name))
    job_repository = JobRepository(collection=settings.collection_name)
    jobs = JobService(settings, pool, job_repository)
    workers = JobWorkers(settings, pool, conninfo, ollama, memories, job_repository)
    workers.start()
    return AppState(
        settings=settings,
        pool=pool,
        ollama=ollama,
        memories=memories,
        readiness=readiness,
        jobs=jobs,
        workers=workers,
    )


async def stop(state: AppState) -> None:
    await state.workers.stop()  # in-flight jobs keep their lease; another worker reclaims them after it expires
    await state.pool.close()
    await state.ollama.close()


def build_lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            state = await start(settings)
        except StartupError as error:
            app.state.startup_error = str(error)
            logger.critical("startup failed: %s", error)
            raise
        app.state.services = state
        logger.info("ready to serve", extra={"embedding_dims": settings.embedding_dims})
        try:
            yield
        finally:
            await stop(state)

    return lifespan
