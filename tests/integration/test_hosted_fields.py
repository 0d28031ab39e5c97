"""Fields mem0's clients send, honoured with mem0's meaning on the hosted routes (issue 24, item 2): timestamp,
immutable, includes / excludes, start_date / end_date and the filter language on get_all, "*" and OR across
users within what the key may read."""

from __future__ import annotations

import uuid

from tests.support.keys import mint_key


def _user() -> str:
    return f"fields-{uuid.uuid4().hex[:10]}"


def _add(hosted, user: str, text: str, **extra: object) -> dict:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False, **extra}
    response = hosted.post("/v3/memories/add/", json=body)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


def test_timestamp_is_the_memorys_created_at_and_dates_select_on_it(hosted):
    user = _user()
    _add(hosted, user, "I moved to Porto", timestamp=1_577_836_800)  # 2020-01-01T00:00:00Z
    _add(hosted, user, "I moved to Lisbon")

    listed = hosted.post("/v3/memories/", json={"filters": {"user_id": user}}).json()["results"]
    assert {m["memory"]: m["created_at"][:10] for m in listed}["I moved to Porto"] == "2020-01-01"
    old = hosted.post("/v3/memories/", json={"filters": {"user_id": user}, "end_date": "2021-01-01"}).json()
    new = hosted.post("/v3/memories/", json={"filters": {"user_id": user}, "start_date": "2021-01-01"}).json()
    assert [m["memory"] for m in old["results"]] == ["I moved to Porto"]
    assert [m["memory"] for m in new["results"]] == ["I moved to Lisbon"]


def test_get_all_takes_the_filter_language(hosted):
    user = _user()
    _add(hosted, user, "I like tea", metadata={"topic": "drinks"})
    _add(hosted, user, "I like chess", metadata={"topic": "games"})

    body = {"filters": {"AND": [{"user_id": user}, {"topic": {"in": ["games"]}}]}}
    assert [m["memory"] for m in hosted.post("/v3/memories/", json=body).json()["results"]] == ["I like chess"]


def test_an_immutable_memory_refuses_updates_and_can_be_deleted(hosted):
    memory = _add(hosted, _user(), "My birthday is in May", immutable=True)

    refused = hosted.put(f"/v1/memories/{memory['id']}/", json={"text": "My birthday is in June"})

    assert refused.status_code == 409 and "immutable" in refused.json()["message"]
    assert hosted.get(f"/v1/memories/{memory['id']}/").json()["memory"] == "My birthday is in May"
    assert hosted.delete(f"/v1/memories/{memory['id']}/").status_code == 200


def test_includes_and_excludes_instruct_the_one_extraction_call(hosted, standin):
    body = {
        "messages": [{"role": "user", "content": "I like tea"}],
        "user_id": _user(),
        "includes": "food and drink",
        "excludes": "health",
        "async_mode": False,
    }
    standin.reset_stats()

    assert hosted.post("/v3/memories/add/", json=body).status_code == 200

    [chat] = [request for request in standin.stats()["requests"] if request["op"] == "chat"]
    assert "Only remember facts about: food and drink" in chat["system"]
    assert "Never remember facts about: health" in chat["system"]


def test_every_user_and_or_across_users_stay_within_the_keys_scopes(hosted, app_server, module_db):
    tag = uuid.uuid4().hex[:8]
    alice, bob, carol = (f"{name}-{tag}" for name in ("alice", "bob", "carol"))
    for user in (alice, bob, carol):
        _add(hosted, user, f"{user} likes green tea")
    either = {"OR": [{"user_id": alice}, {"user_id": bob}]}

    found = hosted.post("/v3/memories/search/", json={"query": "green tea", "filters": either, "top_k": 10})
    assert found.status_code == 200, found.text
    assert sorted(m["user_id"] for m in found.json()["results"]) == [alice, bob]

    limited = mint_key(module_db, "--name", f"team-{tag}", "--user-id", f"*-{tag}", "--user-id", "nobody")
    with app_server.client(headers={"X-API-Key": limited}) as client:
        everyone = client.post("/search", json={"query": "green tea", "filters": {"user_id": "*"}, "top_k": 100})
    assert everyone.status_code == 200, everyone.text
    assert sorted(m["user_id"] for m in everyone.json()["results"]) == sorted([alice, bob, carol])


