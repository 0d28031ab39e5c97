"""Durable Postgres queue for inferred writes (infer: true)."""
