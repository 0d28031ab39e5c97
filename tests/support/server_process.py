"""Runs the real server (`python -m app serve`) as a subprocess and waits for it to be ready or to exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


# Every test server bootstraps this admin key (MEM0_ADMIN_API_KEY in tests/conftest.py server_env).
TEST_ADMIN_KEY = "test-admin-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**overrides: str) -> dict[str, str]:
    """The parent's environment without anything that configures the server, plus the overrides."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MEM0_", "OPENAI_", "POSTGRES_", "OLLAMA_", "NEO4J_")) and k != "DATABASE_URL"
    }
    env.update(overrides)
    return env


class ServerProcess:
    """One server process; `env` is merged over a clean environment."""

    def __init__(self, env: dict[str, str], *, command: str = "serve", module: str = "app") -> None:
        """`module` is what `python -m` runs: the server's own entry point unless a test wraps it."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = clean_environment(MEM0_PORT=str(self.port), MEM0_STARTUP_RETRIES="2", MEM0_STARTUP_BACKOFF_S="0.1")
        self.env.update(env)
        self.command = command
        self.module = module
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="mem0-server-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, self.command],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> ServerProcess:
        """A first start on an embedded Postgres runs initdb, and waits on pgserver's machine-wide lock while another
        worker's server starts or stops: seconds on a loaded two-core machine."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode} before ready:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready within {timeout_s}s:\n{self.output()}")

    def wait_exit(self, timeout_s: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def output(self) -> str:
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def client(self, **kwargs: Any) -> httpx.Client:
        """A client that signs in with the test admin key unless `headers` say otherwise."""
        headers = {"X-API-Key": TEST_ADMIN_KEY, **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30.0), headers=headers, **kwargs)

    def kill(self) -> None:
        """SIGKILL: the crash case, no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        self.start()
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()  # __exit__ does not run when __enter__ raises
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
