"""The soak tier (`make test-soak`): not collected by `make test` or `make test-fast` (pyproject's norecursedirs
holds `soak`), so it runs only when named. Its Postgres is its own, since the schedule restarts it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.support.postgres import RestartablePostgres, restartable_postgres

REPORT: dict[str, object] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.write_sep("-", "soak")
        for key, value in REPORT.items():
            terminalreporter.write_line(f"{key}: {json.dumps(value)}")


@pytest.fixture
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePostgres]:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg")))
    with restartable_postgres(tmp_path_factory.mktemp("postgres")) as postgres:
        yield postgres
