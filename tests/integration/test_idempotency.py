"""Idempotency-Key on POST /memories: retries store one result, across two server processes, failures and a crash."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from app.db.migrator import migrate
from app.errors import IdempotencyKeyInUse
from app.idempotency.repository import Claim, IdempotencyRepository
from app.idempotency.schemas import KeyedRequest, StoredResult
from app.idempotency.service import IdempotencyService
from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.postgres import count_rows
from tests.support.server_process import ServerProcess

REPLAYED = "Idempotent-Replayed"
LEASE_S = "2"


def _body(user: str, n: int = 3, **extra: object) -> dict[str, object]:
    messages = [{"role": "user", "content": f"{user} fact {i}: I like colour {i}"} for i in range(n)]
    return {"messages": messages, "user_id": user, "infer": False, **extra}


def _new(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _memories(db: str, user: str) -> int:
    return count_rows(db, "memories", "payload ->> 'user_id' = %s", (user,))


def _keys(db: str, key: str) -> int:
    return count_rows(db, "idempotency_keys", "key = %s", (key,))


def _ollama_calls(standin) -> int:
    return sum(standin.stats()["counts"].values())


@pytest.fixture(scope="module")
def pair(module_db, standin_session) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes on one database, as two replicas behind a load balancer."""
    env = server_env(module_db, standin_session, MEM0_IDEMPOTENCY_LEASE_S=LEASE_S)
    first, second = ServerProcess(env), ServerProcess(env)
    try:
        first.start(), second.start()
        first.wait_ready(), second.wait_ready()
        yield first, second
    finally:
        first.stop()
        second.stop()


