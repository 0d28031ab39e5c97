"""Once an inferred write's job is committed, the answer names it (issue 22, item 4): a sync-mode write whose wait
for the job loses the database answers 202 with the job id, and the job still completes once the database is back."""

from __future__ import annotations

import threading
import time
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.jobs import infer_write, wait_job
from tests.support.postgres import count_rows

pytestmark = pytest.mark.slow  # waits seconds (outages, hangs, retries)


def _block_connections(admin: str, database: str, *, allow: bool) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))


def _wait_until_ready(client, timeout_s: float = 30) -> None:
    """The pool drops the connections the database closed and opens new ones."""
    deadline = time.monotonic() + timeout_s
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, "the app did not get its database back"
        time.sleep(0.2)


def test_a_sync_write_that_loses_the_database_after_its_job_committed_answers_the_job(pg_admin, fresh_db, standin):
    database = urlsplit(fresh_db).path.lstrip("/")
    standin.control(chat_latency_ms=1500)
    env = server_env(fresh_db, standin, MEM0_INFER_WAIT_S="20", MEM0_DB_TIMEOUT_S="1", MEM0_INFER_BACKOFF_S="0.2")
    with InProcessServer(env) as app, app.client() as client:
        user = f"u-{uuid.uuid4().hex[:8]}"
        answers: list = []
        writer = threading.Thread(
            target=lambda: answers.append(client.post("/memories", json=infer_write(user, "I own a red bike.")))
        )
        writer.start()
        deadline = time.monotonic() + 10
        while count_rows(fresh_db, "jobs", "status = 'RUNNING'") == 0:  # committed, its worker waits for the model
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.05)
        _block_connections(pg_admin, database, allow=False)
        try:
            writer.join(timeout=30)
        finally:
            _block_connections(pg_admin, database, allow=True)

        [answer] = answers
        assert answer.status_code == 202, answer.text
        _wait_until_ready(client)
        job = wait_job(client, answer.json()["job_id"])
        assert job["status"] == "SUCCEEDED", job
        stored = client.get("/memories", params={"user_id": user}).json()["results"]
        assert [memory["memory"] for memory in stored] == [result["memory"] for result in job["results"]]
