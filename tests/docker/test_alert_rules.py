"""The alert rules, checked and unit-tested by promtool (from the Prometheus image the compose file names)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.docker.stack import REPO_ROOT, prometheus_image, run

PROMETHEUS_DIR = REPO_ROOT / "docker" / "prometheus"


def _promtool(directory: Path, *args: str) -> str:
    return run(
        [
            "docker", "run", "--rm", "--network", "none", "--user", "65534:65534",
            "-v", f"{directory}:/p:ro", "-w", "/p/tests", "--entrypoint", "promtool", prometheus_image(), *args,
        ]
    ).stdout  # fmt: skip


def test_promtool_checks_the_rules_and_the_config(engine: None) -> None:
    assert "SUCCESS: 8 rules found" in _promtool(PROMETHEUS_DIR, "check", "rules", "/p/rules/mem0.yml")
    # the config as compose mounts it: rules under /etc/prometheus/rules
    out = run(
        [
            "docker", "run", "--rm", "--network", "none",
            "-v", f"{PROMETHEUS_DIR / 'prometheus.yml'}:/etc/prometheus/prometheus.yml:ro",
            "-v", f"{PROMETHEUS_DIR / 'rules'}:/etc/prometheus/rules:ro",
            "--entrypoint", "promtool", prometheus_image(), "check", "config", "/etc/prometheus/prometheus.yml",
        ]
    ).stdout  # fmt: skip
    assert "SUCCESS" in out and "8 rules found" in out, out


def test_the_alert_rules_unit_tests_pass(engine: None) -> None:
    assert "SUCCESS" in _promtool(PROMETHEUS_DIR, "test", "rules", "mem0.test.yml")


def test_the_unit_tests_would_catch_a_broken_threshold(engine: None, tmp_path: Path) -> None:
    """The same tests against rules whose write-ratio threshold is off: promtool must fail them."""
    shutil.copytree(PROMETHEUS_DIR, tmp_path / "prometheus")
    rules = tmp_path / "prometheus" / "rules" / "mem0.yml"
    rules.write_text(rules.read_text().replace(") < 0.999", ") < 0.99", 1))
    tmp_path.chmod(0o755)
    with pytest.raises(AssertionError, match="Mem0WriteSuccessRatioLow"):
        _promtool(tmp_path / "prometheus", "test", "rules", "mem0.test.yml")
