"""Graph memory's Neo4j projection against a real Neo4j and a real Postgres: relations are inserted as the write
path does (GraphRepository.add_relation/end_relation + mark_changed in one transaction), then Neo4j must show them
in mem0's layout, per exact scope, values never executed; a stopped Neo4j degrades the graph without failing the
server and is caught up once back; `graph rebuild` reproduces a wiped graph."""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx
import pytest
from neo4j import AsyncDriver, AsyncGraphDatabase
from prometheus_client.parser import text_string_to_metric_families
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from app.db.migrator import migrate
from app.errors import StartupError
from app.graph.names import Relation
from app.graph.projection.cli import rebuild, run_graph
from app.graph.projection.graph_store import Neo4jGraph
from app.graph.projection.projector import Projector
from app.graph.projection.repository import ProjectionRepository
from app.graph.repository import GraphRepository, TypedRelation
from app.metrics import build_metrics
from tests.conftest import DIMS, server_env
from tests.support.cli import run_cli
from tests.support.inprocess import InProcessServer, SettingsFromValues
from tests.support.neo4j_process import Neo4jProcess
from tests.support.standin_process import OllamaStandin

RELATIONS = GraphRepository()
Triple = tuple[str, str, str, str, str]  # source, source type, relationship, destination, destination type


def neo4j_env(neo4j: Neo4jProcess) -> dict[str, str]:
    return {"NEO4J_URI": neo4j.uri, "NEO4J_USERNAME": neo4j.user, "NEO4J_PASSWORD": neo4j.password}


def projector_settings(database_url: str, neo4j: Neo4jProcess, **extra: str) -> SettingsFromValues:
    return SettingsFromValues(**{"DATABASE_URL": database_url, **neo4j_env(neo4j), **extra})


@pytest.fixture(scope="module")
async def graph_db(module_db: str) -> str:
    await migrate(module_db, collection="memories", dims=DIMS)
    return module_db


@pytest.fixture(scope="module")
async def pool(graph_db: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(graph_db, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}) as pool:
        yield pool


@pytest.fixture
async def projector(graph_db: str, pool: AsyncConnectionPool, neo4j_server: Neo4jProcess) -> AsyncIterator[Projector]:
    projector = await Projector.open(projector_settings(graph_db, neo4j_server), pool, build_metrics())
    yield projector
    await projector.stop()


@pytest.fixture(scope="module")
async def neo4j(neo4j_session: Neo4jProcess) -> AsyncIterator[AsyncDriver]:
    async with AsyncGraphDatabase.driver(neo4j_session.uri, auth=neo4j_session.auth) as driver:
        yield driver


def scope(**identifiers: str) -> dict[str, str]:
    """A scope of its own for each test: the Neo4j is shared by the session."""
    suffix = uuid.uuid4().hex[:8]
    return {kind: f"{value}-{suffix}" for kind, value in identifiers.items()}


async def relate(pool: AsyncConnectionPool, identifiers: Mapping[str, str], *triples: Triple) -> None:
    async with pool.connection() as conn, conn.transaction():
        for source, source_type, relationship, destination, destination_type in triples:
            typed = TypedRelation(source, source_type, relationship, destination, destination_type)
            await RELATIONS.add_relation(conn, identifiers, typed, [uuid.uuid4()])
        await RELATIONS.mark_changed(conn, identifiers)


async def end(pool: AsyncConnectionPool, identifiers: Mapping[str, str], *relations: Relation) -> None:
    async with pool.connection() as conn, conn.transaction():
        for relation in relations:
            assert await RELATIONS.end_relation(conn, identifiers, relation)
        await RELATIONS.mark_changed(conn, identifiers)


async def project_all(projector: Projector) -> int:
    projected = 0
    while (projection := await projector.project_one()) is not None:
        assert projection.error is None
        projected += 1
    return projected


async def nodes(driver: AsyncDriver, identifiers: Mapping[str, str] | None = None) -> dict[tuple[Any, ...], dict]:
    """(name, user_id, agent_id, run_id) -> {labels, properties} of every node, or of one exact scope's."""
    result = await driver.execute_query("MATCH (n:__Entity__) RETURN labels(n) AS labels, properties(n) AS p")
    found = {}
    for record in result.records:
        props = record["p"]
        key = (props["name"], props.get("user_id"), props.get("agent_id"), props.get("run_id"))
        if identifiers is None or key[1:] == tuple(identifiers.get(kind) for kind in ("user_id", "agent_id", "run_id")):
            found[key] = {"labels": set(record["labels"]), **props}
    return found


