"""Each integration's pinned packages (tests/contracts/pins/<name>/), installed once into a cache outside the
repository and outside the project's .venv: a virtualenv per Python integration (they pin their own pydantic,
httpx, mem0ai, ..., so none can share the server's), an npm prefix per JavaScript one. An install is keyed by the
digest of its pin files, so a rerun reuses it and a changed pin installs afresh; it is marked complete only after
it succeeded, so an interrupted one is redone."""

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


def python_of(name: str) -> Path:
    """The interpreter of the virtualenv holding pins/<name>/requirements.txt (every transitive dependency pinned)."""

    def install(target: Path) -> None:
        uv = Path(sys.executable).with_name("uv")  # the project's pinned uv (dev dependency): seconds, not minutes
        _run([str(uv), "venv", "--quiet", "--python", sys.executable, str(target)])
        _run(
            [
                str(uv),
                "pip",
                "install",
                "--quiet",
                "--python",
                str(target / "bin" / "python"),
                "-r",
                str(PINS / name / "requirements.txt"),
            ]
        )

    return _installed(name, install) / "bin" / "python"


def node_modules_of(name: str) -> Path:
    """The node_modules that `npm ci` made from pins/<name>/package.json and its package-lock.json."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed to run the JavaScript integrations (apt-get install nodejs npm)")

    def install(target: Path) -> None:
        target.mkdir(parents=True)
        for pin in ("package.json", "package-lock.json"):
            shutil.copy(PINS / name / pin, target / pin)
        # No install scripts: nothing here needs one, and none may fetch from outside the registry.
        _run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target)

    return _installed(name, install) / "node_modules"


def _installed(name: str, install: Callable[[Path], None]) -> Path:
    target = CACHE / f"{name}-{_pins_digest(name)}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE / f"{target.name}.lock"):  # pytest-xdist workers may ask for the same install at once
        if not (target / COMPLETE).exists():
            shutil.rmtree(target, ignore_errors=True)
            install(target)
            (target / COMPLETE).touch()
    return target


def _pins_digest(name: str) -> str:
    digest = hashlib.sha256()
    for pin in sorted((PINS / name).iterdir()):
        digest.update(pin.name.encode() + b"\0" + pin.read_bytes() + b"\0")
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
