"""The Docker tier (`make test-docker`): collected only when MEM0_DOCKER_TESTS=1, so a plain `make test` (which
needs no engine) never sees it. `scripts/docker_setup.sh`, run by `make test-docker` first, installs and starts the
engine, builds Compose v2 and the local base images; these fixtures build the server image and bring the
production compose file up once per session, and tear it all down, volumes included."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.stack import BUILD_COMMAND, IMAGE, REPO_ROOT, Stack, bridge_gateway, run
from tests.support.standin_process import OllamaStandin

ENABLED_BY = "MEM0_DOCKER_TESTS"
REPORT: dict[str, object] = {}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    import os

    if os.environ.get(ENABLED_BY) == "1":
        return None
    return collection_path.name != "conftest.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/docker/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.write_sep("-", "docker stack measurements")
        for key, value in REPORT.items():
            terminalreporter.write_line(f"{key}: {json.dumps(value) if not isinstance(value, str) else value}")


@pytest.fixture(scope="session")
def engine() -> None:
    try:
        run(["docker", "info"], timeout=30)
        run(["docker", "compose", "version"], timeout=30)
    except (AssertionError, FileNotFoundError, subprocess.TimeoutExpired) as error:
        pytest.fail(
            f"no Docker engine or Compose v2: run `bash scripts/docker_setup.sh` (make test-docker does)\n{error}"
        )


@pytest.fixture(scope="session")
def image(engine: None) -> str:
    """The README's build command, run in the repository."""
    started = time.monotonic()
    run(BUILD_COMMAND, timeout=1200)
    REPORT["image build s"] = round(time.monotonic() - started, 1)
    size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", IMAGE]).stdout.strip())
    REPORT["image size MB"] = round(size / 1e6, 1)
    return IMAGE


@pytest.fixture(scope="session")
def standin_on_bridge(engine: None) -> Iterator[OllamaStandin]:
    """The Ollama stand-in, listening on the host's bridge address so containers reach it as host.docker.internal."""
    standin = OllamaStandin()
    standin.start(dims=768, host=bridge_gateway())
    yield standin
    standin.stop()


@pytest.fixture(scope="session")
def stack(image: str, standin_on_bridge: OllamaStandin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("deploy")
    stack = Stack(
        workdir=workdir,
        project="mem0-dockertest",
        ollama_url=f"http://host.docker.internal:{standin_on_bridge.port}",
    )
    stack.lay_out()
    stack.down()  # a run that was killed may have left this project behind
    started = time.monotonic()
    try:
        stack.up()
        stack.wait_healthy()
        REPORT["stack start to healthy s"] = round(time.monotonic() - started, 1)
        yield stack
    finally:
        stack.down()
        leftover = run(
            ["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.project}"]
        )
        assert leftover.stdout.strip() == "", f"volumes left behind: {leftover.stdout}"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
