"""MCP at /mcp against a real server process, through the official `mcp` SDK's streamable-HTTP client: the tools,
the same data the REST API shows, the caller's key limiting every tool, and 401 without a key."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.auth import OAuthClientProvider, OAuthRegistrationError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.types import CallToolResult

from app.mcp.oauth_discovery import METADATA_PATHS, NO_OAUTH, REGISTRATION_PATH
from tests.conftest import server_env
from tests.support.keys import mint_key
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess

TOOLS = {
    "add_memory",
    "search_memories",
    "get_memories",
    "get_memory",
    "update_memory",
    "delete_memory",
    "delete_all_memories",
    "get_graph",
    "list_entities",
    "delete_entities",
}
# Claude Desktop, Cursor and the SDK's own default ("auto" probes the 2026 discovery, then falls back) connect
# with the initialize handshake or the newer per-request protocol; both must work.
MODES = ["legacy", "auto"]


@pytest.fixture(scope="module")
def mcp_server(module_db, standin_session) -> Iterator[ServerProcess]:
    with ServerProcess(server_env(module_db, standin_session, MEM0_INFER_WAIT_S="20")) as process:
        yield process
    output = process.output()
    assert "egress blocked" not in output
    assert TEST_ADMIN_KEY not in output


@asynccontextmanager
async def mcp_client(server: ServerProcess, key: str = TEST_ADMIN_KEY, mode: str = "legacy") -> AsyncIterator[Client]:
    # MCP clients send the key as `Authorization: Bearer`, as configured in Claude Desktop or Cursor.
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{server.url}/mcp", http_client=http), mode=mode) as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, (tool, result.content)
    return structured(result)


def structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None
    # The same JSON as text, for clients that read only the text content.
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    return result.structured_content


async def search(client: Client, **arguments: Any) -> list[dict[str, Any]]:
    """search_memories with threshold 0: every match of the scope, whatever the server's default threshold."""
    results: list[dict[str, Any]] = (await call(client, "search_memories", threshold=0.0, **arguments))["results"]
    return results


