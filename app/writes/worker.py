"""In-process queue workers: claim a job, extract facts, and hand them to the draft store, which stores them and
completes the job in one transaction.

A worker never dies of a job: any failure is recorded on the job (retried or failed) and the worker goes on.
While a job runs its short lease is renewed, so a crashed server's jobs are retaken within one lease."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from app.background import PeriodicTask
from app.config import Settings
from app.db.errors import storage_errors
from app.errors import (
    AppError,
    InvalidInput,
    InvalidModelOutput,
    NoFactsFound,
    PoisonJob,
    StorageUnavailable,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from app.graph.names import node_name
from app.graph.repository import TypedRelation
from app.graph.service import GraphDrafts, GraphService
from app.jobs.repository import FAILED, NOTIFY_CHANNEL, PENDING, ClaimedJob, JobRepository, backoff_delay_s
from app.llm.client import OllamaClient
from app.llm.extraction import (
    Ask,
    Extraction,
    PromptTruncated,
    conversation_windows,
    extract_facts,
    merge_extractions,
    render_conversation,
)
from app.memories.payloads import MemoryDraft, drafts_from_facts, drafts_from_messages
from app.memories.schemas import MemoryCreate
from app.metrics import Metrics
from app.telemetry.service import Telemetry
from app.writes.store import Drafts, DraftStore, JobCompletion

logger = logging.getLogger(__name__)
POLL_S = 1.0
CHAT_TRIES = 3  # tenacity retries inside one job attempt; the job-level limit sits on top
# Retrying these cannot help: the same input gives the same answer.
PERMANENT_ERRORS = (PromptTruncated, InvalidInput, InvalidModelOutput)
# Ollama or Postgres away (restarting, loading a model, overloaded): retried for MEM0_INFER_RETRY_WINDOW_S.
OLLAMA_CODES = frozenset({UpstreamError.code, UpstreamTimeout.code, UpstreamUnavailable.code})
TRANSIENT_CODES = OLLAMA_CODES | {StorageUnavailable.code}
RECOVERY_PROBE_S = 1.0


class ModelState:
    """Which model the workers use; switches to the fallback when the primary keeps failing."""

    def __init__(self, settings: Settings) -> None:
        self.primary = settings.llm_model
        self.fallback = settings.llm_fallback_model
        self.on_fallback = False


class JobWorkers:
    def __init__(
        self,
        settings: Settings,
        pool: AsyncConnectionPool,
        conninfo: str,
        ollama: OllamaClient,
        store: DraftStore,
        repository: JobRepository,
        graph: GraphService,
        metrics: Metrics,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.metrics = metrics
        self.telemetry = telemetry
        self.settings = settings
        self.pool = pool
        self.conninfo = conninfo
        self.ollama = ollama
        self.store = store
        self.repository = repository
        self.graph = graph
        self.models = ModelState(settings)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._ollama_suspect = False
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: dict[int, ClaimedJob] = {}

    def start(self) -> None:
        if self.settings.infer_workers == 0:
            return
        self._listener = asyncio.create_task(self._listen(), name="jobs-listen")
        self._watcher = asyncio.create_task(self._watch_ollama(), name="jobs-ollama-watch")
        self._workers = [
            asyncio.create_task(self._run(), name=f"jobs-worker-{index}")
            for index in range(self.settings.infer_workers)
        ]

    def alive(self) -> int:
        """Workers still running (for /ready and /metrics): fewer than MEM0_INFER_WORKERS means one died."""
        return sum(not task.done() for task in self._workers)

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        tasks = [*self._workers, *(task for task in (self._listener, self._watcher) if task is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers, self._listener, self._watcher = [], None, None
        await self._release_in_flight()

    async def _release_in_flight(self) -> None:
        """Give interrupted jobs back now, so another worker or the next start picks them up without a lease wait."""
        for job in list(self._in_flight.values()):
            try:
                async with self.pool.connection() as conn:
                    await self.repository.release(conn, job)
            except psycopg.Error as error:
                logger.warning("job %s stays leased until its lease ends: %s", job.ref, type(error).__name__)
        self._in_flight.clear()

    async def _listen(self) -> None:
        """A dedicated connection for LISTEN; any loss falls back to polling and reconnects."""
        while not self._stopping.is_set():
            try:
                async with await AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    async for _ in conn.notifies():
                        self._wake.set()
            except psycopg.Error as error:
                logger.warning("job LISTEN connection lost, polling until it is back: %s", error)
                await asyncio.sleep(POLL_S)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # cleared before looking, so a notify that arrives meanwhile is not lost
            try:
                worked = await self.run_one()
            except Exception:
                logger.exception("job worker step failed; the worker goes on")
                worked = False
            if worked:
                continue
            # The poll timeout is the fallback that finds due retries and expired leases.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_S)

    async def run_one(self) -> bool:
        """Claim one job and see it to an outcome recorded on the job; False when none was due."""
        async with storage_errors(), self.pool.connection() as conn:
            job = await self.repository.claim(conn, self.settings.infer_lease_s)
        if job is None:
            return False
        logger.info("job claimed", extra={"job_id": job.ref, "attempt": job.attempts})
        self._emit("job.running", job, attempt=job.attempts)
        if job.lease_expiries >= PoisonJob.AFTER_LEASE_EXPIRIES:
            await self._record_failure(job, PoisonJob(job.lease_expiries))
            return True
        self._in_flight[job.id] = job
        renewer = PeriodicTask(
            f"job-{job.id}-lease", self.settings.infer_lease_s / 3, lambda: self._renew(job), wait_first=True
        )
        try:
            async with renewer:
                await self._process(job)
        except Exception as error:  # noqa: BLE001 - whatever the job raised is recorded on the job
            await self._record_failure(job, error)
        # Not in a `finally`: a job interrupted by stop() stays in flight so stop() can hand it back.
        self._in_flight.pop(job.id, None)
        return True

    async def _renew(self, job: ClaimedJob) -> None:
        async with storage_errors(), self.pool.connection() as conn:
            if not await self.repository.renew_lease(conn, job, self.settings.infer_lease_s):
                logger.warning("job lease could not be renewed: another worker owns it now", extra={"job_id": job.ref})

    async def _process(self, job: ClaimedJob) -> None:
        try:
            request = MemoryCreate.model_validate(job.request["body"])
        except ValidationError as error:
            raise InvalidInput(f"the stored request no longer validates: {error.error_count()} error(s)") from None
        # A job queued before the graph was turned off stores its facts without it rather than failing.
        uses_graph = self.settings.graph_enabled and request.enable_graph is not False
        extraction = await self._extraction_of(job, request, uses_graph)
        drafts, outcome = self._drafts(request, extraction)
        write = Drafts(
            request.identifiers(),
            drafts,
            deduplicate=outcome == "llm",
            named_entities=extraction.entities if outcome == "llm" else (),
            extracted=len(extraction.facts),
            extraction=outcome,
            graph=graph_drafts(extraction) if uses_graph else None,
        )
        result = await self.store.store(write, job=JobCompletion(job, extraction.model))
        if result is None:
            logger.warning("job lost its lease before completing; nothing stored", extra={"job_id": job.ref})
            return
        stored = len(result.results)
        logger.info("job succeeded", extra={"job_id": job.ref, "stored": stored, "extraction": outcome})
        self._emit("job.succeeded", job, stored=stored, extraction=outcome, model=extraction.model)

    async def _extraction_of(self, job: ClaimedJob, request: MemoryCreate, uses_graph: bool) -> Extraction:
        """An earlier attempt's stored extraction, or a new one, stored before anything else can fail. With the
        graph, the prompt carries the scope's relations among the names the conversation mentions."""
        if job.extraction is not None:
            return Extraction.from_json(job.extraction)
        messages = [m.model_dump(exclude_none=True) for m in request.messages]
        known = None
        if uses_graph:
            known = await self.graph.known_relations(request.identifiers(), render_conversation(messages))
        categories = request.category_list() or [(name, "") for name in self.settings.categories]
        extraction = await self._extract(messages, Ask(request.instructions(), known, categories))
        self._report_dropped(job, extraction)
        async with storage_errors(), self.pool.connection() as conn:
            await self.repository.save_extraction(conn, job, extraction.to_json())
        return extraction

    def _report_dropped(self, job: ClaimedJob, extraction: Extraction) -> None:
        """The reply's unusable items, counted on /metrics by kind and reason and logged with the job."""
        if not extraction.dropped:
            return
        reasons = Counter((item.item, item.reason) for item in extraction.dropped)
        for (item, reason), count in reasons.items():
            self.metrics.model_output_dropped.labels(item, reason).inc(count)
        dropped = {f"{item}:{reason}": count for (item, reason), count in reasons.items()}
        logger.warning(
            "unusable items of the model's reply dropped; the rest is stored",
            extra={"job_id": job.ref, "dropped": dropped, "kept_facts": len(extraction.facts)},
        )

    def _drafts(self, request: MemoryCreate, extraction: Extraction) -> tuple[list[MemoryDraft], str]:
        """The memories to store and how they were found, by MEM0_INFER_EMPTY_POLICY when there are no facts."""
        if extraction.facts:
            return drafts_from_facts(request, extraction.facts, extraction.categories), "llm"
        policy = self.settings.infer_empty_policy
        if policy == "store_raw":
            return drafts_from_messages(request, extraction="raw_fallback"), "raw_fallback"
        if policy == "reject":
            raise NoFactsFound("the model found no facts in these messages (MEM0_INFER_EMPTY_POLICY=reject)")
        return [], "none"

    async def _extract(self, messages: list[dict[str, str]], ask: Ask) -> Extraction:
        """The facts of the whole conversation, window by window when it is longer than one context window."""
        windows = conversation_windows(
            messages, num_predict=self.settings.llm_num_predict, max_ctx=self.settings.llm_num_ctx, ask=ask
        )
        extractions = [await self._extract_window(window, ask) for window in windows]
        return merge_extractions(extractions)

    async def _extract_window(self, messages: list[dict[str, str]], ask: Ask) -> Extraction:
        models = [self.models.primary] + ([self.models.fallback] if self.models.fallback else [])
        last: AppError | None = None
        for model in models:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(CHAT_TRIES),
                    wait=wait_exponential_jitter(multiplier=0.2, max=5),
                    retry=retry_if_exception_type((UpstreamError, UpstreamTimeout, UpstreamUnavailable))
                    & retry_if_not_exception_type(PERMANENT_ERRORS),
                    reraise=True,
                ):
                    with attempt:
                        result = await extract_facts(
                            self.ollama,
                            model,
                            messages,
                            num_predict=self.settings.llm_num_predict,
                            max_ctx=self.settings.llm_num_ctx,
                            ask=ask,
                        )
                self.models.on_fallback = model != self.models.primary
                return result
            except (PromptTruncated, InvalidModelOutput):
                raise  # every model gets the same cut prompt; an unusable reply fails its job after this one call
            except AppError as error:
                last = error
        assert last is not None
        raise last

    async def _record_failure(self, job: ClaimedJob, error: Exception) -> None:
        """Retry later or fail for good, with a typed code: a transient failure (Ollama or Postgres away) is retried
        while the job's retry window lasts, any other by attempts. If even that cannot be written, the lease runs
        out and another worker retakes the job."""
        if isinstance(error, AppError):
            code, message = error.code, error.message
        elif isinstance(error, psycopg.Error):
            code, message = StorageUnavailable.code, f"the database failed: {type(error).__name__}"
        else:
            code, message = "internal_error", f"unexpected {type(error).__name__}: {error}"
            logger.error("job raised an unexpected error", exc_info=error, extra={"job_id": job.ref})
        permanent = isinstance(error, (*PERMANENT_ERRORS, PoisonJob))
        delay = backoff_delay_s(job.attempts, self.settings.infer_backoff_s, self.settings.infer_backoff_max_s)
        status: str | None  # None: another worker owns the job now
        try:
            async with storage_errors(), self.pool.connection() as conn:
                if permanent or (code not in TRANSIENT_CODES and job.attempts >= job.max_attempts):
                    await self.repository.fail(conn, job, code, message)
                    status = FAILED
                elif code in TRANSIENT_CODES:
                    window = self.settings.infer_retry_window_s
                    status = await self.repository.retry_within_window(conn, job, code, message, delay, window)
                else:
                    await self.repository.retry_later(conn, job, code, message, delay)
                    status = PENDING
        except AppError as record_error:
            logger.warning(
                "job outcome could not be recorded; its lease will run out and it is retaken",
                extra={"job_id": job.ref, "error": record_error.message},
            )
            return
        if code in OLLAMA_CODES:
            self._ollama_suspect = True
        if status == FAILED:
            logger.warning("job failed", extra={"job_id": job.ref, "attempts": job.attempts, "error": message})
            self._emit("job.failed", job, attempts=job.attempts, error_code=code)
        elif status == PENDING:
            logger.info("job will retry", extra={"job_id": job.ref, "error_code": code})
            self._emit("job.retry", job, attempts=job.attempts, error_code=code)

    async def _watch_ollama(self) -> None:
        """After an Ollama failure, asks Ollama every RECOVERY_PROBE_S whether it is there. Once it answers again
        after it was away (restarted, its host back), the jobs waiting out a backoff after an Ollama failure run
        at once instead of at the end of their backoff. A failure while Ollama itself answers (a model's error)
        keeps its backoff."""
        was_away = False
        while not self._stopping.is_set():
            await asyncio.sleep(RECOVERY_PROBE_S)
            if not self._ollama_suspect:
                continue
            try:
                await self.ollama.version(RECOVERY_PROBE_S)
            except AppError:
                was_away = True
                continue
            self._ollama_suspect = False
            if not was_away:
                continue
            was_away = False
            try:
                async with storage_errors(), self.pool.connection() as conn:
                    released = await self.repository.release_waiting_on(conn, sorted(OLLAMA_CODES))
            except AppError:
                continue  # the jobs run at the end of their backoff
            logger.info("Ollama answers again: the jobs waiting for it run now", extra={"jobs": released})
            self._wake.set()

    def _emit(self, kind: str, job: ClaimedJob, **attributes: Any) -> None:
        if self.telemetry is not None:
            self.telemetry.emit(kind, job_id=job.ref, **attributes)


def graph_drafts(extraction: Extraction) -> GraphDrafts:
    """The extraction's relations with the types of their ends (`entity` for a name the entity list left out)."""
    types = {node_name(entity.name): entity.type for entity in extraction.entities}
    relations = [
        TypedRelation(
            r.source, types.get(r.source, "entity"), r.relationship, r.destination, types.get(r.destination, "entity")
        )
        for r in extraction.relations
    ]
    return GraphDrafts(relations, extraction.ended_relations)
