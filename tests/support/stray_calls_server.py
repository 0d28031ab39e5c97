"""The real server (`python -m app serve`) plus one stray dependency: once the server is ready, a thread in the
same process calls OpenAI through the `openai` SDK and PostHog through its client, as leaked defaults would.
Each outcome is printed as `STRAY <name> <outcome>`; the egress guard should refuse both."""

from __future__ import annotations

import os
import sys
import threading
import time
import urllib.request
from collections.abc import Callable

from app.cli import main
from app.egress import EgressBlocked


def _outcome(call: Callable[[], object]) -> str:
    """Which error the call ended with, and whether the guard was behind it."""
    try:
        call()
    except Exception as error:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, EgressBlocked):
            cause = cause.__cause__ or cause.__context__
        return "blocked" if cause is not None else f"error:{type(error).__name__}"
    return "connected"


def _stray_calls(port: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                break
        except OSError:
            time.sleep(0.1)
    import openai
    import posthog

    client = openai.OpenAI(api_key="sk-stray", max_retries=0, timeout=5)
    print("STRAY openai", _outcome(client.models.list), flush=True)
    tracker = posthog.Posthog("phc_stray", host="https://us.i.posthog.com", sync_mode=True, max_retries=0)
    print("STRAY posthog", _outcome(lambda: tracker.capture("event", distinct_id="stray")), flush=True)
    print("STRAY done", flush=True)


if __name__ == "__main__":
    threading.Thread(target=_stray_calls, args=(os.environ["MEM0_PORT"],), daemon=True).start()
    sys.exit(main(sys.argv[1:]))