async def error_of(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, (tool, result.content)
    return result.content[0].text  # type: ignore[union-attr]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_lists_the_nine_tools_with_descriptions_and_schemas(mcp_server):
    async with mcp_client(mcp_server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description is not None and len(tool.description) > 80, tool.name
        properties = tool.input_schema.get("properties", {})
        assert "ctx" not in properties, tool.name  # the SDK's context is not an argument
        for name, schema in properties.items():
            assert schema.get("description"), (tool.name, name)
    assert {"user_id", "agent_id", "run_id", "text", "messages", "metadata", "infer"} <= set(
        tools["add_memory"].input_schema["properties"]
    )
    assert tools["search_memories"].input_schema["required"] == ["query"]
    assert tools["get_memory"].input_schema["required"] == ["memory_id"]
    assert tools["search_memories"].annotations is not None and tools["search_memories"].annotations.read_only_hint
    assert tools["delete_all_memories"].annotations is not None
    assert tools["delete_all_memories"].annotations.destructive_hint


@pytest.mark.parametrize("mode", MODES)
async def test_add_search_get_update_delete_match_the_rest_api(mcp_server, mode):
    user = unique("ada")
    async with mcp_client(mcp_server, mode=mode) as client:
        added = await call(client, "add_memory", text="Ada prefers green tea", user_id=user, metadata={"topic": "tea"})
        [result] = added["results"]
        assert result["memory"] == "Ada prefers green tea" and result["event"] == "ADD"
        memory_id = result["id"]
        await call(client, "add_memory", text="Ada lives in Oslo", user_id=user)

        found = await search(client, query="Ada prefers green tea", user_id=user)
        assert found[0]["id"] == memory_id  # best first
        assert {m["memory"] for m in found} == {"Ada prefers green tea", "Ada lives in Oslo"}
        filtered = await search(client, query="tea", user_id=user, filters={"topic": "tea"})
        assert [m["id"] for m in filtered] == [memory_id]
        either = await search(client, query="tea", user_id=user, filters={"OR": [{"topic": "tea"}, {"topic": "x"}]})
        assert [m["id"] for m in either] == [memory_id]

        listed = (await call(client, "get_memories", user_id=user))["results"]
        got = await call(client, "get_memory", memory_id=memory_id)
        with mcp_server.client() as rest:
            assert rest.get("/memories", params={"user_id": user}).json()["results"] == listed
            assert rest.get(f"/memories/{memory_id}").json() == got
        assert got["metadata"] == {"topic": "tea"} and got["user_id"] == user

        updated = await call(client, "update_memory", memory_id=memory_id, text="Ada prefers black tea")
        assert updated["memory"] == "Ada prefers black tea"
        with mcp_server.client() as rest:
            events = [row["event"] for row in rest.get(f"/memories/{memory_id}/history").json()]
        assert events == ["ADD", "UPDATE"]

        assert (await call(client, "delete_memory", memory_id=memory_id))["id"] == memory_id
        assert (await error_of(client, "get_memory", memory_id=memory_id)).endswith(
            f"not_found: no memory with id {memory_id}"
        )
        assert (await call(client, "delete_all_memories", user_id=user))["deleted"] == 1
        assert (await call(client, "get_memories", user_id=user))["results"] == []


async def test_add_with_messages_and_with_infer(mcp_server, standin):
    user = unique("bo")
    async with mcp_client(mcp_server) as client:
        turns = [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "I keep bees"},
            {"role": "assistant", "content": "Nice!"},
        ]
        stored = await call(client, "add_memory", messages=turns, user_id=user)
        assert [m["memory"] for m in stored["results"]] == ["I keep bees", "Nice!"]

        # infer true: the LLM (the stand-in: one fact per user sentence) extracts facts on the job queue, and the
        # tool waits for the job.
        inferred = await call(client, "add_memory", text="Bo rides a bike. Bo owns a cat.", user_id=user, infer=True)
        assert sorted(m["memory"] for m in inferred["results"]) == ["Bo owns a cat", "Bo rides a bike"]
        uuid.UUID(inferred["job_id"])
        assert standin.stats()["counts"].get("chat", 0) >= 1

        assert "give either text or messages" in await error_of(client, "add_memory", user_id=user)
        assert "at least one identifier" in await error_of(client, "add_memory", text="orphan fact")
        assert "invalid_input" in await error_of(client, "get_memory", memory_id="not-a-uuid")
        listed = (await call(client, "get_memories", user_id=user))["results"]
    assert len(listed) == 4


def _entities(listing: dict[str, Any]) -> dict[tuple[str, str], int]:
    assert listing["count"] >= len(listing["results"])
    return {(e["type"], e["id"]): e["total_memories"] for e in listing["results"]}


async def test_entities_are_listed_and_deleted(mcp_server):
    user, agent = unique("eve"), unique("helper")
    async with mcp_client(mcp_server) as client:
        await call(client, "add_memory", text="Eve plays chess", user_id=user, agent_id=agent)
        await call(client, "add_memory", text="Eve plays go", user_id=user)
        entities = _entities(await call(client, "list_entities", page_size=1000))
        assert entities[("user", user)] == 2 and entities[("agent", agent)] == 1
        with mcp_server.client() as rest:
            assert (
                rest.get("/entities", params={"page_size": 1000}).json()["results"]
                == (await call(client, "list_entities", page_size=1000))["results"]
            )

        deleted = await call(client, "delete_entities", agent_id=agent)
        assert deleted["results"] == [{"type": "agent", "id": agent, "deleted_memories": 1}]
        entities = _entities(await call(client, "list_entities", page_size=1000))
        assert entities[("user", user)] == 1 and ("agent", agent) not in entities
        await call(client, "delete_entities", user_id=user)
        assert ("user", user) not in _entities(await call(client, "list_entities", page_size=1000))
        assert "name the user, agent or run" in await error_of(client, "delete_entities")


async def test_a_key_limited_to_one_user_sees_and_changes_only_that_user(mcp_server, module_db):
    alice, bob = unique("alice"), unique("bob")
    with mcp_server.client() as admin:
        response = admin.post(
            "/memories",
            json={"messages": [{"role": "user", "content": "Bob keeps wasps"}], "user_id": bob, "infer": False},
        )
        assert response.status_code == 200, response.text
        bobs = response.json()["results"][0]["id"]
    limited = mint_key(module_db, "--name", "alice-mcp", "--user-id", alice)

    async with mcp_client(mcp_server, key=limited) as client:
        mine = (await call(client, "add_memory", text="Alice keeps goats", user_id=alice))["results"][0]["id"]
        assert [m["id"] for m in await search(client, query="keeps", user_id=alice)] == [mine]
        assert await search(client, query="Bob keeps wasps", user_id=bob) == []
        assert (await call(client, "get_memories", user_id=bob))["results"] == []
        assert "not_found" in await error_of(client, "get_memory", memory_id=bobs)
        assert "not_found" in await error_of(client, "update_memory", memory_id=bobs, text="Bob keeps bees")
        assert "not_found" in await error_of(client, "delete_memory", memory_id=bobs)
        assert "forbidden" in await error_of(client, "delete_all_memories", user_id=bob)
        assert "forbidden" in await error_of(client, "delete_entities", user_id=bob)
        assert "forbidden" in await error_of(client, "add_memory", text="Bob likes Alice", user_id=bob)
        assert list(_entities(await call(client, "list_entities"))) == [("user", alice)]

    with mcp_server.client() as admin:
        assert admin.get(f"/memories/{bobs}").json()["memory"] == "Bob keeps wasps"
        assert [m["memory"] for m in admin.get("/memories", params={"user_id": bob}).json()["results"]] == [
            "Bob keeps wasps"
        ]


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_no_key_or_a_wrong_key_is_401_before_the_sdk_runs(mcp_server):
    for presented in (None, "Bearer m0fk_000000000000_not-a-real-key-at-all", "Bearer", "Basic dXNlcjpwYXNz"):
        headers = dict(MCP_HEADERS)
        if presented is not None:
            headers["Authorization"] = presented
        for method in ("POST", "GET", "DELETE"):
            response = httpx.request(
                method,
                f"{mcp_server.url}/mcp",
                headers=headers,
                json=INITIALIZE if method == "POST" else None,
                timeout=10,
            )
            assert response.status_code == 401, (presented, method, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["error"] == "unauthorized"

    # The same request with the key is answered by the SDK (plain JSON, no session: stateless).
    response = httpx.post(
        f"{mcp_server.url}/mcp", headers={**MCP_HEADERS, "Authorization": f"Bearer {TEST_ADMIN_KEY}"}, json=INITIALIZE
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["result"]["serverInfo"]["name"] == "mem0-fixed"
    # X-API-Key works too, as on every REST route.
    response = httpx.post(
        f"{mcp_server.url}/mcp", headers={**MCP_HEADERS, "X-API-Key": TEST_ADMIN_KEY}, json=INITIALIZE
    )
    assert response.status_code == 200, response.text
    # Observed like every route: the access log's and the metrics' route is /mcp, by status.
    metrics = httpx.get(f"{mcp_server.url}/metrics").text
    for status in (200, 401):
        assert f'mem0_http_request_duration_seconds_count{{method="POST",route="/mcp",status="{status}"}}' in metrics


async def test_the_sdk_client_with_a_wrong_key_cannot_connect(mcp_server):
    statuses: list[int] = []

    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    http = httpx2.AsyncClient(
        headers={"Authorization": "Bearer m0fk_000000000000_not-a-real-key-at-all"},
        event_hooks={"response": [record]},
        timeout=30,
    )
    with pytest.raises(ExceptionGroup) as raised:
        async with http, Client(streamable_http_client(f"{mcp_server.url}/mcp", http_client=http)) as client:
            await client.list_tools()
    assert raised.group_contains(MCPError)
    assert statuses and set(statuses) == {401}


class NothingStored:
    """The SDK's TokenStorage of a client that never signed in: no tokens, no registration."""

    async def get_tokens(self) -> OAuthToken | None:
        return None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        raise AssertionError("no token can be issued: this server has no OAuth")

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        raise AssertionError("no client can be registered: this server has no OAuth")


async def test_the_sdk_client_without_a_key_tries_oauth_and_is_told_to_send_the_key(mcp_server):
    """A client configured without a key meets the 401 and runs the SDK's OAuth discovery, then registration: each
    step answers 404 and the error the client ends with says to send the key as a header."""
    asked: list[tuple[str, str, int]] = []

    async def record(response: httpx2.Response) -> None:
        asked.append((response.request.method, response.request.url.path, response.status_code))

    url = f"{mcp_server.url}/mcp"
    oauth = OAuthClientProvider(
        url, OAuthClientMetadata(redirect_uris=["http://127.0.0.1:1/callback"]), NothingStored()
    )
    http = httpx2.AsyncClient(auth=oauth, event_hooks={"response": [record]}, timeout=30)
    with pytest.raises(ExceptionGroup) as raised:
        async with http, Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            await client.list_tools()
    assert raised.group_contains(OAuthRegistrationError, match="uses API keys, not OAuth")
    assert asked == [
        ("POST", "/mcp", 401),
        ("GET", "/.well-known/oauth-protected-resource/mcp", 404),
        ("GET", "/.well-known/oauth-protected-resource", 404),
        ("GET", "/.well-known/oauth-authorization-server", 404),
        ("POST", "/register", 404),
    ]


def test_the_401_and_every_oauth_discovery_path_say_to_send_the_key_as_a_header(app_api):
    app_api.headers.pop("X-API-Key")
    unauthorized = app_api.post("/mcp", headers=MCP_HEADERS, json=INITIALIZE)
    assert unauthorized.status_code == 401
    assert unauthorized.headers["www-authenticate"] == 'Bearer realm="mem0-fixed"'
    assert "`Authorization: Bearer <key>`" in unauthorized.json()["message"]
    assert "not OAuth" in unauthorized.json()["message"]
    for method, path in [*(("GET", path) for path in METADATA_PATHS), ("POST", REGISTRATION_PATH)]:
        response = app_api.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"] == "not_found"
        assert response.json()["message"] == NO_OAUTH


# The endpoint is stateless JSON (issue 22, item 6): an authenticated GET or DELETE is a 405 naming POST, not an
# event stream left open; a POST is still answered. In-process: request/response behaviour.
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_get_or_delete_is_405_naming_post(app_api, method):
    response = app_api.request(method, "/mcp", headers={"Accept": "text/event-stream"}, timeout=5)
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"


def test_a_post_is_answered(app_api):
    response = app_api.post("/mcp", headers=MCP_HEADERS, json=INITIALIZE, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "mem0-fixed"
