"""The image and compose files, checked statically (no Docker engine here): names, pins and settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.config import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
SETTINGS_VARIABLES = {choice for field in Settings.model_fields.values() for choice in field.validation_alias.choices}  # type: ignore[union-attr]


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_the_server_runs_the_local_image_against_host_ollama_and_compose_postgres():
    mem0 = _compose()["services"]["mem0"]

    assert mem0["image"] == "mem0-fixed:local"
    assert mem0["environment"]["OLLAMA_BASE_URL"] == "http://host.docker.internal:11434"
    assert mem0["environment"]["MEM0_EMBEDDING_DIMS"] == "768"
    assert mem0["environment"]["POSTGRES_HOST"] == "postgres"
    assert "host.docker.internal:host-gateway" in mem0["extra_hosts"]


def test_every_server_variable_in_compose_is_a_real_setting():
    environment = _compose()["services"]["mem0"]["environment"]

    assert set(environment) <= SETTINGS_VARIABLES, set(environment) - SETTINGS_VARIABLES


def test_nothing_in_compose_points_at_a_remote_model_provider():
    text = (DOCKER / "compose.yaml").read_text().lower()

    assert "openai" not in text and "posthog" not in text


def test_every_image_is_pinned_and_postgres_has_pgvector():
    services = _compose()["services"]

    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")


def test_mounted_config_files_exist():
    for service in _compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).exists(), source


def test_the_dockerfile_installs_the_lock_runs_unprivileged_and_checks_readiness():
    lines = [
        line.strip()
        for line in (DOCKER / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    base = next(line for line in lines if line.startswith("FROM "))
    assert ":" in base and "latest" not in base
    assert "RUN pip install -r requirements.lock" in lines
    assert "COPY migrations ./migrations" in lines
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert any("HEALTHCHECK" in line for line in lines) and "/ready" in (DOCKER / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["mem0-fixed"]' in lines
