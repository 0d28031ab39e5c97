"""Prometheus metrics on a registry of the app's own (built once per app, never the global default)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


@dataclass
class Metrics:
    registry: CollectorRegistry
    http_latency: Histogram
    writes: Counter
    memories_persisted: Counter
    ollama_latency: Histogram
    ollama_errors: Counter
    warmup_seconds: Gauge
    embedding_dims: Gauge
    blocked_egress: Counter
    telemetry_backlog: Gauge
    telemetry_emitted: Counter
    telemetry_flushed: Counter
    telemetry_dropped: Counter
    telemetry_flush_failures: Counter
    telemetry_breaker: Gauge
    job_queue_depth: Gauge
    job_oldest_age: Gauge
    job_workers_alive: Gauge
    model_output_dropped: Counter
    connections_refused: Counter
    ignored_fields: Counter
    graph_projection_lag: Gauge
    graph_scopes_behind: Gauge
    graph_projection_failures: Counter
    graph_projected_scopes: Counter
    graph_relations_dropped: Counter
    graph_degraded: Gauge
    search_cache: Counter


def build_metrics() -> Metrics:
    registry = CollectorRegistry(auto_describe=True)
    return Metrics(
        registry=registry,
        http_latency=Histogram(
            "mem0_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        writes=Counter(
            "mem0_writes",
            "POST /memories outcomes: persisted or failed (success ratio = persisted / all).",
            ["outcome"],
            registry=registry,
        ),
        memories_persisted=Counter("mem0_memories_persisted", "Memory rows committed.", registry=registry),
        ollama_latency=Histogram(
            "mem0_ollama_request_duration_seconds",
            "Ollama call latency by operation and model.",
            ["op", "model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        ollama_errors=Counter(
            "mem0_ollama_errors", "Failed Ollama calls by operation and model.", ["op", "model"], registry=registry
        ),
        warmup_seconds=Gauge("mem0_warmup_seconds", "Time the boot warm-up of both models took.", registry=registry),
        embedding_dims=Gauge(
            "mem0_embedding_dims",
            "Embedding dimension by source: configured, embedder, or a vector column.",
            ["source"],
            registry=registry,
        ),
        blocked_egress=Counter(
            "mem0_blocked_egress", "Outbound connections refused by the egress guard.", ["host"], registry=registry
        ),
        telemetry_backlog=Gauge(
            "mem0_telemetry_backlog", "Telemetry events waiting (memory + spill file).", registry=registry
        ),
        telemetry_emitted=Counter("mem0_telemetry_emitted", "Telemetry events emitted.", registry=registry),
        telemetry_flushed=Counter("mem0_telemetry_flushed", "Telemetry events stored.", registry=registry),
        telemetry_dropped=Counter(
            "mem0_telemetry_dropped", "Telemetry events lost to a full backlog.", registry=registry
        ),
        telemetry_flush_failures=Counter(
            "mem0_telemetry_flush_failures", "Failed telemetry flushes.", registry=registry
        ),
        job_queue_depth=Gauge("mem0_job_queue_depth", "Inferred-write jobs pending or running.", registry=registry),
        job_oldest_age=Gauge(
            "mem0_job_oldest_age_seconds", "Age of the oldest pending or running job.", registry=registry
        ),
        job_workers_alive=Gauge(
            "mem0_job_workers_alive", "Job queue workers running (MEM0_INFER_WORKERS when healthy).", registry=registry
        ),
        model_output_dropped=Counter(
            "mem0_model_output_dropped",
            "Items of the model's extraction replies dropped as unusable, by item (fact, entity) and reason.",
            ["item", "reason"],
            registry=registry,
        ),
        connections_refused=Counter(
            "mem0_connections_refused",
            "Connections answered and closed by the server's bounds: connection_cap, headers_timeout, body_timeout.",
            ["reason"],
            registry=registry,
        ),
        ignored_fields=Counter(
            "mem0_ignored_fields",
            "Client configuration fields (org_id, project_id, host, ...) hosted-API requests carried, by field.",
            ["field"],
            registry=registry,
        ),
        telemetry_breaker=Gauge(
            "mem0_telemetry_breaker_state",
            "Telemetry circuit breaker: 0 closed, 1 half-open, 2 open.",
            registry=registry,
        ),
        graph_projection_lag=Gauge(
            "mem0_graph_projection_lag_seconds",
            "Age of the oldest graph change Neo4j does not show yet (0 when it has caught up).",
            registry=registry,
        ),
        graph_scopes_behind=Gauge(
            "mem0_graph_scopes_behind", "Scopes whose relations Neo4j does not show yet.", registry=registry
        ),
        graph_projection_failures=Counter(
            "mem0_graph_projection_failures", "Scope projections into Neo4j that failed (retried).", registry=registry
        ),
        graph_projected_scopes=Counter(
            "mem0_graph_projected_scopes", "Scope projections into Neo4j that completed.", registry=registry
        ),
        graph_relations_dropped=Counter(
            "mem0_graph_relations_dropped",
            "Relations left out of Neo4j because their relationship is not a plain identifier.",
            registry=registry,
        ),
        graph_degraded=Gauge(
            "mem0_graph_degraded",
            "1 while Neo4j is unreachable or a scope's projection fails (the server keeps serving), else 0.",
            registry=registry,
        ),
        search_cache=Counter(
            "mem0_search_cache",
            "Searches answered from the search result cache (hit), computed and cached (miss), or computed without "
            "it (bypass: disabled, or a scope named by no plain identifier).",
            ["result"],
            registry=registry,
        ),
    )


def request_observer(metrics: Metrics) -> Callable[[str, str, int, float], None]:
    """Records a finished request under its route template (not its raw path, so ids cannot explode cardinality)."""

    def observe(route: str, method: str, status: int, seconds: float) -> None:
        metrics.http_latency.labels(route, method, str(status)).observe(seconds)

    return observe
