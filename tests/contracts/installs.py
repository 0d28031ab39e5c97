"""Each integration's pinned packages (tests/contracts/pins/<name>/), installed once into a cache outside the
repository and outside the project's .venv: a virtualenv per Python integration (they pin their own pydantic,
httpx, mem0ai, ..., so none can share the server's), an npm prefix per JavaScript one. An install is keyed by the
digest of its pin files and of how it is installed, so a rerun reuses it and a changed pin installs afresh; it is
marked complete only after it succeeded, so an interrupted one is redone."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PINS = Path(__file__).resolve().parent / "pins"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mem0-fixed" / "contracts"
COMPLETE = ".complete"
INSTALL_TIMEOUT_S = 900

UV_PIP_INSTALL = ("pip", "install", "--quiet", "-r", "requirements.txt")
# No install scripts: none is needed, and none may fetch from outside the registry. No peers: they are mem0ai's
# self-hosted-mode backends (openai, pg, langchain, ...), which its hosted client never loads; the one peer an
# integration needs (@mastra/core) is pinned as a dependency.
NPM_CI = ("ci", "--ignore-scripts", "--omit=peer", "--no-audit", "--no-fund", "--loglevel=error")


def python_of(name: str) -> Path:
    """The interpreter of the virtualenv holding pins/<name>/requirements.txt (every transitive dependency pinned)."""
    uv = Path(sys.executable).with_name("uv")  # the project's pinned uv (a dev dependency): seconds, not minutes

    def install(target: Path) -> None:
        _run([str(uv), "venv", "--quiet", "--python", sys.executable, str(target)])
        _run([str(uv), *UV_PIP_INSTALL, "--python", str(target / "bin" / "python")], cwd=PINS / name)

    return _installed(name, UV_PIP_INSTALL, install) / "bin" / "python"


def node_modules_of(name: str) -> Path:
    """The node_modules that `npm ci` made from pins/<name>/package.json and its package-lock.json."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed to run the JavaScript integrations (apt-get install nodejs npm)")

    def install(target: Path) -> None:
        target.mkdir(parents=True)
        for pin in ("package.json", "package-lock.json"):
            shutil.copy(PINS / name / pin, target / pin)
        _run([npm, *NPM_CI], cwd=target)

    return _installed(name, NPM_CI, install) / "node_modules"


def _installed(name: str, recipe: tuple[str, ...], install: Callable[[Path], None]) -> Path:
    target = CACHE / f"{name}-{_digest(name, recipe)}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE / f"{target.name}.lock"):  # pytest-xdist workers may ask for the same install at once
        if not (target / COMPLETE).exists():
            shutil.rmtree(target, ignore_errors=True)
            install(target)
            (target / COMPLETE).touch()
    return target


def _digest(name: str, recipe: tuple[str, ...]) -> str:
    digest = hashlib.sha256("\0".join(recipe).encode())
    for pin in sorted((PINS / name).iterdir()):
        digest.update(b"\0" + pin.name.encode() + b"\0" + pin.read_bytes())
    return digest.hexdigest()[:12]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run(command: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"installing failed: {' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
