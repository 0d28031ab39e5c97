"""What every Python driver shares: each runs in its integration's own virtualenv (tests/contracts/installs.py),
so it imports nothing from this repository but this file, which sits beside it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

WAIT_S = 30.0  # an inferred write's job, or an add the client sent in async mode, lands well within this


class Steps:
    """Runs an integration's calls in order and records each one's answer, or its error, by name: a route that fails
    does not hide what the others answer. `report()` prints them as one JSON object for the test to read."""

    def __init__(self) -> None:
        self.answers: dict[str, dict[str, Any]] = {}

    def run(self, name: str, call: Callable[[], Any]) -> Any:
        try:
            value = call()
        except Exception as error:
            # What the client made of the server's answer: mem0's exceptions carry the status and URL here.
            self.answers[name] = {
                "error": f"{type(error).__name__}: {error}",
                "debug": getattr(error, "debug_info", None),
            }
            return None
        self.answers[name] = {"value": value}
        return value

    def report(self) -> None:
        """Written to a file, not stdout: clients print warnings and progress there."""
        with open(os.environ["REPORT_PATH"], "w", encoding="utf-8") as report:
            json.dump(self.answers, report, default=lambda value: f"<{type(value).__name__}>")


def wait_until(read: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """`read()` again until `done` holds for what it answers (the last answer either way after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def setting(name: str) -> str:
    return os.environ[name]
