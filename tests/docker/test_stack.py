"""docker-compose.prd.yml brought up on a real engine: health, limits, the API through the published port, data
kept across restarts and a recreate, Prometheus scraping the server. Tests run in file order on one stack."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest

from tests.docker.conftest import REPORT
from tests.docker.stack import TESTED_SERVICES, Stack, run
from tests.unit.test_deployment import compose_file, dashboard_metrics

USER = f"docker-{uuid.uuid4().hex[:8]}"
GIB = 1024**3
MIB = 1024**2
BUDGETS = {  # service: (memory bytes, CPUs), the users' plan
    "mem0": (4 * GIB, 2.0),
    "postgres": (1536 * MIB, 1.0),
    "neo4j": (2 * GIB, 1.0),
    "prometheus": (512 * MIB, 0.5),
}
# Run in the server's container: its neo4j driver, its NEO4J_* settings, across the stack's network.
GRAPH_PROBE = """
import os, sys
from neo4j import GraphDatabase
with GraphDatabase.driver(os.environ["NEO4J_URI"], auth=(os.environ["NEO4J_USERNAME"], os.environ["NEO4J_PASSWORD"])) as driver:
    driver.execute_query("MERGE (:Probe {id: $id})", id=sys.argv[1])
    [row] = driver.execute_query(
        "CALL dbms.components() YIELD versions, edition "
        "MATCH (p:Probe) RETURN versions[0] AS version, edition, count(p) AS probes"
    ).records
