"""The fault soak (issue 22): two server replicas on one Postgres and one Ollama stand-in take a mixed write load
(plain, keyed, inferred and keyed inferred writes, each with a text of its own) while a fixed schedule breaks what
they depend on, one fault after another: Ollama answers 500, Ollama hangs, replica A is killed with SIGKILL and
started again, Postgres restarts. The clients act as a load balancer would: a write that fails on one replica goes
to the other, a keyed one with its key until it is answered.

Afterwards every answered write is stored exactly once, a write answered only with errors stored nothing, every
keyed write ran once (its replay answers what it answered), every job the writes queued has succeeded, and
`mem0-fixed invariants` passes."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from tests.conftest import server_env
from tests.soak.conftest import REPORT
from tests.support.cli import run_cli
from tests.support.postgres import RestartablePostgres, create_database
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess
from tests.support.standin_process import OllamaStandin

SERVER_SETTINGS = {
    "MEM0_INFER_WORKERS": "2",
    # A dead replica's jobs and keys are taken over within seconds instead of the default half minute.
    "MEM0_INFER_LEASE_S": "6",
    "MEM0_IDEMPOTENCY_LEASE_S": "5",
    # Jobs that failed while Ollama misbehaved run again within seconds of its return.
    "MEM0_INFER_BACKOFF_S": "0.2",
    "MEM0_INFER_BACKOFF_MAX_S": "2",
    # A hung chat call is cut after 3 s, as a hung embedding call is (MEM0_EMBED_TIMEOUT_S in server_env).
    "MEM0_LLM_IDLE_TIMEOUT_S": "3",
    "MEM0_RATE_LIMIT": "",  # one API key sends the whole load
    "MEM0_LOG_LEVEL": "WARNING",
}
WRITERS = 8
WRITE_PAUSE_S = 0.25
RETRY_PAUSE_S = 0.3
# Longer than any wait inside the server (a pool connection 10 s, an embedding 3 s): a request left unanswered
# means its replica died.
CLIENT_TIMEOUT_S = 30.0
KEYED_DRAIN_S = 45.0
JOBS_SETTLE_S = 60.0
KINDS = ("plain", "keyed", "inferred", "keyed_inferred")
# What a write may be answered while the schedule runs: stored or queued, its key in flight elsewhere, the queue
# full, Ollama failing, slow or away, or Postgres away. Anything else (a bare 500 above all) is a finding.
EXPECTED_STATUSES = frozenset({200, 202, 409, 429, 502, 503, 504})

# The schedule, in seconds.
WARM_S = 8.0
OLLAMA_ERRORS_S = 4.0
OLLAMA_HANG_S = 5.0
GAP_S = 4.0
REPLICA_DEAD_S = 1.0
# A start beside the load (and whatever else shares the machine) takes several times an idle one's 2-3 s.
REPLICA_START_TIMEOUT_S = 90.0
POSTGRES_DOWN_S = 3.0
CALM_S = 10.0
# Ollama's own pace: slow enough that a replica holds requests when it is killed and Postgres when it stops.
EMBED_LATENCY_MS = 100
CHAT_LATENCY_MS = 300


@dataclass
class Write:
    marker: str
    user_id: str
    inferred: bool
    key: str | None
    answers: list[str] = field(default_factory=list)
    status: int | None = None  # of its 2xx
    result: dict[str, Any] | None = None  # the body of its 2xx

    @property
    def body(self) -> dict[str, Any]:
        inference = {"infer": True, "async_mode": True} if self.inferred else {"infer": False}
        return {"messages": [{"role": "user", "content": self.marker}], "user_id": self.user_id, **inference}

    @property
    def headers(self) -> dict[str, str]:
        return {"Idempotency-Key": self.key} if self.key else {}

    @property
    def cut_off(self) -> bool:
        """A request of it reached a replica that died before answering: unkeyed, it may or may not have run."""
        return any(not answer.isdigit() and answer != "ConnectError" for answer in self.answers)

    def describe(self) -> str:
        return f"{self.marker!r} key={self.key} answers={self.answers}"


class Load:
    """WRITERS clients, each sending one write at a time to a replica of its choosing and a failed one to the other.
    Connections are not reused, so a connection error means the request was never sent."""

    def __init__(self, replicas: list[str]) -> None:
        self.replicas = replicas
        self.writes: list[Write] = []
        self.keyed_in_flight = [0] * len(replicas)
        self._sending = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._keyed_deadline = math.inf

    async def run(self) -> None:
        await asyncio.gather(*(self._writer(index) for index in range(WRITERS)))

    async def keyed_write_on(self, replica: int, timeout_s: float) -> None:
        """Returns once `replica` holds a keyed write in flight."""
        async with asyncio.timeout(timeout_s), self._sending:
            await self._sending.wait_for(lambda: self.keyed_in_flight[replica] > 0)

    def stop(self) -> None:
        """No new writes; unkeyed ones stop retrying, keyed ones retry for KEYED_DRAIN_S more."""
        self._stopping.set()
        self._keyed_deadline = time.monotonic() + KEYED_DRAIN_S

    async def _writer(self, index: int) -> None:
        choices = random.Random(index)
        limits = httpx.Limits(max_keepalive_connections=0)
        headers = {"X-API-Key": TEST_ADMIN_KEY}
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits, headers=headers) as client:
            for number in itertools.count():
                if self._stopping.is_set():
                    return
                kind = choices.choice(KINDS)
                write = Write(
                    marker=f"soak {kind} w{index} n{number} {uuid.uuid4().hex[:8]}",
                    user_id=f"soak-{index}",
                    inferred=kind.endswith("inferred"),
                    key=uuid.uuid4().hex if kind.startswith("keyed") else None,
                )
                self.writes.append(write)
                await self._send(client, write, choices.randrange(len(self.replicas)))
                await asyncio.sleep(WRITE_PAUSE_S)

    async def _send(self, client: httpx.AsyncClient, write: Write, replica: int) -> None:
        while True:
            keyed = int(write.key is not None)
            async with self._sending:
                self.keyed_in_flight[replica] += keyed
                self._sending.notify_all()
            try:
                response = await client.post(
                    f"{self.replicas[replica]}/memories", json=write.body, headers=write.headers
                )
            except httpx.ConnectError as error:
                write.answers.append(type(error).__name__)
            except httpx.TransportError as error:
                write.answers.append(type(error).__name__)
                if write.key is None:
                    return  # sending it again could store it twice: only a key makes that safe
            else:
                write.answers.append(str(response.status_code))
                if response.is_success:
                    write.status, write.result = response.status_code, response.json()
                    return
                if response.status_code not in EXPECTED_STATUSES:
                    return
            finally:
                self.keyed_in_flight[replica] -= keyed
            if not self._may_retry(write):
                return
            replica = (replica + 1) % len(self.replicas)
            await asyncio.sleep(RETRY_PAUSE_S)

    def _may_retry(self, write: Write) -> bool:
        if write.key is None:
            return not self._stopping.is_set()
        return time.monotonic() < self._keyed_deadline


class Timeline:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.events: list[str] = []

    def mark(self, event: str) -> None:
        self.events.append(f"{time.monotonic() - self.started:5.1f}s {event}")

    async def step(self, event: str, action: Callable[[], object]) -> None:
        """`action` blocks (a process to kill or start, a control call), so it runs off the load's event loop."""
        self.mark(event)
        await asyncio.to_thread(action)


