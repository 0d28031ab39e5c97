"""Memories: the mem0-compatible REST surface over the pgvector table."""
