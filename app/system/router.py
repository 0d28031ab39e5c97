"""GET /health, GET /ready, GET and POST /configure."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import EgressGuardDep, SettingsDep, StateDep, require_admin
from app.errors import AppError, Forbidden
from app.graph.projection.projector import graph_state

router = APIRouter(tags=["system"])
# Probes and metrics answer without a key (orchestrators and Prometheus call them); the configuration is for admins.
admin_router = APIRouter(tags=["system"], dependencies=[Depends(require_admin)])

READY_PROBE_TIMEOUT_S = 2.0


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse(url="/docs")


@router.get("/health", summary="Liveness")
async def health(guard: EgressGuardDep, state: StateDep) -> dict[str, Any]:
    """The process is up and serving HTTP; says nothing about its dependencies (see /ready).
    `blocked_egress` counts outbound connections the egress guard refused (null when the guard is off); `graph` is
    graph memory's state: `ok`, `degraded` (Neo4j unreachable or its projection failing) or `off`."""
    return {
        "status": "ok",
        "blocked_egress": None if guard is None else guard.blocked_total,
        "graph": graph_state(state.graph_projector),
    }


@router.get("/ready", summary="Readiness", responses={503: {"description": "Not ready; `reasons` says why."}})
async def ready(state: StateDep, request: Request) -> JSONResponse:
    """200 only when the database and Ollama answer now and embeddings work (see MEM0_READY_EMBED_MAX_AGE_S).
    Without a valid API key it says only which dependency is down; with one, also why (the driver's words).
    `graph` reports graph memory (`ok`, `degraded`, `off`) and never makes it 503: Postgres holds the relations
    and Neo4j catches up when it is back."""
    reasons = []
    if (alive := state.workers.alive()) < state.settings.infer_workers:
        reasons.append(f"only {alive} of {state.settings.infer_workers} job workers are running")
    database, ollama, embedder = await asyncio.gather(
        _ping_database(state), _ping_ollama(state), state.readiness.embedder.problem(lambda: _probe_embedder(state))
    )
    problems = {"database": database, "ollama": ollama, "embedder": embedder}
    if any(problems.values()) and not await _has_valid_key(state, request):
        problems = {name: problem and UNDETAILED[name] for name, problem in problems.items()}
    reasons += [problem for problem in problems.values() if problem]
    body: dict[str, Any] = {
        "status": "ready" if not reasons else "not_ready",
        **{name: problem or "ok" for name, problem in problems.items()},
        "embedding_dims": state.settings.embedding_dims,
        "warmup_seconds": state.readiness.warmup_seconds,
        "llm_model": state.workers.models.fallback if state.workers.models.on_fallback else state.settings.llm_model,
        "llm_on_fallback": state.workers.models.on_fallback,
        "graph": graph_state(state.graph_projector),
    }
    if reasons:
        body["reasons"] = reasons
    return JSONResponse(body, status_code=200 if not reasons else 503)


# What a caller without a key reads: which dependency is down, not the driver's text (hosts, users, paths).
UNDETAILED = {
    "database": "the database is unavailable",
    "ollama": "Ollama is unavailable",
    "embedder": "embeddings are failing",
}


async def _has_valid_key(state: StateDep, request: Request) -> bool:
    try:
        await state.keys.authenticate(request.headers)
    except AppError:
        return False
    return True


async def _ping_database(state: StateDep) -> str | None:
    try:
        async with asyncio.timeout(READY_PROBE_TIMEOUT_S), state.pool.connection() as conn:
            await conn.execute("SELECT 1")
    except TimeoutError:
        return f"database did not answer within {READY_PROBE_TIMEOUT_S:g}s"
    except Exception as error:  # noqa: BLE001 - readiness reports any failure as a reason, never fails itself
        return f"database: {type(error).__name__}: {error}"
    return None


async def _ping_ollama(state: StateDep) -> str | None:
    try:
        await state.ollama.version(READY_PROBE_TIMEOUT_S)
    except AppError as error:
        return error.message
    return None


async def _probe_embedder(state: StateDep) -> None:
    await state.ollama.probe_dims(state.settings.embedder_model, "readiness probe", READY_PROBE_TIMEOUT_S)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of the server's own registry."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@admin_router.get("/configure", summary="Effective configuration")
async def show_configuration(settings: SettingsDep) -> dict[str, Any]:
    """The configuration read from the environment at startup, secrets masked."""
    return settings.redacted()


@admin_router.post("/configure", summary="Change configuration (refused)", responses={403: {"description": "Always."}})
async def refuse_configuration() -> None:
    """Configuration is read from the environment only, so it cannot drift from what startup validated."""
    raise Forbidden(
        "configuration is env-only: set MEM0_* / POSTGRES_* / OLLAMA_BASE_URL variables and restart; see GET /configure"
    )
