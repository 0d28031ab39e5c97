"""A repeated search is answered from the search result cache (no embed call, no search statement) until its scope
changes: every write, update, delete, reset and a write by mem0's own library on the shared table shows in the next
search, on this server and on another one over the same database; an entry from another day (memories' expiry) or
another key's restriction is never served."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import re
import uuid

import httpx
import psycopg

from app.auth.repository import KeyRepository
from app.auth.service import mint
from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.jobs import infer_write, wait_job

YESTERDAY = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def _user() -> str:
    return f"sc-{uuid.uuid4().hex[:10]}"


def _add(api: httpx.Client, user: str, text: str, **extra: object) -> str:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False, **extra}
    response = api.post("/memories", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["results"][0]["id"])


def _search(api: httpx.Client, user: str, **extra: object) -> list[dict[str, object]]:
    response = api.post("/search", json={"query": "tea and biscuits", "user_id": user, "threshold": 0, **extra})
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def _texts(results: list[dict[str, object]]) -> list[str]:
    return sorted(str(item["memory"]) for item in results)


def _cache_count(api: httpx.Client, result: str) -> float:
    metrics = api.get("/metrics").text
    match = re.search(rf'^mem0_search_cache_total{{result="{result}"}} (\S+)$', metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


class Outcomes:
    """The cache's hit / miss / bypass counts since it was made."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        return {result: _cache_count(self.api, result) for result in ("hit", "miss", "bypass")}

    def since(self) -> dict[str, float]:
        now = self._now()
        return {result: now[result] - self.start[result] for result in now}


def _cached(api: httpx.Client, user: str, **extra: object) -> list[dict[str, object]]:
    """Search twice: the second answer is the cache's, and equal to the first."""
    first = _search(api, user, **extra)
    outcomes = Outcomes(api)
    second = _search(api, user, **extra)
    assert outcomes.since() == {"hit": 1, "miss": 0, "bypass": 0}
    assert second == first
    return second


def test_a_repeated_search_is_a_hit_without_an_embed_call(fresh_db, standin):
    """With the query-embedding cache off, every search that runs embeds its query first: no embed call means no
    search ran."""
    with InProcessServer(server_env(fresh_db, standin, MEM0_EMBED_CACHE_SIZE="0")) as app, app.client() as api:
        user = _user()
        _add(api, user, "I drink tea with biscuits")
        _search(api, user)
        standin.reset_stats()
        outcomes = Outcomes(api)

        for _ in range(3):
            assert _texts(_search(api, user)) == ["I drink tea with biscuits"]

        assert outcomes.since() == {"hit": 3, "miss": 0, "bypass": 0}
        assert standin.stats()["counts"]["embed"] == 0


def test_every_option_that_changes_the_answer_has_its_own_entry(app_api):
    user = _user()
    _add(app_api, user, "I drink tea with biscuits")
    _add(app_api, user, "I walk the dog", metadata={"kind": "chore"})
    _cached(app_api, user)
    outcomes = Outcomes(app_api)

    variants: list[dict[str, object]] = [
        {"query": "dog walks"},
        {"top_k": 1},
        {"threshold": 0.99},
        {"explain": True},
        {"show_expired": True},
        {"filters": {"kind": "chore"}},
        {"categories": ["misc"]},
    ]
    for extra in variants:
        _search(app_api, user, **extra)

    assert outcomes.since() == {"hit": 0, "miss": len(variants), "bypass": 0}


def test_a_write_to_the_scope_shows_in_the_next_search(app_api):
    user = _user()
    _add(app_api, user, "I drink tea with biscuits")
    _cached(app_api, user)

    _add(app_api, user, "I drink green tea")

    assert _texts(_search(app_api, user)) == ["I drink green tea", "I drink tea with biscuits"]


def test_an_inferred_write_shows_in_the_next_search(app_api, standin):
    """The queue worker stores facts and the entities they name (which boost searches) in one transaction."""
    user = _user()
    _add(app_api, user, "I drink tea with biscuits")
    _cached(app_api, user, query="Lisbon")
    reply = {"facts": ["Lives in Lisbon"], "entities": [{"name": "Lisbon", "type": "location"}]}
    standin.control(chat_reply=json.dumps(reply))

    job = wait_job(app_api, app_api.post("/memories", json=infer_write(user, "x", async_mode=True)).json()["job_id"])

    assert job["status"] == "SUCCEEDED", job
    assert _texts(_search(app_api, user, query="Lisbon")) == ["I drink tea with biscuits", "Lives in Lisbon"]


def test_updates_of_text_and_of_metadata_show_in_the_next_search(app_api):
    user = _user()
    memory_id = _add(app_api, user, "I drink tea with biscuits")
    _cached(app_api, user)

    assert app_api.put(f"/memories/{memory_id}", json={"text": "I drink coffee"}).status_code == 200
    assert _texts(_cached(app_api, user)) == ["I drink coffee"]

    assert app_api.put(f"/memories/{memory_id}", json={"metadata": {"mood": "sleepy"}}).status_code == 200
    [item] = _search(app_api, user)
    assert item["metadata"] == {"mood": "sleepy"}


def test_deletes_show_in_the_next_search(app_api):
    user = _user()
    first = _add(app_api, user, "I drink tea with biscuits")
    _add(app_api, user, "I like tea")
    _cached(app_api, user)

    assert app_api.delete(f"/memories/{first}").status_code == 200
    assert _texts(_cached(app_api, user)) == ["I like tea"]

    assert app_api.delete("/memories", params={"user_id": user}).status_code == 200
    assert _search(app_api, user) == []


