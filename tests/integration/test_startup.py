"""The real server process refuses to start, with one line naming the cause, on every misconfiguration. What a
started app answers (/ready without Ollama, /reset refused) is asked of the in-process app."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import server_env
from tests.support.inprocess import InProcessServer
from tests.support.server_process import ServerProcess, free_port


def _start_and_fail(env: dict[str, str]) -> tuple[int, str]:
    process = ServerProcess(env).start()
    code = process.wait_exit(timeout_s=60)
    return code, process.output()


def test_a_remote_llm_provider_stops_the_server(fresh_db, standin):
    code, output = _start_and_fail(server_env(fresh_db, standin, MEM0_LLM_PROVIDER="openai"))

    assert code != 0
    assert "MEM0_LLM_PROVIDER='openai'" in output and "only 'ollama'" in output


def test_a_remote_embedder_provider_stops_the_server(fresh_db, standin):
    code, output = _start_and_fail(server_env(fresh_db, standin, MEM0_EMBEDDER_PROVIDER="openai"))

    assert code != 0
    assert "MEM0_EMBEDDER_PROVIDER" in output


def test_a_set_openai_key_stops_the_server(fresh_db, standin):
    code, output = _start_and_fail(server_env(fresh_db, standin, OPENAI_API_KEY="sk-test"))

    assert code != 0
    assert "OPENAI_API_KEY" in output and "MEM0_ALLOW_OPENAI_ENV" in output
    assert "sk-test" not in output


def test_an_openai_key_is_only_a_warning_when_allowed(fresh_db, standin):
    env = server_env(fresh_db, standin, OPENAI_API_KEY="sk-test", MEM0_ALLOW_OPENAI_ENV="true")

    with ServerProcess(env) as server, server.client() as client:
        assert client.get("/ready").status_code == 200


def test_configured_dims_that_differ_from_the_embedder_stop_the_server(fresh_db, standin):
    code, output = _start_and_fail(server_env(fresh_db, standin, MEM0_EMBEDDING_DIMS="1536"))

    assert code == 1
    assert "MEM0_EMBEDDING_DIMS=1536" in output and "=768" in output
    with psycopg.connect(fresh_db) as conn:  # nothing was migrated into a half-valid state
        assert conn.execute("SELECT to_regclass('memories')").fetchone() == (None,)


@pytest.mark.parametrize("table", ["memories", "mem0migrations"])
def test_an_existing_1536_dim_table_stops_the_server(fresh_db, standin, table):
    with psycopg.connect(fresh_db) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f"CREATE TABLE {table} (id uuid PRIMARY KEY, vector vector(1536), payload jsonb)")

    code, output = _start_and_fail(server_env(fresh_db, standin))

    assert code == 1
    assert f"column {table}.vector=1536" in output and "MEM0_EMBEDDING_DIMS=768" in output


def test_an_unreachable_postgres_stops_the_server(standin):
    url = f"postgresql://postgres:x@127.0.0.1:{free_port()}/postgres"

    code, output = _start_and_fail(server_env(url, standin))

    assert code == 1
    assert "postgres" in output and "unreachable" in output


def test_an_unreachable_ollama_stops_the_server(fresh_db):
    env = {"DATABASE_URL": fresh_db, "OLLAMA_BASE_URL": f"http://127.0.0.1:{free_port()}"}

    code, output = _start_and_fail(env)

    assert code == 1
    assert "Ollama is unreachable" in output and "OLLAMA_BASE_URL" in output
    # An expected failure ends with its one line, and no traceback anywhere (that is for DEBUG).
    assert output.splitlines()[-1].startswith("startup failed: [FAIL] ollama: Ollama is unreachable")
    assert "Traceback" not in output


def test_debug_logging_shows_the_startup_failure_traceback(fresh_db):
    env = {"DATABASE_URL": fresh_db, "OLLAMA_BASE_URL": f"http://127.0.0.1:{free_port()}", "MEM0_LOG_LEVEL": "DEBUG"}

    code, output = _start_and_fail(env)

    assert code == 1
    assert "Traceback" in output and "StartupError" in output
    assert output.splitlines()[-1].startswith("startup failed: [FAIL] ollama")


def test_a_missing_model_stops_the_server(fresh_db, standin):
    code, output = _start_and_fail(server_env(fresh_db, standin, MEM0_LLM_MODEL="llama3:70b"))

    assert code == 1
    assert "MEM0_LLM_MODEL=llama3:70b is not in Ollama" in output


def test_a_missing_model_is_pulled_when_allowed(fresh_db, standin):
    env = server_env(fresh_db, standin, MEM0_LLM_MODEL="qwen2.5:0.5b", MEM0_OLLAMA_PULL_MISSING="true")

    with ServerProcess(env) as server, server.client() as client:
        assert client.get("/ready").status_code == 200
    assert standin.stats()["counts"]["pull"] == 1
    assert "pull qwen2.5:0.5b: success" in server.output()


def test_warm_up_loads_both_models_before_ready(fresh_db, standin):
    with ServerProcess(server_env(fresh_db, standin)) as server, server.client() as client:
        ready = client.get("/ready").json()
    counts = standin.stats()["counts"]
    assert counts["generate"] >= 1 and counts["embed"] >= 1
    assert ready["warmup_seconds"] is not None
    assert "models warmed up" in server.output()


def test_ready_is_503_with_a_reason_when_ollama_goes_away(fresh_db, standin):
    with InProcessServer(server_env(fresh_db, standin)) as app, app.client() as client:
        standin.set_fault("version", kind="status", status=500)
        response = client.get("/ready")
    assert response.status_code == 503
    assert any("Ollama" in reason for reason in response.json()["reasons"])


def test_reset_is_refused_unless_enabled(fresh_db, standin):
    with InProcessServer(server_env(fresh_db, standin)) as app, app.client() as client:
        response = client.post("/reset")
    assert response.status_code == 403
    assert "MEM0_ALLOW_RESET" in response.json()["message"]


def test_check_command_reports_every_check_and_exits_0_or_1(fresh_db, standin):
    good = ServerProcess(server_env(fresh_db, standin), command="check").start()
    assert good.wait_exit() == 0
    assert "all checks passed" in good.output() and "[ok] embedding dims" in good.output()

    bad = ServerProcess(server_env(fresh_db, standin, MEM0_EMBEDDING_DIMS="512"), command="check").start()
    assert bad.wait_exit() == 1
    assert "[FAIL] embedding dims" in bad.output() and "MEM0_EMBEDDING_DIMS=512" in bad.output()