def _post(server: ServerProcess | InProcessServer, body: dict[str, object], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    with server.client() as client:
        return client.post("/memories", json=body, headers=headers)


def test_twenty_concurrent_retries_over_two_servers_store_one_result(pair, module_db, standin):
    standin.control(embed_latency_ms=1000)  # the first request holds the key while the others arrive
    user, key = _new("conc"), _new("key")
    body = _body(user)
    start = threading.Barrier(20)

    def send(i: int) -> httpx.Response:
        with pair[i % 2].client() as client:
            start.wait()
            return client.post("/memories", json=body, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(20) as workers:
        responses = list(workers.map(send, range(20)))

    assert {r.status_code for r in responses} <= {200, 409}, [r.text for r in responses]
    ok = [r for r in responses if r.status_code == 200]
    conflicts = [r for r in responses if r.status_code == 409]
    assert len({r.content for r in ok}) == 1
    assert len([r for r in ok if REPLAYED not in r.headers]) == 1  # exactly one request ran the write
    assert conflicts, "no request overlapped the first one; the test did not exercise concurrency"
    for conflict in conflicts:
        assert conflict.json()["error"] == "idempotency_key_in_use"
        assert int(conflict.headers["Retry-After"]) >= 1
    assert _memories(module_db, user) == 3
    assert standin.stats()["counts"]["embed"] == 1

    for server in pair:
        replay = _post(server, body, key)
        assert replay.status_code == 200
        assert replay.content == ok[0].content
        assert replay.headers[REPLAYED] == "true"
    assert _memories(module_db, user) == 3


def test_a_replay_answers_the_stored_bytes_without_calling_ollama(pair, module_db, standin):
    user, key = _new("replay"), _new("key")
    first = _post(pair[0], _body(user), key)
    assert first.status_code == 200, first.text
    assert REPLAYED not in first.headers
    standin.reset_stats()

    replay = _post(pair[1], _body(user), key)

    assert replay.status_code == 200
    assert replay.content == first.content
    assert replay.headers[REPLAYED] == "true"
    assert replay.headers["content-type"] == "application/json"
    assert _ollama_calls(standin) == 0
    assert _memories(module_db, user) == 3


def test_the_key_may_be_sent_quoted_bare_or_in_the_body(pair, module_db, standin):
    user, key = _new("forms"), _new("key")
    first = _post(pair[0], _body(user), f'"{key}"')
    assert first.status_code == 200, first.text

    bare = _post(pair[1], _body(user), key)
    in_body = _post(pair[0], _body(user, idempotency_key=key))
    both = _post(pair[1], _body(user, idempotency_key=key), key)

    for replay in (bare, in_body, both):
        assert (replay.status_code, replay.content, replay.headers.get(REPLAYED)) == (200, first.content, "true")
    assert _memories(module_db, user) == 3


def test_the_same_key_with_a_different_body_is_422_and_changes_nothing(pair, module_db, standin):
    user, key = _new("reuse"), _new("key")
    first = _post(pair[0], _body(user), key)
    assert first.status_code == 200

    other = _post(pair[1], _body(user, n=2), key)

    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    assert "different request" in other.json()["message"]
    assert _memories(module_db, user) == 3
    assert _post(pair[0], _body(user), key).content == first.content


def test_a_failed_write_releases_the_key_so_the_retry_runs(pair, module_db, standin):
    user, key = _new("retry"), _new("key")
    standin.set_fault("embed", kind="status", status=500, count=1)

    failed = _post(pair[0], _body(user), key)

    assert failed.status_code == 502, failed.text
    assert _memories(module_db, user) == 0
    assert _keys(module_db, key) == 0

    retried = _post(pair[1], _body(user), key)

    assert retried.status_code == 200, retried.text
    assert REPLAYED not in retried.headers
    assert _memories(module_db, user) == 3
    assert _post(pair[0], _body(user), key).content == retried.content


def test_a_client_error_also_releases_the_key(pair, module_db, standin):
    key = _new("key")
    only_system = {"messages": [{"role": "system", "content": "be brief"}], "user_id": _new("sys"), "infer": False}

    assert _post(pair[0], only_system, key).status_code == 422
    assert _keys(module_db, key) == 0


@pytest.mark.parametrize(
    ("header", "field"),
    [("", None), ("x" * 256, None), ('"unterminated', None), (None, ""), (None, "a\u0001b"), ("one", "two")],
    ids=["empty", "256-chars", "bad-quoting", "empty-body-field", "control-char", "header-and-body-differ"],
)
def test_a_bad_key_is_400_and_nothing_runs(pair, module_db, standin, header, field):
    user = _new("bad")
    body = _body(user) if field is None else _body(user, idempotency_key=field)

    response = _post(pair[0], body, header)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_idempotency_key"
    assert _memories(module_db, user) == 0
    assert _ollama_calls(standin) == 0


def test_writes_without_a_key_are_unchanged(pair, module_db, standin):
    user = _new("plain")
    body = _body(user)

    assert [_post(pair[0], body).status_code for _ in range(2)] == [200, 200]
    assert _memories(module_db, user) == 6


def test_openapi_documents_the_header(pair):
    with pair[0].client() as client:
        operation = client.get("/openapi.json").json()["paths"]["/memories"]["post"]

    [header] = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and "Idempotent-Replayed" in header["description"]
    assert "409" in operation["responses"] and "Retry-After" in operation["description"]


def test_a_key_held_by_a_killed_server_is_retaken_after_the_lease(pair, module_db, standin):
    user, key = _new("crash"), _new("key")
    victim = ServerProcess(
        server_env(module_db, standin, MEM0_IDEMPOTENCY_LEASE_S="4", MEM0_EMBED_TIMEOUT_S="60")
    ).start()
    try:
        victim.wait_ready()
        standin.set_fault("embed", kind="hang", seconds=60, count=1)
        standin.reset_stats()
        errors: list[Exception] = []

        def doomed_write() -> None:
            try:
                _post(victim, _body(user), key)
            except httpx.HTTPError as error:
                errors.append(error)

        writer = threading.Thread(target=doomed_write)
        writer.start()
        deadline = time.monotonic() + 15
        while standin.stats()["counts"].get("embed", 0) == 0:  # the write holds the key and waits on Ollama
            assert time.monotonic() < deadline, "the keyed write never reached the stand-in"
            time.sleep(0.05)
        victim.kill()
        writer.join(timeout=10)
        assert errors, "the killed server still answered"
        assert _memories(module_db, user) == 0

        held = _post(pair[0], _body(user), key)  # within the dead holder's lease: still in flight
        assert held.status_code == 409
        assert 1 <= int(held.headers["Retry-After"]) <= 4

        victim.start().wait_ready()
        deadline = time.monotonic() + 20
        while (retried := _post(victim, _body(user), key)).status_code == 409:
            assert time.monotonic() < deadline, "the abandoned key was never released"
            time.sleep(0.5)
    finally:
        victim.stop()

    assert retried.status_code == 200, retried.text
    assert REPLAYED not in retried.headers
    assert len(retried.json()["results"]) == 3
    assert _memories(module_db, user) == 3
    assert _post(pair[1], _body(user), key).content == retried.content


@pytest.mark.slow  # in-process, but it waits out the keys' TTL
def test_expired_keys_are_purged_and_the_key_can_be_used_again(module_db, standin):
    user, key = _new("purge"), _new("key")
    env = server_env(
        module_db,
        standin,
        MEM0_IDEMPOTENCY_TTL_S="2",
        MEM0_IDEMPOTENCY_LEASE_S="1",
        MEM0_IDEMPOTENCY_PURGE_INTERVAL_S="0.5",
    )
    with InProcessServer(env) as app_server:
        assert _post(app_server, _body(user), key).status_code == 200
        assert _keys(module_db, key) == 1

        deadline = time.monotonic() + 15
        while _keys(module_db, key):  # the app's background task deletes it after the TTL
            assert time.monotonic() < deadline, "the expired key was never purged"
            time.sleep(0.25)

        reused = _post(app_server, _body(user, n=2), key)  # a different body: no 422, the key is free again

    assert reused.status_code == 200, reused.text
    assert REPLAYED not in reused.headers
    assert _memories(module_db, user) == 3 + 2


# The service against a real database, for the cases a server process cannot time reliably.


@pytest.fixture
async def key_pool(fresh_db) -> Iterator[AsyncConnectionPool]:
    await migrate(fresh_db, collection="memories", dims=8)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE writes (id serial PRIMARY KEY, note text)")
    pool = AsyncConnectionPool(fresh_db, min_size=1, max_size=4, open=False)
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


def _service(pool: AsyncConnectionPool, *, lease_s: float = 60.0, ttl_s: float = 3600.0) -> IdempotencyService:
    return IdempotencyService(pool, IdempotencyRepository(), lease_s=lease_s, ttl_s=ttl_s)


async def _keyed_write(
    service: IdempotencyService, pool: AsyncConnectionPool, key: str, note: str, delay_s: float = 0.0
) -> tuple[StoredResult, bool]:
    """A keyed write composed as the write service composes its own: run once, complete before commit. The
    result and whether it was replayed."""
    async with service.run_once(KeyedRequest("s", key, "fp")) as once:
        if once.replay is not None:
            return once.replay, True
        result = StoredResult(200, note.encode())
        await asyncio.sleep(delay_s)
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("INSERT INTO writes (note) VALUES (%s)", (note,))
            await once.complete(conn, result)
    return result, False


async def _claim_and_walk_away(pool: AsyncConnectionPool, key: str, *, lease_s: float, ttl_s: float) -> bool:
    """A holder that claims a key and is never heard of again."""
    async with pool.connection() as conn:
        claim = Claim("s", key, "fp", uuid.uuid4())
        return await IdempotencyRepository().claim(conn, claim, lease_s=lease_s, ttl_s=ttl_s)


async def _notes(pool: AsyncConnectionPool) -> list[str]:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT note FROM writes ORDER BY id")
        return [row[0] for row in await cursor.fetchall()]


async def test_a_slow_write_renews_its_lease_so_no_retry_takes_the_key(key_pool):
    holder = _service(key_pool, lease_s=0.3)
    slow_write = asyncio.create_task(_keyed_write(holder, key_pool, "k", "slow", delay_s=1.2))
    await asyncio.sleep(0.8)  # well past one lease: only renewals keep the key

    with pytest.raises(IdempotencyKeyInUse):
        await _keyed_write(_service(key_pool), key_pool, "k", "retry")

    assert (await slow_write)[0].body == b"slow"
    assert await _notes(key_pool) == ["slow"]


class _StalledHolder(IdempotencyService):
    """A holder whose renewals stopped (a frozen process) while its write still goes on."""

    async def _renew(self, claim) -> None:
        return None


async def test_a_stalled_holder_whose_key_was_taken_over_commits_nothing(key_pool):
    stalled = _StalledHolder(key_pool, IdempotencyRepository(), lease_s=0.3, ttl_s=3600)
    slow_write = asyncio.create_task(_keyed_write(stalled, key_pool, "k", "stalled", delay_s=1.0))
    await asyncio.sleep(0.6)  # its lease ran out: a retry takes the key over

    retry = await _keyed_write(_service(key_pool), key_pool, "k", "retry")

    with pytest.raises(IdempotencyKeyInUse):
        await slow_write
    assert retry == (StoredResult(200, b"retry"), False)
    assert await _notes(key_pool) == ["retry"]
    replay, replayed = await _keyed_write(_service(key_pool), key_pool, "k", "again")
    assert replayed and replay.body == b"retry"


async def test_purge_deletes_expired_keys_only(key_pool):
    short, long = _service(key_pool, lease_s=0.1, ttl_s=0.1), _service(key_pool)
    await _keyed_write(short, key_pool, "done-expired", "a")
    abandoned = await _claim_and_walk_away(key_pool, "abandoned-expired", lease_s=0.1, ttl_s=0.1)
    await _keyed_write(long, key_pool, "done-live", "b")
    in_flight = await _claim_and_walk_away(key_pool, "in-flight-live", lease_s=60.0, ttl_s=3600.0)
    assert abandoned and in_flight
    await asyncio.sleep(0.3)

    assert await long.purge_expired() == 2

    async with key_pool.connection() as conn:
        cursor = await conn.execute("SELECT key FROM idempotency_keys ORDER BY key")
        assert [row[0] for row in await cursor.fetchall()] == ["done-live", "in-flight-live"]
    with pytest.raises(IdempotencyKeyInUse):
        async with long.run_once(KeyedRequest("s", "in-flight-live", "fp")):
            pass
