"""The typed application state the lifespan builds once and dependencies hand to routes."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from app.auth.service import KeyService
from app.background import PeriodicTask
from app.config import Settings
from app.idempotency.service import IdempotencyService
from app.jobs.service import JobService
from app.jobs.worker import JobWorkers
from app.llm.client import OllamaClient
from app.memories.service import MemoryService
from app.metrics import Metrics
from app.system.embedder_health import EmbedderHealth
from app.telemetry.service import Telemetry


@dataclass
class Readiness:
    """What /ready knows beyond its live pings (a server that failed its checks or warm-up never starts)."""

    embedder: EmbedderHealth
    warmup_seconds: float | None = None


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
    keys: KeyService
    purger: PeriodicTask
    jobs: JobService
    workers: JobWorkers
    queue_monitor: PeriodicTask
