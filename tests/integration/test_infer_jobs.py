"""infer: true writes go through the durable job queue: accepted fast, always persisted or visibly failed.

The in-process app (`infer_app`) answers the request/response cases; a kill -9 and a stop signal need a server
process (`infer_server`). Both factories are in tests/integration/conftest.py."""

from __future__ import annotations

import uuid

import pytest

from tests.support.jobs import infer_write, wait_job
from tests.support.ollama_standin import DEFAULT_MODELS
from tests.support.postgres import count_rows

# In-process, but waiting on jobs (slow chats, retries, backoffs) takes seconds a test: `make test` runs these.
pytestmark = pytest.mark.slow

EMBEDDER = "nomic-embed-text:latest"


def test_twenty_async_writes_are_accepted_and_every_fact_is_stored(infer_app, standin, fresh_db):
    standin.control(chat_latency_ms=1000)
    server = infer_app()
    user = f"u-{uuid.uuid4().hex}"
    with server.client() as client:
        accepted = [
            client.post("/memories", json=infer_write(user, f"My cat number {i} is called Tom{i}.", async_mode=True))
            for i in range(20)
        ]
        assert all(r.status_code == 202 for r in accepted), [r.text for r in accepted]
        assert all(r.json()["status"] == "PENDING" for r in accepted)
        jobs = [wait_job(client, r.json()["job_id"]) for r in accepted]
        assert all(job["status"] == "SUCCEEDED" for job in jobs), jobs
        stored = {m["memory"] for m in client.get("/memories", params={"user_id": user}).json()["results"]}
    facts = {r["memory"] for job in jobs for r in job["results"]}
    assert len(facts) >= 20 and facts <= stored
    assert all(job["extraction"] == "llm" for job in jobs)


def test_sync_write_answers_mem0_shaped_results(infer_app, standin):
    server = infer_app()
    with server.client() as client:
        response = client.post("/memories", json=infer_write("u-sync", "I live in Lyon and I work as a baker."))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["extraction"] == "llm" and body["extracted"] == len(body["results"]) >= 1
    assert all(set(r) >= {"id", "memory", "event"} and r["event"] == "ADD" for r in body["results"])


def test_a_chat_failing_every_second_call_still_gets_every_job_done(infer_app, standin):
    standin.set_fault("chat", kind="status", status=500, every=2)
    server = infer_app()
    with server.client() as client:
        ids = [
            client.post("/memories", json=infer_write("u-flaky", f"I own {i} bikes.", async_mode=True))
            for i in range(6)
        ]
        jobs = [wait_job(client, r.json()["job_id"]) for r in ids]
    assert all(job["status"] == "SUCCEEDED" for job in jobs), jobs


def test_ollama_down_fails_the_job_visibly_and_keeps_the_raw_messages(infer_app, standin, fresh_db):
    server = infer_app(MEM0_INFER_MAX_ATTEMPTS="2", MEM0_INFER_RETRY_WINDOW_S="1")
    standin.set_fault("chat", kind="status", status=503, every=1)
    with server.client() as client:
        response = client.post("/memories", json=infer_write("u-down", "I was born in Oslo."))
        assert response.status_code >= 500, response.text
        body = response.json()
        job_id = body["job_id"]
        job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "FAILED" and "503" in job["last_error"]
    assert job["messages"][0]["content"] == "I was born in Oslo."
    assert count_rows(fresh_db, "memories") == 0


def test_a_failed_job_can_be_retried_once_ollama_is_back(infer_app, standin, fresh_db):
    server = infer_app(MEM0_INFER_MAX_ATTEMPTS="1", MEM0_INFER_RETRY_WINDOW_S="0")
    standin.set_fault("chat", kind="status", status=503, every=1)
    with server.client() as client:
        job_id = client.post("/memories", json=infer_write("u-retry", "I was born in Oslo.", async_mode=True)).json()[
            "job_id"
        ]
        assert wait_job(client, job_id)["status"] == "FAILED"
        standin.clear_faults()

        retried = client.post(f"/jobs/{job_id}/retry")
        job = wait_job(client, job_id)
        again = client.post(f"/jobs/{job_id}/retry")

    assert retried.status_code == 200 and job["status"] == "SUCCEEDED"
    assert again.status_code == 409
    assert count_rows(fresh_db, "memories") >= 1


@pytest.mark.parametrize(
    ("policy", "status", "extraction"),
    [("store_raw", 200, "raw_fallback"), ("keep_empty", 200, "none"), ("reject", 422, None)],
)
def test_no_facts_follows_the_empty_policy(infer_app, standin, policy, status, extraction):
    standin.control(chat_reply='{"facts": []}')
    server = infer_app(MEM0_INFER_EMPTY_POLICY=policy)
    with server.client() as client:
        response = client.post("/memories", json=infer_write("u-empty", "hello there"))
    assert response.status_code == status, response.text
    body = response.json()
    if status == 200:
        assert body["extracted"] == 0 and body["extraction"] == extraction
        assert len(body["results"]) == (1 if policy == "store_raw" else 0)
    else:
        assert "no facts" in body["message"]


