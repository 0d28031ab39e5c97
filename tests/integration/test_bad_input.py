"""Every client mistake is a 4xx JSON error that says what to fix, and nothing is written."""

from __future__ import annotations

import pytest

from tests.support.postgres import count_rows

OK_MESSAGE = {"role": "user", "content": "hello"}
LONG = "x" * 20_001  # default MEM0_MAX_MESSAGE_CHARS is 20,000

BAD_WRITES = {
    "no identifier": {"messages": [OK_MESSAGE], "infer": False},
    "empty messages": {"messages": [], "user_id": "u", "infer": False},
    "message without role": {"messages": [{"content": "hi"}], "user_id": "u", "infer": False},
    "message without content": {"messages": [{"role": "user"}], "user_id": "u", "infer": False},
    "unknown role": {"messages": [{"role": "wizard", "content": "hi"}], "user_id": "u", "infer": False},
    "blank content": {"messages": [{"role": "user", "content": "   "}], "user_id": "u", "infer": False},
    "content too long": {"messages": [{"role": "user", "content": LONG}], "user_id": "u", "infer": False},
    "too many messages": {"messages": [OK_MESSAGE] * 501, "user_id": "u", "infer": False},
    "content not a string": {"messages": [{"role": "user", "content": 42}], "user_id": "u", "infer": False},
    "messages not a list": {"messages": "hello", "user_id": "u", "infer": False},
    "user_id not a string": {"messages": [OK_MESSAGE], "user_id": 7, "infer": False},
    "infer not a boolean": {"messages": [OK_MESSAGE], "user_id": "u", "infer": "nope"},
    "metadata not an object": {"messages": [OK_MESSAGE], "user_id": "u", "metadata": ["a"], "infer": False},
    "reserved metadata key": {"messages": [OK_MESSAGE], "user_id": "u", "metadata": {"user_id": "b"}, "infer": False},
    "NUL in content": {"messages": [{"role": "user", "content": "a\u0000b"}], "user_id": "u", "infer": False},
    "NUL in metadata": {"messages": [OK_MESSAGE], "user_id": "u", "metadata": {"k": "a\u0000"}, "infer": False},
    "NUL in identifier": {"messages": [OK_MESSAGE], "user_id": "u\u0000", "infer": False},
    "only system messages": {"messages": [{"role": "system", "content": "be nice"}], "user_id": "u", "infer": False},
    "body is a list": [OK_MESSAGE],
}


@pytest.mark.parametrize("body", BAD_WRITES.values(), ids=BAD_WRITES.keys())
def test_bad_writes_are_4xx_and_store_nothing(app_api, module_db, standin, body):
    before = (count_rows(module_db, "memories"), count_rows(module_db, "memory_history"))

    response = app_api.post("/memories", json=body)

    assert 400 <= response.status_code < 500, response.text
    error = response.json()
    assert set(error) == {"error", "message", "detail", "request_id"} and error["message"]
    assert (count_rows(module_db, "memories"), count_rows(module_db, "memory_history")) == before
    assert standin.stats()["counts"].get("embed", 0) == 0


def test_a_body_that_is_not_json_is_a_400(app_api, module_db):
    before = count_rows(module_db, "memories")

    response = app_api.post("/memories", content=b"{not json", headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert "JSON" in response.json()["message"]
    assert count_rows(module_db, "memories") == before


BAD_SEARCHES = {
    "no identifier": {"query": "q"},
    "empty query": {"query": "", "user_id": "u"},
    "top_k zero": {"query": "q", "user_id": "u", "top_k": 0},
    "top_k too large": {"query": "q", "user_id": "u", "top_k": 10_000},
    "top_k not a number": {"query": "q", "user_id": "u", "top_k": "ten"},
    "threshold above one": {"query": "q", "user_id": "u", "threshold": 1.5},
    "NUL in query": {"query": "a\u0000", "user_id": "u"},
    "unknown filter operator": {"query": "q", "user_id": "u", "filters": {"k": {"regex": "x"}}},
    "filters not an object": {"query": "q", "user_id": "u", "filters": "k=v"},
}


@pytest.mark.parametrize("body", BAD_SEARCHES.values(), ids=BAD_SEARCHES.keys())
def test_bad_searches_are_4xx(app_api, body):
    response = app_api.post("/search", json=body)

    assert 400 <= response.status_code < 500, response.text
    assert response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/memories/not-a-uuid", None),
        ("PUT", "/memories/not-a-uuid", {"text": "x"}),
        ("DELETE", "/memories/not-a-uuid", None),
        ("GET", "/memories/not-a-uuid/history", None),
        ("GET", "/memories", None),
        ("DELETE", "/memories", None),
        ("GET", "/memories?user_id=u&limit=0", None),
    ],
)
def test_bad_ids_and_missing_scopes_are_4xx(app_api, module_db, method, path, body):
    before = count_rows(module_db, "memories")

    response = app_api.request(method, path, json=body)

    assert 400 <= response.status_code < 500, response.text
    assert count_rows(module_db, "memories") == before


def test_unknown_memory_is_404(app_api):
    response = app_api.get("/memories/00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"metadata": "x"}, {"text": "a\u0000"}, {"text": 5}])
def test_bad_updates_are_4xx(app_api, body):
    [created] = app_api.post("/memories", json={"messages": [OK_MESSAGE], "user_id": "upd", "infer": False}).json()[
        "results"
    ]

    response = app_api.put(f"/memories/{created['id']}", json=body)

    assert 400 <= response.status_code < 500, response.text
    assert app_api.get(f"/memories/{created['id']}").json()["memory"] == "hello"
