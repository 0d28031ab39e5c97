"""Idempotency keys: a retried write with the same key runs once and later answers replay the stored result."""
