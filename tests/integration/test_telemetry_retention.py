"""Telemetry events older than MEM0_TELEMETRY_RETENTION_S are deleted (in batches) while the app runs."""

from __future__ import annotations

import asyncio
import time

import psycopg

from app.db.migrator import migrate
from app.telemetry.service import RETENTION_BATCH
from tests.conftest import DIMS, server_env
from tests.support.inprocess import InProcessServer

OLD_EVENTS = 2 * RETENTION_BATCH + 500  # more than one DELETE's worth


def _count(database: str, where: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(f"SELECT count(*) FROM telemetry_events WHERE kind = 'test.event' AND {where}").fetchone()
    assert row is not None
    return int(row[0])


def test_events_past_the_retention_are_deleted_and_newer_ones_kept(fresh_db, standin):
    asyncio.run(migrate(fresh_db, collection="memories", dims=DIMS))
    with psycopg.connect(fresh_db) as conn:
        for age, count in (("8 days", OLD_EVENTS), ("6 days", 10)):
            conn.execute(
                "INSERT INTO telemetry_events (id, kind, occurred_at, attributes) "
                "SELECT gen_random_uuid(), 'test.event', now() - %s::interval, '{}' FROM generate_series(1, %s)",
                (age, count),
            )

    with InProcessServer(server_env(fresh_db, standin, MEM0_TELEMETRY_RETENTION_S=str(7 * 86_400))):
        deadline = time.monotonic() + 20
        while _count(fresh_db, "occurred_at < now() - interval '7 days'") and time.monotonic() < deadline:
            time.sleep(0.1)

    assert _count(fresh_db, "occurred_at < now() - interval '7 days'") == 0
    assert _count(fresh_db, "true") == 10
