"""The image, the production compose file, Prometheus, its alert rules and the Grafana provisioning, checked
statically (no engine needed). `make test-docker` (tests/docker) brings the same files up on a real engine."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from app.config import Settings
from app.metrics import build_metrics
from tests.docker.stack import COMPOSE_FILE, DEPLOY_COMMANDS

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
SETTINGS_VARIABLES = {choice for field in Settings.model_fields.values() for choice in field.validation_alias.choices}  # type: ignore[union-attr]
GIB = 1024**3
MIB = 1024**2
BUDGETS = {  # service: (CPUs, memory), the users' plan for the Mac Studio
    "mem0": ("2.0", "4g"),
    "postgres": ("1.0", "1536m"),
    "neo4j": ("1.0", "2g"),
    "prometheus": ("0.5", "512m"),
    "grafana": ("0.5", "512m"),
}
SENTINELS = {
    "Mem0BlockedEgress",
    "Mem0WriteSuccessRatioLow",
    "Mem0ReadLatencyP95High",
    "Mem0WriteLatencyP95High",
    "Mem0EmbeddingDimsMismatch",
    "Mem0JobQueueStale",
    "Mem0TelemetryBreakerOpen",
}


@cache
def compose_file() -> dict:
    return yaml.safe_load((REPO / COMPOSE_FILE).read_text())


def _services() -> dict:
    return compose_file()["services"]


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)b?", size.lower()).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": MIB, "g": GIB}[unit]


def exposed_metric_names() -> set[str]:
    """Every series name the server's /metrics can carry (the app's own registry, as GET /metrics renders it)."""
    text = generate_latest(build_metrics().registry).decode()
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)", text, re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def _metrics_in(expression: str) -> set[str]:
    return set(re.findall(r"\b(mem0_[A-Za-z0-9_]+)", expression))


def _dashboard() -> dict:
    return json.loads((DOCKER / "grafana" / "dashboards" / "mem0.json").read_text())


def dashboard_metrics() -> set[str]:
    return {
        metric
        for panel in _dashboard()["panels"]
        for target in panel.get("targets", [])
        for metric in _metrics_in(target["expr"])
    }


def _alert_rules() -> list[dict]:
    groups = yaml.safe_load((DOCKER / "prometheus" / "rules" / "mem0.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


# --- the compose file


def test_there_is_one_compose_file_at_the_top_level():
    assert (REPO / COMPOSE_FILE).is_file()
    assert not (DOCKER / "compose.yaml").exists()
    assert set(_services()) == {"mem0", "postgres", "neo4j", "prometheus", "grafana"}


def test_the_server_runs_the_local_image_against_host_ollama_and_compose_postgres():
    mem0 = _services()["mem0"]

    assert mem0["image"] == "mem0-fixed:local"
    assert mem0["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"}
    assert mem0["environment"]["OLLAMA_BASE_URL"] == "${OLLAMA_BASE_URL:-http://host.docker.internal:11434}"
    assert mem0["environment"]["MEM0_EMBEDDING_DIMS"] == "${MEM0_EMBEDDING_DIMS:-768}"
    assert mem0["environment"]["POSTGRES_HOST"] == "postgres"
    assert "host.docker.internal:host-gateway" in mem0["extra_hosts"]
    assert mem0["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "neo4j": {"condition": "service_healthy"},
    }
    assert mem0["environment"]["NEO4J_URI"] == "bolt://neo4j:7687"
    assert mem0["environment"]["NEO4J_USERNAME"] == "neo4j"
    # the one password: the server's and the one Neo4j is started with
    assert _services()["neo4j"]["environment"]["NEO4J_AUTH"] == "neo4j/" + mem0["environment"]["NEO4J_PASSWORD"]


def test_every_server_variable_in_compose_is_a_real_setting():
    environment = _services()["mem0"]["environment"]

    assert set(environment) <= SETTINGS_VARIABLES, set(environment) - SETTINGS_VARIABLES


def test_nothing_points_at_a_remote_model_provider():
    for path in (REPO / COMPOSE_FILE, REPO / ".env.example", DOCKER / "prometheus" / "prometheus.yml"):
        text = path.read_text().lower()
        assert "openai" not in re.sub(r"no openai_\*", "", text), path
        assert "posthog" not in text, path


def test_every_service_has_its_budget_a_health_check_and_a_restart_policy():
    for name, service in _services().items():
        limits = service["deploy"]["resources"]["limits"]
        assert (limits["cpus"], limits["memory"]) == BUDGETS[name], name
        assert service["restart"] == "unless-stopped", name
        check = service["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["interval"] and check["retries"], name


def test_dependencies_wait_for_health():
    for name, service in _services().items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert dependency in _services()
    assert "depends_on" in _services()["grafana"]


def test_ports_are_published_on_loopback_only_and_the_databases_are_not_published():
    for name, service in _services().items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    assert "ports" not in _services()["postgres"]
    assert "ports" not in _services()["neo4j"]


def test_postgres_buffer_pool_fits_its_memory_budget():
    postgres = _services()["postgres"]
    settings = dict(arg.split("=", 1) for arg in postgres["command"] if "=" in arg)
    limit = _bytes(postgres["deploy"]["resources"]["limits"]["memory"])

    assert _bytes(settings["shared_buffers"]) <= limit // 3
    assert _bytes(settings["shared_buffers"]) + _bytes(settings["maintenance_work_mem"]) < limit // 2
    assert _bytes(settings["effective_cache_size"]) <= limit


def test_neo4j_heap_and_page_cache_fit_its_memory_budget():
    neo4j = _services()["neo4j"]
    environment = neo4j["environment"]
    limit = _bytes(neo4j["deploy"]["resources"]["limits"]["memory"])
    heap = _bytes(environment["NEO4J_server_memory_heap_max__size"])

    assert _bytes(environment["NEO4J_server_memory_heap_initial__size"]) == heap  # no resizing under load
    # what is left is the JVM's own memory (metaspace, threads, network buffers), which neither setting bounds
    assert heap + _bytes(environment["NEO4J_server_memory_pagecache_size"]) <= limit * 3 // 4
    assert environment["NEO4J_dbms_usage__report_enabled"] == "false"


def test_neo4j_keeps_its_data_in_a_volume_and_its_health_check_queries_over_bolt():
    neo4j = _services()["neo4j"]
    [check] = neo4j["healthcheck"]["test"][1:]

    assert neo4j["image"].startswith("neo4j:5.26.") and neo4j["image"].endswith("-community")
    assert "neo4j-data:/data" in neo4j["volumes"]
    assert "neo4j-data" in compose_file()["volumes"]
    assert "cypher-shell -a bolt://127.0.0.1:7687" in check and "RETURN 1" in check


def test_secrets_come_from_env_and_are_documented_in_env_example():
    text = (REPO / COMPOSE_FILE).read_text()
    example = (REPO / ".env.example").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))

    assert required == {"POSTGRES_PASSWORD", "NEO4J_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "MEM0_ADMIN_API_KEY"}
    # `$${...}` is the container's own shell variable, not compose's
    for variable in set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text)):
        assert re.search(rf"(?m)^#? ?{variable}=", example), variable
    assert not re.search(r"(?i)password:\s*[\"']?(?!\$\{)\w", text), "a literal password in compose"
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_every_image_is_pinned():
    for name, service in _services().items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
    assert _services()["postgres"]["image"].startswith("pgvector/pgvector:")


def test_mounted_config_files_exist():
    for service in _services().values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), source


def test_the_readme_deployment_section_is_exactly_what_the_docker_tier_runs():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Deployment (docker compose)", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]
    commands = [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]

    assert tuple(commands) == DEPLOY_COMMANDS


# --- the image


def _dockerfile_lines() -> list[str]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_dockerfile_builds_in_two_stages_and_ships_only_the_installed_package():
    lines = _dockerfile_lines()
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]

    assert len(stages) == 2
    for i in stages:
        assert ":" in lines[i] and "latest" not in lines[i]
    runtime = lines[stages[1] :]
    assert all(line.startswith("COPY --from=build ") for line in runtime if line.startswith("COPY ")), runtime
    assert not any("migrations" in line for line in lines if line.startswith("COPY"))  # package data now
    assert any("requirements.lock" in line and "pip install" in line for line in lines)
    assert any("pip install --no-cache-dir --no-deps ." in line for line in lines)


def test_the_image_runs_unprivileged_and_checks_readiness():
    runtime = _dockerfile_lines()[[i for i, line in enumerate(_dockerfile_lines()) if line.startswith("FROM ")][1] :]

    users = [line for line in runtime if line.startswith("USER ")]
    assert users and users[-1].split()[1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") and "/ready" in line for line in runtime)
    assert 'ENTRYPOINT ["mem0-fixed"]' in runtime


def test_the_build_context_leaves_the_working_tree_out():
    ignore = (REPO / ".dockerignore").read_text().split()

    assert ignore[ignore.index("*") :][:1] == ["*"]
    assert {"!app", "!pyproject.toml", "!requirements.lock"} <= set(ignore)


def test_the_package_ships_its_migrations():
    import importlib.resources

    sql = [p.name for p in importlib.resources.files("app.migrations").iterdir() if p.name.endswith(".sql")]
    assert "0001_memories.sql" in sql


# --- Prometheus, alert rules, Grafana


def test_prometheus_scrapes_the_compose_server_and_loads_the_mounted_rules():
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    mounts = _services()["prometheus"]["volumes"]

    assert job["static_configs"][0]["targets"] == ["mem0:8888"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert "./docker/prometheus/rules:/etc/prometheus/rules:ro" in mounts


def test_an_alert_rule_for_every_sentinel_on_metrics_the_server_exports():
    rules = _alert_rules()
    names = {rule["alert"] for rule in rules}

    assert names >= SENTINELS, SENTINELS - names
    for rule in rules:
        missing = _metrics_in(rule["expr"]) - exposed_metric_names()
        assert not missing, (rule["alert"], missing)
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


def test_every_dashboard_query_names_a_metric_the_server_exports():
    queried = dashboard_metrics()

    assert queried, "the dashboard queries nothing"
    assert not queried - exposed_metric_names(), queried - exposed_metric_names()


def test_every_dashboard_panel_uses_the_provisioned_datasource():
    datasources = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    [source] = datasources["datasources"]
    dashboard = _dashboard()

    assert source["url"] == "http://prometheus:9090"
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"] if "id" in panel]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["targets"] and all(target["expr"].strip() for target in panel["targets"]), panel["title"]


def test_grafana_loads_the_dashboards_from_where_compose_mounts_them():
    provider = yaml.safe_load((DOCKER / "grafana" / "provisioning" / "dashboards" / "mem0.yml").read_text())
    mounts = _services()["grafana"]["volumes"]
    path = provider["providers"][0]["options"]["path"]

    assert f"./docker/grafana/dashboards:{path}:ro" in mounts
    assert "./docker/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