def on_every_ollama_call(**fault: object) -> dict[str, dict[str, object]]:
    return {op: dict(fault) for op in ("embed", "chat")}


async def fault_schedule(
    load: Load, standin: OllamaStandin, replica_a: ServerProcess, postgres: RestartablePostgres, timeline: Timeline
) -> None:
    await asyncio.sleep(WARM_S)
    await timeline.step("Ollama answers 500", lambda: standin.control(faults=on_every_ollama_call(kind="status")))
    await asyncio.sleep(OLLAMA_ERRORS_S)
    await timeline.step("Ollama answers again", standin.clear_faults)
    await asyncio.sleep(GAP_S)
    # Each call hangs longer than the server waits for it.
    hang = on_every_ollama_call(kind="hang", seconds=10)
    await timeline.step("Ollama hangs", lambda: standin.control(faults=hang))
    await asyncio.sleep(OLLAMA_HANG_S)
    await timeline.step("Ollama answers again", standin.clear_faults)
    await asyncio.sleep(GAP_S)
    await load.keyed_write_on(0, timeout_s=10)
    await timeline.step("replica A killed (SIGKILL) during a keyed write", replica_a.kill)
    await asyncio.sleep(REPLICA_DEAD_S)
    await timeline.step("replica A starting", lambda: replica_a.start().wait_ready(REPLICA_START_TIMEOUT_S))
    timeline.mark("replica A ready")
    await asyncio.sleep(GAP_S)
    await load.keyed_write_on(1, timeout_s=10)
    await timeline.step("Postgres stopping (fast) during a keyed write", postgres.stop)
    await asyncio.sleep(POSTGRES_DOWN_S)
    await timeline.step("Postgres starting", postgres.start)
    timeline.mark("Postgres up")
    await asyncio.sleep(CALM_S)


