"""Accepted work outlives Ollama's ordinary outages (issue 22, item 2): a job failing because Ollama is away is
retried on a time window, not a count, and runs at once when Ollama answers again instead of at the end of its
backoff; past the window it fails visibly with its raw messages kept."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.jobs import infer_write, wait_job

pytestmark = pytest.mark.slow  # waits seconds (outages, hangs, retries)


@contextlib.contextmanager
def write_while_ollama_is_away(fresh_db, standin, **env: str) -> Iterator[tuple[httpx.Client, str]]:
    """An app allowing one attempt by count, and the job of an inferred write sent once Ollama went away."""
    settings = server_env(fresh_db, standin, MEM0_INFER_MAX_ATTEMPTS="1", MEM0_WARMUP="false", **env)
    with InProcessServer(settings) as app, app.client() as client:
        standin.control(down=True)
        try:
            user = f"u-{uuid.uuid4().hex[:8]}"
            response = client.post("/memories", json=infer_write(user, "I sail on Sundays.", async_mode=True))
            yield client, response.json()["job_id"]
        finally:
            standin.control(down=False)


def _job(client: httpx.Client, job_id: str) -> dict:
    return client.get(f"/jobs/{job_id}").json()


def test_a_job_waiting_out_an_ollama_outage_runs_as_soon_as_ollama_is_back(fresh_db, standin):
    # A 20 s backoff base: only the window keeps the job, and only the watch on Ollama runs it soon.
    with write_while_ollama_is_away(fresh_db, standin, MEM0_INFER_BACKOFF_S="20", MEM0_INFER_RETRY_WINDOW_S="120") as (
        client,
        job_id,
    ):
        deadline = time.monotonic() + 10
        while not (_job(client, job_id)["attempts"] >= 1 and _job(client, job_id)["status"] == "PENDING"):
            assert time.monotonic() < deadline, _job(client, job_id)
            time.sleep(0.1)
        assert _job(client, job_id)["error_code"] in ("upstream_unavailable", "upstream_error")
        time.sleep(1.5)  # the outage goes on past a probe (each server asks Ollama every second)

        standin.control(down=False)
        back = time.monotonic()
        job = wait_job(client, job_id, timeout_s=30)
        took_s = time.monotonic() - back

    assert job["status"] == "SUCCEEDED", job
    assert took_s < 8, (took_s, job)  # its backoff alone would have lasted at least 10 s


def test_past_the_window_the_job_fails_with_its_messages_kept(fresh_db, standin):
    with write_while_ollama_is_away(fresh_db, standin, MEM0_INFER_BACKOFF_S="0.2", MEM0_INFER_RETRY_WINDOW_S="1.5") as (
        client,
        job_id,
    ):
        job = wait_job(client, job_id, timeout_s=30)

    assert job["status"] == "FAILED" and job["error_code"] in ("upstream_unavailable", "upstream_error"), job
    assert job["attempts"] >= 2  # retried past MEM0_INFER_MAX_ATTEMPTS=1, within the window
    assert job["messages"] == [{"role": "user", "content": "I sail on Sundays."}]
