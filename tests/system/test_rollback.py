"""`python -m app rollback` against the embedded Postgres, without Docker: a database the candidate migrated
forward and wrote to is restored from the backup taken before the deploy, the env file is pointed at it and the
invariants hold; the docker commands of the image and orchestration layers are asserted as printed."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from app.db.migrator import migrate
from app.ops.rollback import read_env
from tests.conftest import DIMS, repo_root, server_env
from tests.support.inprocess import InProcessServer
from tests.support.server_process import clean_environment

MEM0 = f"{sys.executable} -m app"


def _run(module: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=repo_root(),
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def _deployment(tmp_path: Path, database_url: str, standin) -> tuple[Path, Path, Path]:
    """A compose dir holding the candidate's files, and the previous release's env and compose files."""
    previous = tmp_path / "releases" / "previous"
    previous.mkdir(parents=True)
    previous_env = _env_file(previous / ".env", {**server_env(database_url, standin), "MEM0_RELEASE": "previous"})
    previous_compose = previous / "docker-compose.prd.yml"
    shutil.copy(repo_root() / "docker-compose.prd.yml", previous_compose)
    compose_dir = tmp_path / "srv"
    compose_dir.mkdir()
    _env_file(compose_dir / ".env", {**server_env(database_url, standin), "MEM0_RELEASE": "candidate"})
    (compose_dir / "docker-compose.prd.yml").write_text("# the candidate's compose file\n")
    return compose_dir, previous_env, previous_compose


def _rollback(compose_dir: Path, previous_env: Path, previous_compose: Path, *extra: str):
    return _run(
        "app",
        {},
        "rollback",
        "--compose-dir",
        str(compose_dir),
        "--previous-env",
        str(previous_env),
        "--previous-compose",
        str(previous_compose),
        "--previous-image",
        "mem0-fixed:stable",
        "--mem0-command",
        MEM0,
        *extra,
    )


def _databases(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}


def test_backup_forward_migration_write_then_rollback_restores_all_three_layers(fresh_db, standin, tmp_path: Path):
    env = server_env(fresh_db, standin)
    with InProcessServer(env) as app, app.client() as client:
        for text in ("I keep bees", "I like tea"):
            body = {"messages": [{"role": "user", "content": text}], "user_id": "rollback", "infer": False}
            assert client.post("/memories", json=body).status_code == 200
    backup = tmp_path / "backup"
    backed_up = _run("app", env, "backup", "--out", str(backup), "--image", "mem0-fixed:stable")
    assert backed_up.returncode == 0, backed_up.stderr

    # The candidate applies a migration the previous version does not know, and writes through it.
    candidate = tmp_path / "candidate-migrations"
    shutil.copytree(repo_root() / "app" / "migrations", candidate)
    (candidate / "0999_candidate_column.sql").write_text('ALTER TABLE "{collection}" ADD COLUMN candidate text;\n')
    asyncio.run(migrate(fresh_db, collection="memories", dims=DIMS, directory=candidate))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("UPDATE memories SET candidate = 'written by the candidate'")
        conn.execute("DELETE FROM memory_history")
    compose_dir, previous_env, previous_compose = _deployment(tmp_path, fresh_db, standin)
    candidate_env = (compose_dir / ".env").read_text()
    database = f"rolled_back_{uuid.uuid4().hex[:8]}"

    # Without a backup to restore, the rollback stops before restarting anything.
    refused = _rollback(compose_dir, previous_env, previous_compose, "--skip-docker")
    assert refused.returncode == 1, refused.stdout
    assert "rerun with --restore-backup DIR --database NAME" in refused.stderr
    assert "up -d" not in refused.stdout
    (compose_dir / ".env").write_text(candidate_env)  # the orchestration layer had already run: back to the start

    dry = _rollback(
        compose_dir,
        previous_env,
        previous_compose,
        "--dry-run",
        "--restore-backup",
        str(backup),
        "--database",
        database,
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would run: docker tag mem0-fixed:stable mem0-fixed:local" in dry.stdout
    up = f"docker compose -f {compose_dir}/docker-compose.prd.yml --env-file {compose_dir}/.env up -d --force-recreate --no-build mem0"
    assert f"would run: {up}" in dry.stdout
    assert f"would copy {previous_env} to {compose_dir}/.env" in dry.stdout
    assert "a migration the previous version does not know" in dry.stdout
    # The layers come in order: orchestration, image, data, then the restart.
    order = [dry.stdout.index(marker) for marker in ("layer 1/3", "layer 2/3", "layer 3/3", f"would run: {up}")]
    assert order == sorted(order)
    assert (compose_dir / ".env").read_text() == candidate_env and database not in _databases(fresh_db)

    rolled = _rollback(
        compose_dir,
        previous_env,
        previous_compose,
        "--skip-docker",
        "--restore-backup",
        str(backup),
        "--database",
        database,
    )

    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert (
        "would run: docker tag mem0-fixed:stable mem0-fixed:local" in rolled.stdout
        and f"would run: {up}" in rolled.stdout
    )
    assert "all invariants hold" in rolled.stdout
    assert (compose_dir / "docker-compose.prd.yml").read_text() == previous_compose.read_text()
    assert (compose_dir / ".env.rolled-back").read_text() == candidate_env
    now = read_env(compose_dir / ".env")
    assert now["MEM0_RELEASE"] == "previous" and now["POSTGRES_DB"] == database
    assert now["DATABASE_URL"].split("?")[0].endswith(f"/{database}")
    # The previous version's invariants hold on the database the env file now names: the backed-up rows, no
    # candidate migration, every memory with its ADD.
    after = _run("app", now, "invariants")
    assert after.returncode == 0, after.stdout
    assert "all invariants hold" in after.stdout and "'memories': 2" in after.stdout
    with psycopg.connect(now["DATABASE_URL"]) as conn:
        columns = {
            row[0]
            for row in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'memories'")
        }
    assert "candidate" not in columns


def test_a_database_the_previous_version_knows_is_left_alone(fresh_db, standin, tmp_path: Path):
    asyncio.run(migrate(fresh_db, collection="memories", dims=DIMS))
    compose_dir, previous_env, previous_compose = _deployment(tmp_path, fresh_db, standin)
    before = _databases(fresh_db)

    rolled = _rollback(compose_dir, previous_env, previous_compose, "--skip-docker")

    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "no restore" in rolled.stdout and "data unchanged" in rolled.stdout
    assert read_env(compose_dir / ".env") == read_env(previous_env)
    assert _databases(fresh_db) == before


@pytest.mark.parametrize("args", [["--restore-backup", "x"], ["--database", "x"], ["--force-restore"]])
def test_restore_options_go_together(args: list[str], tmp_path: Path):
    refused = _run(
        "app", {}, "rollback", "--compose-dir", str(tmp_path), "--previous-env", "x", "--previous-image", "t", *args
    )
    assert refused.returncode == 2 and "--restore-backup" in refused.stderr
