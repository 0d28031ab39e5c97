"""A hung chat call is noticed in seconds (issue 22, item 2): extraction streams, and a call that sends nothing for
MEM0_LLM_IDLE_TIMEOUT_S is cut then, not after the whole call's MEM0_LLM_TIMEOUT_S."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.jobs import infer_write, wait_job

pytestmark = pytest.mark.slow  # waits seconds (outages, hangs, retries)


def test_a_hung_chat_is_cut_at_the_idle_timeout_and_the_job_retried(fresh_db, standin):
    env = server_env(
        fresh_db,
        standin,
        MEM0_LLM_IDLE_TIMEOUT_S="0.5",
        MEM0_LLM_TIMEOUT_S="120",
        MEM0_INFER_BACKOFF_S="0.2",
        MEM0_INFER_BACKOFF_MAX_S="0.5",
    )
    with InProcessServer(env) as app, app.client() as client:
        standin.set_fault("chat", kind="hang", seconds=60)
        user = f"u-{uuid.uuid4().hex[:8]}"
        job_id = client.post("/memories", json=infer_write(user, "I row on Tuesdays.", async_mode=True)).json()[
            "job_id"
        ]
        deadline = time.monotonic() + 15
        job = client.get(f"/jobs/{job_id}").json()
        while job["error_code"] is None and time.monotonic() < deadline:
            time.sleep(0.1)
            job = client.get(f"/jobs/{job_id}").json()
        assert job["error_code"] == "upstream_timeout", job
        assert "sent nothing for 0.5s" in job["last_error"]

        standin.clear_faults()
        assert wait_job(client, job_id, timeout_s=30)["status"] == "SUCCEEDED"
