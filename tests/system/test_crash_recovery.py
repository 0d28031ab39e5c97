"""Crash recovery with the default leases: a server killed with SIGKILL mid-work leaves every job and every
idempotency key usable again within a minute (a process tier of its own: it waits out real leases)."""

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
