"""POST /memories with infer: false persists every message or nothing, and says which."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.support.postgres import count_rows


def _messages(n: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"fact number {i}: I like colour {i}"} for i in range(n)]


def test_five_messages_are_five_committed_memories_readable_at_once(app_api, module_db, standin):
    user = f"u-{uuid.uuid4().hex}"
    before = count_rows(module_db, "memories")

    response = app_api.post("/memories", json={"messages": _messages(5), "user_id": user, "infer": False})

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 5
    assert all(r["event"] == "ADD" and r["role"] == "user" for r in results)
    ids = {r["id"] for r in results}
    assert count_rows(module_db, "memories") == before + 5
    listed = app_api.get("/memories", params={"user_id": user}).json()["results"]
    assert {m["id"] for m in listed} == ids
    for memory_id in ids:
        item = app_api.get(f"/memories/{memory_id}").json()
        assert item["user_id"] == user and item["memory"].startswith("fact number")
        history = app_api.get(f"/memories/{memory_id}/history").json()
        assert [h["event"] for h in history] == ["ADD"]
    found = app_api.post("/search", json={"query": "colour", "user_id": user, "top_k": 10}).json()["results"]
    assert {m["id"] for m in found} == ids
    assert (
        count_rows(module_db, "memory_history", "event = 'ADD' AND memory_id = ANY(%s)", ([uuid.UUID(i) for i in ids],))
        == 5
    )


def test_all_messages_of_a_write_are_embedded_in_one_call(app_api, standin):
    response = app_api.post("/memories", json={"messages": _messages(5), "user_id": "batch", "infer": False})

    assert response.status_code == 200
    stats = standin.stats()
    assert stats["counts"]["embed"] == 1
    assert stats["embed_inputs"] == 5


def test_system_messages_are_not_stored_and_names_become_actor_ids(app_api):
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "My name is Ada.", "name": "ada"},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
    ]
    response = app_api.post("/memories", json={"messages": messages, "agent_id": "a1", "infer": False})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["role"], r["actor_id"]) for r in results] == [("user", "ada"), ("assistant", None)]


def test_metadata_is_stored_with_each_memory_and_returned(app_api):
    body = {"messages": _messages(1), "user_id": "meta", "metadata": {"topic": "colours", "n": 3}, "infer": False}
    [created] = app_api.post("/memories", json=body).json()["results"]

    item = app_api.get(f"/memories/{created['id']}").json()

    assert item["metadata"] == {"topic": "colours", "n": 3}


@pytest.mark.parametrize("body", [{}, {"infer": True}], ids=["infer-absent", "infer-true"])
def test_inferred_writes_become_jobs(app_api, body):
    """infer defaults to true, as in mem0: the write goes through the job queue (tests/integration/test_infer_jobs.py)."""
    response = app_api.post("/memories", json={"messages": _messages(1), "user_id": "x", "async_mode": True, **body})

    assert response.status_code == 202, response.text
    assert app_api.get(f"/jobs/{response.json()['job_id']}").status_code == 200


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"kind": "status", "status": 500}, 502),
        ({"kind": "wrong_dims", "dims": 1536}, 502),
        ({"kind": "malformed"}, 502),
    ],
    ids=["ollama-500", "wrong-dims", "malformed-json"],
)
def test_an_embedder_failure_is_a_5xx_json_error_and_stores_nothing(app_api, module_db, standin, fault, status):
    standin.set_fault("embed", **fault)
    before = (count_rows(module_db, "memories"), count_rows(module_db, "memory_history"))

    response = app_api.post("/memories", json={"messages": _messages(3), "user_id": "f", "infer": False})

    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "detail", "request_id"}
    assert body["request_id"] == response.headers["x-request-id"]
    assert (count_rows(module_db, "memories"), count_rows(module_db, "memory_history")) == before


@pytest.mark.slow  # in-process, but it waits out the 3 s embed timeout
def test_an_embedder_that_hangs_fails_within_the_timeout_plus_a_second(app_api, module_db, standin):
    standin.set_fault("embed", kind="hang", seconds=60)
    before = count_rows(module_db, "memories")

    started = time.monotonic()
    response = app_api.post("/memories", json={"messages": _messages(2), "user_id": "h", "infer": False})
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.json()["error"] == "upstream_timeout"
    assert elapsed < 3 + 1  # MEM0_EMBED_TIMEOUT_S=3 in the test servers
    assert count_rows(module_db, "memories") == before


def test_a_client_request_id_is_echoed(app_api):
    response = app_api.get("/health", headers={"X-Request-ID": "trace-123"})

    assert response.headers["x-request-id"] == "trace-123"
