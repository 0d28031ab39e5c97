"""The installed CLI as an operator runs it: `python -m app ARGS` in its own process, with only the given env."""

from __future__ import annotations

import subprocess
import sys

from tests.support.server_process import REPO_ROOT, clean_environment


def run_cli(env: dict[str, str], *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=REPO_ROOT,
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
