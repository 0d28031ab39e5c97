"""Graph memory through the API (issue 23): relations from the one extraction call, kept in Postgres, projected to
a real Neo4j 5.26 in mem0's layout, read back by search, list and GET /graph, ended by a later write with history
kept, surviving a Neo4j outage, and removed with the memories they came from."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from neo4j import GraphDatabase

from app.db.migrator import migrate
from tests.conftest import DIMS, server_env
from tests.support.inprocess import InProcessServer
from tests.support.neo4j_process import Neo4jProcess
from tests.support.standin_process import OllamaStandin

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graph_db(module_db: str) -> str:
    asyncio.run(migrate(module_db, collection="memories", dims=DIMS))
    return module_db


@pytest.fixture(scope="module")
def graph_app(graph_db: str, standin_session: OllamaStandin, neo4j_session: Neo4jProcess) -> Iterator[InProcessServer]:
    env = {
        "NEO4J_URI": neo4j_session.uri,
        "NEO4J_USERNAME": neo4j_session.user,
        "NEO4J_PASSWORD": neo4j_session.password,
    }
    with InProcessServer(server_env(graph_db, standin_session, MEM0_INFER_WAIT_S="20", **env)) as app_server:
        yield app_server


@pytest.fixture
def api(graph_app, standin):
    with graph_app.client() as client:
        yield client


def wait_for(check: Callable[[], object], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def neo4j_relations(neo4j: Neo4jProcess, user: str) -> set[tuple[str, str, str, bool]]:
    with GraphDatabase.driver(neo4j.uri, auth=neo4j.auth) as driver:
        records, _, _ = driver.execute_query(
            "MATCH (s:__Entity__ {user_id: $user})-[r]->(d:__Entity__ {user_id: $user}) "
            "RETURN s.name AS s, type(r) AS r, d.name AS d, r.valid AS valid",
            user=user,
        )
    return {(record["s"], record["r"], record["d"], record["valid"]) for record in records}


def neo4j_nodes(neo4j: Neo4jProcess, user: str) -> int:
    with GraphDatabase.driver(neo4j.uri, auth=neo4j.auth) as driver:
        records, _, _ = driver.execute_query("MATCH (n:__Entity__ {user_id: $user}) RETURN count(n) AS n", user=user)
    return int(records[0]["n"])


def infer(api, user: str, text: str) -> dict:
    body = {"messages": [{"role": "user", "content": text}], "user_id": user, "async_mode": False}
    response = api.post("/memories", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def search_relations(api, user: str, query: str) -> list[tuple[str, str, str]]:
    found = api.post("/search", json={"query": query, "user_id": user}).json()["relations"]
    return [(r["source"], r["relationship"], r["destination"]) for r in found]


def test_relations_from_one_call_reach_postgres_neo4j_search_and_history(api, neo4j_session, standin):
    u1, u2 = f"u1-{uuid.uuid4().hex[:6]}", f"u2-{uuid.uuid4().hex[:6]}"
    standin.reset_stats()

    first = infer(api, u1, "Alice works at Acme. Acme is located in Berlin.")

    assert first["relations"]["added_entities"] == [
        {"source": "alice", "relationship": "works_at", "target": "acme"},
        {"source": "acme", "relationship": "located_in", "target": "berlin"},
    ]
    wait_for(lambda: len(neo4j_relations(neo4j_session, u1)) == 2)
    assert neo4j_relations(neo4j_session, u1) == {
        ("alice", "works_at", "acme", True),
        ("acme", "located_in", "berlin", True),
    }
    assert search_relations(api, u1, "Where does Alice work?") == [("alice", "works_at", "acme")]
    assert search_relations(api, u2, "Where does Alice work?") == []
    listed = api.get("/memories", params={"user_id": u1}).json()["relations"]
    assert {(r["source"], r["relationship"], r["target"]) for r in listed} == {
        ("alice", "works_at", "acme"),
        ("acme", "located_in", "berlin"),
    }
    before_second = datetime.now(UTC).isoformat()

    second = infer(api, u1, "Alice left Acme and now works at Globex.")

    assert [s["op"] for s in standin.stats()["requests"]].count("chat") == 2  # one model call per write
    assert second["relations"] == {
        "added_entities": [{"source": "alice", "relationship": "works_at", "target": "globex"}],
        "deleted_entities": [{"source": "alice", "relationship": "works_at", "target": "acme"}],
    }
    assert search_relations(api, u1, "Where does Alice work?") == [("alice", "works_at", "globex")]
    wait_for(lambda: ("alice", "works_at", "acme", False) in neo4j_relations(neo4j_session, u1))
    graph = api.get("/graph", params={"user_id": u1}).json()
    ended = next(r for r in graph["relations"] if r["destination"] == "acme" and r["source"] == "alice")
    assert ended["valid"] is False and ended["invalidated_at"]
    earlier = api.get("/graph", params={"user_id": u1, "as_of": before_second}).json()["relations"]
    assert ("alice", "works_at", "acme") in {(r["source"], r["relationship"], r["destination"]) for r in earlier}
    assert ("alice", "works_at", "globex") not in {(r["source"], r["relationship"], r["destination"]) for r in earlier}


def test_with_neo4j_stopped_writes_succeed_and_the_graph_catches_up(api, neo4j_server):
    user = f"outage-{uuid.uuid4().hex[:6]}"
    neo4j_server.stop()
    try:
        wait_for(lambda: api.get("/ready").json()["graph"] == "degraded")
        written = infer(api, user, "Bob lives in Paris.")
        assert written["relations"]["added_entities"] == [
            {"source": "bob", "relationship": "lives_in", "target": "paris"}
        ]
        assert api.get("/ready").status_code == 200
        assert search_relations(api, user, "Where does Bob live?") == [("bob", "lives_in", "paris")]
    finally:
        neo4j_server.start()
    wait_for(lambda: neo4j_relations(neo4j_server, user) == {("bob", "lives_in", "paris", True)})
    wait_for(lambda: api.get("/ready").json()["graph"] == "ok")


def test_deletes_take_their_relations_and_nodes(api, neo4j_session):
    user = f"deletes-{uuid.uuid4().hex[:6]}"
    first = infer(api, user, "Carol works at Initech.")
    infer(api, user, "Dave lives in Rome.")
    wait_for(lambda: len(neo4j_relations(neo4j_session, user)) == 2)
    [source] = [m["id"] for m in first["results"]]

    assert api.delete(f"/memories/{source}").status_code == 200

    assert ("carol", "works_at", "initech") not in search_relations(api, user, "Carol Initech")
    wait_for(lambda: neo4j_relations(neo4j_session, user) == {("dave", "lives_in", "rome", True)})

    assert api.delete("/memories", params={"user_id": user}).status_code == 200
    wait_for(lambda: neo4j_nodes(neo4j_session, user) == 0)
    assert api.get("/graph", params={"user_id": user}).json() == {"entities": [], "relations": []}


def test_enable_graph_as_mem0s_clients_send_it(api):
    user = f"flags-{uuid.uuid4().hex[:6]}"
    body = {"messages": [{"role": "user", "content": "Erin plays at Wimbledon."}], "user_id": user}
    hosted = api.post("/v3/memories/add/", json={**body, "enable_graph": True, "async_mode": False})
    assert hosted.status_code == 200 and hosted.json()["relations"]["added_entities"]
    search = {"query": "Erin", "filters": {"AND": [{"user_id": user}]}, "enable_graph": False}
    assert "relations" not in api.post("/v3/memories/search/", json=search).json()
    listed = api.post("/v3/memories/", json={"filters": {"user_id": user}, "enable_graph": True}).json()
    assert listed["relations"] == [{"source": "erin", "relationship": "plays_at", "target": "wimbledon"}]
