"""mem0-fixed: a hardened, local-first mem0 REST server (Ollama + Postgres/pgvector only)."""

import os

# mem0 reads MEM0_TELEMETRY once, at import, and otherwise sends events to PostHog. Forcing it off here,
# before any module of this package can import mem0, is the one import-time effect this package has.
os.environ["MEM0_TELEMETRY"] = "False"
