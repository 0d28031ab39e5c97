"""Fixtures the integration tests share beyond tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import app  # noqa: F401  - forces mem0's telemetry off before mem0 is imported below
from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess
from tests.support.standin_process import OllamaStandin

TOKEN = {"Authorization": f"Token {TEST_ADMIN_KEY}"}


@pytest.fixture
def hosted(app_server, standin):
    """A client that signs in as mem0's clients do (`Authorization: Token <key>`), not with X-API-Key."""
    with app_server.client() as client:
        client.headers.pop("X-API-Key")
        client.headers.update(TOKEN)
        yield client


# Inferred writes retry quickly and a sync write waits long enough for a slow stand-in.
FAST_RETRIES = {"MEM0_INFER_BACKOFF_S": "0.2", "MEM0_INFER_WAIT_S": "20"}


def infer_env(database_url: str, standin: OllamaStandin, **env: str) -> dict[str, str]:
    """The settings of the job-queue tests: two workers and fast retries, then whatever the test sets."""
    return server_env(database_url, standin, **{"MEM0_INFER_WORKERS": "2", **FAST_RETRIES, **env})


@pytest.fixture
def infer_app(fresh_db: str, standin: OllamaStandin) -> Iterator[Callable[..., InProcessServer]]:
    """Starts in-process apps on the test's own database (`infer_app(MEM0_X="1")`); all stop after the test."""
    started: list[InProcessServer] = []

    def start(**env: str) -> InProcessServer:
        app_server = InProcessServer(infer_env(fresh_db, standin, **env))
        started.append(app_server)
        return app_server.start()

    yield start
    for app_server in started:
        app_server.stop()


@pytest.fixture
def infer_server(fresh_db: str, standin: OllamaStandin) -> Iterator[Callable[..., ServerProcess]]:
    """The process twin of `infer_app`, for what needs a process: kill -9, a stop signal, a restart after either."""
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        process = ServerProcess(infer_env(fresh_db, standin, **env))
        started.append(process)
        return process.start().wait_ready()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def mem0_memory(module_db, standin_session, tmp_path):
    """Upstream mem0 (the pinned mem0ai) on the module's own table and the same Ollama stand-in."""
    from mem0 import Memory

    config = {
        "vector_store": {
            "provider": "pgvector",
            "config": {"connection_string": module_db, "collection_name": "memories", "embedding_model_dims": 768},
        },
        "embedder": {
            "provider": "ollama",
            "config": {
                "model": "nomic-embed-text:latest",
                "ollama_base_url": standin_session.url,
                "embedding_dims": 768,
            },
        },
        "llm": {
            "provider": "ollama",
            "config": {"model": "mistral:7b-instruct-q5_K_M", "ollama_base_url": standin_session.url},
        },
        "history_db_path": str(tmp_path / "mem0-history.db"),
    }
    memory = Memory.from_config(config)
    yield memory
    memory.vector_store.connection_pool.close()
