"""GET /metrics speaks the Prometheus text format and carries the families the dashboard reads."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def _families(app_api) -> dict:
    response = app_api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def _value(family, **labels) -> float:
    """Sum of a counter's `_total` samples whose labels include the given ones."""
    return sum(
        sample.value
        for sample in family.samples
        if sample.name == f"{family.name}_total" and labels.items() <= sample.labels.items()
    )


def test_a_short_workload_shows_up_in_every_family(app_api, standin):
    body = {"messages": [{"role": "user", "content": "metrics fact"}], "user_id": "metrics", "infer": False}
    before = _families(app_api)
    assert app_api.post("/memories", json=body).status_code == 200
    assert app_api.post("/search", json={"query": "fact", "user_id": "metrics"}).status_code == 200
    standin.set_fault("embed", kind="status", status=500)
    assert app_api.post("/memories", json=body).status_code == 502

    after = _families(app_api)

    expected = {
        "mem0_http_request_duration_seconds",
        "mem0_writes",
        "mem0_memories_persisted",
        "mem0_ollama_request_duration_seconds",
        "mem0_ollama_errors",
        "mem0_warmup_seconds",
        "mem0_embedding_dims",
        "mem0_blocked_egress",
    }
    assert expected <= set(after)
    assert _value(after["mem0_writes"], outcome="persisted") == _value(before["mem0_writes"], outcome="persisted") + 1
    assert _value(after["mem0_writes"], outcome="failed") == _value(before["mem0_writes"], outcome="failed") + 1
    assert _value(after["mem0_ollama_errors"], op="embed") >= 1
    routes = {s.labels["route"] for s in after["mem0_http_request_duration_seconds"].samples}
    assert {"/memories", "/search"} <= routes
    dims = {s.labels["source"]: s.value for s in after["mem0_embedding_dims"].samples}
    assert dims == {
        "configured": 768,
        "embedder": 768,
        "column memories.vector": 768,
        "column memories_entities.vector": 768,
    }
    assert not after["mem0_blocked_egress"].samples
