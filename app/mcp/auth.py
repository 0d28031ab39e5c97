"""The MCP endpoint's caller: the key gate (app/key_gate.py) checked the API key before the SDK sees the request
(401 in the API's error shape without a valid one); this wrapper leaves the key's Access in the request scope, where
the tools read it back through the SDK's request context."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.access import Access, checked_access
from app.errors import MethodNotAllowed, error_response
from app.state import AppState

# The scope key the wrapper fills. The scope, not a contextvar: the SDK runs a tool in a task of its session
# manager's task group, which sees this request's contextvars only if that task was started by this very request
# (so in stateless mode, not in a session's task), while the Starlette request the SDK hands every tool call is
# built on this very scope dict.
CALLER_SCOPE_KEY = "mem0.mcp.caller"
ALLOW_POST = {"Allow": "POST"}


@dataclass(frozen=True)
class Caller:
    """Who calls (the key's Access) and the services built by the lifespan."""

    access: Access
    services: AppState


class McpAuth:
    """Hands the tools the caller the key gate checked (app/key_gate.py), and refuses what a stateless endpoint
    does not serve."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            # Stateless and JSON (app/mcp/server.py): no event stream to open with GET, no session to end with DELETE.
            refusal = MethodNotAllowed("the MCP endpoint is stateless: send each JSON-RPC message as a POST")
            response = error_response(Request(scope), refusal.status_code, refusal.code, refusal.message, ALLOW_POST)
            await response(scope, receive, send)
            return
        scope[CALLER_SCOPE_KEY] = Caller(checked_access(scope), scope["app"].state.services)
        await self.app(scope, receive, send)


def caller_of(scope: Scope) -> Caller:
    caller = scope.get(CALLER_SCOPE_KEY)
    if not isinstance(caller, Caller):  # only reachable if the endpoint were mounted without McpAuth
        raise RuntimeError("MCP request without an authenticated caller")
    return caller
