"""Shared fixtures: one real Postgres and one Ollama stand-in per session, fresh databases per module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import admin_uri, create_database
from tests.support.server_process import ServerProcess
from tests.support.standin_process import OllamaStandin

DIMS = 768


@pytest.fixture(scope="session")
def pg_admin(tmp_path_factory: pytest.TempPathFactory) -> str:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg")))
    return admin_uri(tmp_path_factory.mktemp("postgres"))


@pytest.fixture
def fresh_db(pg_admin: str) -> str:
    return create_database(pg_admin)


@pytest.fixture(scope="module")
def module_db(pg_admin: str) -> str:
    return create_database(pg_admin)


@pytest.fixture(scope="session")
def standin_session() -> Iterator[OllamaStandin]:
    standin = OllamaStandin()
    standin.start(dims=DIMS)
    yield standin
    standin.stop()


@pytest.fixture
def standin(standin_session: OllamaStandin) -> Iterator[OllamaStandin]:
    """The session's stand-in, with faults, latencies and counters reset around each test."""
    standin_session.control(embed_latency_ms=0, chat_latency_ms=0, dims=DIMS, chat_reply=None)
    standin_session.clear_faults()
    standin_session.reset_stats()
    yield standin_session
    standin_session.clear_faults()


def server_env(database_url: str, standin: OllamaStandin, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "OLLAMA_BASE_URL": standin.url, "MEM0_EMBED_TIMEOUT_S": "3", **extra}


@pytest.fixture(scope="module")
def server(module_db: str, standin_session: OllamaStandin) -> Iterator[ServerProcess]:
    """One ready server process per test module, on the module's own database."""
    with ServerProcess(server_env(module_db, standin_session, MEM0_ALLOW_RESET="true")) as process:
        yield process
    # The egress guard runs in enforce mode in every test server: the server's own paths never trip it.
    assert "egress blocked" not in process.output()


@pytest.fixture
def api(server: ServerProcess, standin: OllamaStandin) -> Iterator[object]:
    with server.client() as client:
        yield client


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
