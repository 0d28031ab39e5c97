"""Filter keys are data, never SQL (issue 22, item 7): a metadata key holding `%` filters like any other key on REST
and the hosted API, and a filter whose keys are not strings is a 422, not a 500."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def user(app_api) -> str:
    user = f"u-{uuid.uuid4().hex[:8]}"
    for text, metadata in (("Likes green tea", {"50% off": "yes", "a_b%": 3}), ("Likes black coffee", {"other": 1})):
        body = {"messages": [{"role": "user", "content": text}], "user_id": user, "metadata": metadata, "infer": False}
        assert app_api.post("/memories", json=body).status_code == 200
    return user


@pytest.mark.parametrize(
    "filters",
    [
        {"50% off": "yes"},
        {"50% off": "*"},
        {"50% off": {"contains": "ye"}},
        {"a_b%": {"gte": 2}},
        {"OR": [{"50% off": {"in": ["yes"]}}, {"a_b%": {"lt": 0}}]},
    ],
)
def test_a_key_holding_a_percent_sign_filters_like_any_other(app_api, user, filters):
    response = app_api.post("/search", json={"query": "drinks", "user_id": user, "filters": filters, "threshold": 0})
    assert response.status_code == 200, response.text
    assert [item["memory"] for item in response.json()["results"]] == ["Likes green tea"]


def test_the_hosted_search_takes_the_same_keys(app_api, user):
    body = {"query": "drinks", "filters": {"AND": [{"user_id": user}, {"50% off": "yes"}]}, "threshold": 0}
    response = app_api.post("/v3/memories/search/", json=body)
    assert response.status_code == 200, response.text
    assert [item["memory"] for item in response.json()["results"]] == ["Likes green tea"]


@pytest.mark.parametrize("raw", ["{1: 2}", "{'user_id': 'x', 3: 'y'}"])
def test_a_hosted_delete_whose_filters_have_no_string_keys_is_a_422(app_api, user, raw):
    response = app_api.delete("/v1/memories/", params={"filters": raw})
    assert response.status_code == 422, response.text
    assert "string keys" in response.json()["message"]
    assert len(app_api.get("/memories", params={"user_id": user}).json()["results"]) == 2
