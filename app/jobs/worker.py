"""In-process queue workers: claim a job, extract facts, store them and complete the job in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from app.config import Settings
from app.errors import AppError, InvalidInput, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from app.jobs.repository import NOTIFY_CHANNEL, ClaimedJob, JobRepository, backoff_delay_s
from app.llm.client import OllamaClient
from app.llm.extraction import Extraction, PromptTruncated, extract_facts
from app.memories.schemas import MemoryCreate
from app.memories.service import MemoryService, PreparedMemory, memory_hash, now_iso
from app.telemetry.service import Telemetry

logger = logging.getLogger(__name__)
POLL_S = 1.0
CHAT_TRIES = 3  # tenacity retries inside one job attempt; the job-level limit sits on top


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
        memories: MemoryService,
        repository: JobRepository,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.settings = settings
        self.pool = pool
        self.conninfo = conninfo
        self.ollama = ollama
        self.memories = memories
        self.repository = repository
        self.models = ModelState(settings)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: dict[int, ClaimedJob] = {}

    def start(self) -> None:
        if self.settings.infer_workers == 0:
            return
        self._tasks.append(asyncio.create_task(self._listen(), name="jobs-listen"))
        for index in range(self.settings.infer_workers):
            self._tasks.append(asyncio.create_task(self._run(), name=f"jobs-worker-{index}"))

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._release_in_flight()

    async def _release_in_flight(self) -> None:
        """Give interrupted jobs back now, so another worker or the next start picks them up without a lease wait."""
        for job in list(self._in_flight.values()):
            try:
                async with self.pool.connection() as conn, conn.transaction():
                    await self.repository.release(conn, job)
            except psycopg.Error as error:
                logger.warning("job %s stays leased until its lease ends: %s", job.id, type(error).__name__)
        self._in_flight.clear()

    def wake(self) -> None:
        self._wake.set()

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
            except (psycopg.Error, AppError) as error:
                logger.warning("job worker could not reach the database: %s", error)
                worked = False
            if worked:
                continue
            # The poll timeout is the fallback that finds due retries and expired leases.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_S)

    async def run_one(self) -> bool:
        async with self.pool.connection() as conn, conn.transaction():
            job = await self.repository.claim(conn, self.settings.infer_lease_s)
        if job is None:
            return False
        logger.info("job claimed", extra={"job_id": job.id, "attempt": job.attempts})
        self._emit("job.running", job, attempt=job.attempts)
        self._in_flight[job.id] = job
        try:
            await self._process(job)
        except (AppError, psycopg.Error) as error:
            message = getattr(error, "message", None) or str(error)
            await self._record_failure(job, message, permanent=isinstance(error, (PromptTruncated, InvalidInput)))
        self._in_flight.pop(job.id, None)
        return True

    async def _record_failure(self, job: ClaimedJob, message: str, *, permanent: bool) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            if permanent or job.attempts >= job.max_attempts:
                await self.repository.fail(conn, job, message)
                logger.warning("job failed", extra={"job_id": job.id, "attempts": job.attempts, "error": message})
                self._emit("job.failed", job, attempts=job.attempts)
            else:
                delay = backoff_delay_s(job.attempts, self.settings.infer_backoff_s)
                await self.repository.retry_later(conn, job, message, delay)
                logger.info("job will retry", extra={"job_id": job.id, "delay_s": round(delay, 2)})
                self._emit("job.retry", job, attempts=job.attempts, delay_s=round(delay, 2))

    async def _extract(self, messages: list[dict[str, str]]) -> Extraction:
        models = [self.models.primary] + ([self.models.fallback] if self.models.fallback else [])
        last: AppError | None = None
        for model in models:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(CHAT_TRIES),
                    wait=wait_exponential_jitter(initial=0.2, max=5),
                    retry=retry_if_exception_type((UpstreamError, UpstreamTimeout, UpstreamUnavailable)),
                    reraise=True,
                ):
                    with attempt:
                        result = await extract_facts(
                            self.ollama,
                            model,
                            messages,
                            num_predict=self.settings.llm_num_predict,
                            max_ctx=self.settings.llm_num_ctx,
                        )
                self.models.on_fallback = model != self.models.primary
                return result
            except PromptTruncated:
                raise
            except AppError as error:
                last = error
        assert last is not None
        raise last

    async def _process(self, job: ClaimedJob) -> None:
        request = MemoryCreate.model_validate(job.request["body"])
        messages = [m.model_dump(exclude_none=True) for m in request.messages]
        extraction = await self._extract(messages)
        policy = self.settings.infer_empty_policy
        outcome = "llm"
        already_stored = 0
        if extraction.facts:
            extracted = self._prepare_facts(request, extraction.facts)
            prepared = await self.memories.drop_already_stored(request.identifiers(), extracted)
            already_stored = len(extracted) - len(prepared)
        elif policy == "store_raw":
            prepared = self.memories.prepare_raw(request)
            for item in prepared:
                item.payload["extraction"] = "raw_fallback"
            outcome = "raw_fallback"
        elif policy == "reject":
            raise InvalidInput("the model found no facts in these messages (MEM0_INFER_EMPTY_POLICY=reject)")
        else:
            prepared = []
            outcome = "none"

        async def finish(conn: AsyncConnection[Any], results: list[dict[str, Any]]) -> bool:
            if not await self.repository.lock_running(conn, job):
                return False  # the lease expired and another worker owns the job now
            payload = {
                "results": results,
                "extracted": len(extraction.facts),
                "already_stored": already_stored,
                "extraction": outcome,
            }
            await self.repository.complete(conn, job.id, payload, extraction.model)
            return True

        stored = await self.memories.store_then(prepared, finish)
        if stored is None:
            logger.warning("job lost its lease before completing; nothing stored", extra={"job_id": job.id})
        else:
            logger.info("job succeeded", extra={"job_id": job.id, "stored": len(stored), "extraction": outcome})
            self._emit("job.succeeded", job, stored=len(stored), extraction=outcome, model=extraction.model)

    def _emit(self, kind: str, job: ClaimedJob, **attributes: Any) -> None:
        if self.telemetry is not None:
            self.telemetry.emit(kind, job_id=job.id, **attributes)

    def _prepare_facts(self, request: MemoryCreate, facts: list[str]) -> list[PreparedMemory]:
        created_at = now_iso()
        base = {**(request.metadata or {}), **request.identifiers()}
        unique = list(dict.fromkeys(facts))
        return [
            PreparedMemory(
                fact,
                {
                    **base,
                    "data": fact,
                    "hash": memory_hash(fact),
                    "extraction": "llm",
                    "created_at": created_at,
                    "updated_at": created_at,
                },
                "user",
                None,
            )
            for fact in unique
        ]
