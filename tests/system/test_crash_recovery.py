"""Crash and stop recovery of the job queue with server processes: a server killed with SIGKILL mid-work leaves every
job and idempotency key usable again within a lease (the default ones, or short ones, then a restart completes every
job exactly once); a graceful stop hands running jobs back at once."""

from __future__ import annotations

import threading
import time
import uuid

import httpx

from tests.support.jobs import infer_write, wait_job
from tests.support.postgres import count_rows


def test_kill_9_mid_work_every_job_and_key_is_usable_within_a_minute_with_default_leases(
    infer_server, standin, fresh_db
):
    first = infer_server()  # MEM0_INFER_LEASE_S and MEM0_IDEMPOTENCY_LEASE_S at their defaults
    standin.control(chat_latency_ms=3000, embed_latency_ms=2500)  # below the test servers' 3 s embed timeout
    user = f"u-{uuid.uuid4().hex}"
    keyed = {"messages": [{"role": "user", "content": "I paint."}], "user_id": user, "infer": False}
    with first.client() as client:
        job_ids = [
            client.post("/memories", json=infer_write(user, f"My boat number {i} is red.", async_mode=True)).json()[
                "job_id"
            ]
            for i in range(3)
        ]

    def send_keyed(key: str) -> None:
        try:
            with first.client(timeout=30) as keyed_client:
                keyed_client.post("/memories", json=keyed, headers={"Idempotency-Key": key})
        except httpx.HTTPError:
            pass  # the server dies under this request; that is the point

    senders = [threading.Thread(target=send_keyed, args=(f"k-{i}",)) for i in range(3)]
    for sender in senders:
        sender.start()
    time.sleep(1.5)  # workers are inside their chat calls, keyed writes inside their embed calls
    first.kill()
    for sender in senders:
        sender.join()
    assert count_rows(fresh_db, "jobs", "status = 'RUNNING'") >= 1
    assert count_rows(fresh_db, "idempotency_keys", "status = 'in_flight'") == 3

    standin.control(chat_latency_ms=0, embed_latency_ms=0)
    second = infer_server()
    deadline = time.monotonic() + 60
    with second.client() as client:
        jobs = [wait_job(client, job_id, timeout_s=deadline - time.monotonic()) for job_id in job_ids]
        answers = {}
        for key in ("k-0", "k-1", "k-2"):
            while (answer := client.post("/memories", json=keyed, headers={"Idempotency-Key": key})).status_code == 409:
                assert time.monotonic() < deadline, f"key {key} still held 60 s after the restart"
                time.sleep(0.5)
            answers[key] = answer

    assert [job["status"] for job in jobs] == ["SUCCEEDED"] * 3
    assert all(answer.status_code == 200 for answer in answers.values()), answers
    assert count_rows(fresh_db, "memories", "payload->>'data' = 'I paint.'") == 3


def test_kill_9_while_jobs_run_then_restart_completes_every_job_exactly_once(infer_server, standin, fresh_db):
    standin.control(chat_latency_ms=1000)
    first = infer_server(MEM0_INFER_LEASE_S="3")
    user = f"u-{uuid.uuid4().hex}"
    with first.client() as client:
        ids = [
            client.post(
                "/memories", json=infer_write(user, f"My dog number {i} is called Rex{i}.", async_mode=True)
            ).json()["job_id"]
            for i in range(6)
        ]
        time.sleep(1.5)  # workers are inside their chat calls
    first.kill()
    second = infer_server(MEM0_INFER_LEASE_S="3")
    with second.client() as client:
        jobs = [wait_job(client, job_id) for job_id in ids]
        stored = client.get("/memories", params={"user_id": user}).json()["results"]
    assert all(job["status"] == "SUCCEEDED" for job in jobs), jobs
    texts = [m["memory"] for m in stored]
    assert len(texts) == len(set(texts)) == sum(len(job["results"]) for job in jobs)
    assert count_rows(fresh_db, "memories") == len(texts)


def test_a_graceful_stop_hands_running_jobs_back_at_once(infer_server, standin, fresh_db):
    standin.control(chat_latency_ms=30_000)
    server = infer_server()
    with server.client() as client:
        job_id = client.post("/memories", json=infer_write("u-stop", "I keep bees.", async_mode=True)).json()["job_id"]
        deadline = time.monotonic() + 10
        while client.get(f"/jobs/{job_id}").json()["status"] != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.1)
    server.stop()

    assert (
        count_rows(
            fresh_db,
            "jobs",
            "public_id = %s AND status = 'PENDING' AND attempts = 0 AND locked_until IS NULL",
            (job_id,),
        )
        == 1
    )
    standin.control(chat_latency_ms=0)
    with infer_server().client() as client:
        assert wait_job(client, job_id, timeout_s=30)["status"] == "SUCCEEDED"
