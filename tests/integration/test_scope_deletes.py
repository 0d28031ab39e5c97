"""A limited key's delete of a scope wholly outside it is a 403 on every route that deletes a scope (issue 22,
item 7), not a 200 that says 0 were deleted; a scope that overlaps the key deletes only the key's own memories."""

from __future__ import annotations

import uuid

import pytest

from tests.support.keys import mint_key


def _add(client, user: str, agent: str, text: str) -> None:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "agent_id": agent, "infer": False}
    assert client.post("/memories", json=body).status_code == 200


@pytest.fixture
def people(app_api, app_server, module_db):
    tag = uuid.uuid4().hex[:8]
    alice, bob, agent = f"alice-{tag}", f"bob-{tag}", f"agent-{tag}"
    _add(app_api, alice, agent, "Alice keeps goats")
    _add(app_api, bob, agent, "Bob keeps bees")
    limited = mint_key(module_db, "--name", f"alice-bot-{tag}", "--user-id", f"alice-{tag}")
    with app_server.client(headers={"X-API-Key": limited}) as client:
        yield client, alice, bob, agent


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("DELETE", "/memories", {"user_id": "{bob}"}),
        ("DELETE", "/entities/user/{bob}", {}),
        ("DELETE", "/v1/memories/", {"user_id": "{bob}"}),
        ("DELETE", "/v2/entities/user/{bob}/", {}),
    ],
)
def test_deleting_a_scope_outside_the_key_is_forbidden(app_api, people, method, path, params):
    client, _, bob, _ = people
    response = client.request(method, path.format(bob=bob), params={k: v.format(bob=bob) for k, v in params.items()})
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert [m["memory"] for m in app_api.get("/memories", params={"user_id": bob}).json()["results"]] == [
        "Bob keeps bees"
    ]


def test_a_scope_that_overlaps_the_key_deletes_only_the_keys_memories(app_api, people):
    client, alice, bob, agent = people
    response = client.delete("/memories", params={"agent_id": agent})
    assert response.status_code == 200 and response.json()["message"].endswith("(1)")
    assert app_api.get("/memories", params={"user_id": alice}).json()["results"] == []
    assert len(app_api.get("/memories", params={"user_id": bob}).json()["results"]) == 1


def test_the_hosted_delete_of_a_user_without_memories_is_a_404_not_a_success(app_api, people):
    response = app_api.delete(f"/v2/entities/user/nobody-{uuid.uuid4().hex[:8]}/")
    assert response.status_code == 404, response.text
    assert "no memories of user" in response.json()["message"]
