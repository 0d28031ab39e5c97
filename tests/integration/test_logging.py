"""Logs are JSON lines with the request id; stored content never appears in them at INFO or above."""

from __future__ import annotations

import json
import uuid

from tests.conftest import server_env
from tests.support.server_process import ServerProcess


def test_logs_carry_request_ids_and_access_lines_but_never_message_content(fresh_db, standin):
    marker = f"secret-marker-{uuid.uuid4().hex}"
    body = {"messages": [{"role": "user", "content": f"my PIN is {marker}"}], "user_id": "log-user", "infer": False}

    with ServerProcess(server_env(fresh_db, standin)) as server, server.client() as client:
        client.post("/memories", json=body, headers={"X-Request-ID": "req-ok", "Authorization": f"Bearer {marker}"})
        client.post("/search", json={"query": marker, "user_id": "log-user"})
        standin.set_fault("embed", kind="status", status=500)
        client.post("/memories", json=body, headers={"X-Request-ID": "req-failed"})
        client.post("/memories", json={**body, "messages": [{"role": "wizard", "content": marker}]})

    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    assert marker not in server.output()
    [access] = [line for line in lines if line["logger"] == "app.access" and line.get("request_id") == "req-ok"]
    assert {"method": "POST", "route": "/memories", "status": 200}.items() <= access.items()
    failed = [line for line in lines if line.get("request_id") == "req-failed"]
    assert {line["level"] for line in failed} >= {"WARNING", "INFO"}
    assert any(line.get("status") == 502 for line in failed)
