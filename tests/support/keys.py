"""API keys made the way an operator makes them: the real CLI (`python -m app keys ...`) against the test database."""

from __future__ import annotations

import subprocess
import sys

from tests.support.server_process import REPO_ROOT, TEST_ADMIN_KEY, clean_environment


def keys_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "keys", *args],
        cwd=REPO_ROOT,
        env=clean_environment(DATABASE_URL=database_url, MEM0_ADMIN_API_KEY=TEST_ADMIN_KEY),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def mint_key(database_url: str, *args: str) -> str:
    """`keys create ARGS`: the new key's secret."""
    result = keys_cli(database_url, "create", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
