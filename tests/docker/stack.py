"""The production compose stack on a real Docker engine: the README's deployment commands and helpers to drive them.

`DEPLOY_COMMANDS` is the README's `## Deployment (docker compose)` block, line for line (tests/unit/test_deployment.py
holds the README to it), and `tests/docker/test_stack.py` runs exactly these, in a directory laid out like the
repository: the build in the repository itself, the rest where `docker-compose.prd.yml`, `docker/` and a `.env`
made from `.env.example` are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = "docker-compose.prd.yml"
BUILD_COMMAND = "docker build -f docker/Dockerfile -t mem0-fixed:local ."
ENV_COMMAND = "cp .env.example .env"
UP_COMMAND = f"docker compose -f {COMPOSE_FILE} up -d"
DEPLOY_COMMANDS = (BUILD_COMMAND, ENV_COMMAND, UP_COMMAND)
# Debian packages no Grafana, so no local stand-in image exists for it: the test brings up everything else
# (Grafana is covered statically: its provisioning, and every dashboard query against the server's /metrics).
TESTED_SERVICES = ("mem0", "postgres", "neo4j", "prometheus")
IMAGE = "mem0-fixed:local"
PROMETHEUS_IMAGE_PATTERN = re.compile(r"^\s*image:\s*(prom/prometheus:\S+)", re.MULTILINE)
# Variables that would leak from the caller's shell into compose's interpolation and change the stack under test.
LEAKY_PREFIXES = ("POSTGRES_", "NEO4J_", "GRAFANA_", "MEM0_", "OLLAMA_", "PROMETHEUS_", "COMPOSE_", "DOCKER_HOST")


def run(
    command: str | list[str], cwd: Path = REPO_ROOT, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Runs a command, failing with its output if it fails."""
    argv = command.split() if isinstance(command, str) else command
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode} in {cwd}\n--- stdout\n{result.stdout[-4000:]}"
            f"\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bridge_gateway() -> str:
    """The host's address on Docker's default bridge: what `host-gateway` (host.docker.internal) resolves to."""
    out = run(["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"]).stdout.strip()
    return out or "172.17.0.1"


def prometheus_image() -> str:
    match = PROMETHEUS_IMAGE_PATTERN.search((REPO_ROOT / COMPOSE_FILE).read_text())
    assert match, "docker-compose.prd.yml names no prom/prometheus image"
    return match.group(1)


@dataclass
class Stack:
    """One compose project made from the repository's files in `workdir`, with its own name and free ports."""

    workdir: Path
    project: str
    ollama_url: str
    server_port: int = field(default_factory=free_port)
    prometheus_port: int = field(default_factory=free_port)
    timings: dict[str, float] = field(default_factory=dict)
    admin_key: str = field(default_factory=lambda: f"admin-{os.urandom(16).hex()}")

    def lay_out(self) -> None:
        """The repository's deployment files as a user has them, then the README's `.env` step, passwords set."""
        shutil.copy2(REPO_ROOT / COMPOSE_FILE, self.workdir / COMPOSE_FILE)
        shutil.copytree(REPO_ROOT / "docker", self.workdir / "docker", dirs_exist_ok=True)
        shutil.copy2(REPO_ROOT / ".env.example", self.workdir / ".env.example")
        run(ENV_COMMAND, cwd=self.workdir)
        env_file = self.workdir / ".env"
        text = env_file.read_text()
        text = re.sub(r"(?m)^POSTGRES_PASSWORD=.*$", f"POSTGRES_PASSWORD=pg-{os.urandom(6).hex()}", text)
        text = re.sub(r"(?m)^NEO4J_PASSWORD=.*$", f"NEO4J_PASSWORD=neo-{os.urandom(6).hex()}", text)
        text = re.sub(r"(?m)^GRAFANA_ADMIN_PASSWORD=.*$", f"GRAFANA_ADMIN_PASSWORD=gf-{os.urandom(6).hex()}", text)
        text = re.sub(r"(?m)^MEM0_ADMIN_API_KEY=.*$", f"MEM0_ADMIN_API_KEY={self.admin_key}", text)
        env_file.write_text(text)

    @property
    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(LEAKY_PREFIXES)}
        env.update(
            COMPOSE_PROJECT_NAME=self.project,
            OLLAMA_BASE_URL=self.ollama_url,
            MEM0_PUBLISH_PORT=str(self.server_port),
            PROMETHEUS_PUBLISH_PORT=str(self.prometheus_port),
        )
        return env

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run(["docker", "compose", "-f", COMPOSE_FILE, *args], cwd=self.workdir, env=self.env, timeout=timeout)

    def up(self) -> None:
        """The README's `up -d`, for the services that have an image here."""
        run([*UP_COMMAND.split(), *TESTED_SERVICES], cwd=self.workdir, env=self.env)

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20")

    def container_ids(self) -> dict[str, str]:
        ids = {}
        for service in TESTED_SERVICES:
            out = self.compose("ps", "-a", "-q", service).stdout.split()
            if out:
                ids[service] = out[0]
        return ids

    def inspect(self, service: str) -> dict:
        return json.loads(run(["docker", "inspect", self.container_ids()[service]]).stdout)[0]

    def health(self) -> dict[str, str]:
        statuses = {}
        for service, container in self.container_ids().items():
            state = json.loads(run(["docker", "inspect", "-f", "{{json .State}}", container]).stdout)
            statuses[service] = (state.get("Health") or {}).get("Status", state.get("Status", "?"))
        return statuses

    def wait_healthy(self, timeout_s: float = 240) -> float:
        """Seconds until every service's container is healthy; fails naming the ones that are not, with logs."""
        started = time.monotonic()
        statuses: dict[str, str] = {}
        while time.monotonic() - started < timeout_s:
            statuses = self.health()
            if set(statuses) == set(TESTED_SERVICES) and all(s == "healthy" for s in statuses.values()):
                return time.monotonic() - started
            if any(s in ("unhealthy", "exited", "dead") for s in statuses.values()):
                break
            time.sleep(1)
        logs = self.compose("logs", "--no-color", "--tail", "60").stdout
        raise AssertionError(f"not all containers became healthy: {statuses}\n{logs}")

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"
