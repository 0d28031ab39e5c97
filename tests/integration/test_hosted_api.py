"""mem0's hosted-API routes over HTTP (in-process app): the shapes mem0's clients parse, the same data the REST
API shows, 422 for what cannot be honoured, 501 (never 404) for what is not implemented, errors with `detail`."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi.routing import APIRoute

from app.hosted.router import router as hosted_router
from app.hosted.service import SUPPORTED_ROUTES


def _user() -> str:
    return f"hosted-{uuid.uuid4().hex[:10]}"


def _add(client: httpx.Client, user: str, *texts: str) -> list[str]:
    messages = [{"role": "user", "content": text} for text in texts]
    response = client.post("/v3/memories/add/", json={"messages": messages, "user_id": user, "infer": False})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["results"]]


def test_ping_answers_what_the_clients_read_and_needs_a_key(app_server, hosted):
    body = hosted.get("/v1/ping/").json()
    assert body["status"] == "ok" and body["org_id"] and body["project_id"]  # the Python client needs both

    with app_server.client() as anonymous:
        anonymous.headers.pop("X-API-Key")
        for method, path in (("GET", "/v1/ping/"), ("POST", "/v3/memories/search/"), ("GET", "/v1/unknown/")):
            refused = anonymous.request(method, path, json={} if method == "POST" else None)
            assert refused.status_code == 401, (path, refused.text)
            assert refused.json()["detail"] == refused.json()["message"]


def test_add_get_all_and_search_show_the_same_memories_as_the_rest_api(app_api, hosted):
    user = _user()
    ids = _add(hosted, user, "I like green tea", "I live in Lisbon", "I play the cello")
    # Identifiers in filters (the v3 way) work for add too, and a string message is one user message.
    in_filters = hosted.post(
        "/v3/memories/add/", json={"messages": "I own a cat", "filters": {"user_id": user}, "infer": False}
    )
    assert in_filters.status_code == 200, in_filters.text
    ids += [item["id"] for item in in_filters.json()["results"]]

    rest = app_api.get("/memories", params={"user_id": user}).json()["results"]
    assert sorted(m["id"] for m in rest) == sorted(ids)

    listed = hosted.post("/v3/memories/", json={"filters": {"AND": [{"user_id": user}]}}).json()
    assert listed["count"] == 4 and listed["next"] is None and listed["previous"] is None
    assert listed["results"] == rest

    first = hosted.post("/v3/memories/", params={"page": 1, "page_size": 3}, json={"filters": {"user_id": user}})
    second = hosted.post("/v3/memories/", params={"page": 2, "page_size": 3}, json={"filters": {"user_id": user}})
    assert first.json()["count"] == second.json()["count"] == 4
    assert first.json()["previous"] is None and "page=2" in first.json()["next"]
    assert second.json()["next"] is None and "page=1" in second.json()["previous"]
    assert first.json()["results"] + second.json()["results"] == rest

    found = hosted.post(
        "/v3/memories/search/",
        json={"query": "tea", "filters": {"user_id": user}, "top_k": 2, "threshold": 0.0, "output_format": "v1.1"},
    )
    assert found.status_code == 200, found.text
    expected = app_api.post("/search", json={"query": "tea", "user_id": user, "top_k": 2, "threshold": 0.0})
    expected = expected.json()["results"]
    assert found.json()["results"] == expected and len(expected) == 2


def test_inferred_add_extracts_facts_as_post_memories_does(app_api, hosted):
    user = _user()
    body = {"messages": [{"role": "user", "content": "I like jazz. I work as a nurse."}], "user_id": user}

    added = hosted.post("/v3/memories/add/", json=body)

    assert added.status_code == 200, added.text
    assert sorted(item["memory"] for item in added.json()["results"]) == ["I like jazz", "I work as a nurse"]
    stored = app_api.get("/memories", params={"user_id": user}).json()["results"]
    assert sorted(m["memory"] for m in stored) == ["I like jazz", "I work as a nurse"]


def test_get_update_history_and_delete_of_one_memory(app_api, hosted):
    [memory_id] = _add(hosted, _user(), "I drive a van")

    assert hosted.get(f"/v1/memories/{memory_id}/").json() == app_api.get(f"/memories/{memory_id}").json()
    updated = hosted.put(f"/v1/memories/{memory_id}/", json={"text": "I drive a truck", "metadata": {"k": "v"}})
    assert updated.status_code == 200, updated.text
    assert updated.json()["memory"] == "I drive a truck" and updated.json()["metadata"] == {"k": "v"}
    history = hosted.get(f"/v1/memories/{memory_id}/history/").json()
    assert [h["event"] for h in history] == ["ADD", "UPDATE"]
    assert history == app_api.get(f"/memories/{memory_id}/history").json()

    assert hosted.delete(f"/v1/memories/{memory_id}/").json() == {"message": "Memory deleted successfully!"}
    missing = hosted.get(f"/v1/memories/{memory_id}/")
    assert missing.status_code == 404 and "no memory" in missing.json()["detail"]
    assert app_api.get(f"/memories/{memory_id}").status_code == 404


def test_delete_all_takes_the_scope_as_parameters_or_filters(app_api, hosted):
    by_param, by_json, by_python_literal = _user(), _user(), _user()
    for user in (by_param, by_json, by_python_literal):
        _add(hosted, user, "I keep bees", "I grow leeks")

    assert hosted.delete("/v1/memories/", params={"user_id": by_param}).status_code == 200
    assert hosted.delete("/v1/memories/", params={"filters": f'{{"user_id": "{by_json}"}}'}).status_code == 200
    # mem0's Python client sends a filters dict as str(dict): a Python literal, parsed as a literal only.
    assert hosted.delete("/v1/memories/", params={"filters": str({"user_id": by_python_literal})}).status_code == 200
    for user in (by_param, by_json, by_python_literal):
        assert app_api.get("/memories", params={"user_id": user}).json()["results"] == []

    everything = hosted.delete("/v1/memories/")
    assert everything.status_code == 422 and "identifier" in everything.json()["detail"]
    code = hosted.delete("/v1/memories/", params={"filters": "__import__('os').getcwd()"})
    assert code.status_code == 422


def test_entities_are_listed_and_deleted_through_both_apis(app_api, hosted):
    user, other = _user(), _user()
    _add(hosted, user, "I like figs", "I like plums")
    _add(hosted, other, "I like dates")

    listed = hosted.get("/v1/entities/", params={"page_size": 1000}).json()
    mine = [e for e in listed["results"] if e["name"] == user]
    assert mine and mine[0]["type"] == "user" and mine[0]["total_memories"] == 2
    assert listed["count"] == len(listed["results"]) and listed["next"] is None
    assert app_api.get("/entities", params={"page_size": 1000}).json()["results"] == listed["results"]

    deleted = hosted.delete(f"/v2/entities/user/{user}/")
    assert deleted.status_code == 200 and deleted.json() == {"message": "Entity deleted successfully!"}
    assert app_api.get("/memories", params={"user_id": user}).json()["results"] == []
    assert len(app_api.get("/memories", params={"user_id": other}).json()["results"]) == 1
    rest_delete = app_api.delete(f"/entities/user/{other}")
    assert rest_delete.json() == {"message": "Entity deleted successfully (1 memories)"}
    assert app_api.get("/memories", params={"user_id": other}).json()["results"] == []

    app_entity = hosted.delete("/v2/entities/app/some-app/")
    assert app_entity.status_code == 422 and "app_id" in app_entity.json()["detail"]


def test_batch_update_and_delete_check_every_id_before_changing_anything(app_api, hosted):
    user = _user()
    first, second = _add(hosted, user, "I read novels", "I bake bread")
    absent = str(uuid.uuid4())

    refused = hosted.put(
        "/v1/batch/", json={"memories": [{"memory_id": first, "text": "x"}, {"memory_id": absent, "text": "y"}]}
    )
    assert refused.status_code == 404
    assert app_api.get(f"/memories/{first}").json()["memory"] == "I read novels"

    updated = hosted.put(
        "/v1/batch/",
        json={"memories": [{"memory_id": first, "text": "I read poems"}, {"memory_id": second, "text": "I bake pies"}]},
    )
    assert updated.json() == {"message": "Successfully updated 2 memories"}
    assert sorted(m["memory"] for m in app_api.get("/memories", params={"user_id": user}).json()["results"]) == [
        "I bake pies",
        "I read poems",
    ]

    assert hosted.request("DELETE", "/v1/batch/", json={"memories": [{"memory_id": absent}]}).status_code == 404
    deleted = hosted.request("DELETE", "/v1/batch/", json={"memories": [{"memory_id": first}, {"memory_id": second}]})
    assert deleted.json() == {"message": "Successfully deleted 2 memories"}
    assert app_api.get("/memories", params={"user_id": user}).json()["results"] == []


def test_expiration_dates_are_honoured_as_mem0_does(hosted, app_api):
    user = f"exp-{uuid.uuid4().hex[:8]}"
    body = {"messages": [{"role": "user", "content": "old news"}], "user_id": user, "infer": False}
    assert hosted.post("/v3/memories/add/", json={**body, "expiration_date": "2000-01-01"}).status_code == 200
    search = {"query": "news", "filters": {"user_id": user}, "threshold": 0}

    assert hosted.post("/v3/memories/search/", json=search).json()["results"] == []
    shown = hosted.post("/v3/memories/search/", json={**search, "show_expired": True}).json()["results"]
    assert [item["memory"] for item in shown] == ["old news"]
    assert app_api.get("/memories", params={"user_id": user}).json()["results"] == []


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/v3/memories/add/", {"custom_instructions": "be brief"}, "custom_instructions"),
        ("/v3/memories/add/", {"app_id": ""}, "app_id"),
        ("/v3/memories/add/", {"expiration_date": "soon"}, "expiration_date"),
        ("/v3/memories/add/", {"output_format": "v2.0"}, "output_format"),
        ("/v3/memories/search/", {"rerank": True}, "rerank"),
        ("/v3/memories/search/", {"keyword_search": False}, "keyword_search"),
        ("/v3/memories/search/", {"categories": "food"}, "categories"),
        ("/v3/memories/search/", {"fields": ["memory"]}, "fields"),
        ("/v3/memories/", {"start_date": "soon"}, "start_date"),
        ("/v3/memories/", {"filters": {"user_id": {"ne": "u"}}}, "user_id"),
    ],
)
def test_a_field_that_cannot_be_honoured_is_a_422_naming_it(hosted, path, body, named):
    base = {
        "/v3/memories/add/": {"messages": [{"role": "user", "content": "hi"}], "user_id": "u", "infer": False},
        "/v3/memories/search/": {"query": "hi", "filters": {"user_id": "u"}},
        "/v3/memories/": {"filters": {"user_id": "u"}},
    }[path]

    response = hosted.post(path, json={**base, **body})

    assert response.status_code == 422, response.text
    assert named in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/feedback/"),
        ("POST", "/v1/exports/"),
        ("GET", "/v2/entities/user/alice/profile/"),
        ("POST", "/v2/profiles/jobs/"),
        ("GET", "/v3/anything/at/all"),
        ("GET", "/api/v1/orgs/organizations/mem0-fixed/projects/default/"),
    ],
)
def test_unsupported_hosted_routes_answer_501_naming_what_is_supported(hosted, method, path):
    response = hosted.request(method, path, json={} if method in ("POST", "PATCH") else None)

    assert response.status_code == 501, response.text
    body = response.json()
    assert body["error"] == "not_supported" and body["detail"] == body["message"]
    assert "POST /v3/memories/add/" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/v1/memories/", "DELETE, GET, POST"),
        ("POST", "/v1/memories/0b6d4c2e-1b7a-4c51-9d8e-3f1f0f1f0f1f/", "DELETE, GET, PUT"),
        ("GET", "/v3/memories/add/", "POST"),
        ("POST", "/v2/entities/user/alice/", "DELETE"),
    ],
)
def test_a_served_hosted_route_answers_405_with_allow_for_another_method(hosted, method, path, allowed):
    response = hosted.request(method, path, json={} if method in ("POST", "PATCH") else None)

    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == allowed
    assert response.json()["error"] == "method_not_allowed" and allowed in response.json()["message"]


def test_configure_providers_names_ollama_only(hosted):
    body = hosted.get("/configure/providers").json()
    assert body["llm"]["providers"] == ["ollama"] and body["embedder"]["providers"] == ["ollama"]
    assert body["vector_store"]["providers"] == ["pgvector"]


def test_a_retried_add_with_an_idempotency_key_stores_once(app_api, hosted):
    user = _user()
    body = {"messages": [{"role": "user", "content": "I swim at dawn"}], "user_id": user, "infer": False}
    key = {"Idempotency-Key": f"hosted-{uuid.uuid4()}"}

    first = hosted.post("/v3/memories/add/", json=body, headers=key)
    again = hosted.post("/v3/memories/add/", json=body, headers=key)

    assert first.status_code == again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert [m["id"] for m in app_api.get("/memories", params={"user_id": user}).json()["results"]] == [
        first.json()["results"][0]["id"]
    ]


def test_the_501_message_names_every_route_the_router_serves(app_server):
    served = {
        f"{method} {route.path}"
        for route in hosted_router.routes
        if isinstance(route, APIRoute) and "{rest:path}" not in route.path and route.path != "/v1/feedback/"
        for method in route.methods
    }
    named = {
        f"{method} {path.replace('{id}', '{memory_id}').replace('{type}', '{scope_type}')}"
        for entry in SUPPORTED_ROUTES
        for methods, path in [entry.split(" ", 1)]
        for method in methods.split("|")
    }
    # The older TypeScript path for deleting an entity is served too, without being advertised.
    assert served - named == {"DELETE /v1/entities/{scope_type}/{name}/"}
    assert named <= served