def test_the_one_extraction_call_gives_each_fact_categories_that_search_filters_on(hosted, standin):
    user = _user()
    standin.reset_stats()
    body = {
        "messages": [{"role": "user", "content": "I drink green tea. I moved to Porto last year."}],
        "user_id": user,
        "custom_categories": [{"food": "what the user eats and drinks"}, {"travel": "trips and moves"}],
        "async_mode": False,
    }

    assert hosted.post("/v3/memories/add/", json=body).status_code == 200

    chats = [request for request in standin.stats()["requests"] if request["op"] == "chat"]
    assert len(chats) == 1 and "food (what the user eats and drinks)" in chats[0]["system"]
    listed = hosted.post("/v3/memories/", json={"filters": {"user_id": user}}).json()["results"]
    assert {m["memory"]: m["categories"] for m in listed} == {
        "I drink green tea": ["food"],
        "I moved to Porto last year": ["travel"],
    }
    search = {"query": "tea Porto", "filters": {"user_id": user}, "threshold": 0, "categories": ["travel"]}
    assert [m["memory"] for m in hosted.post("/v3/memories/search/", json=search).json()["results"]] == [
        "I moved to Porto last year"
    ]
    by_filter = {"filters": {"AND": [{"user_id": user}, {"categories": {"in": ["food"]}}]}}
    assert [m["memory"] for m in hosted.post("/v3/memories/", json=by_filter).json()["results"]] == [
        "I drink green tea"
    ]


def test_without_custom_categories_the_servers_list_is_used(hosted):
    user = _user()
    body = {"messages": [{"role": "user", "content": "I cook pasta"}], "user_id": user, "async_mode": False}
    assert hosted.post("/v3/memories/add/", json=body).status_code == 200
    [memory] = hosted.post("/v3/memories/", json={"filters": {"user_id": user}}).json()["results"]
    assert memory["categories"] == ["food"]


def test_app_id_is_a_scope_stored_filtered_and_deleted_like_the_others(hosted):
    user, app = _user(), f"app-{uuid.uuid4().hex[:8]}"
    _add(hosted, user, "I use the tea app", app_id=app)
    in_filters = {"messages": "I use the bike app", "filters": {"user_id": user, "app_id": f"{app}-2"}, "infer": False}
    assert hosted.post("/v3/memories/add/", json=in_filters).status_code == 200

    only_app = hosted.post("/v3/memories/", json={"filters": {"app_id": app}}).json()["results"]
    assert [(m["memory"], m["app_id"]) for m in only_app] == [("I use the tea app", app)]
    found = hosted.post("/v2/memories/search/", json={"query": "app", "filters": {"user_id": user, "app_id": app}})
    assert [m["memory"] for m in found.json()] == ["I use the tea app"]

    assert hosted.delete("/v1/memories/", params={"app_id": app}).status_code == 200
    left = hosted.post("/v3/memories/", json={"filters": {"user_id": user}}).json()["results"]
    assert [m["memory"] for m in left] == ["I use the bike app"]


def test_enable_graph_true_without_a_graph_is_a_422_saying_so_and_false_changes_nothing(hosted):
    body = {"messages": "I row", "user_id": _user(), "infer": False}
    refused = hosted.post("/v3/memories/add/", json={**body, "enable_graph": True})
    assert refused.status_code == 422 and "NEO4J_URI" in refused.json()["message"]
    assert hosted.get("/graph", params={"user_id": "u"}).status_code == 422
    plain = hosted.post("/v3/memories/add/", json={**body, "enable_graph": False})
    assert plain.status_code == 200 and "relations" not in plain.json()
