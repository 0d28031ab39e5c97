"""`mem0-fixed invariants | backup | restore`, run as the installed CLI against real Postgres: the invariants catch a
breach; a backup taken before a forward migration restores into a new database on which the invariants hold."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from app.db.migrator import migrate
from tests.conftest import DIMS, repo_root, server_env
from tests.support.cli import run_cli
from tests.support.inprocess import InProcessServer
from tests.support.postgres import with_database
from tests.support.server_process import ServerProcess


def _cli(database_url: str, standin, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(server_env(database_url, standin), *args)


def test_memories_another_client_wrote_are_reported_not_failed(written_db, standin):
    with psycopg.connect(written_db, autocommit=True) as conn:
        # mem0's own library inserts (id, vector, payload) and keeps its history in its own SQLite file.
        conn.execute(
            "INSERT INTO memories (id, vector, payload) SELECT gen_random_uuid(), vector, "
            """'{"data": "I collect stamps", "user_id": "lib"}'::jsonb FROM memories LIMIT 1"""
        )
    shared = _cli(written_db, standin, "invariants")
    assert shared.returncode == 0, shared.stdout + shared.stderr
    assert "0 memories without their ADD event; 1 written by another client" in shared.stdout


@pytest.fixture
def written_db(fresh_db, standin) -> str:
    with InProcessServer(server_env(fresh_db, standin)) as app, app.client() as client:
        for text in ("I keep bees", "I like tea"):
            body = {"messages": [{"role": "user", "content": text}], "user_id": "ops", "infer": False}
            assert client.post("/memories", json=body).status_code == 200
    return fresh_db


def test_invariants_hold_after_writes_and_name_each_breach(written_db, standin):
    healthy = _cli(written_db, standin, "invariants")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "all invariants hold" in healthy.stdout and "'memories': 2" in healthy.stdout

    with psycopg.connect(written_db, autocommit=True) as conn:
        conn.execute("DELETE FROM memory_history WHERE new_memory = 'I keep bees'")
        conn.execute(
            "INSERT INTO jobs (request, max_attempts, status, locked_until) "
            "VALUES ('{}'::jsonb, 1, 'RUNNING', now() - interval '10 minutes')"
        )
        conn.execute(
            "INSERT INTO memories_entities (id, payload) VALUES (gen_random_uuid(), "
            """'{"data": "Oslo", "linked_memory_ids": ["00000000-0000-0000-0000-000000000001"]}')"""
        )
    broken = _cli(written_db, standin, "invariants")

    assert broken.returncode == 1
    assert "[FAIL] history: 1 memories without their ADD event" in broken.stdout
    assert "[FAIL] jobs: 1 running jobs a minute past their lease" in broken.stdout
    assert "[FAIL] entities: 1 entity links to memories that do not exist" in broken.stdout
    assert "[ok] dimensions" in broken.stdout and f"all {DIMS}" in broken.stdout


def test_backup_forward_migration_then_restore_gives_a_database_whose_invariants_hold(
    written_db, standin, tmp_path: Path
):
    backup_dir = tmp_path / "backup"
    backed_up = _cli(written_db, standin, "backup", "--out", str(backup_dir), "--image", "mem0-fixed:stable")
    assert backed_up.returncode == 0, backed_up.stderr
    described = json.loads((backup_dir / "manifest.json").read_text())
    assert described["row_counts"]["memories"] == 2 and described["image"] == "mem0-fixed:stable"

    # The candidate version applies a migration the stable one does not know, and writes.
    candidate = tmp_path / "candidate-migrations"
    shutil.copytree(repo_root() / "app" / "migrations", candidate)
    (candidate / "0999_candidate_column.sql").write_text('ALTER TABLE "{collection}" ADD COLUMN candidate text;\n')
    asyncio.run(migrate(written_db, collection="memories", dims=DIMS, directory=candidate))
    with psycopg.connect(written_db, autocommit=True) as conn:
        conn.execute("DELETE FROM memory_history")
    after_candidate = _cli(written_db, standin, "invariants", "--offline")
    assert after_candidate.returncode == 1 and "applied but unknown to this version: [999]" in after_candidate.stdout

    restored_name = f"restored_{uuid.uuid4().hex[:8]}"
    restored = _cli(written_db, standin, "restore", str(backup_dir), "--database", restored_name)

    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restored data matches the manifest" in restored.stdout
    rolled_back = _cli(with_database(written_db, restored_name), standin, "invariants")
    assert rolled_back.returncode == 0, rolled_back.stdout
    assert "all invariants hold" in rolled_back.stdout


def test_the_canary_passes_a_healthy_server_and_stops_at_the_stage_that_breaches(fresh_db, standin, tmp_path: Path):
    with ServerProcess(server_env(fresh_db, standin)) as server:
        healthy = _cli(
            fresh_db,
            standin,
            "canary",
            server.url,
            "--rates",
            "4",
            "--stage-seconds",
            "3",
            "--evidence",
            str(tmp_path / "healthy.json"),
        )
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "canary passed" in healthy.stdout
        passed = json.loads((tmp_path / "healthy.json").read_text())
        assert passed["passed"] and [s["name"] for s in passed["stages"]] == ["single request", "4 RPS for 3 s"]
        assert passed["stages"][1]["calls"] == 12

        standin.set_fault("embed", kind="status", status=500, every=5)  # a fifth of embed calls fail
        breached = _cli(
            fresh_db,
            standin,
            "canary",
            server.url,
            "--rates",
            "4,8",
            "--stage-seconds",
            "3",
            "--evidence",
            str(tmp_path / "breached.json"),
        )

    assert breached.returncode == 1, breached.stdout
    failed = json.loads((tmp_path / "breached.json").read_text())
    assert not failed["passed"] and failed["stages"][-1]["breaches"]
    assert any("write success" in breach for breach in failed["stages"][-1]["breaches"]), failed
    # The first rate's stage breached, so the second never ran.
    assert [s["name"] for s in failed["stages"]] == ["single request", "4 RPS for 3 s"]
    assert "BREACH" in breached.stdout
