"""Concurrent requests share batched /api/embed calls, and each memory still gets the vector of its own text."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer

TEXTS = [f"my favourite number is {n} and my pet is called pet{n}" for n in range(24)]


async def _write_all(client: httpx.AsyncClient, user_id: str) -> list[httpx.Response]:
    return await asyncio.gather(
        *(
            client.post(
                "/memories",
                json={"messages": [{"role": "user", "content": text}], "user_id": user_id, "infer": False},
            )
            for text in TEXTS
        )
    )


@pytest.mark.slow  # 24 searches at the stand-in's 150 ms embed latency
async def test_concurrent_writes_share_embed_calls_and_keep_their_own_vectors(fresh_db, standin):
    standin.control(embed_latency_ms=150)  # long enough that requests pile up behind the one call in flight
    env = server_env(fresh_db, standin, MEM0_EMBED_CONCURRENCY="1")
    with InProcessServer(env) as app:
        async with app.async_client() as client:
            standin.reset_stats()
            responses = await _write_all(client, "batch-user")
            embed_calls = standin.stats()["counts"]["embed"]

            assert [response.status_code for response in responses] == [200] * len(TEXTS)
            assert embed_calls < len(TEXTS), "waiting requests should have gone out together"
            for text in TEXTS:
                search = {"query": text, "user_id": "batch-user", "top_k": 1, "explain": True}
                found = (await client.post("/search", json=search)).json()
                assert found["results"][0]["memory"] == text
                # Its own vector: semantic score 1 (the combined score also counts the keyword hit, out of 2).
                assert found["results"][0]["score_details"]["semantic_score"] > 0.999


async def test_a_failed_batched_call_fails_each_write_in_it_and_stores_nothing(fresh_db, standin):
    standin.control(embed_latency_ms=150)
    env = server_env(fresh_db, standin, MEM0_EMBED_CONCURRENCY="1")
    with InProcessServer(env) as app:
        async with app.async_client() as client:
            standin.set_fault("embed", kind="status", status=500)
            responses = await _write_all(client, "failing-user")
            standin.clear_faults()

            assert {response.status_code for response in responses} == {502}
            assert all(response.json()["request_id"] for response in responses)
            listed = (await client.get("/memories", params={"user_id": "failing-user"})).json()
            assert listed["results"] == []
