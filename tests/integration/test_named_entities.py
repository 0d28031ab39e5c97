"""Named entities (issue 16, item 3): an inferred write stores the people, places, organizations and products its
facts name in mem0's entity collection, a search naming one boosts the memories linked to it, and deleting or
rewriting a memory unlinks it. The stand-in answers the extraction schema with each capitalised run of words."""

from __future__ import annotations

import uuid

import pytest

from tests.support.jobs import infer_write
from tests.support.keys import mint_key
from tests.support.postgres import count_rows


def _user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _infer(api, user: str, text: str) -> list[dict]:
    response = api.post("/memories", json=infer_write(user, text))
    assert response.status_code == 200, response.text
    return response.json()["results"]


def _raw(api, user: str, text: str) -> str:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False}
    response = api.post("/memories", json=body)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["id"]


def _entities(api, **scope: str) -> dict[str, dict]:
    response = api.get("/named-entities", params=scope)
    assert response.status_code == 200, response.text
    return {entity["name"]: entity for entity in response.json()["results"]}


def _search(api, user: str, query: str) -> list[dict]:
    response = api.post("/search", json={"query": query, "user_id": user, "explain": True})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_an_inferred_write_links_the_entities_its_facts_name(app_api):
    user = _user("alice")
    [moved] = _infer(app_api, user, "Alice moved to Lisbon.")
    entities = _entities(app_api, user_id=user)
    assert {name: (e["type"], e["linked_memory_ids"]) for name, e in entities.items()} == {
        "Alice": ("person", [moved["id"]]),
        "Lisbon": ("place", [moved["id"]]),
    }
    assert entities["Alice"]["user_id"] == user

    [likes] = _infer(app_api, user, "Alice likes tea.")
    assert _entities(app_api, user_id=user)["Alice"]["linked_memory_ids"] == [moved["id"], likes["id"]]
    # Another scope has entities of its own.
    assert _entities(app_api, user_id=_user("nobody")) == {}


def test_a_search_naming_an_entity_boosts_its_memories_as_mem0_scores_it(app_api, mem0_memory, standin):
    user = _user("boost")
    [moved] = _infer(app_api, user, "Alice moved to Lisbon.")
    for text in ("The tram in the old town is yellow", "Pastel de nata is a custard tart", "Port wine is sweet"):
        _raw(app_api, user, text)

    standin.reset_stats()
    first = _search(app_api, user, "Lisbon")[0]
    assert standin.stats()["counts"]["embed"] == 1  # finding the query's entities costs no embed call
    assert first["id"] == moved["id"]
    details = first["score_details"]
    assert details["entity_boost"] == pytest.approx(0.5)
    assert details["max_possible_score"] == pytest.approx(2.5)  # keyword hit + entity: mem0's divisor
    raw = details["semantic_score"] + details["bm25_score"] + details["entity_boost"]
    assert first["score"] == pytest.approx(min(raw / 2.5, 1.0), abs=1e-12)

    # Upstream mem0 reads the same rows and, given the query's entity, boosts the same memory by the same amount
    # (its similarity: the stand-in embeds the name as it embedded it on write).
    boosts = mem0_memory._compute_entity_boosts([("PROPER", "Lisbon")], {"user_id": user})
    assert boosts == {moved["id"]: pytest.approx(details["entity_boost"], abs=1e-6)}

    # Without the entity the same memory scores what semantic + keyword give it, over 2.
    lisbon = _entities(app_api, user_id=user)["Lisbon"]
    assert app_api.delete(f"/named-entities/{lisbon['id']}").status_code == 200
    again = next(r for r in _search(app_api, user, "Lisbon") if r["id"] == moved["id"])
    assert again["score_details"]["entity_boost"] == 0.0
    assert again["score_details"]["max_possible_score"] == 2.0
    assert again["score"] < first["score"]
    assert app_api.delete(f"/named-entities/{lisbon['id']}").status_code == 404
    assert app_api.get("/memories", params={"user_id": user}).json()["results"]  # its memories stay


def test_deleting_or_rewriting_a_memory_unlinks_it(app_api, module_db):
    user = _user("unlink")
    [moved] = _infer(app_api, user, "Alice moved to Lisbon.")
    [met] = _infer(app_api, user, "Alice met Bruno in Porto.")
    assert set(_entities(app_api, user_id=user)) == {"Alice", "Lisbon", "Bruno", "Porto"}

    assert app_api.delete(f"/memories/{moved['id']}").status_code == 200
    entities = _entities(app_api, user_id=user)
    assert set(entities) == {"Alice", "Bruno", "Porto"}  # Lisbon named only the deleted memory: gone
    assert entities["Alice"]["linked_memory_ids"] == [met["id"]]

    # A rewrite keeps the links of the entities the new text still names.
    assert app_api.put(f"/memories/{met['id']}", json={"text": "Alice met Bruno at home"}).status_code == 200
    assert {n: e["linked_memory_ids"] for n, e in _entities(app_api, user_id=user).items()} == {
        "Alice": [met["id"]],
        "Bruno": [met["id"]],
    }
    assert app_api.delete("/memories", params={"user_id": user}).status_code == 200
    assert _entities(app_api, user_id=user) == {}
    assert count_rows(module_db, "memories_entities", "payload->>'user_id' = %s", (user,)) == 0


def test_a_write_without_inference_names_no_entities(app_api):
    user = _user("raw")
    _raw(app_api, user, "Alice moved to Lisbon")
    assert _entities(app_api, user_id=user) == {}
    assert _search(app_api, user, "Lisbon")[0]["score_details"]["entity_boost"] == 0.0


def test_a_limited_key_sees_and_deletes_only_its_scopes_entities(app_server, app_api, module_db):
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    _infer(app_api, bob, "Bob moved to Oslo.")
    bobs = _entities(app_api, user_id=bob)["Oslo"]
    limited = mint_key(module_db, "--name", "alice-entities", "--user-id", "alice-*")
    with app_server.client(headers={"X-API-Key": limited}) as client:
        assert _entities(client, user_id=bob) == {}
        assert client.delete(f"/named-entities/{bobs['id']}").status_code == 404
        assert client.get("/named-entities").status_code == 422  # no scope named
        assert client.delete("/named-entities/not-a-uuid").status_code == 422
        _infer(client, alice, "Alice moved to Lisbon.")
        assert set(_entities(client, user_id=alice)) == {"Alice", "Lisbon"}
    assert "Oslo" in _entities(app_api, user_id=bob)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/named-entities", {"user_id": "u", "page_size": 5, "limt": 5}),
        ("/memories", {"user_id": "u", "limt": 5}),
        ("/entities", {"pagesize": 5}),
    ],
)
def test_a_misspelt_query_parameter_is_refused_by_name(app_api, path, params):
    response = app_api.get(path, params=params)
    assert response.status_code == 422
    misspelt = next(name for name in params if name not in ("user_id", "page_size"))
    assert f"unknown query parameter(s) {misspelt}" in response.json()["message"]
