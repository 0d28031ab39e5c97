"""Fixtures the integration tests share beyond tests/conftest.py."""

from __future__ import annotations

import pytest

import app  # noqa: F401  - forces mem0's telemetry off before mem0 is imported below


@pytest.fixture
def mem0_memory(module_db, standin_session, tmp_path):
    """Upstream mem0 (the pinned mem0ai) on the module's own table and the same Ollama stand-in."""
    from mem0 import Memory

    config = {
        "vector_store": {
            "provider": "pgvector",
            "config": {"connection_string": module_db, "collection_name": "memories", "embedding_model_dims": 768},
        },
        "embedder": {
            "provider": "ollama",
            "config": {
                "model": "nomic-embed-text:latest",
                "ollama_base_url": standin_session.url,
                "embedding_dims": 768,
            },
        },
        "llm": {
            "provider": "ollama",
            "config": {"model": "mistral:7b-instruct-q5_K_M", "ollama_base_url": standin_session.url},
        },
        "history_db_path": str(tmp_path / "mem0-history.db"),
    }
    memory = Memory.from_config(config)
    yield memory
    memory.vector_store.connection_pool.close()
