"""The egress guard refuses every destination outside the configuration, in-process, before a packet leaves.

An audit hook cannot be removed, so every case runs in its own subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import server_env
from tests.support.server_process import REPO_ROOT, ServerProcess, clean_environment

PRELUDE = """
import json, logging
import app
from app.config import load_settings
from app.egress import EgressBlocked, install_egress_guard
logging.disable(logging.CRITICAL)
guard = install_egress_guard(load_settings())
outcomes = {}
def attempt(name, call):
    try:
        call()
        outcomes[name] = "connected"
    except Exception as error:
        cause = error
        while cause is not None and not isinstance(cause, EgressBlocked):
            cause = cause.__cause__ or cause.__context__
        outcomes[name] = "blocked" if cause is not None else f"other: {type(error).__name__}"
"""


def _run(body: str, **env: str) -> dict:
    script = (
        PRELUDE
        + textwrap.dedent(body)
        + "\nprint(json.dumps({'outcomes': outcomes, 'blocked': dict(guard.blocked)}))\n"
    )
    environment = clean_environment(OLLAMA_BASE_URL="http://127.0.0.1:11434", **env)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_openai_sdk_and_posthog_are_refused_and_counted():
    result = _run("""
        import openai, posthog
        client = openai.OpenAI(api_key="sk-test", max_retries=0, timeout=5)
        attempt("openai", lambda: client.models.list())
        ph = posthog.Posthog("phc_test", host="https://us.i.posthog.com", sync_mode=True, max_retries=0)
        attempt("posthog", lambda: ph.capture("event", distinct_id="x") and ph.flush())
        import urllib.request
        attempt("posthog-direct", lambda: urllib.request.urlopen("https://us.i.posthog.com/batch/", timeout=5))
        from prometheus_client import generate_latest
        from app.main import create_app
        metrics_text = generate_latest(create_app(load_settings(), guard).state.metrics.registry).decode()
        outcomes["metrics"] = [line for line in metrics_text.splitlines() if line.startswith("mem0_blocked_egress_total")]
    """)

    assert result["outcomes"]["openai"] == "blocked"
    assert result["outcomes"]["posthog-direct"] == "blocked"
    assert result["blocked"]["api.openai.com"] >= 1
    assert result["blocked"]["us.i.posthog.com"] >= 1
    shown = {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in result["outcomes"]["metrics"]}
    assert shown == {host: float(count) for host, count in result["blocked"].items()}


def test_ip_literals_are_matched_as_well_as_names():
    result = _run("""
        import asyncio, socket
        async def open_ip():
            await asyncio.wait_for(asyncio.open_connection("93.184.215.14", 443), 5)
        attempt("asyncio-ip", lambda: asyncio.run(open_ip()))
        def udp():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(b"x", ("8.8.8.8", 53))
        attempt("udp-sendto", udp)
    """)

    assert result["outcomes"] == {"asyncio-ip": "blocked", "udp-sendto": "blocked"}
    assert set(result["blocked"]) == {"93.184.215.14", "8.8.8.8"}


def test_the_configured_hosts_and_loopback_stay_reachable(pg_admin):
    result = _run(
        f"""
        import socket, psycopg
        attempt("loopback-name", lambda: socket.getaddrinfo("localhost", 5432))
        attempt("ollama-ip", lambda: socket.create_connection(("127.0.0.1", 1), timeout=1))
        attempt("database", lambda: psycopg.connect({pg_admin!r}).close())
    """,
        DATABASE_URL=pg_admin,
    )

    assert result["outcomes"]["loopback-name"] == "connected"
    assert result["outcomes"]["ollama-ip"] == "other: ConnectionRefusedError"  # allowed, nothing listens there
    assert result["outcomes"]["database"] == "connected"
    assert result["blocked"] == {}


def test_log_mode_counts_but_lets_the_connection_proceed():
    result = _run(
        """
        import socket
        attempt("lookup", lambda: socket.getaddrinfo("example.invalid", 443))
    """,
        MEM0_EGRESS_GUARD="log",
    )

    assert result["outcomes"]["lookup"] == "other: gaierror"
    assert result["blocked"] == {"example.invalid": 1}


def test_calls_from_inside_a_running_server_are_refused_and_shown_in_metrics_and_health(fresh_db, standin):
    server = ServerProcess(server_env(fresh_db, standin), module="tests.support.stray_calls_server")
    with server, server.client() as client:
        deadline = time.monotonic() + 30
        while "STRAY done" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        metrics = client.get("/metrics").text
        health = client.get("/health").json()
        write = client.post(
            "/memories", json={"messages": [{"role": "user", "content": "still works"}], "user_id": "e", "infer": False}
        )

    output = server.output()
    assert "STRAY openai blocked" in output
    # PostHog's client swallows the refused connection itself; what matters is that it was refused and counted.
    assert "STRAY posthog" in output
    blocked = {
        sample.labels["host"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "mem0_blocked_egress_total"
    }
    assert blocked["api.openai.com"] >= 1
    assert blocked["us.i.posthog.com"] >= 1
    assert health["blocked_egress"] == sum(blocked.values())
    assert write.status_code == 200
    assert "egress blocked" in output  # logged at WARN, once per host
