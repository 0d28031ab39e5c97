"""Every field upstream mem0's server and clients send is honoured with mem0's meaning or refused with a 422 that
names it: none is accepted and ignored."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.support.jobs import wait_job

YESTERDAY = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
TOMORROW = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()


def _user() -> str:
    return f"f-{uuid.uuid4().hex[:10]}"


def _add(api, user: str, text: str, **extra) -> str:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False, **extra}
    response = api.post("/memories", json=body)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["id"]


def _listed(api, user: str, **params) -> list[str]:
    response = api.get("/memories", params={"user_id": user, **params})
    assert response.status_code == 200, response.text
    return sorted(item["memory"] for item in response.json()["results"])


def _searched(api, user: str, **extra) -> list[str]:
    body = {"query": "anything", "user_id": user, "threshold": 0, **extra}
    response = api.post("/search", json=body)
    assert response.status_code == 200, response.text
    return sorted(item["memory"] for item in response.json()["results"])


def test_expired_memories_are_left_out_unless_show_expired(app_api):
    user = _user()
    _add(app_api, user, "old news", expiration_date=YESTERDAY)
    _add(app_api, user, "fresh news", expiration_date=TOMORROW)
    _add(app_api, user, "timeless")

    assert _listed(app_api, user) == ["fresh news", "timeless"]
    assert _listed(app_api, user, show_expired="true") == ["fresh news", "old news", "timeless"]
    assert _searched(app_api, user) == ["fresh news", "timeless"]
    assert _searched(app_api, user, show_expired=True) == ["fresh news", "old news", "timeless"]


def test_put_sets_and_clears_an_expiration_date(app_api):
    user = _user()
    memory_id = _add(app_api, user, "a fact")

    expired = app_api.put(f"/memories/{memory_id}", json={"expiration_date": YESTERDAY})
    assert expired.status_code == 200 and expired.json()["expiration_date"] == YESTERDAY
    assert _listed(app_api, user) == []
    cleared = app_api.put(f"/memories/{memory_id}", json={"expiration_date": None})
    assert cleared.status_code == 200 and cleared.json().get("expiration_date") is None
    assert _listed(app_api, user) == ["a fact"]
    assert app_api.put(f"/memories/{memory_id}", json={"expiration_date": "next week"}).status_code == 422


def test_list_honours_top_k_with_mem0s_default_of_20(app_api):
    user = _user()
    body = {"messages": [{"role": "user", "content": f"fact {i}"} for i in range(25)], "user_id": user, "infer": False}
    assert app_api.post("/memories", json=body).status_code == 200

    assert len(_listed(app_api, user)) == 20
    assert len(_listed(app_api, user, top_k=1)) == 1
    assert len(_listed(app_api, user, top_k=25)) == 25
    assert app_api.get("/memories", params={"user_id": user, "top_k": 2, "limit": 3}).status_code == 422


def test_filters_take_the_wildcard_logical_operators_and_date_ranges(app_api):
    user = _user()
    _add(app_api, user, "red apple", metadata={"color": "red", "kind": "fruit"})
    _add(app_api, user, "green apple", metadata={"color": "green", "kind": "fruit"})
    _add(app_api, user, "red car", metadata={"color": "red", "kind": "vehicle"})
    _add(app_api, user, "no color")

    assert _searched(app_api, user, filters={"color": "*"}) == ["green apple", "red apple", "red car"]
    either = {"OR": [{"color": "green"}, {"kind": "vehicle"}]}
    assert _searched(app_api, user, filters=either) == ["green apple", "red car"]
    both = {"AND": [{"color": "red"}, {"kind": "fruit"}]}
    assert _searched(app_api, user, filters=both) == ["red apple"]
    neither = {"color": "*", "NOT": [{"color": "red"}]}
    assert _searched(app_api, user, filters=neither) == ["green apple"]
    assert _searched(app_api, user, filters={"created_at": {"gte": TOMORROW}}) == []
    assert len(_searched(app_api, user, filters={"created_at": {"lte": TOMORROW, "gte": YESTERDAY}})) == 4
    bad = app_api.post("/search", json={"query": "x", "user_id": user, "filters": {"created_at": {"gte": "soon"}}})
    assert bad.status_code == 422 and "created_at" in bad.json()["message"]


def test_an_operator_on_an_identifier_does_not_name_a_scope(app_api):
    response = app_api.post("/search", json={"query": "x", "filters": {"user_id": {"ne": "u"}}})
    assert response.status_code == 422 and "or an OR of them" in response.json()["message"]


def test_prompt_reaches_the_extraction_and_needs_infer(app_api, standin):
    user = _user()
    body = {
        "messages": [{"role": "user", "content": "I like tea."}],
        "user_id": user,
        "prompt": "Only keep drink preferences.",
        "async_mode": True,
    }
    job_id = app_api.post("/memories", json=body).json()["job_id"]

    assert wait_job(app_api, job_id)["status"] == "SUCCEEDED"
    chats = [r for r in standin.stats()["requests"] if r["op"] == "chat"]
    assert "Only keep drink preferences." in chats[-1]["system"]
    refused = app_api.post("/memories", json={**body, "infer": False})
    assert refused.status_code == 422 and "prompt" in refused.json()["message"]


def test_a_long_transcript_and_a_large_top_k_are_taken(app_api):
    user = _user()
    body = {"messages": [{"role": "user", "content": f"line {i}"} for i in range(120)], "user_id": user, "infer": False}
    assert app_api.post("/memories", json=body).status_code == 200
    assert len(_searched(app_api, user, top_k=200)) == 120


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/memories", "memory_type", "procedural_memory"),
        ("/memories", "includes", "tea"),
        ("/search", "rerank", True),
        ("/search", "fields", ["memory"]),
        ("/search", "memory_type", "episodic"),
    ],
)
def test_fields_this_server_does_not_honour_are_refused_by_name(app_api, path, field, value):
    base = (
        {"messages": [{"role": "user", "content": "x"}], "user_id": "u", "infer": False}
        if path == "/memories"
        else {"query": "x", "user_id": "u"}
    )
    response = app_api.post(path, json={**base, field: value})

    assert response.status_code == 422
    assert field in response.json()["message"]
