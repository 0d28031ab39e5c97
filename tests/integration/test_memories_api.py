"""The rest of mem0's REST surface: update, history, delete, scoped delete, search options, config, health."""

from __future__ import annotations

import uuid

from tests.support.postgres import count_rows


def _add(app_api, user: str, *texts: str, **extra) -> list[str]:
    messages = [{"role": "user", "content": text} for text in texts]
    response = app_api.post("/memories", json={"messages": messages, "user_id": user, "infer": False, **extra})
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


def test_update_text_reembeds_and_records_history(app_api, standin):
    [memory_id] = _add(app_api, "upd-user", "I live in Paris")
    standin.reset_stats()

    response = app_api.put(f"/memories/{memory_id}", json={"text": "I live in Berlin"})

    assert response.status_code == 200, response.text
    assert response.json()["memory"] == "I live in Berlin"
    assert standin.stats()["counts"]["embed"] == 1
    history = app_api.get(f"/memories/{memory_id}/history").json()
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in history] == [
        ("ADD", None, "I live in Paris"),
        ("UPDATE", "I live in Paris", "I live in Berlin"),
    ]
    top = app_api.post("/search", json={"query": "Berlin", "user_id": "upd-user", "top_k": 1}).json()["results"][0]
    assert top["id"] == memory_id and top["memory"] == "I live in Berlin"


def test_update_metadata_only_keeps_text_and_does_not_embed(app_api, standin):
    [memory_id] = _add(app_api, "meta-user", "I like tea", metadata={"a": 1})
    standin.reset_stats()

    response = app_api.put(f"/memories/{memory_id}", json={"metadata": {"b": 2}})

    assert response.status_code == 200
    item = app_api.get(f"/memories/{memory_id}").json()
    assert item["memory"] == "I like tea" and item["metadata"] == {"b": 2} and item["user_id"] == "meta-user"
    assert standin.stats()["counts"].get("embed", 0) == 0


def test_delete_removes_the_memory_and_records_history(app_api, module_db):
    [memory_id] = _add(app_api, "del-user", "temporary fact")

    assert app_api.delete(f"/memories/{memory_id}").status_code == 200

    assert app_api.get(f"/memories/{memory_id}").status_code == 404
    assert [h["event"] for h in app_api.get(f"/memories/{memory_id}/history").json()] == ["ADD", "DELETE"]
    assert app_api.delete(f"/memories/{memory_id}").status_code == 404


def test_delete_by_scope_removes_only_that_scope(app_api, module_db):
    doomed = _add(app_api, "scope-a", "one", "two")
    kept = _add(app_api, "scope-b", "three")

    response = app_api.delete("/memories", params={"user_id": "scope-a"})

    assert response.status_code == 200
    assert app_api.get("/memories", params={"user_id": "scope-a"}).json()["results"] == []
    assert [m["id"] for m in app_api.get("/memories", params={"user_id": "scope-b"}).json()["results"]] == kept
    deleted = count_rows(
        module_db, "memory_history", "event = 'DELETE' AND memory_id = ANY(%s)", ([uuid.UUID(i) for i in doomed],)
    )
    assert deleted == 2


