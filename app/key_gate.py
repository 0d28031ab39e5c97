"""The API key is checked before anything reads the request's body: a request without a valid key costs its headers
and at most one key look-up, never the parsing of a large or deep body. The routes that answer anyone (probes,
metrics, the API documents) are the ones whose dependencies ask for no key (app/deps.py)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.access import ACCESS_STATE
from app.deps import needs_key
from app.errors import AppError, error_response
from app.routes import leaf_routes, routes_matching
from app.state import AppState


class KeyGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._open_paths: frozenset[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open(scope["app"]):
            await self.app(scope, receive, send)
            return
        services: AppState = scope["app"].state.services
        client = scope.get("client")
        try:
            access = await services.keys.authenticate(Headers(scope=scope), client[0] if client else None)
        except AppError as error:
            matching = routes_matching(scope["app"].router.routes, scope)
            if matching:
                scope["route"] = matching[0]  # the access log and the metrics name the route refused
            response = error_response(
                Request(scope), error.status_code, error.code, error.message, error.headers, error.fields
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[ACCESS_STATE] = access
        await self.app(scope, receive, send)

    def _open(self, app: FastAPI) -> frozenset[str]:
        """The paths that answer without a key, read once from the app's routes."""
        if self._open_paths is None:
            documents = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
            routes = {
                route.path for route in leaf_routes(app.routes) if isinstance(route, APIRoute) and not needs_key(route)
            }
            self._open_paths = frozenset(path for path in documents | routes if path)
        return self._open_paths
