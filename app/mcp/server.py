"""The MCP endpoint: the SDK's MCPServer with the memory tools, served over streamable HTTP at `/mcp` behind the
API-key check, as a router the app includes (its lifespan runs the SDK's session manager inside the app's)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.mcp.auth import McpAuth
from app.mcp.tools import register_tools

MCP_PATH = "/mcp"

INSTRUCTIONS = """Long-term memory for this conversation partner, kept by a mem0-compatible server.
Search before answering questions that may depend on earlier conversations (search_memories); store new durable
facts, preferences and decisions as short sentences (add_memory); correct a stored fact with update_memory rather
than adding a contradicting one. Always pass the same user_id for the same person. Your API key may limit you to
some users, agents or runs: memories outside them are invisible to you."""


@contextmanager
def _root_logger_kept() -> Iterator[None]:
    """MCPServer() calls logging.basicConfig, which installs the SDK's own handler on the root logger when none is
    there yet (an app built before app/log.py configured logging: tests, embedding). basicConfig leaves a root
    logger that has a handler alone, so one is there while the SDK is built; the app's JSON logging stays the
    only configuration."""
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        yield
    finally:
        root.removeHandler(placeholder)


def build_mcp_server() -> MCPServer[Any]:
    with _root_logger_kept():
        server: MCPServer[Any] = MCPServer("mem0-fixed", instructions=INSTRUCTIONS, version="0.1.0")
    register_tools(server)
    return server


class _NamedRoute:
    """A route to an ASGI app that puts itself in the scope, as FastAPI does for its own routes: the access log and
    the metrics read `scope["route"].path`, and FastAPI gives a plain route of an included router no such entry."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        # Any method (the SDK answers POST, GET and DELETE itself); exactly `path` (a Mount would redirect `/mcp` to
        # `/mcp/`); not in the OpenAPI document.
        self.route = Route(path, self, include_in_schema=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route
        await self.app(scope, receive, send)


def mcp_router(settings: Settings) -> APIRouter:
    """A new MCP server per app: the SDK's session manager runs once per instance.

    Stateless and JSON: every POST is one self-contained exchange (no server-side session, no SSE stream), so any
    replica can answer any request and the API key is checked on each of them. The tools never call back to the
    client (no sampling or elicitation), which is all a session would add. DNS-rebinding protection is the
    app's own (BrowserDefenseMiddleware checks Host against MEM0_ALLOWED_HOSTS and Origin on every route), so
    the SDK's localhost-only default, which would refuse the `mem0` host of the compose network, is off."""
    server = build_mcp_server()
    # Called for the session manager it creates; the Starlette app it returns is not used, the route is ours.
    server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=settings.max_body_bytes,  # the app's own limit, checked first (app/limits.py)
    )
    session_manager = server.session_manager
    if settings.log_level != "DEBUG":
        # The SDK logs each stateless request ("Terminating session: None") and each refused tool call at INFO;
        # the access log already has one line per request, and the caller reads the tool's error itself.
        logging.getLogger("mcp").setLevel(logging.WARNING)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with session_manager.run():
            yield

    router = APIRouter(lifespan=lifespan)
    router.routes.append(_NamedRoute(McpAuth(StreamableHTTPASGIApp(session_manager)), MCP_PATH).route)
    return router
