"""Graph memory through the API, for the tests: a server with graph memory on (a real Neo4j, the stand-in, its own
database), and reading what Neo4j and the API show."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
from neo4j import GraphDatabase

from app.db.migrator import migrate
from tests.conftest import DIMS, server_env
from tests.support.inprocess import InProcessServer
from tests.support.neo4j_process import Neo4jProcess
from tests.support.standin_process import OllamaStandin


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
def graph_api(graph_app, standin):
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
