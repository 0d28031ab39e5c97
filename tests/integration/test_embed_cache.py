"""A repeated search query is answered from the query-embedding cache: Ollama sees one embed call, not two."""

from __future__ import annotations

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer


def test_a_repeated_search_makes_no_second_embed_call(app_api, standin):
    app_api.post(
        "/memories", json={"messages": [{"role": "user", "content": "I like tea"}], "user_id": "c1", "infer": False}
    ).raise_for_status()
    standin.reset_stats()

    first = app_api.post("/search", json={"query": "hot drinks", "user_id": "c1"})
    second = app_api.post("/search", json={"query": "hot drinks", "user_id": "c1"})

    assert first.status_code == second.status_code == 200
    assert first.json()["results"] == second.json()["results"]
    assert standin.stats()["counts"]["embed"] == 1


def test_a_different_query_is_embedded(app_api, standin):
    standin.reset_stats()
    app_api.post("/search", json={"query": "first question", "user_id": "c2"}).raise_for_status()
    app_api.post("/search", json={"query": "second question", "user_id": "c2"}).raise_for_status()
    assert standin.stats()["counts"]["embed"] == 2


def test_writes_always_embed_even_for_a_searched_text(app_api, standin):
    app_api.post("/search", json={"query": "I ride a bike", "user_id": "c3"}).raise_for_status()
    standin.reset_stats()
    app_api.post(
        "/memories", json={"messages": [{"role": "user", "content": "I ride a bike"}], "user_id": "c3", "infer": False}
    ).raise_for_status()
    assert standin.stats()["counts"]["embed"] == 1


def test_cache_size_zero_embeds_every_search(fresh_db, standin):
    with (
        InProcessServer(server_env(fresh_db, standin, MEM0_EMBED_CACHE_SIZE="0", MEM0_SEARCH_CACHE_SIZE="0")) as app,
        app.client() as client,
    ):
        standin.reset_stats()
        for _ in range(2):
            client.post("/search", json={"query": "same words", "user_id": "c4"}).raise_for_status()
    assert standin.stats()["counts"]["embed"] == 2