print(row["version"], row["edition"], row["probes"])
"""


def _client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.server_url, headers={"X-API-Key": stack.admin_key}, timeout=30)


def test_every_container_is_healthy_and_the_server_ready(stack: Stack) -> None:
    assert stack.health() == dict.fromkeys(TESTED_SERVICES, "healthy")
    with _client(stack) as client:
        ready = client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


def test_ports_are_published_on_loopback_only_and_the_databases_not_at_all(stack: Stack) -> None:
    for service in TESTED_SERVICES:
        bindings = stack.inspect(service)["HostConfig"]["PortBindings"] or {}
        for port, hosts in bindings.items():
            assert all(host["HostIp"] == "127.0.0.1" for host in hosts), (service, port, hosts)
    assert not stack.inspect("postgres")["HostConfig"]["PortBindings"]
    assert not stack.inspect("neo4j")["HostConfig"]["PortBindings"]


def _graph_probe(stack: Stack, probe_id: str) -> list[str]:
    """Writes a probe node from the server's container and reads back Neo4j's version, edition and probe count."""
    return stack.compose("exec", "-T", "mem0", "python", "-c", GRAPH_PROBE, probe_id).stdout.split()


def test_neo4j_answers_the_server_over_bolt_inside_the_network(stack: Stack) -> None:
    version, edition, probes = _graph_probe(stack, "first")
    assert version.startswith("5.26.") and edition == "community"
    assert probes == "1"


def test_the_neo4j_health_check_is_a_bolt_query_that_needs_the_password(stack: Stack) -> None:
    check = compose_file()["services"]["neo4j"]["healthcheck"]["test"][1].replace("$$", "$")  # compose's escape
    stack.compose("exec", "-T", "neo4j", "sh", "-c", check)
    with pytest.raises(AssertionError, match=r"unauthorized due to authentication failure"):
        stack.compose("exec", "-T", "-e", "NEO4J_AUTH=neo4j/wrong-password", "neo4j", "sh", "-c", check)


def test_the_server_runs_as_a_non_root_user(stack: Stack) -> None:
    assert stack.inspect("mem0")["Config"]["User"] not in ("", "root", "0")
    uid = stack.compose("exec", "-T", "mem0", "id", "-u").stdout.strip()
    assert uid != "0"
    # every process in the container, the server included
    top = run(["docker", "top", stack.container_ids()["mem0"], "-eo", "pid,uid,comm"]).stdout.splitlines()[1:]
    assert top and all(line.split()[1] != "0" for line in top), top


def test_memory_and_cpu_limits_are_in_force(stack: Stack) -> None:
    for service, (memory, cpus) in BUDGETS.items():
        host_config = stack.inspect(service)["HostConfig"]
        assert host_config["Memory"] == memory, (service, host_config["Memory"])
        assert host_config["NanoCpus"] == int(cpus * 1e9), (service, host_config["NanoCpus"])
        # and the kernel enforces it: the container's own cgroup says so (v1 or v2)
        limit = stack.compose(
            "exec",
            "-T",
            service,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        ).stdout.strip()
        assert int(limit) == memory, (service, limit)


def test_postgres_runs_with_the_buffer_pool_the_budget_allows(stack: Stack) -> None:
    shared_buffers = stack.compose(
        "exec", "-T", "postgres", "psql", "-U", "mem0", "-d", "mem0", "-tAc", "SHOW shared_buffers"
    ).stdout.strip()
    assert shared_buffers == "512MB"
    command = compose_file()["services"]["postgres"]["command"]
    assert "shared_buffers=512MB" in command


def test_writes_and_searches_through_the_published_port(stack: Stack) -> None:
    with _client(stack) as client:
        written = client.post(
            "/memories",
            json={
                "messages": [{"role": "user", "content": "I keep bees on the roof"}],
                "user_id": USER,
                "infer": False,
            },
        )
        assert written.status_code == 200, written.text
        [memory] = written.json()["results"]
        found = client.post("/search", json={"query": "I keep bees on the roof", "user_id": USER})
    assert found.status_code == 200, found.text
    assert [hit["id"] for hit in found.json()["results"]][:1] == [memory["id"]]
    REPORT["memory id"] = memory["id"]


def _stored_texts(stack: Stack) -> list[str]:
    with _client(stack) as client:
        listed = client.get("/memories", params={"user_id": USER})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    rows = body["results"] if isinstance(body, dict) else body
    return [row["memory"] for row in rows]


def test_data_survives_a_compose_restart(stack: Stack) -> None:
    before = stack.container_ids()
    stack.compose("restart", "--timeout", "20")
    stack.wait_healthy()
    assert stack.container_ids() == before
    assert _stored_texts(stack) == ["I keep bees on the roof"]
    assert _graph_probe(stack, "after-restart")[2] == "2"  # the first probe and this one


def test_data_survives_a_recreate_of_the_server_container(stack: Stack) -> None:
    before = stack.container_ids()["mem0"]
    stack.compose("up", "-d", "--no-deps", "--force-recreate", "mem0")
    stack.wait_healthy()
    assert stack.container_ids()["mem0"] != before
    assert _stored_texts(stack) == ["I keep bees on the roof"]
    with _client(stack) as client:
        found = client.post("/search", json={"query": "bees", "user_id": USER})
    assert found.json()["results"][0]["memory"] == "I keep bees on the roof"


def test_a_bot_key_minted_in_the_container_reaches_only_its_users(stack: Stack) -> None:
    # The README's command for the bot's key, run in the server container.
    minted = stack.compose("exec", "-T", "mem0", "mem0-fixed", "keys", "create", "--name", "bot", "--user-id", "bot-*")
    bot_key = minted.stdout.strip().splitlines()[-1]
    assert bot_key.startswith("m0fk_")
    with _client(stack) as admin:
        assert admin.get("/memories", params={"user_id": USER}).json()["results"]
    with httpx.Client(base_url=stack.server_url, headers={"X-API-Key": bot_key}, timeout=30) as bot:
        assert bot.get("/memories", params={"user_id": USER}).json()["results"] == []
        own = bot.post(
            "/memories", json={"messages": [{"role": "user", "content": "hi"}], "user_id": "bot-1", "infer": False}
        )
        assert own.status_code == 200, own.text
    with httpx.Client(base_url=stack.server_url, timeout=30) as anonymous:
        assert anonymous.get("/memories", params={"user_id": USER}).status_code == 401


def _prometheus(stack: Stack, path: str, **params: str) -> dict:
    response = httpx.get(f"{stack.prometheus_url}{path}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scrapes_the_server_and_loads_the_alert_rules(stack: Stack) -> None:
    deadline = time.monotonic() + 90  # scrape_interval is 15 s; the recreate above restarted the target
    result: list[dict] = []
    while time.monotonic() < deadline:
        result = _prometheus(stack, "/api/v1/query", query='mem0_embedding_dims{job="mem0", source="configured"}')[
            "result"
        ]
        up = _prometheus(stack, "/api/v1/query", query='up{job="mem0"}')["result"]
        if result and up and up[0]["value"][1] == "1":
            break
        time.sleep(3)
    assert result and result[0]["value"][1] == "768", f"Prometheus has no mem0_embedding_dims from the server: {result}"
    targets = _prometheus(stack, "/api/v1/targets")["activeTargets"]
    assert [(t["labels"]["job"], t["health"]) for t in targets] == [("mem0", "up")], targets
    rules = _prometheus(stack, "/api/v1/rules")["groups"]
    alerts = {rule["name"] for group in rules for rule in group["rules"] if rule["type"] == "alerting"}
    assert {"Mem0BlockedEgress", "Mem0WriteSuccessRatioLow", "Mem0TelemetryBreakerOpen"} <= alerts
    firing = [
        a["labels"]["alertname"] for a in _prometheus(stack, "/api/v1/alerts")["alerts"] if a["state"] == "firing"
    ]
    assert firing == [], firing


def test_every_dashboard_metric_is_on_the_live_servers_metrics(stack: Stack) -> None:
    exposed = httpx.get(f"{stack.server_url}/metrics", timeout=10).text
    families = set(re.findall(r"^# TYPE (\S+) (\S+)", exposed, re.MULTILINE))
    names = set()
    for name, kind in families:
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        if kind == "counter":
            names |= {f"{name}_total", f"{name}_created"}
    missing = dashboard_metrics() - names
    assert not missing, missing


def test_idle_memory_of_each_container_is_within_its_budget(stack: Stack) -> None:
    time.sleep(5)
    usage = {}
    for service, container in stack.container_ids().items():
        stats = json.loads(
            run(["docker", "stats", "--no-stream", "--format", "{{json .}}", container]).stdout.splitlines()[0]
        )
        usage[service] = stats["MemUsage"]
        used = stats["MemUsage"].split("/")[0].strip()
        number, unit = re.fullmatch(r"([\d.]+)\s*([KMG]i?B|B)", used).groups()  # type: ignore[union-attr]
        scale = {"B": 1, "KiB": 1024, "MiB": MIB, "GiB": GIB, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
        assert float(number) * scale < BUDGETS[service][0] / 2, (service, stats["MemUsage"])
    REPORT["idle memory"] = usage


@pytest.mark.parametrize("service", ["mem0"])
def test_the_server_log_shows_no_blocked_egress(stack: Stack, service: str) -> None:
    logs = stack.compose("logs", "--no-color", service).stdout
    assert "egress blocked" not in logs
    assert "ready to serve" in logs
