"""The artifact users deploy works: the built wheel, installed into a fresh virtualenv outside the source tree,
migrates a database and serves reads and writes. Anything that only works from a checkout fails here."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from app.db.migrator import load_migrations
from tests.conftest import server_env
from tests.support.server_process import REPO_ROOT, clean_environment, free_port

pytestmark = pytest.mark.slow


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 300) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin` directory of a fresh virtualenv holding the wheel and its locked dependencies, nothing else."""
    root = tmp_path_factory.mktemp("installed-package")
    source = root / "source"  # a copy, so the build leaves nothing in the working tree
    shutil.copytree(REPO_ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", source)
    uv = str(Path(sys.executable).parent / "uv")  # the dev environment's, pinned in requirements.lock
    _run([uv, "build", "--wheel", "-q", "--out-dir", str(root / "dist"), str(source)], cwd=root)
    wheel = next((root / "dist").glob("mem0_fixed-*.whl"))
    _run([uv, "venv", "-q", "--python", sys.executable, str(root / "venv")], cwd=root)
    bin_dir = root / "venv" / "bin"
    # The lock only pins versions: what gets installed is what the wheel declares, so a missing dependency fails.
    _run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(bin_dir / "python"),
            "-c",
            str(REPO_ROOT / "requirements.lock"),
            str(wheel),
        ],
        cwd=root,
    )
    return bin_dir


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the source tree, so nothing can be found relative to the checkout."""
    assert REPO_ROOT not in tmp_path.parents
    return tmp_path


def test_the_installed_app_is_the_wheel_not_the_checkout(installed, outside):
    location = _run([str(installed / "python"), "-c", "import app; print(app.__file__)"], cwd=outside).strip()

    assert Path(location).is_relative_to(installed.parent)
    assert not Path(location).is_relative_to(REPO_ROOT)


def test_the_installed_cli_checks_migrates_and_serves_a_write_and_a_read(installed, outside, fresh_db, standin):
    env = clean_environment(**server_env(fresh_db, standin), MEM0_DATA_DIR=str(outside / "data"))

    migrated = _run([str(installed / "mem0-fixed"), "migrate"], cwd=outside, env=env, timeout_s=60)

    versions = [migration.version for migration in load_migrations()]
    assert f"applied {versions}" in migrated
    with psycopg.connect(fresh_db) as conn:
        recorded = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert recorded == versions
    checked = _run([str(installed / "mem0-fixed"), "check"], cwd=outside, env=env, timeout_s=60)
    assert "all checks passed" in checked

    port = free_port()
    with _serving(installed, outside, {**env, "MEM0_PORT": str(port)}) as client:
        assert client.get("/ready").status_code == 200
        written = client.post(
            "/memories",
            json={"messages": [{"role": "user", "content": "I keep bees"}], "user_id": "installed", "infer": False},
        )
        assert written.status_code == 200, written.text
        listed = client.get("/memories", params={"user_id": "installed"})
        assert listed.status_code == 200
        assert [item["memory"] for item in listed.json()["results"]] == ["I keep bees"]


@contextlib.contextmanager
def _serving(installed: Path, cwd: Path, env: dict[str, str]) -> Iterator[httpx.Client]:
    """`mem0-fixed serve` from the installed copy, ready; the process is killed however the test ends."""
    log_path = cwd / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(installed / "mem0-fixed"), "serve"], cwd=cwd, env=env, stdout=log, stderr=log)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{env['MEM0_PORT']}",
            headers={"X-API-Key": env["MEM0_ADMIN_API_KEY"]},
            timeout=30,
            trust_env=False,
        ) as client:
            _wait_ready(client, process, log_path)
            yield client
    finally:
        process.kill()
        process.wait(timeout=10)


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if client.get("/ready").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server not ready within {timeout_s}s:\n{log.read_text(errors='replace')}")
