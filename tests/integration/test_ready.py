"""/ready follows the embedder: 503 with a reason while embeddings fail or hang, 200 again once they work."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer

# In-process, but each case waits past MAX_AGE_S or for a hung embed: `make test` runs these.
pytestmark = pytest.mark.slow

MAX_AGE_S = 0.5  # how long /ready trusts the latest embed outcome before it probes


@pytest.fixture(scope="module")
def probing_server(module_db, standin_session) -> Iterator[InProcessServer]:
    env = server_env(module_db, standin_session, MEM0_READY_EMBED_MAX_AGE_S=str(MAX_AGE_S))
    with InProcessServer(env) as app_server:
        yield app_server


@pytest.fixture(scope="module")
def trusting_server(module_db, standin_session) -> Iterator[InProcessServer]:
    """The default: the latest embed outcome is trusted for 10 s, so these tests see real calls, not probes."""
    with InProcessServer(server_env(module_db, standin_session)) as app_server:
        yield app_server


def _ready_after_max_age(server: InProcessServer) -> tuple[int, dict[str, object]]:
    time.sleep(MAX_AGE_S * 1.5)
    with server.client() as client:
        response = client.get("/ready")
    return response.status_code, response.json()


def test_ready_is_503_while_embeddings_fail_and_200_once_they_recover(probing_server, standin):
    standin.set_fault("embed", kind="status", status=500)

    status, body = _ready_after_max_age(probing_server)

    assert status == 503
    assert body["reasons"] == ["embeddings are failing: Ollama embed answered HTTP 500: injected fault"]
    assert body["ollama"] == "ok"  # /api/version still answers: only the embed probe sees the failure

    standin.clear_faults()
    assert _ready_after_max_age(probing_server)[0] == 200


def test_ready_is_503_while_embeddings_hang(probing_server, standin):
    standin.set_fault("embed", kind="hang", seconds=30)

    status, body = _ready_after_max_age(probing_server)

    assert status == 503
    assert body["embedder"] == "embeddings are failing: Ollama embed did not answer within 2s"

    standin.clear_faults()
    assert _ready_after_max_age(probing_server)[0] == 200


def test_a_failed_write_makes_ready_503_at_once_and_a_successful_one_clears_it(trusting_server, standin):
    write = {"messages": [{"role": "user", "content": "I like tea"}], "user_id": "ready", "infer": False}
    with trusting_server.client() as client:
        standin.set_fault("embed", kind="status", status=500)
        assert client.post("/memories", json=write).status_code == 502
        standin.clear_faults()

        failing = client.get("/ready")
        assert client.post("/memories", json=write).status_code == 200
        recovered = client.get("/ready")

    assert failing.status_code == 503 and "HTTP 500" in failing.json()["embedder"]
    assert recovered.status_code == 200


def test_readiness_checks_do_not_probe_while_the_latest_embed_outcome_is_recent(trusting_server, standin):
    with trusting_server.client() as client:
        client.post(
            "/memories", json={"messages": [{"role": "user", "content": "x"}], "user_id": "ready", "infer": False}
        )
        standin.reset_stats()
        statuses = [client.get("/ready").status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert standin.stats()["counts"].get("embed", 0) == 0
