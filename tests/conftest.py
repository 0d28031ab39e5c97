"""Shared fixtures: one real Postgres and one Ollama stand-in per session, fresh databases per module.

Two tiers: the in-process app (`app_server`, `app_api`, `app_client`) answers plain request/response tests; tests
that start processes (servers via `server`/`api`/ServerProcess, stand-ins, subprocesses) are marked `slow`
automatically. `make test-fast` runs everything not slow. Whatever the tests start must stop before the run ends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.inprocess import INPROCESS_THREAD, InProcessServer
from tests.support.neo4j_process import Neo4jProcess
from tests.support.postgres import create_database, running_postgres
from tests.support.processes import ProcessStarts, describe, kill, leftover_processes, starts_processes
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess
from tests.support.standin_process import OllamaStandin

# The graph-memory server and its helpers' fixtures (graph_db, graph_app, graph_api), for the integration and system
# tiers alike.
pytest_plugins = ["tests.support.graph"]

DIMS = 768
# The session's Postgres is deleted when the run ends and never outlives a crash of the machine, so it need not
# flush to disk; the tests kill server processes, never Postgres.
TEST_POSTGRES_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
# Started once per session and shared by every tier, so they do not make a test slow.
SHARED_FIXTURES = frozenset({"pg_admin", "standin_session"})

process_starts = ProcessStarts()


def pytest_configure(config: pytest.Config) -> None:
    process_starts.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and not item.get_closest_marker("slow") and _starts_processes(item):
            item.add_marker(pytest.mark.slow)


def _starts_processes(item: pytest.Function) -> bool:
    fixtures = [
        definition.func
        for name, definitions in item._fixtureinfo.name2fixturedefs.items()
        if name not in SHARED_FIXTURES
        for definition in definitions
    ]
    return starts_processes([item.function, *fixtures])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    before = process_starts.count
    result = yield
    if process_starts.count > before and not item.get_closest_marker("slow"):
        pytest.fail(
            "this test started a process but is not marked slow, so `make test-fast` would run it: "
            "mark it @pytest.mark.slow (it was not recognised as starting one: see tests/support/processes.py)",
            pytrace=False,
        )
    return result


@pytest.fixture(scope="session", autouse=True)
def nothing_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Torn down after every other session fixture (autouse fixtures are set up first): fails the run, naming
    them, if any process the tests started is still running (and kills it), or an in-process app still runs."""
    yield
    leftovers = leftover_processes(tmp_path_factory.getbasetemp())
    if leftovers:
        names = describe(leftovers)
        kill(leftovers)
        pytest.fail(f"processes started by the tests outlived them (now killed):\n{names}", pytrace=False)
    apps = [thread for thread in threading.enumerate() if thread.name == INPROCESS_THREAD]
    if apps:
        pytest.fail(f"{len(apps)} in-process app(s) still running: stop every InProcessServer", pytrace=False)


@pytest.fixture(scope="session")
def pg_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg")))
    with running_postgres(tmp_path_factory.mktemp("postgres"), TEST_POSTGRES_SETTINGS) as uri:
        yield uri


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
    """The session's stand-in, with faults, latencies, dimensions and counters reset around each test (after it
    too, so a module's app or server started before its first test meets the defaults)."""
    _reset(standin_session)
    standin_session.reset_stats()
    yield standin_session
    _reset(standin_session)


def _reset(standin: OllamaStandin) -> None:
    standin.control(embed_latency_ms=0, chat_latency_ms=0, dims=DIMS, chat_reply=None)
    standin.clear_faults()


@pytest.fixture(scope="session")
def neo4j_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jProcess]:
    """A real Neo4j 5.26 for this test process, started when a test first asks for it: under pytest-xdist each
    worker that runs such a test starts its own JVM (5-15 s on the 2-core VM, about 400 MB)."""
    with Neo4jProcess(tmp_path_factory.mktemp("neo4j")) as neo4j:
        yield neo4j


@pytest.fixture
def neo4j_server(neo4j_session: Neo4jProcess) -> Iterator[Neo4jProcess]:
    """The session's Neo4j: `.uri`, `.user`, `.password` (`.auth` for the driver). A test may `stop()` it to see
    a degraded graph, and `start()` it again on the same port and data; it is started again after the test if not."""
    yield neo4j_session
    if not neo4j_session.running:
        neo4j_session.start()


def server_env(database_url: str, standin: OllamaStandin, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_EMBED_TIMEOUT_S": "3",
        "MEM0_ADMIN_API_KEY": TEST_ADMIN_KEY,
        **extra,
    }


@pytest.fixture(scope="module")
def server(module_db: str, standin_session: OllamaStandin) -> Iterator[ServerProcess]:
    """One ready server process per test module, on the module's own database."""
    with ServerProcess(server_env(module_db, standin_session, MEM0_ALLOW_RESET="true")) as process:
        yield process
    # The egress guard runs in enforce mode in every test server: the server's own paths never trip it.
    assert "egress blocked" not in process.output()


@pytest.fixture
def api(server: ServerProcess, standin: OllamaStandin) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def app_server(module_db: str, standin_session: OllamaStandin) -> Iterator[InProcessServer]:
    """The in-process twin of `server`: the same app and settings on the module's own database, no process."""
    with InProcessServer(server_env(module_db, standin_session, MEM0_ALLOW_RESET="true")) as app_server:
        yield app_server


@pytest.fixture
def app_api(app_server: InProcessServer, standin: OllamaStandin) -> Iterator[httpx.Client]:
    """A sync client of the in-process app, for tests written like the `api` ones."""
    with app_server.client() as client:
        yield client


@pytest.fixture
async def app_client(app_server: InProcessServer, standin: OllamaStandin) -> AsyncIterator[httpx.AsyncClient]:
    """An async client of the in-process app (httpx.ASGITransport on the app's own loop)."""
    async with app_server.async_client() as client:
        yield client


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
