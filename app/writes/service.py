"""Accepting a write: `infer: false` is stored now; `infer: true` becomes a durable job, waited for in sync mode
unless the request is keyed or asks for async mode. A keyed write runs once; its repeats replay its result."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from app.auth.access import Access
from app.config import Settings
from app.db.errors import storage_errors
from app.errors import AppError, Forbidden, InvalidInput, QueueFull, StorageUnavailable
from app.graph.service import GraphDrafts, graph_wanted
from app.idempotency.schemas import KeyedRequest
from app.idempotency.service import IdempotencyService, Once
from app.jobs.repository import PENDING, JobRepository
from app.jobs.service import JobService
from app.memories.payloads import drafts_from_messages
from app.memories.schemas import MemoryCreate
from app.metrics import Metrics
from app.telemetry.service import Telemetry
from app.writes.results import WriteResult
from app.writes.store import Drafts, DraftStore


class WriteService:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        store: DraftStore,
        idempotency: IdempotencyService,
        job_repository: JobRepository,
        jobs: JobService,
        metrics: Metrics | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.store = store
        self.idempotency = idempotency
        self.job_repository = job_repository
        self.jobs = jobs
        self.metrics = metrics
        self.telemetry = telemetry

    async def accept(self, request: MemoryCreate, access: Access, key: KeyedRequest | None = None) -> WriteResult:
        """Stored (every listed memory committed), or queued (the job that will store them). A keyed inferred
        write always answers queued, so its repeats replay the same job id."""
        self._check_limits(request, access)
        if not request.infer:
            self._emit("write.accepted", messages=len(request.messages), infer=False)
        async with self.idempotency.run_once(key) as once:
            if once.replay is not None:
                return WriteResult.from_record(once.replay)
            if not request.infer:
                return await self._store_now(request, once)
            queued = await self._enqueue(request, access.key_id, once)
        if key is not None or self._answers_at_once(request):
            return queued
        assert queued.job_id is not None
        try:
            job = await self.jobs.wait(queued.job_id)
        except StorageUnavailable:
            return queued  # the job is committed and goes on: its id, not a bare 5xx, lets the client follow it
        return WriteResult.from_job(job)

    def _check_limits(self, request: MemoryCreate, access: Access) -> None:
        """Refuses, before anything runs, a write outside the caller's key or over the request limits."""
        graph_wanted(self.settings, request.enable_graph)  # true without a graph: the 422 comes before anything runs
        if not access.allows(request.identifiers()):
            raise Forbidden(f"this API key may not write memories for {request.identifiers()}; use a key for them")
        if len(request.messages) > self.settings.max_messages:
            raise InvalidInput(
                f"{len(request.messages)} messages sent; "
                f"at most {self.settings.max_messages} (MEM0_MAX_MESSAGES) per request"
            )
        for index, message in enumerate(request.messages):
            if len(message.content) > self.settings.max_message_chars:
                raise InvalidInput(
                    f"messages.{index}.content has {len(message.content)} characters; "
                    f"at most {self.settings.max_message_chars} (MEM0_MAX_MESSAGE_CHARS); split it"
                )
        copies = request.metadata_copies_bytes()
        if copies > self.settings.max_write_metadata_bytes:
            raise InvalidInput(
                f"metadata: {copies:,} bytes would be stored (it is copied into every memory of the write); at most "
                f"{self.settings.max_write_metadata_bytes:,} (MEM0_MAX_WRITE_METADATA_BYTES); send less metadata "
                "or fewer messages per request"
            )

    def _answers_at_once(self, request: MemoryCreate) -> bool:
        """Async mode: an inferred write answers with its job instead of waiting for it."""
        return request.async_mode if request.async_mode is not None else self.settings.infer_mode == "async"

    async def _store_now(self, request: MemoryCreate, once: Once) -> WriteResult:
        """The deterministic write: each non-system message becomes one memory, stored with its ADD history (and
        the completed key) in one transaction."""
        try:
            # An infer: false write stores messages, not relations: with the graph on it answers `relations` empty.
            graph = GraphDrafts() if graph_wanted(self.settings, request.enable_graph) else None
            drafts = Drafts(request.identifiers(), drafts_from_messages(request), graph=graph)
            result = await self.store.store(drafts, key=once)
        except Exception as error:
            if not isinstance(error, AppError) or error.status_code >= 500:
                self._record("failed", 0, getattr(error, "code", type(error).__name__))
            raise
        assert result is not None  # only a job can lose its lease
        self._record("persisted", len(result.results))
        return result

    async def _enqueue(self, request: MemoryCreate, key_id: str, once: Once) -> WriteResult:
        """The job (raw messages kept) and the completed key in one transaction; refused while the queue, or the
        caller's share of it, is full."""
        body = request.model_dump(mode="json", exclude_none=True, exclude={"idempotency_key"})
        limit, per_key = self.settings.queue_max, self.settings.queue_max_per_key
        async with storage_errors(), self.pool.connection() as conn, conn.transaction():
            await self.job_repository.lock_admission(conn)
            pending, mine = await self.job_repository.count_pending(conn, key_id)
            if pending >= limit:
                raise QueueFull(
                    f"{pending} inferred writes are waiting (MEM0_QUEUE_MAX={limit}); retry later",
                    headers={"Retry-After": "5"},
                )
            if mine >= per_key:
                raise QueueFull(
                    f"{mine} inferred writes of this API key are waiting (MEM0_QUEUE_MAX_PER_KEY={per_key}); "
                    "retry later",
                    headers={"Retry-After": "5"},
                )
            job_id = await self.job_repository.insert(
                conn, {"body": body, "key": key_id}, self.settings.infer_max_attempts
            )
            queued = WriteResult([], job_id, PENDING)
            await once.complete(conn, queued.record())
        return queued

    def _record(self, outcome: str, memories: int, error: str | None = None) -> None:
        if self.metrics is not None:
            self.metrics.writes.labels(outcome).inc()
            self.metrics.memories_persisted.inc(memories)
        self._emit(f"write.{outcome}", memories=memories, error=error)

    def _emit(self, kind: str, **attributes: object) -> None:
        if self.telemetry is not None:
            self.telemetry.emit(kind, **attributes)
