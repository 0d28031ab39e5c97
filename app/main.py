"""Wires the FastAPI application: lifespan, middleware, error handlers and routers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.auth.browser import BrowserDefenseMiddleware
from app.config import Settings
from app.egress import EgressGuard
from app.errors import ERROR_RESPONSES, install_error_handlers
from app.graph.router import router as graph_router
from app.hosted.router import router as hosted_router
from app.jobs.router import router as jobs_router
from app.key_gate import KeyGate
from app.lifespan import build_lifespan
from app.limits import RequestLimitsMiddleware
from app.mcp.oauth_discovery import router as oauth_discovery_router
from app.mcp.server import mcp_router
from app.memories.router import router as memories_router
from app.metrics import build_metrics, request_observer
from app.middleware import RequestContextMiddleware
from app.named_entities.router import router as named_entities_router
from app.providers.router import router as providers_router
from app.scopes.router import router as scopes_router
from app.system.router import admin_router as system_admin_router
from app.system.router import router as system_router
from app.writes.router import router as writes_router

DESCRIPTION = """A hardened, local-first mem0 REST server: Ollama only, Postgres + pgvector only.
Every error answers `{error, message, request_id}`; a 2xx on a write means it is committed."""


def create_app(settings: Settings, egress_guard: EgressGuard | None = None) -> FastAPI:
    metrics = build_metrics()
    app = FastAPI(
        title="mem0-fixed",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=build_lifespan(settings, metrics),
        # FastAPI exports OpenTelemetry from the environment (FASTAPI_OTEL_AUTO_CONFIGURE, OTEL_*), which may be
        # set for other services; this server sends nothing anywhere, and /metrics is its observability.
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    app.state.egress_guard = egress_guard
    app.state.metrics = metrics
    if egress_guard is not None:
        egress_guard.on_block = lambda host: metrics.blocked_egress.labels(host).inc()
        for host, count in egress_guard.blocked.items():
            metrics.blocked_egress.labels(host).inc(count)
    # The last added runs first: the request id exists before a limit refuses anything.
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(KeyGate)  # before the body is read
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        )
    app.add_middleware(
        BrowserDefenseMiddleware, allowed_hosts=settings.allowed_hosts, cors_origins=settings.cors_origins
    )
    app.add_middleware(RequestContextMiddleware, observer=request_observer(metrics))
    install_error_handlers(app)
    # FastAPI tries routes in order, a few microseconds each: the routes every agent calls come first.
    app.include_router(writes_router, responses=ERROR_RESPONSES)
    app.include_router(memories_router, responses=ERROR_RESPONSES)
    app.include_router(hosted_router, responses=ERROR_RESPONSES)  # mem0's MemoryClient; its catch-alls are /v1-/v3
    app.include_router(system_router, responses=ERROR_RESPONSES)
    app.include_router(system_admin_router, responses=ERROR_RESPONSES)
    app.include_router(jobs_router, responses=ERROR_RESPONSES)
    app.include_router(scopes_router, responses=ERROR_RESPONSES)
    app.include_router(named_entities_router, responses=ERROR_RESPONSES)
    app.include_router(graph_router, responses=ERROR_RESPONSES)
    app.include_router(providers_router, responses=ERROR_RESPONSES)
    app.include_router(mcp_router(settings))  # MCP at /mcp; its lifespan runs the SDK's session manager
    app.include_router(oauth_discovery_router)  # what MCP clients probe after a 401: "send the key, no OAuth"
    return app
