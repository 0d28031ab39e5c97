"""Upstream mem0's own code path behind HTTP, for `python -m scripts.bench --peer mem0`.

The pinned dev dependency `mem0ai`'s `Memory` (pgvector store, Ollama embedder and LLM) behind two sync FastAPI
routes served by uvicorn with one worker: the way upstream's REST server runs it (sync `def` routes, so FastAPI runs
each call in its threadpool), written here from mem0's public API. The routes take the same request bodies as
ours (`POST /memories`, `POST /search`) so the bench sends both servers identical requests; no API key.

Configured from the environment: PEER_DATABASE_URL, PEER_OLLAMA_URL, PEER_PORT, PEER_HISTORY_DB, PEER_DIMS.
`python -m scripts.mem0_peer` serves until SIGTERM.
"""

from __future__ import annotations

import os

# Before mem0 is imported: its telemetry module reads this once, and with it on mem0 sends PostHog events
# (and asks for feature flags) over the internet. Nothing may leave the machine.
os.environ["MEM0_TELEMETRY"] = "False"

from typing import Any

import uvicorn
from fastapi import FastAPI
from mem0 import Memory
from pydantic import BaseModel


def mem0_config() -> dict[str, Any]:
    """Upstream's defaults except where the bench needs its own: the database, the stand-in, the history file."""
    ollama_url = os.environ["PEER_OLLAMA_URL"]
    dims = int(os.environ.get("PEER_DIMS", "768"))
    return {
        "vector_store": {
            "provider": "pgvector",
            "config": {
                "connection_string": os.environ["PEER_DATABASE_URL"],
                "collection_name": "memories",
                "embedding_model_dims": dims,
            },
        },
        "embedder": {
            "provider": "ollama",
            "config": {"model": "nomic-embed-text:latest", "ollama_base_url": ollama_url, "embedding_dims": dims},
        },
        "llm": {"provider": "ollama", "config": {"model": "mistral:7b-instruct-q5_K_M", "ollama_base_url": ollama_url}},
        "history_db_path": os.environ["PEER_HISTORY_DB"],
    }


class Message(BaseModel):
    role: str
    content: str


class AddRequest(BaseModel):
    messages: list[Message]
    user_id: str
    metadata: dict[str, Any] | None = None
    infer: bool = True


class SearchRequest(BaseModel):
    query: str
    user_id: str
    top_k: int = 10
    filters: dict[str, Any] | None = None


memory = Memory.from_config(mem0_config())
app = FastAPI(title="mem0 peer (bench only)")


@app.get("/ready")
def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/memories")
def add_memories(request: AddRequest) -> Any:
    messages = [message.model_dump() for message in request.messages]
    return memory.add(messages, user_id=request.user_id, metadata=request.metadata, infer=request.infer)


@app.post("/search")
def search_memories(request: SearchRequest) -> Any:
    # mem0 2.x takes the scope inside `filters` (a top-level user_id is refused).
    filters = {**(request.filters or {}), "user_id": request.user_id}
    return memory.search(request.query, top_k=request.top_k, filters=filters)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PEER_PORT"]), workers=1, log_level="warning")