async def relationships(driver: AsyncDriver, identifiers: Mapping[str, str]) -> dict[tuple[str, str, str], dict]:
    user_id = identifiers.get("user_id")
    result = await driver.execute_query(
        "MATCH (s:__Entity__)-[r]->(d:__Entity__) WHERE s.user_id = $user_id "
        "RETURN s.name AS s, type(r) AS t, d.name AS d, properties(r) AS p, "
        "[s.agent_id, s.run_id, d.agent_id, d.run_id] AS others",
        user_id=user_id,
    )
    wanted = [identifiers.get("agent_id"), identifiers.get("run_id")] * 2
    return {(r["s"], r["t"], r["d"]): r["p"] for r in result.records if r["others"] == wanted}


def without_created(found: Iterable[tuple[Any, dict]]) -> set[tuple[Any, ...]]:
    return {(key, tuple(sorted((k, repr(v)) for k, v in props.items() if k != "created"))) for key, props in found}


async def test_neo4j_shows_the_scope_in_mem0_layout(pool, projector, neo4j):
    alice = scope(user_id="alice")
    await relate(
        pool,
        alice,
        ("alice", "person", "works_at", "acme", "organization"),
        ("alice", "person", "lives_in", "paris", "place"),
    )
    await relate(pool, alice, ("alice", "person", "lives_in", "paris", "place"))  # restated: a second source

    assert await project_all(projector) == 1

    found = await nodes(neo4j, alice)
    user_id = alice["user_id"]
    assert {key: (node["labels"], node["mentions"]) for key, node in found.items()} == {
        ("alice", user_id, None, None): ({"__Entity__", "person"}, 3),
        ("acme", user_id, None, None): ({"__Entity__", "organization"}, 1),
        ("paris", user_id, None, None): ({"__Entity__", "place"}, 2),
    }
    assert all(set(node) == {"labels", "name", "user_id", "mentions", "created"} for node in found.values())
    assert all(isinstance(node["created"], int) for node in found.values())
    edges = await relationships(neo4j, alice)
    assert {key: (edge["valid"], edge.get("invalidated_at"), edge["mentions"]) for key, edge in edges.items()} == {
        ("alice", "works_at", "acme"): (True, None, 1),
        ("alice", "lives_in", "paris"): (True, None, 2),
    }
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT version, projected_version FROM graph_projection")).fetchone()
    assert row is not None and row[0] == row[1]


async def test_an_ended_relation_stays_with_valid_false_and_a_restated_one_is_valid(pool, projector, neo4j):
    bob = scope(user_id="bob")
    await relate(
        pool, bob, ("bob", "person", "lives_in", "berlin", "place"), ("bob", "person", "likes", "jazz", "entity")
    )
    await project_all(projector)
    created = {key: edge["created"] for key, edge in (await relationships(neo4j, bob)).items()}

    await end(pool, bob, Relation("bob", "lives_in", "berlin"), Relation("bob", "likes", "jazz"))
    await relate(pool, bob, ("bob", "person", "likes", "jazz", "entity"))  # ended, then stated again
    await project_all(projector)

    edges = await relationships(neo4j, bob)
    ended = edges[("bob", "lives_in", "berlin")]
    assert ended["valid"] is False
    assert ended["invalidated_at"].to_native().tzinfo is not None
    assert edges[("bob", "likes", "jazz")]["valid"] is True
    assert "invalidated_at" not in edges[("bob", "likes", "jazz")]
    assert {key: edge["created"] for key, edge in edges.items()} == created  # updated in place, not recreated


