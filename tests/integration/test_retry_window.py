"""Accepted work outlives Ollama's ordinary outages (issue 22, item 2): a job failing because Ollama is away is
retried on a time window, not a count, and runs at once when Ollama answers again instead of at the end of its
backoff; past the window it fails visibly with its raw messages kept."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.jobs import infer_write, wait_job

pytestmark = pytest.mark.slow  # waits seconds (outages, hangs, retries)


@pytest.fixture
def ollama_away(standin) -> Iterator[None]:
    standin.control(down=True)
    try:
        yield
    finally:
        standin.control(down=False)


def _job(client, job_id: str) -> dict:
    return client.get(f"/jobs/{job_id}").json()


def _wait_for(predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_job_waiting_out_an_ollama_outage_runs_as_soon_as_ollama_is_back(fresh_db, standin, ollama_away):
    # One attempt allowed by count and a 20 s backoff base: only the window keeps the job, only the watch runs it soon.
    env = server_env(
        fresh_db,
        standin,
        MEM0_INFER_MAX_ATTEMPTS="1",
        MEM0_INFER_BACKOFF_S="20",
        MEM0_INFER_RETRY_WINDOW_S="120",
        MEM0_WARMUP="false",
    )
    standin.control(down=False)
    with InProcessServer(env) as app, app.client() as client:
        standin.control(down=True)
        user = f"u-{uuid.uuid4().hex[:8]}"
        job_id = client.post("/memories", json=infer_write(user, "I sail on Sundays.", async_mode=True)).json()[
            "job_id"
        ]
        _wait_for(lambda: _job(client, job_id)["attempts"] >= 1 and _job(client, job_id)["status"] == "PENDING", 10)
        waiting = _job(client, job_id)
        assert waiting["error_code"] in ("upstream_unavailable", "upstream_error"), waiting
        time.sleep(1.5)  # the outage goes on past a probe (each server asks Ollama every second)

        standin.control(down=False)
        back = time.monotonic()
        job = wait_job(client, job_id, timeout_s=30)
        took_s = time.monotonic() - back

    assert job["status"] == "SUCCEEDED", job
    assert took_s < 8, (took_s, job)  # its backoff alone would have lasted at least 10 s


def test_past_the_window_the_job_fails_with_its_messages_kept(fresh_db, standin, ollama_away):
    env = server_env(
        fresh_db,
        standin,
        MEM0_INFER_MAX_ATTEMPTS="1",
        MEM0_INFER_BACKOFF_S="0.2",
        MEM0_INFER_RETRY_WINDOW_S="1.5",
        MEM0_WARMUP="false",
    )
    standin.control(down=False)
    with InProcessServer(env) as app, app.client() as client:
        standin.control(down=True)
        user = f"u-{uuid.uuid4().hex[:8]}"
        job_id = client.post("/memories", json=infer_write(user, "I sail on Sundays.", async_mode=True)).json()[
            "job_id"
        ]
        job = wait_job(client, job_id, timeout_s=30)

    assert job["status"] == "FAILED" and job["error_code"] in ("upstream_unavailable", "upstream_error"), job
    assert job["attempts"] >= 2  # retried past MEM0_INFER_MAX_ATTEMPTS=1, within the window
    assert job["messages"] == [{"role": "user", "content": "I sail on Sundays."}]
