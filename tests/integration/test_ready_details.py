"""/ready answers anyone, so without a valid key it says only which dependency is down, never the driver's text
(issue 22, item 7); a caller with a key reads why."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer

pytestmark = pytest.mark.slow  # waits seconds (outages, hangs, retries)


@pytest.fixture
def app(fresh_db, standin):
    with InProcessServer(server_env(fresh_db, standin, MEM0_READY_EMBED_MAX_AGE_S="0.1", MEM0_DB_TIMEOUT_S="1")) as app:
        yield app


def test_without_a_key_a_failing_embedder_is_named_not_described(app, standin):
    standin.set_fault("embed", kind="status", status=500)
    time.sleep(0.2)  # past MEM0_READY_EMBED_MAX_AGE_S: /ready probes the embedder
    with app.client() as keyed, app.client(headers={"X-API-Key": ""}) as anonymous:
        described, named = keyed.get("/ready"), anonymous.get("/ready")

    assert described.status_code == named.status_code == 503
    assert described.json()["reasons"] == ["embeddings are failing: Ollama embed answered HTTP 500: injected fault"]
    assert named.json()["reasons"] == ["embeddings are failing"]
    assert named.json()["embedder"] == "embeddings are failing" and named.json()["database"] == "ok"


def test_without_a_key_a_lost_database_is_named_not_described(app, pg_admin, fresh_db):
    database = urlsplit(fresh_db).path.lstrip("/")
    with app.client(headers={"X-API-Key": ""}) as anonymous, psycopg.connect(pg_admin, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
        try:
            response = anonymous.get("/ready")
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')

    assert response.status_code == 503
    assert response.json()["database"] == "the database is unavailable"
    assert database not in response.text and "FATAL" not in response.text
