"""mem0's PostHog telemetry is off whenever this package is imported first, whatever the environment says."""

from __future__ import annotations

import subprocess
import sys

from tests.support.server_process import REPO_ROOT, clean_environment

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
