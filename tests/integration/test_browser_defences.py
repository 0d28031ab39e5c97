"""The Host allow-list and the Origin check read every spelling right (issue 22, item 7): an empty or malformed
Host is refused, an IPv6 literal with its port is the `::1` of MEM0_ALLOWED_HOSTS, and a state change from the
`null` origin (sandboxed pages, file://) is refused like any unknown origin."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("host", ["", "[::1", "evil.example", "[::2]:8888"])
def test_an_empty_malformed_or_unknown_host_is_refused(app_api, host):
    response = app_api.get("/health", headers={"Host": host})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_host"


@pytest.mark.parametrize("host", ["[::1]:8888", "[::1]", "localhost:8888", "127.0.0.1", "MEM0"])
def test_an_allowed_host_in_any_spelling_is_served(app_api, host):
    assert app_api.get("/health", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("origin", ["null", "file://", "file:///home/me/page.html", "http://[::1"])
def test_a_state_change_from_an_origin_without_an_allowed_host_is_refused(app_api, origin):
    body = {"query": "tea", "user_id": "alice"}
    response = app_api.post("/search", json=body, headers={"Origin": origin})
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "cross_origin_refused"


def test_a_state_change_from_an_allowed_hosts_page_is_served(app_api):
    body = {"query": "tea", "user_id": "alice"}
    assert app_api.post("/search", json=body, headers={"Origin": "http://localhost:3000"}).status_code == 200
