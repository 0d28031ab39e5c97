"""API keys made the way an operator makes them: the real CLI (`python -m app keys ...`) against the test database."""

from __future__ import annotations

import subprocess

from tests.support.cli import run_cli
from tests.support.server_process import TEST_ADMIN_KEY


def keys_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli({"DATABASE_URL": database_url, "MEM0_ADMIN_API_KEY": TEST_ADMIN_KEY}, "keys", *args)


def mint_key(database_url: str, *args: str) -> str:
    """`keys create ARGS`: the new key's secret."""
    result = keys_cli(database_url, "create", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
