"""mem0's PostHog telemetry and FastAPI's OpenTelemetry export are off, whatever the environment says."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import server_env
from tests.support.server_process import REPO_ROOT, ServerProcess, clean_environment

PROBE = """
import app
import mem0.memory.telemetry as telemetry
client = telemetry.AnonymousTelemetry()
print(telemetry.MEM0_TELEMETRY, client.posthog)
"""


def test_mem0_telemetry_is_forced_off_even_when_the_environment_enables_it():
    env = clean_environment(MEM0_TELEMETRY="true")

    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "None"]


def test_fastapi_opentelemetry_export_stays_off_when_the_environment_asks_for_it(standin, fresh_db):
    """FastAPI configures OTLP exporters from the environment at startup when FASTAPI_OTEL_AUTO_CONFIGURE is true:
    an environment set up for other services (a compose file's OTEL_* variables) would make this server export
    traces with the OpenTelemetry SDK installed, and warn at every start without it."""
    env = {
        **server_env(fresh_db, standin),
        "FASTAPI_OTEL_AUTO_CONFIGURE": "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }

    with ServerProcess(env) as server, server.client() as client:
        written = client.post(
            "/memories",
            json={"messages": [{"role": "user", "content": "I fly kites"}], "user_id": "otel", "infer": False},
        )

    assert written.status_code == 200, written.text
    assert "opentelemetry" not in server.output().lower()