async def test_scopes_are_exact_and_a_projection_never_touches_another_scope(pool, projector, neo4j):
    u1 = scope(user_id="u1")
    u1_agent = {**u1, "agent_id": "a1"}
    u1_run = {**u1, "run_id": "r1"}
    u2 = scope(user_id="u2")
    for identifiers in (u1, u1_agent, u1_run, u2):
        await relate(pool, identifiers, ("alice", "person", "lives_in", "paris", "place"))
    await project_all(projector)
    before = {str(identifiers): await nodes(neo4j, identifiers) for identifiers in (u1, u1_agent, u1_run, u2)}
    assert all(len(found) == 2 for found in before.values())  # the same names: one node per scope

    async with pool.connection() as conn, conn.transaction():  # u1 loses its relation (its memory deleted)
        cursor = await conn.execute(
            "SELECT memory_id FROM graph_relation_sources s JOIN graph_relations r ON r.id = s.relation_id "
            "WHERE r.payload = %s",
            (Jsonb(u1),),
        )
        assert await RELATIONS.forget_memories(conn, [row[0] for row in await cursor.fetchall()]) == [u1]
        await RELATIONS.mark_changed(conn, u1)
    await project_all(projector)

    assert await nodes(neo4j, u1) == {}
    for identifiers in (u1_agent, u1_run, u2):
        assert await nodes(neo4j, identifiers) == before[str(identifiers)]  # created included: untouched
        assert len(await relationships(neo4j, identifiers)) == 1


HOSTILE = (
    'o\'brien "the" `tick`',
    "x`})-[:X]-(n) DETACH DELETE n //",
    "}) MATCH (n) DETACH DELETE n WITH 1 AS x MATCH ({",
    "ü" + "long" * 2500,  # 10,001 characters
)


async def test_names_and_identifiers_are_values_never_cypher(pool, projector, neo4j):
    bystander = scope(user_id="bystander")
    await relate(pool, bystander, ("carol", "person", "knows", "dave", "person"))
    hostile = scope(user_id="u`}) DETACH DELETE n //'\"")
    hostile["agent_id"] = HOSTILE[1]
    triples = [
        (name, "person", "mentions", HOSTILE[(i + 1) % len(HOSTILE)], "entity") for i, name in enumerate(HOSTILE)
    ]
    await relate(pool, hostile, *triples)
    dropped = projector.metrics.graph_relations_dropped._value.get()
    await relate(pool, hostile, ("carol", "person", "x`]->(n) DETACH DELETE n //", "dave", "person"))

    await project_all(projector)

    found = await nodes(neo4j, hostile)
    assert {key[0] for key in found} == set(HOSTILE)  # not carol, dave: their only relation was dropped
    assert all(key[1:] == (hostile["user_id"], hostile["agent_id"], None) for key in found)
    assert set(await relationships(neo4j, hostile)) == {(s, "mentions", d) for s, _, _, d, _ in triples}
    assert len(await nodes(neo4j, bystander)) == 2
    assert projector.metrics.graph_relations_dropped._value.get() == dropped + 1