def test_a_prompt_overflowing_num_ctx_is_reported_not_stored_as_no_facts(infer_app, standin, fresh_db):
    server = infer_app(MEM0_LLM_NUM_CTX="2048")
    long_text = "I like apples. " * 600
    with server.client() as client:
        response = client.post("/memories", json=infer_write("u-long", long_text))
        assert response.status_code >= 500, response.text
        job = client.get(f"/jobs/{response.json()['job_id']}").json()
    assert job["status"] == "FAILED" and "MEM0_LLM_NUM_CTX" in job["last_error"]
    assert job["attempts"] == 1
    assert count_rows(fresh_db, "memories") == 0


def test_an_idempotency_key_maps_an_inferred_write_to_one_job(infer_app, standin, fresh_db):
    server = infer_app()
    body = infer_write(f"u-{uuid.uuid4().hex}", "I was born in Oslo.")
    with server.client() as client:
        first = client.post("/memories", json=body, headers={"Idempotency-Key": "infer-once"})
        replay = client.post("/memories", json=body, headers={"Idempotency-Key": "infer-once"})
        job = wait_job(client, first.json()["job_id"])

    assert first.status_code == replay.status_code == 202
    assert replay.content == first.content and replay.headers["idempotent-replayed"] == "true"
    assert job["status"] == "SUCCEEDED"
    assert count_rows(fresh_db, "jobs") == 1


def test_job_transitions_reach_the_telemetry_table(infer_app, standin, fresh_db):
    server = infer_app()
    with server.client() as client:
        job_id = client.post(
            "/memories", json=infer_write(f"u-{uuid.uuid4().hex}", "I own a red kayak.", async_mode=True)
        ).json()["job_id"]
        assert wait_job(client, job_id)["status"] == "SUCCEEDED"
    # stop() runs the shutdown, which flushes whatever is still waiting: the table is complete once the app is gone
    server.stop()

    where = "attributes->>'job_id' = %s"
    assert count_rows(fresh_db, "telemetry_events", f"kind = 'job.running' AND {where}", (job_id,)) == 1
    assert count_rows(fresh_db, "telemetry_events", f"kind = 'job.succeeded' AND {where}", (job_id,)) == 1


def test_a_full_queue_answers_429_with_retry_after_and_drops_nothing(infer_app, standin, fresh_db):
    standin.control(chat_latency_ms=2000)
    server = infer_app(MEM0_QUEUE_MAX="2", MEM0_INFER_WORKERS="1")
    user = f"u-{uuid.uuid4().hex}"
    with server.client() as client:
        answers = [client.post("/memories", json=infer_write(user, f"Fact {i}.", async_mode=True)) for i in range(6)]
    statuses = [a.status_code for a in answers]

    assert 429 in statuses and set(statuses) <= {202, 429}
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["retry-after"] and refused.json()["error"]
    assert count_rows(fresh_db, "jobs") == statuses.count(202)


def test_facts_already_stored_in_the_scope_are_not_stored_again(infer_app, standin, fresh_db):
    server = infer_app()
    body = infer_write(f"u-{uuid.uuid4().hex}", "I speak Basque. I play the oboe.")
    with server.client() as client:
        first = client.post("/memories", json=body).json()
        again = client.post("/memories", json=body).json()

    assert len(first["results"]) == 2 and first["already_stored"] == 0
    assert again["results"] == [] and again["extracted"] == 2 and again["already_stored"] == 2
    assert count_rows(fresh_db, "memories") == 2


def test_a_primary_model_that_keeps_failing_hands_the_job_to_the_fallback_model(infer_app, standin):
    fallback = "llama3.2:3b"
    standin.control(models=[*DEFAULT_MODELS, fallback])
    try:
        server = infer_app(MEM0_LLM_FALLBACK_MODEL=fallback)
        standin.control(models=[EMBEDDER, fallback])  # the primary disappears from Ollama after startup
        user = f"u-{uuid.uuid4().hex}"
        with server.client() as client:
            accepted = client.post("/memories", json=infer_write(user, "I keep bees on the roof.", async_mode=True))
            job = wait_job(client, accepted.json()["job_id"])
            stored = client.get("/memories", params={"user_id": user}).json()["results"]
    finally:
        standin.control(models=list(DEFAULT_MODELS))

    assert job["status"] == "SUCCEEDED", job
    assert job["model"] == fallback
    assert [memory["memory"] for memory in stored] == ["I keep bees on the roof"]


def test_a_transcript_longer_than_the_context_window_is_extracted_window_by_window(infer_app, standin):
    server = infer_app(MEM0_LLM_NUM_CTX="2048")
    user = f"u-{uuid.uuid4().hex}"
    chatter = " ".join(f"We talked about topic {n}." for n in range(12))
    messages = [{"role": "user", "content": f"My parrot number {i} is called Polly{i}. {chatter}"} for i in range(40)]
    standin.reset_stats()
    with server.client() as client:
        response = client.post("/memories", json={"messages": messages, "user_id": user, "infer": True})
        stored = {
            m["memory"] for m in client.get("/memories", params={"user_id": user, "top_k": 1000}).json()["results"]
        }

    assert response.status_code == 200, response.text
    assert standin.stats()["counts"]["chat"] >= 3  # one extraction call per window
    assert {"My parrot number 0 is called Polly0", "My parrot number 39 is called Polly39"} <= stored
