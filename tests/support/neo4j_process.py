"""A real Neo4j 5.26 LTS for the tests: Neo4j embedded in a small Java program (tests/support/neo4j), reached over
Bolt on a loopback port, as a process of its own.

Maven builds the program once into a cache outside the repository (`~/.cache/mem0-fixed/neo4j-<hash>`, keyed by
its sources, this module's settings and the JVM); one start right after the build records the classes the JVM
loads (class data sharing, which halves every later start) and leaves a data directory with the test password
set, which each new Neo4j here starts from instead of creating its databases again. `python -m
tests.support.neo4j_process` makes the cache and prints its path: `make test` runs it first, and
scripts/docker_setup.sh builds the compose stack's stand-in Neo4j image from it. Standard library only, for that.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

LAUNCHER_SOURCE = Path(__file__).resolve().parent / "neo4j"
USER = "neo4j"
TEST_PASSWORD = "test-neo4j-password"
READY_PREFIX = "READY "
# Small and quick to start on the 2-core test machine, where each pytest-xdist worker may run one: the client
# compiler only, the serial collector, a 384 MB heap.
JVM_OPTIONS = ("-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
SETTINGS = (
    "server.memory.pagecache.size=32m",  # the tests' graphs are tiny
    # Bolt waits 5 s for connections and then 5 s more for netty on shutdown; a test that stops Neo4j waits too.
    "internal.server.bolt.connection_shutdown_wait_time=0s",
    "internal.dbms.bolt.netty_server_shutdown_quiet_period=0",
)
MAVEN_TIMEOUT_S = 900


@dataclass(frozen=True)
class Launcher:
    """One cached build: launcher.jar with lib/ beside it, the class archive and the template data directory."""

    directory: Path

    @property
    def jar(self) -> Path:
        return self.directory / "launcher.jar"

    @property
    def class_archive(self) -> Path:
        return self.directory / "launcher.jsa"

    @property
    def template(self) -> Path:
        return self.directory / "template" / "data"

    def command(self, home: Path, port: int, *, record_classes: bool = False) -> list[str]:
        sharing = "ArchiveClassesAtExit" if record_classes else "SharedArchiveFile"
        return [
            _java(),
            *JVM_OPTIONS,
            f"-XX:{sharing}={self.class_archive}",
            "-jar",
            str(self.jar),
            str(home),
            "--exit-with-parent",
            f"server.bolt.listen_address=127.0.0.1:{port}",
            *SETTINGS,
        ]


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mem0-fixed"


def launcher() -> Launcher:
    """The cached build, made first when missing (about a minute: Maven, then one start); one build at a time, so
    pytest-xdist workers that all need it wait for the first."""
    built = Launcher(cache_root() / f"neo4j-{_build_key()}")
    complete = built.directory / "complete"
    if complete.exists():
        return built
    cache_root().mkdir(parents=True, exist_ok=True)
    with _exclusive(cache_root() / f"{built.directory.name}.lock"):
        if not complete.exists():
            _build(built)
            complete.touch()
    return built


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("the test Neo4j needs Java 17+ on PATH (`java`), and Maven (`mvn`) to build it")
    return java


def _build_key() -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in LAUNCHER_SOURCE.rglob("*") if p.is_file() and "target" not in p.parts):
        digest.update(str(path.relative_to(LAUNCHER_SOURCE)).encode() + b"\0" + path.read_bytes() + b"\0")
    # The class archive holds only for the JVM and options that recorded it.
    version = subprocess.run([_java(), "-version"], capture_output=True, text=True, check=True).stderr
    digest.update(repr((version, JVM_OPTIONS, SETTINGS, TEST_PASSWORD)).encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(built: Launcher) -> None:
    maven = shutil.which("mvn")
    if maven is None:
        raise RuntimeError("the test Neo4j is built with Maven: install it (`mvn`), e.g. apt-get install maven")
    shutil.rmtree(built.directory, ignore_errors=True)
    output = built.directory / "maven"
    result = subprocess.run(
        [maven, "-q", "-B", "-f", str(LAUNCHER_SOURCE / "pom.xml"), f"-Dlauncher.build={output}", "package"],
        capture_output=True,
        text=True,
        timeout=MAVEN_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"Maven could not build the Neo4j launcher:\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
    (output / "launcher.jar").rename(built.jar)
    (output / "lib").rename(built.directory / "lib")
    shutil.rmtree(output)
    first = Neo4jProcess(built.template.parent, built=built)
    first.start(record_classes=True)
    first.stop()
    shutil.rmtree(built.template.parent / "logs")
    (built.template.parent / "launcher.log").unlink()


class Neo4jProcess:
    """One Neo4j on a home directory of its own: `start()` it, connect to `.uri` as `.user` / `.password`; `stop()`
    and `start()` again keep the data and the port (a stopped Neo4j is how a test shows a degraded graph)."""

    user = USER
    password = TEST_PASSWORD

    def __init__(self, home: Path, *, built: Launcher | None = None) -> None:
        self.home = home
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._built = built
        self._log_path = home / "launcher.log"
        self._log: IO[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 120.0, *, record_classes: bool = False) -> Neo4jProcess:
        """Launches the process and waits for Bolt; the first start takes a free port, later ones the same."""
        if self.running:
            raise RuntimeError("Neo4j is already running; stop() it first")
        built = self._built or launcher()
        self.home.mkdir(parents=True, exist_ok=True)
        if not record_classes and not (self.home / "data").exists():
            shutil.copytree(built.template, self.home / "data")
        self._log = self._log_path.open("ab")
        offset = self._log.tell()
        self.process = subprocess.Popen(
            built.command(self.home, self.port, record_classes=record_classes),
            env={**os.environ, "NEO4J_AUTH": f"{self.user}/{self.password}"},
            stdin=subprocess.PIPE,  # the launcher exits when this pipe closes, so a crashed test leaves no JVM
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.port = self._wait_ready(offset, timeout_s)
        return self

    def _wait_ready(self, offset: int, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._log_path.open("rb") as log:
                log.seek(offset)
                for line in log.read().decode(errors="replace").splitlines():
                    if line.startswith(READY_PREFIX):
                        return int(line.rsplit(":", 1)[1])
            if not self.running:
                break
            time.sleep(0.05)
        output = self.output()
        self.stop()
        raise RuntimeError(f"Neo4j did not start within {timeout_s:g}s:\n{output[-4000:]}")

    def output(self) -> str:
        """What the launcher printed (Neo4j's own log is logs/debug.log in the home directory)."""
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def stop(self, timeout_s: float = 30.0) -> None:
        """Shuts Neo4j down cleanly (SIGTERM: its checkpoint runs), killing it only if it lingers."""
        process, self.process = self.process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Neo4jProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    print(launcher().directory)
