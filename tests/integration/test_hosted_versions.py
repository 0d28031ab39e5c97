"""mem0's v1 and v2 hosted routes (older SDKs, Mastra, hand-written integrations) as adapters over the same use
cases: their request and answer shapes, and client configuration in bodies accepted visibly (issue 24, item 1)."""

from __future__ import annotations

import uuid

import pytest

CLIENT_CONFIG = {"org_id": "org-1", "project_id": "proj-1", "apiKey": "m0-abc", "host": "https://api.mem0.ai"}


def _user() -> str:
    return f"v1-{uuid.uuid4().hex[:10]}"


def _v1_add(hosted, user: str, *texts: str, **extra: object):
    messages = [{"role": "user", "content": text} for text in texts]
    return hosted.post("/v1/memories/", json={"messages": messages, "user_id": user, "infer": False, **extra})


def test_v1_add_answers_a_list_and_v1_1_an_object(hosted):
    user = _user()
    listed = _v1_add(hosted, user, "I keep bees")
    assert listed.status_code == 200, listed.text
    assert [item["memory"] for item in listed.json()] == ["I keep bees"]

    wrapped = _v1_add(hosted, user, "I grow leeks", output_format="v1.1")
    assert [item["memory"] for item in wrapped.json()["results"]] == ["I grow leeks"]


def test_v1_and_v2_search_and_list_find_what_v1_added(hosted):
    user = _user()
    _v1_add(hosted, user, "I keep bees", "I live in Porto")

    v1 = hosted.post("/v1/memories/search/", json={"query": "bees", "user_id": user, "limit": 1})
    v2 = hosted.post("/v2/memories/search/", json={"query": "bees", "filters": {"AND": [{"user_id": user}]}})
    wrapped = hosted.post("/v1/memories/search/", json={"query": "bees", "user_id": user, "output_format": "v1.1"})
    assert [m["memory"] for m in v1.json()] == ["I keep bees"]
    assert v2.json()[0]["memory"] == "I keep bees" and wrapped.json()["results"][0]["memory"] == "I keep bees"

    v1_list = hosted.get("/v1/memories/", params={"user_id": user})
    v2_list = hosted.post("/v2/memories/", json={"filters": {"user_id": user}})
    paged = hosted.post("/v2/memories/", json={"filters": {"user_id": user}}, params={"page": 1, "page_size": 1})
    assert sorted(m["memory"] for m in v1_list.json()) == sorted(m["memory"] for m in v2_list.json())
    assert len(v1_list.json()) == 2
    assert paged.json()["count"] == 2 and len(paged.json()["results"]) == 1 and paged.json()["next"]


def test_search_metadata_is_an_equality_filter(hosted):
    user = _user()
    _v1_add(hosted, user, "I like green tea", metadata={"topic": "drinks"})
    _v1_add(hosted, user, "I like green walls", metadata={"topic": "home"})

    found = hosted.post("/v1/memories/search/", json={"query": "green", "user_id": user, "metadata": {"topic": "home"}})

    assert [m["memory"] for m in found.json()] == ["I like green walls"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/memories/", {"messages": [{"role": "user", "content": "I row"}], "infer": False}),
        ("POST", "/v3/memories/add/", {"messages": [{"role": "user", "content": "I row"}], "infer": False}),
        ("POST", "/v1/memories/search/", {"query": "row"}),
        ("POST", "/v3/memories/search/", {"query": "row"}),
        ("POST", "/v2/memories/", {}),
    ],
)
def test_client_configuration_in_a_body_is_named_back_and_counted(hosted, method, path, body):
    user = _user()
    before = hosted.get("/metrics").text

    response = hosted.request(method, path, json={**body, "user_id": user, **CLIENT_CONFIG})

    assert response.status_code == 200, response.text
    assert response.headers["X-Mem0-Ignored-Fields"] == "apiKey, host, org_id, project_id"
    after = hosted.get("/metrics").text
    assert _count(after, "org_id") == _count(before, "org_id") + 1


def test_client_configuration_in_a_v1_list_query_is_named_back(hosted):
    response = hosted.get("/v1/memories/", params={"user_id": _user(), "org_id": "o", "project_id": "p"})
    assert response.status_code == 200 and response.headers["X-Mem0-Ignored-Fields"] == "org_id, project_id"


def test_the_rest_routes_stay_strict(hosted):
    response = hosted.post("/search", json={"query": "x", "user_id": _user(), "org_id": "o"})
    assert response.status_code == 422 and "org_id" in response.json()["message"]


def _count(metrics: str, field: str) -> float:
    line = next(
        (row for row in metrics.splitlines() if row.startswith(f'mem0_ignored_fields_total{{field="{field}"}}')), ""
    )
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


def test_client_configuration_in_a_query_string_is_named_back_on_every_hosted_route(hosted):
    user = _user()
    [memory] = _v1_add(hosted, user, "I sail").json()
    config = {"org_id": "mem0-fixed", "project_id": "default"}

    fetched = hosted.get(f"/v1/memories/{memory['id']}/", params=config)
    deleted_all = hosted.delete("/v1/memories/", params={"user_id": user, **config})

    assert fetched.status_code == 200 and fetched.headers["X-Mem0-Ignored-Fields"] == "org_id, project_id"
    assert deleted_all.status_code == 200, deleted_all.text
    assert deleted_all.headers["X-Mem0-Ignored-Fields"] == "org_id, project_id"
