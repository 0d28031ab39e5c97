"""Inferred-write admission is atomic and shared fairly (issue 22, item 5): concurrent writes never pass the queue's
limits (one lock covers the count and the insert), and one API key cannot fill the queue for the others."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.jobs import infer_write
from tests.support.keys import mint_key


@pytest.fixture
def app(fresh_db, standin):
    # No workers: every accepted job stays waiting.
    env = server_env(fresh_db, standin, MEM0_INFER_WORKERS="0", MEM0_QUEUE_MAX="6", MEM0_QUEUE_MAX_PER_KEY="3")
    with InProcessServer(env) as app:
        yield app


def _burst(client, user: str, count: int) -> list:
    def write(index: int):
        return client.post("/memories", json=infer_write(user, f"Fact number {index}.", async_mode=True))

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(write, range(count)))


def test_concurrent_writes_never_pass_either_limit(app, fresh_db):
    tenants = [f"t{index}-{uuid.uuid4().hex[:6]}" for index in range(3)]
    keys = [mint_key(fresh_db, "--name", tenant, "--user-id", tenant) for tenant in tenants]

    answers = {}
    for tenant, key in zip(tenants, keys, strict=True):
        with app.client(headers={"X-API-Key": key}) as client:
            answers[tenant] = _burst(client, tenant, 12)

    first, second, third = (answers[tenant] for tenant in tenants)
    assert sorted(r.status_code for r in first) == [202] * 3 + [429] * 9
    assert all("MEM0_QUEUE_MAX_PER_KEY" in r.json()["message"] for r in first if r.status_code == 429)
    assert sorted(r.status_code for r in second) == [202] * 3 + [429] * 9
    assert all(r.status_code == 429 and "MEM0_QUEUE_MAX=6" in r.json()["message"] for r in third)
    assert all(r.headers["Retry-After"] == "5" for r in first + second + third if r.status_code == 429)
