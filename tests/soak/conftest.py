"""The soak tier (`make test-soak`): not collected by `make test` or `make test-fast` (pyproject's norecursedirs
holds `soak`), so it runs only when named. Its Postgres is its own, since the schedule restarts it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
    """Run as root, pg_ctl runs as pgserver's own user, which must reach the data directory at every stop and start.
    So the data directory lies outside /tmp/pytest-of-<user>: each pytest session that starts, another checkout's
    included, resets that directory to 0700."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg")))
    root = Path(tempfile.mkdtemp(prefix="mem0-soak-postgres-"))
    try:
        with restartable_postgres(root) as postgres:
            yield postgres
    finally:
        shutil.rmtree(root, ignore_errors=True)
