"""Wires the FastAPI application: lifespan, middleware, error handlers and routers."""

from __future__ import annotations

from fastapi import FastAPI

from app.config import Settings
from app.errors import install_error_handlers
from app.jobs.router import router as jobs_router
from app.lifespan import build_lifespan
from app.memories.router import router as memories_router
from app.middleware import RequestIdMiddleware
from app.system.router import router as system_router

DESCRIPTION = """A hardened, local-first mem0 REST server: Ollama only, Postgres + pgvector only.
Every error answers `{error, message, request_id}`; a 2xx on a write means it is committed."""


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="mem0-fixed", description=DESCRIPTION, version="0.1.0", lifespan=build_lifespan(settings))
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(system_router)
    app.include_router(memories_router)
    app.include_router(jobs_router)
    return app
