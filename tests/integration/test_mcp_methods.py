"""The MCP endpoint is stateless JSON (issue 22, item 6): an authenticated GET or DELETE is a 405 that names POST,
not an event stream left open, and a POST is still answered."""

from __future__ import annotations

import pytest

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_get_or_delete_is_405_naming_post(app_api, method):
    response = app_api.request(method, "/mcp", headers={"Accept": "text/event-stream"}, timeout=5)
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"


def test_a_post_is_answered(app_api):
    response = app_api.post("/mcp", headers=MCP_HEADERS, json=INITIALIZE, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "mem0-fixed"
