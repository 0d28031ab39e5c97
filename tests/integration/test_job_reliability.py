"""No model reply can stop the queue, orphaned work is retaken within a lease, and a retry does not ask the LLM
again once it has answered.

The in-process app (`infer_app`, tests/integration/conftest.py) answers them; the kill -9 case with the default
leases is in the system tier (tests/system/test_crash_recovery.py)."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.jobs import infer_write, wait_job
from tests.support.postgres import count_rows

# In-process, but waiting on jobs, leases and retention takes seconds a test: `make test` runs these.
pytestmark = pytest.mark.slow

# A JSON reply whose fact holds half a surrogate pair: valid JSON, but not text Postgres or md5 can take.
POISON_REPLY = '{"facts": ["half an emoji \\ud83d here"]}'


def _workers_alive(client: httpx.Client) -> float:
    families = text_string_to_metric_families(client.get("/metrics").text)
    return next(s.value for f in families if f.name == "mem0_job_workers_alive" for s in f.samples)


def test_a_reply_with_invalid_unicode_fails_its_job_and_every_later_job_succeeds(infer_app, standin):
    server = infer_app()
    user = f"u-{uuid.uuid4().hex}"
    standin.control(chat_reply=POISON_REPLY)
    with server.client() as client:
        poison_id = client.post("/memories", json=infer_write(user, "I like emoji.", async_mode=True)).json()["job_id"]
        poison = wait_job(client, poison_id)
        standin.control(chat_reply=None)
        later = [
            client.post("/memories", json=infer_write(user, f"My bike number {i} is blue.", async_mode=True)).json()[
                "job_id"
            ]
            for i in range(20)
        ]
        jobs = [wait_job(client, job_id) for job_id in later]
        assert _workers_alive(client) == 2
        assert client.get("/ready").status_code == 200

    assert poison["status"] == "FAILED" and poison["error_code"] == "invalid_model_output"
    assert "invalid Unicode" in poison["last_error"] and poison["attempts"] == 1
    assert [job["status"] for job in jobs] == ["SUCCEEDED"] * 20

    server.stop()
    restarted = infer_app()
    with restarted.client() as client:
        after = client.post("/memories", json=infer_write(user, "I keep a red kayak.", async_mode=True)).json()[
            "job_id"
        ]
        assert wait_job(client, after)["status"] == "SUCCEEDED"
        assert client.get(f"/jobs/{poison_id}").json()["status"] == "FAILED"
        assert _workers_alive(client) == 2


def test_a_job_whose_storage_failed_is_retried_without_asking_the_llm_again(infer_app, standin, fresh_db):
    server = infer_app()
    standin.reset_stats()
    standin.set_fault("embed", kind="status", status=500, count=1)
    with server.client() as client:
        job_id = client.post("/memories", json=infer_write("u-once", "I was born in Oslo.", async_mode=True)).json()[
            "job_id"
        ]
        job = wait_job(client, job_id)

    assert job["status"] == "SUCCEEDED" and job["attempts"] == 2
    assert standin.stats()["counts"]["chat"] == 1
    assert count_rows(fresh_db, "memories") == len(job["results"]) >= 1


def test_two_writes_of_the_same_facts_at_once_store_each_fact_once(infer_app, standin, fresh_db):
    standin.control(chat_latency_ms=300)
    server = infer_app()
    body = infer_write(f"u-{uuid.uuid4().hex}", "I speak Basque. I play the oboe.")
    with server.client() as client:
        replies: list[dict] = []
        writers = [
            threading.Thread(target=lambda: replies.append(client.post("/memories", json=body).json()))
            for _ in range(2)
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()

    assert sorted(len(reply["results"]) for reply in replies) == [0, 2], replies
    assert count_rows(fresh_db, "memories") == 2


def test_deleting_a_users_memories_deletes_the_raw_messages_their_jobs_kept(infer_app, standin, fresh_db):
    server = infer_app()
    with server.client() as client:
        kept = client.post("/memories", json=infer_write("u-other", "I like tea.")).json()["job_id"]
        gone = client.post("/memories", json=infer_write("u-forget", "My PIN is 1234.")).json()["job_id"]
        assert client.delete("/memories", params={"user_id": "u-forget"}).status_code == 200
        assert client.get(f"/jobs/{gone}").status_code == 404
        assert client.get(f"/jobs/{kept}").status_code == 200
    assert count_rows(fresh_db, "jobs", "request::text LIKE %s", ("%1234%",)) == 0


def test_finished_jobs_are_purged_after_their_retention(infer_app, standin, fresh_db):
    server = infer_app(MEM0_JOBS_RETENTION_S="1", MEM0_IDEMPOTENCY_PURGE_INTERVAL_S="0.5")
    with server.client() as client:
        job_id = client.post("/memories", json=infer_write("u-purge", "I like tea.")).json()["job_id"]
        deadline = time.monotonic() + 15
        while client.get(f"/jobs/{job_id}").status_code != 404:
            assert time.monotonic() < deadline, "the finished job outlived its retention"
            time.sleep(0.2)
        assert client.get("/memories", params={"user_id": "u-purge"}).json()["results"]
