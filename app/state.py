"""The typed application state the lifespan builds once and dependencies hand to routes."""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from app.background import PeriodicTask
from app.config import Settings
from app.idempotency.service import IdempotencyService
from app.jobs.service import JobService
from app.jobs.worker import JobWorkers
from app.llm.client import OllamaClient
from app.memories.service import MemoryService
from app.metrics import Metrics
from app.telemetry.service import Telemetry


@dataclass
class Readiness:
    migrated: bool = False
    checks_passed: bool = False
    warmed_up: bool = False
    warmup_seconds: float | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class AppState:
    settings: Settings
    pool: AsyncConnectionPool
    ollama: OllamaClient
    memories: MemoryService
    readiness: Readiness
    metrics: Metrics
    telemetry: Telemetry
    idempotency: IdempotencyService
    idempotency_purger: PeriodicTask
    jobs: JobService
    workers: JobWorkers
    queue_monitor: PeriodicTask
