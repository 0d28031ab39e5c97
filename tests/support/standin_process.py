"""Runs the Ollama stand-in (`tests.support.ollama_standin`) as a real subprocess and drives its control API."""

from __future__ import annotations

import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from tests.support.ollama_standin import DEFAULT_MODELS, READY_PREFIX

REPO_ROOT = Path(__file__).resolve().parents[2]


class OllamaStandin:
    """One stand-in process: `start()` it, point clients at `.url`, steer it with `control()` and `set_fault()`."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.port = 0
        self._argv: list[str] = []
        self._stderr: IO[bytes] | None = None
        self._http: httpx.Client | None = None

    def start(
        self,
        dims: int = 768,
        models: Sequence[str] = DEFAULT_MODELS,
        embed_latency_ms: float = 0.0,
        chat_latency_ms: float = 0.0,
        extra_args: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout_s: float = 15.0,
    ) -> OllamaStandin:
        """Launches the process and waits for its READY line; port 0 picks a free port."""
        if self.process is not None:
            raise RuntimeError("the stand-in is already running; stop() it first")
        options = [
            f"--host={host}",
            f"--dims={dims}",
            f"--models={','.join(models)}",
            f"--embed-latency-ms={embed_latency_ms}",
            f"--chat-latency-ms={chat_latency_ms}",
            *extra_args,
        ]
        self._launch(options, port, timeout_s)
        return self

    def restart(self, timeout_s: float = 15.0) -> OllamaStandin:
        """Stops the process and starts a fresh one with the same arguments on the same port."""
        options, port = list(self._argv), self.port
        self.stop()
        self._launch(options, port, timeout_s)
        return self

    def _launch(self, options: list[str], port: int, timeout_s: float) -> None:
        self._argv = options
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.ollama_standin", *options, f"--port={port}", "--exit-with-parent"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,  # the child exits when this pipe closes, so a crashed test leaves no orphan
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        line = self._first_line(timeout_s)
        if not line.startswith(READY_PREFIX):
            output = self.stderr_text()
            self.stop()
            raise RuntimeError(f"the Ollama stand-in did not start within {timeout_s:g}s: {line!r}\n{output}")
        self.url = line.split()[1]
        self.port = int(self.url.rsplit(":", 1)[1])
        self._http = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)

    def _first_line(self, timeout_s: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        lines: queue.Queue[bytes] = queue.Queue()
        # A thread, because a pipe read cannot time out portably.
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            return lines.get(timeout=timeout_s).decode(errors="replace").strip()
        except queue.Empty:
            return ""

    def stderr_text(self) -> str:
        """Everything the process wrote to stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def control(self, **partial: Any) -> dict[str, Any]:
        """Changes settings (latencies, dims, models, faults, chat replies, down); returns the full config."""
        response = self._client().post("/_control", json=partial)
        if response.status_code != 200:
            raise ValueError(f"the stand-in refused {partial}: {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def set_fault(self, op: str, kind: str, **spec: Any) -> dict[str, Any]:
        """Makes operation `op` misbehave: kind status|hang|wrong_dims|malformed|drop, plus FaultSpec fields."""
        return self.control(faults={op: {"kind": kind, **spec}})

    def clear_faults(self) -> dict[str, Any]:
        """Removes every fault."""
        return self.control(faults=None)

    def stats(self) -> dict[str, Any]:
        """Per-operation call counts, the number of texts embedded and the last 200 requests."""
        response = self._client().get("/_stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reset_stats(self) -> None:
        """Zeroes the counters and the request log."""
        self._client().post("/_reset_stats").raise_for_status()

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise RuntimeError("the stand-in is not running; call start() first")
        return self._http

    def stop(self) -> None:
        """Terminates the process (kills it if it lingers) and releases its pipes."""
        if self._http is not None:
            self._http.close()
            self._http = None
        process, self.process = self.process, None
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> OllamaStandin:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