async def behind(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        return await ProjectionRepository().count_behind(conn)


async def test_projectors_share_the_work_and_never_project_one_scope_at_once(pool, projector, graph_db, neo4j_server):
    users = [scope(user_id=f"many{index}") for index in range(12)]
    for identifiers in users:
        await relate(pool, identifiers, ("ann", "person", "owns", "boat", "product"))
    other = await Projector.open(projector_settings(graph_db, neo4j_server), pool, build_metrics())

    async def drain(worker: Projector) -> int:
        done = 0
        while await behind(pool):
            if (projection := await worker.project_one()) is not None:
                assert projection.error is None
                done += 1
        return done

    try:
        async with pool.connection() as conn, conn.transaction():  # another replica holds a scope: it is skipped
            held = await ProjectionRepository().claim(conn)
            first = await projector.project_one()
        assert held is not None and first is not None and first.scope.scope_key != held.scope_key
        counts = await asyncio.gather(drain(projector), drain(other))
    finally:
        await other.stop()

    assert 1 + sum(counts) == len(users)  # every scope projected once
    assert all(counts)  # by both projectors


async def test_neo4j_that_cannot_be_used_stops_the_start_with_the_fix(graph_db, neo4j_server):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    cases = {
        f"bolt://127.0.0.1:{port}": ("unreachable after 2 attempts", {}),
        neo4j_server.uri: (
            "refused the credentials of 'neo4j': check NEO4J_USERNAME and NEO4J_PASSWORD",
            {"NEO4J_PASSWORD": "wrong"},
        ),
        "http://127.0.0.1:7474": ("is not a Neo4j URI", {}),
    }
    for uri, (message, extra) in cases.items():  # `graph rebuild` needs Neo4j now; the server starts degraded
        retries = {"MEM0_STARTUP_RETRIES": "2", "MEM0_STARTUP_BACKOFF_S": "0"}
        settings = projector_settings(graph_db, neo4j_server, **{**retries, "NEO4J_URI": uri, **extra})
        with pytest.raises(StartupError, match=re.escape(message)):
            await Neo4jGraph.open(settings)


@pytest.fixture
def graph_app(graph_db: str, standin_session: OllamaStandin, neo4j_session: Neo4jProcess) -> Iterator[InProcessServer]:
    """The server, in process, with graph memory on: its projector runs in the background."""
    with InProcessServer(server_env(graph_db, standin_session, **neo4j_env(neo4j_session))) as app_server:
        yield app_server


async def eventually(check: Callable[[], Awaitable[object]], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "the condition was not reached in time"
        await asyncio.sleep(0.1)


async def graph_metrics(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("mem0_graph_")
    }


async def test_the_server_projects_in_the_background_and_reports_the_graph(pool, graph_app, standin, neo4j):
    erin = scope(user_id="erin")
    async with graph_app.async_client() as client:
        assert (await client.get("/health")).json()["graph"] == "ok"
        ready = await client.get("/ready")
        assert ready.status_code == 200 and ready.json()["graph"] == "ok"

        await relate(pool, erin, ("erin", "person", "plays", "chess", "entity"))
        await eventually(lambda: nodes(neo4j, erin))

        await eventually(lambda: _metrics_show(client, behind=0))
        found = await graph_metrics(client)
        assert found["mem0_graph_projected_scopes_total"] >= 1
        assert found["mem0_graph_projection_lag_seconds"] == 0
        assert found["mem0_graph_projection_failures_total"] == 0
        assert found["mem0_graph_degraded"] == 0


async def _metrics_show(client: httpx.AsyncClient, *, behind: int) -> bool:
    return (await graph_metrics(client))["mem0_graph_scopes_behind"] == behind


async def test_a_stopped_neo4j_degrades_the_graph_and_it_catches_up_when_back(
    pool, graph_app, standin, neo4j_server, neo4j
):
    frank = scope(user_id="frank")
    async with graph_app.async_client() as client:
        await eventually(lambda: _graph_is(client, "ok"))
        neo4j_server.stop()

        await eventually(lambda: _graph_is(client, "degraded"))
        ready = await client.get("/ready")
        assert (ready.status_code, ready.json()["graph"], ready.json().get("reasons")) == (200, "degraded", None)
        await relate(pool, frank, ("frank", "person", "owns", "bike", "product"))  # the write commits all the same
        await eventually(lambda: _metrics_show(client, behind=1))
        found = await graph_metrics(client)
        assert found["mem0_graph_degraded"] == 1 and found["mem0_graph_projection_lag_seconds"] > 0

        neo4j_server.start()

        await eventually(lambda: _graph_is(client, "ok"))
        await eventually(lambda: _metrics_show(client, behind=0))
        assert set(await relationships(neo4j, frank)) == {("frank", "owns", "bike")}


async def test_a_server_started_before_neo4j_runs_degraded_and_catches_up_when_it_answers(
    pool, graph_db, standin_session, neo4j_server, neo4j
):
    gina = scope(user_id="gina")
    neo4j_server.stop()  # as after a host reboot or a `compose restart`, where Neo4j takes longest to start
    env = server_env(graph_db, standin_session, **neo4j_env(neo4j_server), MEM0_STARTUP_RETRIES="1")
    with InProcessServer(env) as app_server:
        async with app_server.async_client() as client:
            ready = await client.get("/ready")
            assert (ready.status_code, ready.json()["graph"]) == (200, "degraded")
            await relate(pool, gina, ("gina", "person", "rides", "horse", "entity"))

            neo4j_server.start()

            await eventually(lambda: _graph_is(client, "ok"))
            await eventually(lambda: _metrics_show(client, behind=0))
    assert set(await relationships(neo4j, gina)) == {("gina", "rides", "horse")}


async def _graph_is(client: httpx.AsyncClient, state: str) -> bool:
    return (await client.get("/health")).json()["graph"] == state


async def scopes_in(pool: AsyncConnectionPool) -> list[dict[str, str]]:
    async with pool.connection() as conn:
        return [row[0] for row in await (await conn.execute("SELECT payload FROM graph_projection")).fetchall()]


async def snapshot(driver: AsyncDriver, scopes: list[dict[str, str]]) -> set[tuple[Any, ...]]:
    """Every node and relationship of the scopes, all properties but `created` (the time it was written)."""
    found: set[tuple[Any, ...]] = set()
    for identifiers in scopes:
        found |= without_created((await nodes(driver, identifiers)).items())
        found |= without_created(
            ((str(identifiers), *key), props) for key, props in (await relationships(driver, identifiers)).items()
        )
    return found


async def test_graph_rebuild_after_a_wipe_reproduces_the_graph(pool, projector, graph_db, neo4j_server, neo4j):
    gina = scope(user_id="gina")
    await relate(
        pool,
        gina,
        ("gina", "person", "works_at", "acme", "organization"),
        ("acme", "organization", "based_in", "oslo", "place"),
    )
    await relate(pool, {**gina, "agent_id": "helper"}, ("gina", "person", "prefers", "tea", "product"))
    await end(pool, gina, Relation("acme", "based_in", "oslo"))
    await project_all(projector)
    scopes = await scopes_in(pool)
    before = await snapshot(neo4j, scopes)
    assert len(before) >= 8  # this test's two scopes: 5 nodes, 3 relationships (other tests' scopes too)

    await neo4j.execute_query("MATCH (n:__Entity__) DETACH DELETE n")
    assert await snapshot(neo4j, scopes) == set()
    env = {"DATABASE_URL": graph_db, **neo4j_env(neo4j_server)}
    result = await asyncio.to_thread(run_cli, env, "graph", "rebuild")

    assert result.returncode == 0, result.stderr
    assert f"marked {len(scopes)} scopes for projection" in result.stdout
    assert re.search(rf"^{len(scopes)}/{len(scopes)} scopes \(100%\): [0-9.]+ scopes/s, ETA 0s$", result.stdout, re.M)
    assert await snapshot(neo4j, scopes) == before


async def test_a_rebuild_of_one_user_continues_where_it_stopped(pool, projector, neo4j, capsys):
    hugo = scope(user_id="hugo")
    ida = scope(user_id="ida")
    hugo_scopes = [hugo, {**hugo, "run_id": "r1"}, {**hugo, "run_id": "r2"}]
    for identifiers in [*hugo_scopes, ida]:
        await relate(pool, identifiers, ("hugo", "person", "met", "ida", "person"))
    await project_all(projector)
    untouched = await nodes(neo4j, ida)
    await neo4j.execute_query("MATCH (n:__Entity__ {user_id: $user_id}) DETACH DELETE n", user_id=hugo["user_id"])
    async with pool.connection() as conn:  # a rebuild marked hugo's scopes and projected one, then stopped
        assert await ProjectionRepository().mark_behind(conn, hugo["user_id"]) == 3
    assert await projector.project_one(hugo["user_id"]) is not None
    projected = projector.metrics.graph_projected_scopes._value.get
    before = projected()
    capsys.readouterr()

    assert await rebuild(projector, hugo["user_id"], restart=False) == 0

    output = capsys.readouterr().out
    assert "continuing: 2 matching scopes are still behind" in output
    assert "2/2 scopes (100%)" in output
    assert projected() == before + 2  # the one done before is not projected again
    assert [len(await nodes(neo4j, identifiers)) for identifiers in hugo_scopes] == [2, 2, 2]
    assert await nodes(neo4j, ida) == untouched
    assert await rebuild(projector, hugo["user_id"], restart=False) == 0  # none behind: all three marked again
    assert "marked 3 scopes of that user_id" in capsys.readouterr().out
    assert projected() == before + 5
    assert await nodes(neo4j, ida) == untouched


async def test_graph_rebuild_refuses_while_graph_memory_is_off(graph_db, capsys):
    args = argparse.Namespace(command="graph", graph_command="rebuild", user_id=None, restart=False)

    assert await run_graph(args, SettingsFromValues(DATABASE_URL=graph_db)) == 2
    assert "graph memory is off (NEO4J_URI is not set)" in capsys.readouterr().err
