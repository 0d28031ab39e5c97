"""The image on its own, as the README's `docker run` starts it: a volume and OLLAMA_BASE_URL, nothing else. The
embedded Postgres runs on the volume, the admin key is generated into it, and a write survives `docker restart`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.docker.conftest import REPORT
from tests.docker.stack import free_port, run
from tests.support.standin_process import OllamaStandin

KEY_FILE = "/data/admin-api-key"


@dataclass(frozen=True)
class Container:
    name: str
    url: str

    def wait_ready(self, timeout_s: float = 180) -> float:
        """Seconds until /ready answers 200; fails with the container's log if it does not."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{self.name} not ready within {timeout_s} s:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        result = run(["docker", "logs", self.name])
        return result.stdout + result.stderr

    def sh(self, script: str) -> str:
        return run(["docker", "exec", self.name, "sh", "-c", script]).stdout


@pytest.fixture
def standalone(image: str, standin_on_bridge: OllamaStandin) -> Iterator[Container]:
    suffix = uuid.uuid4().hex[:8]
    name, volume, port = f"mem0-standalone-{suffix}", f"mem0-standalone-{suffix}", free_port()
    try:
        run(
            [
                "docker", "run", "-d", "--name", name, "-v", f"{volume}:/data", "-p", f"127.0.0.1:{port}:8888",
                "--add-host", "host.docker.internal:host-gateway",
                "-e", f"OLLAMA_BASE_URL=http://host.docker.internal:{standin_on_bridge.port}", image,
            ]
        )  # fmt: skip
        yield Container(name, f"http://127.0.0.1:{port}")
    finally:
        run(["docker", "rm", "--force", "--volumes", name])
        run(["docker", "volume", "rm", "--force", volume])


def test_the_image_alone_runs_embedded_postgres_generates_its_key_and_keeps_data_across_a_restart(standalone):
    REPORT["standalone start to ready s"] = round(standalone.wait_ready(), 1)
    key = standalone.sh(f"cat {KEY_FILE}")
    assert key.startswith("m0fk_")
    assert standalone.sh(f"stat -c '%a %u' {KEY_FILE}").split() == ["600", "10001"]
    assert standalone.sh("cat /data/pgdata/PG_VERSION").strip() == "18"
    logs = standalone.logs()
    assert KEY_FILE in logs and key not in logs
    body = {"messages": [{"role": "user", "content": "I keep bees"}], "user_id": "alone", "infer": False}
    with httpx.Client(base_url=standalone.url, headers={"Authorization": f"Token {key}"}, timeout=30) as client:
        assert client.get("/v1/ping/").status_code == 200
        written = client.post("/memories", json=body)
        assert written.status_code == 200, written.text

    run(["docker", "restart", "--time", "30", standalone.name])
    standalone.wait_ready()

    assert standalone.sh(f"cat {KEY_FILE}") == key
    assert standalone.logs().count("generated an admin key") == 1  # the restart found it in the database
    with httpx.Client(base_url=standalone.url, headers={"Authorization": f"Token {key}"}, timeout=30) as client:
        listed = client.get("/memories", params={"user_id": "alone"})
    assert [m["memory"] for m in listed.json()["results"]] == ["I keep bees"]
