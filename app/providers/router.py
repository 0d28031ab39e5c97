"""`GET /configure/providers`, as upstream mem0's self-hosted server has it; here the answer is fixed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.deps import KnownQueryRoute, SettingsDep, get_access

router = APIRouter(tags=["system"], route_class=KnownQueryRoute, dependencies=[Depends(get_access)])


@router.get("/configure/providers", summary="Supported providers")
async def providers(settings: SettingsDep) -> dict[str, Any]:
    """Ollama only (a different MEM0_LLM_PROVIDER or MEM0_EMBEDDER_PROVIDER stops the server at startup), and
    Postgres with pgvector; the models are the configured ones."""
    return {
        "llm": {"providers": ["ollama"], "model": settings.llm_model},
        "embedder": {"providers": ["ollama"], "model": settings.embedder_model},
        "vector_store": {"providers": ["pgvector"]},
    }
