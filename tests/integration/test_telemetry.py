"""Telemetry never blocks a write: with its table locked, writes succeed, the breaker opens, and the backlog
replays once the table is back, every event once; a backlog too small for the outage counts what it dropped."""

from __future__ import annotations

import time

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer

FAST_TELEMETRY = {
    "MEM0_TELEMETRY_FLUSH_INTERVAL_S": "0.1",
    "MEM0_TELEMETRY_BREAKER_COOLDOWN_S": "0.5",
    "MEM0_TELEMETRY_TIMEOUT_MS": "200",
}


def _gauges(client) -> dict[str, float]:
    text = client.get("/metrics").text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("mem0_telemetry")
    }


def _wait_for(client, condition, timeout_s: float = 20.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        values = _gauges(client)
        if condition(values):
            return values
        time.sleep(0.1)
    raise AssertionError(f"condition not reached: {_gauges(client)}")


def _write_during_outage(database: str, client, writes: int) -> list[int]:
    with psycopg.connect(database) as locker:
        locker.execute("LOCK TABLE telemetry_events IN ACCESS EXCLUSIVE MODE")
        statuses = [
            client.post(
                "/memories",
                json={"messages": [{"role": "user", "content": f"fact {i}"}], "user_id": "t", "infer": False},
            ).status_code
            for i in range(writes)
        ]
        _wait_for(client, lambda v: v["mem0_telemetry_breaker_state"] == 2)
        locker.rollback()
    return statuses


def _stored(database: str, kind: str | None = None) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry_events WHERE %s::text IS NULL OR kind = %s", (kind, kind)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_an_outage_of_the_telemetry_table_loses_no_write_and_no_event(fresh_db, standin):
    with InProcessServer(server_env(fresh_db, standin, **FAST_TELEMETRY)) as app, app.client() as client:
        statuses = _write_during_outage(fresh_db, client, 50)
        settled = _wait_for(
            client, lambda v: v["mem0_telemetry_backlog"] == 0 and v["mem0_telemetry_breaker_state"] == 0
        )

    assert statuses == [200] * 50
    assert settled["mem0_telemetry_flush_failures_total"] >= 3
    assert settled["mem0_telemetry_dropped_total"] == 0
    assert _stored(fresh_db, "write.persisted") == 50
    assert _stored(fresh_db) == settled["mem0_telemetry_emitted_total"] == settled["mem0_telemetry_flushed_total"]


def test_a_backlog_too_small_for_the_outage_counts_exactly_what_it_dropped(fresh_db, standin):
    small = {**FAST_TELEMETRY, "MEM0_TELEMETRY_QUEUE_MAX": "5", "MEM0_TELEMETRY_SPILL_MAX": "10"}
    with InProcessServer(server_env(fresh_db, standin, **small)) as app, app.client() as client:
        statuses = _write_during_outage(fresh_db, client, 30)
        settled = _wait_for(
            client, lambda v: v["mem0_telemetry_backlog"] == 0 and v["mem0_telemetry_breaker_state"] == 0
        )

    assert statuses == [200] * 30
    assert settled["mem0_telemetry_dropped_total"] > 0
    assert _stored(fresh_db) == settled["mem0_telemetry_flushed_total"]
    assert (
        settled["mem0_telemetry_emitted_total"]
        == settled["mem0_telemetry_flushed_total"] + settled["mem0_telemetry_dropped_total"]
    )


def test_every_ollama_call_is_an_event_with_its_operation_model_duration_and_tokens(fresh_db, standin):
    with InProcessServer(server_env(fresh_db, standin, **FAST_TELEMETRY)) as app, app.client() as client:
        client.post(
            "/memories",
            json={"messages": [{"role": "user", "content": "I keep bees"}], "user_id": "tok", "infer": False},
        ).raise_for_status()
        _wait_for(client, lambda v: v["mem0_telemetry_backlog"] == 0)
        with psycopg.connect(fresh_db) as conn:
            rows = conn.execute(
                "SELECT attributes FROM telemetry_events WHERE kind = 'ollama.call' AND attributes ->> 'op' = 'embed'"
            ).fetchall()

    calls = [row[0] for row in rows]
    assert calls, "the write's embed call should be an event"
    assert all(call["model"] == "nomic-embed-text:latest" and call["ok"] is True for call in calls)
    assert all(call["seconds"] >= 0 and isinstance(call["tokens"], int) and call["tokens"] > 0 for call in calls)