async def soak(
    standin: OllamaStandin, replicas: list[ServerProcess], postgres: RestartablePostgres
) -> tuple[Load, Timeline]:
    load = Load([replica.url for replica in replicas])
    timeline = Timeline()
    writing = asyncio.create_task(load.run())
    try:
        await fault_schedule(load, standin, replicas[0], postgres, timeline)
    finally:
        timeline.mark("load stops; keyed writes drain")
        load.stop()
        await writing
        timeline.mark("every write ended")
    return load, timeline


def wait_for_jobs(database: str, timeout_s: float) -> float:
    """Seconds until no job is pending or running; fails the test after `timeout_s`."""
    started = time.monotonic()
    unfinished: list[tuple[Any, ...]] = []
    while time.monotonic() - started < timeout_s:
        with psycopg.connect(database) as conn:
            unfinished = conn.execute(
                "SELECT public_id, status, attempts, lease_expiries, error_code, last_error FROM jobs "
                "WHERE status IN ('PENDING', 'RUNNING')"
            ).fetchall()
        if not unfinished:
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"{len(unfinished)} jobs still unfinished {timeout_s:g}s after the load: {unfinished[:10]}")


def stored_memories(database: str) -> dict[str, list[str]]:
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT payload ->> 'data', id::text FROM memories").fetchall()
    ids: dict[str, list[str]] = {}
    for text, memory_id in rows:
        ids.setdefault(text, []).append(memory_id)
    return ids


def finished_jobs(database: str) -> dict[str, tuple[str, str, str | None, int, int]]:
    """Job id -> (the text it was queued with, status, error code, attempts, lease expiries)."""
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT public_id::text, request #>> '{body,messages,0,content}', status, error_code, attempts, "
            "lease_expiries FROM jobs"
        ).fetchall()
    return {job_id: (text, status, code, attempts, expiries) for job_id, text, status, code, attempts, expiries in rows}


def storage_problems(
    writes: list[Write], memories: dict[str, list[str]], jobs: dict[str, tuple[str, str, str | None, int, int]]
) -> list[str]:
    problems = []
    jobs_of: dict[str, list[str]] = {}
    for job_id, (text, status, code, _, _) in jobs.items():
        jobs_of.setdefault(text, []).append(job_id)
        if status != "SUCCEEDED":
            problems.append(f"job {job_id} ({text!r}) ended {status} ({code})")
    for write in writes:
        stored = memories.get(write.marker, [])
        queued = jobs_of.get(write.marker, [])
        if write.result is not None:
            if len(stored) != 1:
                problems.append(f"answered {write.status} but stored {len(stored)} times: {write.describe()}")
            if write.inferred:
                if queued != [write.result["job_id"]]:
                    problems.append(
                        f"answered job {write.result['job_id']} but jobs {queued} hold it: {write.describe()}"
                    )
            elif sorted(stored) != sorted(item["id"] for item in write.result["results"]):
                problems.append(f"answered ids {write.result['results']} but stored {stored}: {write.describe()}")
        elif write.cut_off:
            if len(stored) > 1 or len(queued) > 1:
                problems.append(f"cut off, stored {len(stored)} times by {len(queued)} jobs: {write.describe()}")
        elif stored or queued:
            problems.append(f"answered only errors, yet stored {len(stored)} times by {queued}: {write.describe()}")
    return problems


