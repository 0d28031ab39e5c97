"""Which tests start processes, and which processes outlive the tests.

A test that starts a process (a server, a stand-in, a subprocess run) belongs to the slow tier; `starts_processes`
decides that before the run by reading code, `ProcessStarts` checks it during the run. `leftover_processes` finds
what the tests started and did not stop: descendants of the test process, and anything (an embedded Postgres
detaches from its parent) whose command line or working directory lies under the session's temporary directory.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import CodeType
from typing import Any

import psutil

# Names whose mention means "starts or kills a process": the helpers that run one, and the stdlib ways to.
PROCESS_NAMES = frozenset(
    {
        "ServerProcess",
        "OllamaStandin",
        "Neo4jProcess",
        "restart",  # OllamaStandin.restart
        "subprocess",
        "Popen",
        "create_subprocess_exec",
        "create_subprocess_shell",
        "multiprocessing",
        "ProcessPoolExecutor",
        "fork",
    }
)
# Audit events raised by every way of starting a process.
PROCESS_START_EVENTS = frozenset({"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn"})


def starts_processes(functions: Iterable[Callable[..., Any]]) -> bool:
    """Whether any of `functions`, or a helper from the tests package they call, names a way to start a process."""
    seen: set[CodeType] = set()
    return any(_names_a_process(function, seen) for function in functions)


def _names_a_process(function: Callable[..., Any], seen: set[CodeType]) -> bool:
    code = getattr(inspect.unwrap(function), "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    namespace = getattr(function, "__globals__", {})
    for name in _names(code):
        if name in PROCESS_NAMES:
            return True
        if any(_names_a_process(helper, seen) for helper in _test_helpers(namespace.get(name))):
            return True
    return False


def _names(code: CodeType) -> Iterator[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, CodeType):  # nested functions, lambdas, comprehensions
            yield from _names(constant)


def _test_helpers(target: object) -> list[Callable[..., Any]]:
    """The functions (a class's methods) behind a name, if the tests package defines it."""
    if not str(getattr(target, "__module__", "")).startswith("tests."):
        return []
    if inspect.isclass(target):
        members = [getattr(member, "__func__", member) for member in vars(target).values()]  # unwraps staticmethods
        return [member for member in members if inspect.isfunction(member)]
    return [target] if inspect.isfunction(target) else []


class ProcessStarts:
    """Counts processes started by this interpreter, through an audit hook (hooks cannot be removed: install once)."""

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> None:
        sys.addaudithook(self._on_event)

    def _on_event(self, event: str, args: tuple[object, ...]) -> None:
        if event in PROCESS_START_EVENTS:
            self.count += 1


def leftover_processes(session_tmp: Path) -> list[psutil.Process]:
    """Live processes the tests started: descendants of this one, and those under `session_tmp`, with theirs."""
    me = psutil.Process()
    marker = str(session_tmp.resolve()) + os.sep
    found = {child.pid: child for child in me.children(recursive=True)}
    for process in psutil.process_iter(["cmdline", "cwd"]):
        if process.pid == me.pid:
            continue
        command = " ".join(process.info["cmdline"] or ())
        if marker in command or (process.info["cwd"] or "").startswith(marker):
            found[process.pid] = process
            found.update((child.pid, child) for child in _children(process))
    return [process for process in found.values() if _alive(process)]


def describe(processes: list[psutil.Process]) -> str:
    """One line per process whose parent is not in the list (a Postgres, not each of its workers)."""
    pids = {process.pid for process in processes}
    lines = []
    for process in processes:
        try:
            if process.ppid() in pids:
                continue
            command = " ".join(process.cmdline())[:200]
            extra = len(_children(process))
        except psutil.Error:
            continue
        lines.append(f"  pid {process.pid}: {command}" + (f" (and {extra} child processes)" if extra else ""))
    return "\n".join(lines)


def kill(processes: list[psutil.Process], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL whatever still runs after `grace_s`."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=grace_s)


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