def test_search_orders_by_distance_and_honours_top_k_threshold_and_filters(app_api):
    user = f"s-{uuid.uuid4().hex}"
    _add(app_api, user, "I love pizza with cheese", "My car is blue", "The weather is cold", metadata={"kind": "x"})
    _add(app_api, user, "pizza pizza pizza", metadata={"kind": "y"})

    # threshold 0: every row of the scope is a candidate (mem0's default 0.1 drops the unrelated ones).
    everything = {"query": "pizza", "user_id": user, "top_k": 10, "threshold": 0, "explain": True}
    results = app_api.post("/search", json=everything).json()["results"]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and len(results) == 4
    assert results[0]["memory"] == "pizza pizza pizza"

    assert len(app_api.post("/search", json={"query": "pizza", "user_id": user, "top_k": 2}).json()["results"]) == 2
    # The threshold gates the semantic score (mem0's rule), not the combined one.
    semantic = sorted((r["score_details"]["semantic_score"] for r in results), reverse=True)
    high = app_api.post("/search", json={"query": "pizza", "user_id": user, "threshold": semantic[1]}).json()["results"]
    assert sorted(r["score"] for r in high) == sorted(
        r["score"] for r in results if r["score_details"]["semantic_score"] >= semantic[1]
    )
    assert len(high) == 2
    only_x = app_api.post(
        "/search", json={"query": "pizza", "filters": {"user_id": user, "kind": "x"}, "threshold": 0}
    ).json()["results"]
    assert {r["metadata"]["kind"] for r in only_x} == {"x"} and len(only_x) == 3
    not_x = app_api.post("/search", json={"query": "pizza", "user_id": user, "filters": {"kind": {"ne": "x"}}}).json()
    assert [r["memory"] for r in not_x["results"]] == ["pizza pizza pizza"]


def test_list_respects_limit(app_api):
    user = f"l-{uuid.uuid4().hex}"
    _add(app_api, user, "a", "b", "c")

    assert len(app_api.get("/memories", params={"user_id": user, "limit": 2}).json()["results"]) == 2


def test_configure_shows_effective_config_without_secrets_and_refuses_changes(app_api):
    shown = app_api.get("/configure").json()

    assert shown["llm_provider"] == "ollama" and shown["embedding_dims"] == 768
    assert shown["database_url"].startswith("postgresql://postgres:***@")
    assert shown["embedder_provider"] == "ollama" and shown["ollama_base_url"].startswith("http://127.0.0.1:")
    refused = app_api.post("/configure", json={"llm": {"provider": "openai"}})
    assert refused.status_code == 403
    assert "env" in refused.json()["message"]


def test_health_and_ready(api):
    # A server process: `blocked_egress` counts what its egress guard refused, and only a process installs one.
    assert api.get("/health").json() == {"status": "ok", "blocked_egress": 0, "graph": "off"}
    ready = api.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_openapi_docs_are_served(app_api):
    assert app_api.get("/docs").status_code == 200
    paths = app_api.get("/openapi.json").json()["paths"]
    assert {"/memories", "/search", "/memories/{memory_id}/history", "/reset"} <= set(paths)


def test_reset_empties_everything_when_enabled(app_api, module_db):
    _add(app_api, "reset-user", "something")

    response = app_api.post("/reset")

    assert response.status_code == 200
    assert count_rows(module_db, "memories") == 0
    assert count_rows(module_db, "memory_history") == 0


def test_list_and_delete_by_each_identifier_kind(app_api):
    messages = [{"role": "user", "content": "scoped fact"}]
    body = {"messages": messages, "user_id": "kind-u", "agent_id": "kind-a", "run_id": "kind-r", "infer": False}
    [created] = app_api.post("/memories", json=body).json()["results"]

    for key, value in (("user_id", "kind-u"), ("agent_id", "kind-a"), ("run_id", "kind-r")):
        listed = app_api.get("/memories", params={key: value}).json()["results"]
        assert [m["id"] for m in listed] == [created["id"]], key
    assert app_api.get("/memories", params={"agent_id": "kind-a", "run_id": "other"}).json()["results"] == []
    assert app_api.delete("/memories", params={"run_id": "kind-r"}).status_code == 200
    assert app_api.get("/memories", params={"user_id": "kind-u"}).json()["results"] == []


def test_metadata_with_an_integer_past_64_bits_is_stored_and_read_back_exactly(app_api):
    user = f"bigint-{uuid.uuid4().hex[:8]}"
    [memory_id] = _add(app_api, user, "I count grains of sand", metadata={"grains": 2**70})

    stored = app_api.get(f"/memories/{memory_id}").json()
    found = app_api.post("/search", json={"query": "sand", "user_id": user}).json()["results"]

    assert stored["metadata"]["grains"] == 2**70
    assert [hit["metadata"]["grains"] for hit in found] == [2**70]
