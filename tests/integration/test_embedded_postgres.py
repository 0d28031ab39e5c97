"""A newcomer's `make run`: nothing configured but Ollama, so the server runs its own Postgres under MEM0_DATA_DIR,
generates the admin key into a file there and says where; a restart keeps the data and the key."""

from __future__ import annotations

import stat

import httpx

from tests.support.server_process import ServerProcess


def test_a_first_start_with_nothing_configured_generates_the_admin_key_and_a_restart_keeps_key_and_data(
    tmp_path, standin
):
    data_dir = tmp_path / "data"
    key_file = data_dir / "admin-api-key"
    env = {"OLLAMA_BASE_URL": standin.url, "MEM0_DATA_DIR": str(data_dir)}  # no MEM0_ADMIN_API_KEY, no database
    body = {"messages": [{"role": "user", "content": "I keep bees"}], "user_id": "embedded", "infer": False}

    with ServerProcess(env) as first:
        key = key_file.read_text()
        # The README's first call: curl -H "Authorization: Token $(cat data/admin-api-key)" …/v1/ping/
        token = {"Authorization": f"Token {key}"}
        with httpx.Client(base_url=first.url, headers=token, timeout=30) as client:
            assert client.get("/v1/ping/").status_code == 200
            [created] = client.post("/memories", json=body).json()["results"]
        assert httpx.get(f"{first.url}/v1/ping/", headers={"Authorization": "Token m0fk_0_wrong"}).status_code == 401
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert str(key_file) in first.output() and key not in first.output()
    written = key_file.stat()

    with ServerProcess(env) as second, httpx.Client(base_url=second.url, headers=token, timeout=30) as client:
        listed = client.get("/memories", params={"user_id": "embedded"}).json()["results"]

    assert [m["id"] for m in listed] == [created["id"]]
    assert (key_file.read_text(), key_file.stat().st_mtime_ns) == (key, written.st_mtime_ns)  # not generated again
    assert "admin-api-key" not in second.output()
    assert [path.name for path in data_dir.iterdir() if path.name.startswith(".admin-api-key")] == []  # temporaries
    assert (data_dir / "pgdata" / "PG_VERSION").exists()
