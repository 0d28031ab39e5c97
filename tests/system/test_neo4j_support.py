"""The test suite's Neo4j (tests/support/neo4j_process.py): a real Neo4j 5.26 LTS community that the official
`neo4j` driver reaches over Bolt with the test password, and that keeps its data across a stop and a start."""

from __future__ import annotations

import uuid

import neo4j
import pytest
from neo4j import GraphDatabase

from tests.support.neo4j_process import Neo4jProcess

pytestmark = pytest.mark.slow


def test_the_driver_reaches_neo4j_5_26_community(neo4j_server: Neo4jProcess) -> None:
    with GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        assert driver.get_server_info().agent.startswith("Neo4j/5.26.")
        [component] = driver.execute_query(
            "CALL dbms.components() YIELD name, versions, edition RETURN name, versions[0] AS version, edition"
        ).records
    assert component["name"] == "Neo4j Kernel"
    assert component["version"].startswith("5.26.")
    assert component["edition"] == "community"


def test_a_parameterised_merge_creates_once_and_reads_back(neo4j_server: Neo4jProcess) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    merge = (
        "MERGE (u:User {id: $user})-[:LIKES]->(t:Topic {name: $topic}) "
        "ON CREATE SET u.merges = 1 ON MATCH SET u.merges = u.merges + 1"
    )
    with GraphDatabase.driver(neo4j_server.uri, auth=neo4j_server.auth) as driver:
        for _ in range(2):
            driver.execute_query(merge, user=user, topic="bees")
        records = driver.execute_query(
            "MATCH (u:User {id: $user})-[:LIKES]->(t:Topic) RETURN u.merges AS merges, t.name AS topic", user=user
        ).records
    assert [(record["merges"], record["topic"]) for record in records] == [(2, "bees")]


def test_authentication_is_on(neo4j_server: Neo4jProcess) -> None:
    with (
        GraphDatabase.driver(neo4j_server.uri, auth=(neo4j_server.user, "not-the-password")) as driver,
        pytest.raises(neo4j.exceptions.AuthError),
    ):
        driver.verify_connectivity()


def test_the_data_survives_a_stop_and_a_start_on_the_same_address(neo4j_server: Neo4jProcess) -> None:
    marker = uuid.uuid4().hex
    uri = neo4j_server.uri
    with GraphDatabase.driver(uri, auth=neo4j_server.auth) as driver:
        driver.execute_query("CREATE (:Marker {id: $marker})", marker=marker)

        neo4j_server.stop()
        with pytest.raises(neo4j.exceptions.ServiceUnavailable):
            driver.verify_connectivity()  # no retries, unlike execute_query (30 s of them)

        neo4j_server.start()
        assert neo4j_server.uri == uri
        # The same driver reconnects once Neo4j is back.
        records = driver.execute_query("MATCH (m:Marker {id: $marker}) RETURN count(m) AS n", marker=marker).records
    assert records[0]["n"] == 1
