"""With no POSTGRES_HOST or DATABASE_URL the server runs its own Postgres, and the data survives restarts."""

from __future__ import annotations

from tests.support.server_process import TEST_ADMIN_KEY, ServerProcess


def test_embedded_postgres_serves_and_keeps_data_across_restarts(tmp_path, standin):
    env = {
        "OLLAMA_BASE_URL": standin.url,
        "MEM0_DATA_DIR": str(tmp_path / "data"),
        "MEM0_ADMIN_API_KEY": TEST_ADMIN_KEY,
    }
    body = {"messages": [{"role": "user", "content": "I keep bees"}], "user_id": "embedded", "infer": False}

    with ServerProcess(env) as first, first.client() as client:
        [created] = client.post("/memories", json=body).json()["results"]

    with ServerProcess(env) as second, second.client() as client:
        listed = client.get("/memories", params={"user_id": "embedded"}).json()["results"]

    assert [m["id"] for m in listed] == [created["id"]]
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
