"""The in-process tier runs the real app: its own settings, its lifespan's failures, one app behind both clients."""

from __future__ import annotations

import threading

import pytest

from app.errors import StartupError
from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.server_process import free_port


async def test_the_async_and_the_sync_client_reach_one_app(app_client, app_api):
    body = {"messages": [{"role": "user", "content": "I grow tomatoes"}], "user_id": "both-clients", "infer": False}

    written = await app_client.post("/memories", json=body)

    assert written.status_code == 200, written.text
    [created] = written.json()["results"]
    assert app_api.get(f"/memories/{created['id']}").json()["memory"] == "I grow tomatoes"


def test_the_test_process_environment_does_not_reach_the_app(monkeypatch, module_db, standin_session):
    monkeypatch.setenv("MEM0_MAX_TOP_K", "3")
    monkeypatch.setenv("MEM0_LLM_PROVIDER", "openai")

    settings = InProcessServer(server_env(module_db, standin_session, MEM0_MAX_LIST_LIMIT="7")).settings

    assert (settings.max_top_k, settings.llm_provider, settings.max_list_limit) == (1000, "ollama", 7)


def test_a_startup_failure_raises_its_reason_and_leaves_no_thread(module_db):
    unreachable = f"http://127.0.0.1:{free_port()}"
    server = InProcessServer({"DATABASE_URL": module_db, "OLLAMA_BASE_URL": unreachable, "MEM0_STARTUP_RETRIES": "1"})
    threads_before = set(threading.enumerate())

    with pytest.raises(StartupError, match="start Ollama or fix OLLAMA_BASE_URL"):
        server.start()

    assert not set(threading.enumerate()) - threads_before
