"""The embedded Postgres after a crash: a server killed with SIGKILL never lets go of the Postgres it shared, and the
next server to stop must still stop it, not leave it running behind every process."""

from __future__ import annotations

import psutil

from tests.support.server_process import ServerProcess


def _postgres_of(pgdata: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and pgdata in " ".join(cmdline):
            found.append(process)
    return found


def test_a_server_stopped_after_a_killed_one_still_stops_the_embedded_postgres(tmp_path, standin_session):
    data_dir = tmp_path / "data"
    env = {"OLLAMA_BASE_URL": standin_session.url, "MEM0_DATA_DIR": str(data_dir)}
    pgdata = str((data_dir / "pgdata").resolve())

    crashed = ServerProcess(env).start().wait_ready(60)
    crashed.kill()
    assert _postgres_of(pgdata), "the killed server's Postgres keeps running until another server takes it over"

    with ServerProcess(env):
        pass

    psutil.wait_procs(_postgres_of(pgdata), timeout=20)
    assert _postgres_of(pgdata) == []
