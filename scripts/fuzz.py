"""The long fuzzing run: schemathesis (its CLI, every phase, valid and invalid data) against a real server.

    python -m scripts.fuzz                       # embedded Postgres + Ollama stand-in + one server, 1,000 examples
    python -m scripts.fuzz --max-examples 5000 --seed 7
    python -m scripts.fuzz --url http://127.0.0.1:8888   # a server already running (it must allow /reset or not)

Exit status is schemathesis's: 0 when no check failed. The suite runs a bounded version of the same checks
(tests/integration/test_fuzz_openapi.py).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.postgres import create_database, running_postgres
from tests.support.server_process import ServerProcess
from tests.support.standin_process import OllamaStandin

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """Embedded Postgres, the Ollama stand-in and one server process, all stopped on leaving."""
    with running_postgres(Path(tempfile.mkdtemp(prefix="fuzz-pg-"))) as admin:
        database = create_database(admin, prefix="fuzz")
        standin = OllamaStandin().start(dims=768)
        try:
            env = {"DATABASE_URL": database, "OLLAMA_BASE_URL": standin.url, "MEM0_ALLOW_RESET": "true"}
            with ServerProcess(env) as server:
                yield server.url
        finally:
            standin.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="fuzz this running server instead of starting one")
    parser.add_argument("--max-examples", type=int, default=1000, help="per operation and phase (default 1000)")
    parser.add_argument("--seed", type=int, help="reproduce a run")
    parser.add_argument("--workers", default="2")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(local_server())
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(args.max_examples),
            "--workers",
            args.workers,
            "--continue-on-failure",
            "--suppress-health-check",
            "all",
        ]
        if args.seed is not None:
            command += ["--seed", str(args.seed)]
        started = time.monotonic()
        status = subprocess.call(command)
        print(f"fuzz: {time.monotonic() - started:.1f} s, exit status {status}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
