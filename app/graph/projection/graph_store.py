"""The Neo4j side of the projection, through the official driver: open (verified, indexed), ping, and make one
scope's nodes and relationships exactly what Postgres says, in one Neo4j transaction."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict
from importlib import resources
from typing import Any

from neo4j import AsyncDriver, AsyncGraphDatabase, AsyncTransaction, NotificationMinimumSeverity
from neo4j.exceptions import AuthError, ServiceUnavailable, SessionExpired
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from app.config import Settings
from app.errors import StartupError
from app.graph.names import NODE_TYPES, RELATIONSHIP_TYPE
from app.graph.projection.layout import ScopeGraph
from app.params import IDENTIFIER_KEYS

logger = logging.getLogger(__name__)
MIN_NEO4J_MAJOR = 5
CONNECT_TIMEOUT_S = 5.0
# Server-side bound on one scope's transaction, so a stuck one cannot hold the scope (and its Postgres lock) long.
TRANSACTION_TIMEOUT_S = 60.0
# A failure that says Neo4j cannot be reached now (down, restarting, network), not that a statement failed.
UNREACHABLE = (ServiceUnavailable, SessionExpired, TimeoutError, ConnectionError)
# Bolt only: the driver's HTTP support is a preview, and the projection's explicit transactions need Bolt.
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
INDEX_STATEMENTS = ("index_name", "index_user_id", "index_agent_id", "index_run_id")
_NAME_LINE = re.compile(r"^//\s*name:\s*(\w+)\s*$", re.MULTILINE)
_SCOPE = re.compile(r"\{scope\((\w+)\)\}")


def _load_statements() -> dict[str, str]:
    text = resources.files("app.graph.projection").joinpath("graph.cypher").read_text(encoding="utf-8")
    parts = _NAME_LINE.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


STATEMENTS = _load_statements()


def scope_predicate(variable: str, identifiers: Mapping[str, str]) -> str:
    """`n.user_id = $user_id AND n.agent_id IS NULL AND n.run_id IS NULL` for {user_id}: all three compared, so
    {user_id: u1} never matches a node of {user_id: u1, agent_id: a1}. Only fixed keys reach the text."""
    return " AND ".join(
        f"{variable}.{kind} = ${kind}" if kind in identifiers else f"{variable}.{kind} IS NULL"
        for kind in IDENTIFIER_KEYS
    )


def _quoted(name: str) -> str:
    return f"`{name}`"


def node_label(node_type: str) -> str:
    if node_type not in NODE_TYPES:
        raise ValueError(f"not a node type: {node_type!r}")
    return _quoted(node_type)


def relationship_type(name: str) -> str:
    if not RELATIONSHIP_TYPE.fullmatch(name):
        raise ValueError("not a plain relationship type")
    return _quoted(name)


def statement(name: str, identifiers: Mapping[str, str], *, label: str = "", type_: str = "") -> str:
    """The named statement for one scope, with a checked label or relationship type where it has one."""
    text = _SCOPE.sub(lambda match: scope_predicate(match.group(1), identifiers), STATEMENTS[name])
    return (
        text.replace("{type_labels}", "".join(f":{node_label(kind)}" for kind in NODE_TYPES))
        .replace("{label}", label)
        .replace("{type}", type_)
    )


class Neo4jGraph:
    def __init__(self, driver: AsyncDriver, uri: str, username: str) -> None:
        self.driver = driver
        self.uri = uri
        self.username = username
        self.prepared = False  # version checked and indexes created

    @classmethod
    def connect(cls, settings: Settings) -> Neo4jGraph:
        """The driver for NEO4J_URI, without any I/O yet; a StartupError when the URI is not a Bolt URI."""
        uri = settings.neo4j_uri
        if not uri:
            raise StartupError("graph memory is off: NEO4J_URI is not set")
        password = settings.neo4j_password.get_secret_value()
        try:
            if uri.split("://", 1)[0] not in BOLT_SCHEMES:
                raise ValueError(f"the scheme is not one of {', '.join(BOLT_SCHEMES)}")
            driver = AsyncGraphDatabase.driver(
                uri,
                auth=(settings.neo4j_username, password) if password else None,
                connection_timeout=CONNECT_TIMEOUT_S,
                connection_acquisition_timeout=CONNECT_TIMEOUT_S,
                notifications_min_severity=NotificationMinimumSeverity.OFF,
            )
        except ValueError as error:  # the driver's ConfigurationError for a bad address is one
            raise StartupError(f"NEO4J_URI={uri!r} is not a Neo4j URI: {error}; e.g. bolt://localhost:7687") from None
        return cls(driver, uri, settings.neo4j_username)

    @classmethod
    async def open(cls, settings: Settings) -> Neo4jGraph:
        """Connected and prepared, or a StartupError that says what is wrong and how to fix it (for commands that
        need Neo4j now, such as `graph rebuild`)."""
        graph = cls.connect(settings)
        try:
            await graph.prepare(settings.startup_retries, settings.startup_backoff_s)
        except UNREACHABLE as error:
            await graph.close()
            raise StartupError(
                f"Neo4j at {graph.uri} unreachable after {settings.startup_retries} attempts: {error}; start Neo4j "
                "or fix NEO4J_URI (unset it to run without graph memory)"
            ) from None
        except BaseException:
            await graph.close()
            raise
        return graph

    async def prepare(self, attempts: int, backoff_s: float) -> None:
        """Waits for Neo4j (bounded retries while it is unreachable, which the caller gets as the driver's error),
        checks it is Neo4j 5 or newer and creates the indexes; a StartupError when it refuses the credentials or is
        too old."""
        try:
            version = await self._server_version_when_up(attempts, backoff_s)
        except AuthError:
            raise StartupError(
                f"Neo4j at {self.uri} refused the credentials of {self.username!r}: check NEO4J_USERNAME and "
                "NEO4J_PASSWORD"
            ) from None
        major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
        if major < MIN_NEO4J_MAJOR:
            raise StartupError(
                f"Neo4j at {self.uri} is version {version}; graph memory needs Neo4j {MIN_NEO4J_MAJOR} or newer "
                "(or unset NEO4J_URI to run without it)"
            )
        for name in INDEX_STATEMENTS:
            await self._run(STATEMENTS[name], {})
        self.prepared = True
        logger.info("neo4j ready", extra={"neo4j_version": version})

    async def close(self) -> None:
        await self.driver.close()

    async def server_version(self) -> str:
        records = await self._run(STATEMENTS["components"], {})
        return str(records[0]["version"]) if records else "unknown"

    async def _server_version_when_up(self, attempts: int, backoff_s: float) -> str:
        """Bounded retries with exponential backoff for a Neo4j that is still starting (MEM0_STARTUP_RETRIES,
        MEM0_STARTUP_BACKOFF_S), as app.checks does for Postgres and Ollama; not imported from there, as app.checks
        imports app.llm, which the graph's extraction side imports app.graph from."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=backoff_s, max=10),
            retry=retry_if_exception_type(UNREACHABLE),
            reraise=True,
            before_sleep=lambda state: logger.warning("neo4j not ready (attempt %d), retrying", state.attempt_number),
        )
        async for attempt in retrying:
            with attempt:
                return await self.server_version()
        raise AssertionError("unreachable: tenacity reraises")

    async def ping(self) -> None:
        await self._run(STATEMENTS["ping"], {})

    async def _run(self, query: str, parameters: dict[str, Any]) -> list[Any]:
        """An auto-commit statement: no driver-side retries (the callers have their own), so a failure is quick."""
        async with self.driver.session() as session:
            result = await session.run(query, parameters)
            return [record async for record in result]

    async def replace_scope(self, identifiers: Mapping[str, str], graph: ScopeGraph) -> None:
        """Makes the scope's nodes and relationships exactly `graph` in one transaction: stale ones go, missing
        ones come, the others are updated in place (their `created` stays). Run again, it changes nothing."""
        scope = {kind: identifiers.get(kind) for kind in IDENTIFIER_KEYS}
        params: dict[str, Any] = {**scope, "identifiers": dict(identifiers)}
        keep = [[r.source, r.type, r.destination] for r in graph.relationships]
        names = [node.name for node in graph.nodes]
        async with (
            self.driver.session() as session,
            await session.begin_transaction(timeout=TRANSACTION_TIMEOUT_S) as tx,
        ):
            await _write(tx, statement("delete_stale_relationships", identifiers), {**params, "keep": keep})
            await _write(tx, statement("delete_stale_nodes", identifiers), {**params, "names": names})
            rows = [asdict(node) for node in graph.nodes]
            await _write(tx, statement("create_missing_nodes", identifiers), {**params, "nodes": rows})
            for node_type, nodes in graph.nodes_by_type().items():
                query = statement("set_nodes", identifiers, label=node_label(node_type))
                await _write(tx, query, {**params, "nodes": [asdict(node) for node in nodes]})
            for name, relationships in graph.relationships_by_type().items():
                query = statement("merge_relationships", identifiers, type_=relationship_type(name))
                rows = [asdict(relationship) for relationship in relationships]
                await _write(tx, query, {**params, "relationships": rows})


async def _write(tx: AsyncTransaction, query: str, parameters: dict[str, Any]) -> None:
    """Runs one statement to its end, so a failure surfaces here and not at the commit."""
    await (await tx.run(query, parameters)).consume()
