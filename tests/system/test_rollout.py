"""`python -m app rollout` with a real nginx (Debian's package) in front of two server processes: the split it
sets is the split nginx serves at 5 / 50 / 100 %, and a candidate whose Ollama answers 500 is rolled back."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.ops.rollout import render
from tests.conftest import DIMS, repo_root, server_env
from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess, clean_environment, free_port
from tests.support.standin_process import OllamaStandin

TEMPLATE = repo_root() / "docker" / "nginx" / "rollout.conf.template"


def nginx_binary() -> str:
    """nginx from PATH or /usr/sbin; installed with apt (CI runs as root on a fresh machine) when absent."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("nginx is not installed and apt-get is unavailable to install it")
    install = ["apt-get", "install", "-y", "-q", "nginx-light"]
    if subprocess.run(install, capture_output=True, check=False, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=True, timeout=600)
        subprocess.run(install, capture_output=True, check=True, timeout=600)
    found = shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/usr/bin")
    assert found, "apt-get installed nginx-light but no nginx binary was found"
    return found


class Front:
    """nginx in the foreground on a loopback port, from the rollout template; stopped by its pid."""

    def __init__(self, prefix: Path, stable: ServerProcess, candidate: ServerProcess) -> None:
        self.binary = nginx_binary()
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stable = f"127.0.0.1:{stable.port}"
        self.candidate = f"127.0.0.1:{candidate.port}"
        self.config = prefix / "rollout.conf"
        values = {"PREFIX": str(prefix), "LISTEN": f"127.0.0.1:{self.port}", "STABLE": self.stable}
        rendered = render(TEMPLATE.read_text(), {**values, "CANDIDATE": self.candidate})
        assert "${" not in rendered
        self.config.write_text(rendered)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Front:
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.prefix), "-c", str(self.config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read().decode() if self.process.stderr else ""
            try:
                if httpx.get(f"{self.url}/health", timeout=2, trust_env=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"nginx did not answer on {self.url}:\n{(self.prefix / 'error.log').read_text()}")

    def split(self, requests: int = 400) -> dict[str, int]:
        """Which server answered each of `requests` GET /health, counted here, independently of the script."""
        roles = {self.stable: "stable", self.candidate: "candidate"}
        with httpx.Client(base_url=self.url, timeout=10, trust_env=False) as client:
            return dict(
                Counter(roles.get(client.get("/health").headers["x-upstream"], "other") for _ in range(requests))
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # fast shutdown: the master takes its workers with it
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def candidate_standin() -> Iterator[OllamaStandin]:
    """The candidate's own Ollama, so a fault there breaks the candidate only."""
    with OllamaStandin().start(dims=DIMS) as standin:
        yield standin


@pytest.fixture
def deployment(fresh_db, standin, candidate_standin, tmp_path: Path) -> Iterator[tuple[Front, dict[str, str]]]:
    # "Different versions": distinct processes, ports and Ollamas on the same database.
    with (
        ServerProcess(server_env(fresh_db, standin)) as stable,
        ServerProcess(server_env(fresh_db, candidate_standin)) as candidate,
    ):
        front = Front(tmp_path, stable, candidate)
        try:
            yield front.start(), clean_environment(**server_env(fresh_db, standin))
        finally:
            front.stop()


def _rollout(front: Front, env: dict[str, str], evidence: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "rollout",
            "--config",
            str(front.config),
            "--front",
            front.url,
            "--nginx",
            front.binary,
            "--prefix",
            str(front.prefix),
            "--steps",
            "5,50,100",
            "--rates",
            "10",
            "--stage-seconds",
            "2",
            "--settle-seconds",
            "0.5",
            "--api-key",
            TEST_ADMIN_KEY,
            "--evidence-dir",
            str(evidence),
        ],
        cwd=repo_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_rollout_moves_the_weight_in_steps_that_nginx_serves_within_five_points(deployment, tmp_path: Path):
    front, env = deployment
    assert front.split() == {"stable": 400}  # the template starts with the candidate down

    result = _rollout(front, env, tmp_path / "evidence")

    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "evidence" / "rollout.json").read_text())
    assert summary["outcome"] == "completed"
    assert [step["candidate_percent"] for step in summary["steps"]] == [5, 50, 100]
    for step in summary["steps"]:
        assert sum(step["split"].values()) == 400
        assert abs(step["observed_percent"] - step["candidate_percent"]) <= 5, step
        assert step["canary_passed"] and not step["breaches"], step
    assert front.split() == {"candidate": 400}
    assert "candidate weight=100; # rollout:candidate" not in front.config.read_text()  # addresses, not roles
    assert f"server {front.candidate} weight=100; # rollout:candidate" in front.config.read_text()
    assert f"server {front.stable} weight=1 down; # rollout:stable" in front.config.read_text()


def test_a_candidate_whose_ollama_fails_is_rolled_back_to_the_stable_server_with_the_reason(
    deployment, candidate_standin, tmp_path: Path
):
    front, env = deployment
    candidate_standin.set_fault("embed", kind="status", status=500)  # every embed call on the candidate fails

    result = _rollout(front, env, tmp_path / "evidence")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back to 100 % stable" in result.stdout
    assert "reason:" in result.stdout and ("write success" in result.stdout or "read success" in result.stdout)
    summary = json.loads((tmp_path / "evidence" / "rollout.json").read_text())
    assert summary["outcome"] == "rolled_back"
    # The breach stops the rollout at a step before full traffic; the failed step's canary names the SLO.
    assert [step["candidate_percent"] for step in summary["steps"]][-1] in (5, 50)
    assert any("success" in reason for reason in summary["reasons"]), summary
    assert summary["split_after_rollback"] == {"stable": 400}
    assert front.split() == {"stable": 400}
    assert f"server {front.candidate} weight=1 down; # rollout:candidate" in front.config.read_text()