def replay_problems(url: str, writes: list[Write]) -> list[str]:
    """Each keyed write sent once more with its key: the answer it got, replayed."""
    problems = []
    with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S, headers={"X-API-Key": TEST_ADMIN_KEY}) as client:
        for write in writes:
            if write.key is None:
                continue
            response = client.post("/memories", json=write.body, headers=write.headers)
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            if (response.status_code, response.json(), replayed) != (write.status, write.result, True):
                problems.append(f"replay answered {response.status_code} {response.text[:200]}: {write.describe()}")
    return problems


def test_every_answered_write_is_stored_once_through_the_fault_schedule(
    postgres: RestartablePostgres, standin: OllamaStandin
) -> None:
    database = create_database(postgres.uri, prefix="soak")
    env = server_env(database, standin, **SERVER_SETTINGS)
    standin.control(embed_latency_ms=EMBED_LATENCY_MS, chat_latency_ms=CHAT_LATENCY_MS)
    with ServerProcess(env) as replica_a, ServerProcess(env) as replica_b:
        load, timeline = asyncio.run(soak(standin, [replica_a, replica_b], postgres))
        writes = load.writes
        context = "\n".join(["timeline:", *timeline.events])

        unexpected = [
            w.describe() for w in writes if any(a.isdigit() and int(a) not in EXPECTED_STATUSES for a in w.answers)
        ]
        assert not unexpected, (
            f"answers outside {sorted(EXPECTED_STATUSES)}:\n" + "\n".join(unexpected[:20]) + f"\n{context}"
        )
        unanswered_keyed = [w.describe() for w in writes if w.key is not None and w.result is None]
        assert not unanswered_keyed, (
            "keyed writes never answered 2xx:\n" + "\n".join(unanswered_keyed[:20]) + f"\n{context}"
        )
        # The schedule reached the load: writes were refused while something was down, and retried.
        assert any(len(w.answers) > 1 for w in writes), context

        settled_s = wait_for_jobs(database, JOBS_SETTLE_S)
        jobs = finished_jobs(database)
        problems = storage_problems(writes, stored_memories(database), jobs)
        problems += replay_problems(replica_b.url, writes)
        assert not problems, "\n".join(problems[:30]) + f"\n({len(problems)} problems)\n{context}"

    invariants = run_cli(server_env(database, standin), "invariants")
    assert invariants.returncode == 0, invariants.stdout + invariants.stderr

    answers = Counter(answer for write in writes for answer in write.answers)
    REPORT.update(
        timeline=timeline.events,
        writes=dict(Counter(("keyed " if w.key else "") + ("inferred" if w.inferred else "plain") for w in writes)),
        answered=sum(w.result is not None for w in writes),
        retried=sum(len(w.answers) > 1 for w in writes),
        unkeyed_cut_off=sum(w.key is None and w.cut_off for w in writes),
        keyed_cut_off_then_resent=sum(w.key is not None and w.cut_off for w in writes),
        errors_only=sum(w.result is None and not w.cut_off for w in writes),
        answers=dict(answers.most_common()),
        jobs=len(jobs),
        jobs_retried=sum(attempts > 1 for _, _, _, attempts, _ in jobs.values()),
        jobs_lease_expired=sum(expiries > 0 for *_, expiries in jobs.values()),
        jobs_settled_s=round(settled_s, 1),
    )
