"""The providers this server can use: Ollama for the LLM and the embedder, pgvector for storage."""
