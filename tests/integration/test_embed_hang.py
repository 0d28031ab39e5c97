"""An Ollama hang isolates itself (issue 22, item 3): writes that arrive once Ollama answers again are served at
normal speed, not behind the embedding calls the hang left open until their deadline."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer

pytestmark = pytest.mark.slow  # waits seconds (outages, hangs, retries)


def _write(client, user: str, text: str):
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False}
    return client.post("/memories", json=body)


def test_writes_after_a_hang_are_served_at_once(fresh_db, standin):
    env = server_env(fresh_db, standin, MEM0_EMBED_TIMEOUT_S="20", MEM0_EMBED_CONCURRENCY="2")
    with InProcessServer(env) as app, app.client() as client:
        user = f"u-{uuid.uuid4().hex[:8]}"
        standin.set_fault("embed", kind="hang", seconds=60)  # the calls made now stay open until their deadline
        during: list = []
        writers = [
            threading.Thread(target=lambda i=i: during.append(_write(client, user, f"written during the hang {i}")))
            for i in range(4)
        ]
        for writer in writers:
            writer.start()
        time.sleep(2.0)
        standin.clear_faults()  # Ollama answers again

        started = time.monotonic()
        after = _write(client, user, "written after the hang")
        took_s = time.monotonic() - started
        for writer in writers:
            writer.join(timeout=30)

    assert after.status_code == 200, after.text
    assert took_s < 1.5, took_s
    assert [response.status_code for response in during] == [200] * 4  # sent again within their deadline
