"""The typed application state the lifespan builds once and dependencies hand to routes."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from app.auth.service import KeyService
from app.background import PeriodicTask
from app.config import Settings
from app.graph.projection.projector import Projector
from app.graph.service import GraphService
from app.hosted.service import HostedService
from app.idempotency.service import IdempotencyService
from app.jobs.service import JobService
from app.llm.client import OllamaClient
from app.memories.service import MemoryService
from app.metrics import Metrics
from app.named_entities.service import NamedEntityService
from app.scopes.service import ScopeService
from app.system.embedder_health import EmbedderHealth
from app.telemetry.service import Telemetry
from app.writes.service import WriteService
from app.writes.worker import JobWorkers


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
    writes: WriteService
    memories: MemoryService
    scopes: ScopeService
    named_entities: NamedEntityService
    graph: GraphService
    hosted: HostedService
    readiness: Readiness
    metrics: Metrics
    telemetry: Telemetry
    idempotency: IdempotencyService
    keys: KeyService
    purger: PeriodicTask
    jobs: JobService
    workers: JobWorkers
    queue_monitor: PeriodicTask
    rate_sync: PeriodicTask | None  # None when MEM0_RATE_LIMIT is empty
    graph_projector: Projector | None = None  # None when NEO4J_URI is unset (graph memory off)
