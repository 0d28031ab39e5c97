"""Runs an integration's driver (tests/contracts/drivers/) against a server process and reads what each of the
integration's calls answered; marks what issue 24 has still to fix."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess

DRIVERS = Path(__file__).resolve().parent / "drivers"
DRIVE_TIMEOUT_S = 180

Answers = dict[str, dict[str, Any]]


def drive(interpreter: Path | str, driver: str, server: ServerProcess, home: Path, **settings: str) -> Answers:
    """Runs `interpreter drivers/<driver>` with the server's URL and the admin key; answers by step name."""
    report = home / "answers.json"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),  # where the clients keep their identity files
        "MEM0_TELEMETRY": "false",  # mem0's clients send PostHog events unless told not to
        "MEM0_HOST": server.url,
        "MEM0_API_KEY": TEST_ADMIN_KEY,
        "REPORT_PATH": str(report),
        **settings,
    }
    run = subprocess.run(
        [str(interpreter), str(DRIVERS / driver)],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=DRIVE_TIMEOUT_S,
        check=False,
    )
    if run.returncode != 0 or not report.exists():  # the driver broke, not a call: never an expected failure
        raise RuntimeError(f"{driver} exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    answers: Answers = json.loads(report.read_text())
    return answers


def answer(answers: Answers, step: str) -> Any:
    """What the integration's call `step` returned; an AssertionError with the error it raised, if it raised one."""
    recorded = answers[step]
    assert "error" not in recorded, f"{step}: {recorded['error']} {recorded.get('debug') or ''}".rstrip()
    return recorded["value"]


def new_user(integration: str) -> str:
    return f"{integration}-{uuid.uuid4().hex[:10]}"


def stored(api: Any, user: str) -> list[str]:
    """The user's memories as the REST API lists them, sorted: what the integration's calls really stored."""
    return sorted(m["memory"] for m in api.get("/memories", params={"user_id": user}).json()["results"])