def test_a_reset_shows_in_the_next_search(app_api):
    user = _user()
    _add(app_api, user, "I drink tea with biscuits")
    _cached(app_api, user)

    assert app_api.post("/reset").status_code == 200

    assert _search(app_api, user) == []


def test_a_write_by_mem0s_own_library_shows_in_the_next_search(app_api, mem0_memory):
    user = _user()
    _add(app_api, user, "I drink tea with biscuits")
    _cached(app_api, user)

    mem0_memory.add("I bake biscuits on Sundays", user_id=user, infer=False)

    assert _texts(_search(app_api, user)) == ["I bake biscuits on Sundays", "I drink tea with biscuits"]


def test_a_write_to_another_scope_keeps_the_entry(app_api):
    user, other = _user(), _user()
    _add(app_api, user, "I drink tea with biscuits", agent_id="barista")
    _cached(app_api, user)

    _add(app_api, other, "I drink tea too", agent_id="barista")  # another user of the same agent

    outcomes = Outcomes(app_api)
    assert _texts(_search(app_api, user)) == ["I drink tea with biscuits"]
    assert outcomes.since() == {"hit": 1, "miss": 0, "bypass": 0}


def test_an_entry_from_another_day_is_not_served(app_api, app_server):
    """Expiry hides a memory from the UTC day after its expiration_date: an entry made before that day holds it.
    The entry here is such a one (made 'yesterday', when the memory was not yet expired), as no test can wait for
    midnight: the next search compares the day with the database's and searches again."""
    user = _user()
    _add(app_api, user, "I drink tea with biscuits")
    _add(app_api, user, "old news about tea", expiration_date=YESTERDAY)
    assert _texts(_cached(app_api, user)) == ["I drink tea with biscuits"]
    assert _texts(_search(app_api, user, show_expired=True)) == ["I drink tea with biscuits", "old news about tea"]

    cache = app_server.app.state.services.memories.search_cache
    with_expired = next(e for e in cache._entries.values() if len(e.items) == 2)
    for key, entry in list(cache._entries.items()):
        if len(entry.items) == 1 and entry.items[0]["user_id"] == user:
            made_yesterday = dataclasses.replace(entry.token, day=YESTERDAY)
            cache._entries[key] = dataclasses.replace(with_expired, token=made_yesterday)
    outcomes = Outcomes(app_api)

    assert _texts(_search(app_api, user)) == ["I drink tea with biscuits"]
    assert outcomes.since() == {"hit": 0, "miss": 1, "bypass": 0}


async def _limited_key(database_url: str, user_glob: str) -> str:
    """A key for these users only, stored as `keys create --user-id` stores it (without a process per key)."""
    key, secret = mint(admin=False, patterns={"user_id": [user_glob]})
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await KeyRepository().insert(conn, key, user_glob)
    return secret


def test_keys_with_different_restrictions_share_no_entry(app_api, app_server, module_db):
    user = f"team-{uuid.uuid4().hex[:8]}"
    _add(app_api, user, "I drink tea with biscuits")
    _cached(app_api, user)
    team = asyncio.run(_limited_key(module_db, "team-*"))
    stranger = asyncio.run(_limited_key(module_db, "other-*"))

    with (
        app_server.client(headers={"X-API-Key": team}) as team_api,
        app_server.client(headers={"X-API-Key": stranger}) as stranger_api,
    ):
        outcomes = Outcomes(app_api)
        assert _texts(_search(team_api, user)) == ["I drink tea with biscuits"]
        assert _search(stranger_api, user) == []
        assert outcomes.since() == {"hit": 0, "miss": 2, "bypass": 0}
        assert _search(stranger_api, user) == []
        assert outcomes.since() == {"hit": 1, "miss": 2, "bypass": 0}


def test_a_scope_named_only_in_filters_runs_uncached(app_api):
    user = _user()
    _add(app_api, user, "I drink tea with biscuits")
    outcomes = Outcomes(app_api)
    body = {"query": "tea", "filters": {"user_id": {"in": [user, _user()]}}, "threshold": 0}

    for _ in range(2):
        assert [r["memory"] for r in app_api.post("/search", json=body).json()["results"]] == [
            "I drink tea with biscuits"
        ]

    assert outcomes.since() == {"hit": 0, "miss": 0, "bypass": 2}


def test_two_servers_on_one_database_see_each_others_writes(fresh_db, standin):
    with (
        InProcessServer(server_env(fresh_db, standin)) as a,
        InProcessServer(server_env(fresh_db, standin)) as b,
        a.client() as api_a,
        b.client() as api_b,
    ):
        user = _user()
        _add(api_a, user, "I drink tea with biscuits")
        _cached(api_b, user)

        _add(api_a, user, "I drink green tea")

        assert _texts(_search(api_b, user)) == ["I drink green tea", "I drink tea with biscuits"]


def test_size_zero_disables_the_cache(fresh_db, standin):
    with InProcessServer(server_env(fresh_db, standin, MEM0_SEARCH_CACHE_SIZE="0")) as app, app.client() as api:
        user = _user()
        _add(api, user, "I drink tea with biscuits")
        outcomes = Outcomes(api)
        _search(api, user)
        _search(api, user)
        assert outcomes.since() == {"hit": 0, "miss": 0, "bypass": 2}
