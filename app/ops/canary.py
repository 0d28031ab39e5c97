"""The canary gate of the users' plan: one request, then 1 RPS, then 5 RPS (each stage a minute by default) of
writes and searches in a scope of its own, judged after every stage against the SLOs; the first breach stops it."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

WRITE_P95_S = 5.0
WRITE_SUCCESS = 0.999
READ_P95_S = 1.0
READ_SUCCESS = 0.9999


@dataclass
class Call:
    kind: str  # "write" or "read"
    seconds: float
    ok: bool
    memory_id: str | None = None


@dataclass
class StageReport:
    name: str
    calls: int
    write_p95_s: float | None
    write_success: float | None
    read_p95_s: float | None
    read_success: float | None
    breaches: list[str] = field(default_factory=list)


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def judge(name: str, calls: list[Call]) -> StageReport:
    """A stage's numbers and every SLO it breaches."""
    writes = [c for c in calls if c.kind == "write"]
    reads = [c for c in calls if c.kind == "read"]
    report = StageReport(
        name,
        len(calls),
        p95([c.seconds for c in writes]),
        sum(c.ok for c in writes) / len(writes) if writes else None,
        p95([c.seconds for c in reads]),
        sum(c.ok for c in reads) / len(reads) if reads else None,
    )
    checks = [
        (report.write_p95_s, WRITE_P95_S, f"write p95 {report.write_p95_s} s > {WRITE_P95_S} s", True),
        (report.read_p95_s, READ_P95_S, f"read p95 {report.read_p95_s} s > {READ_P95_S} s", True),
        (report.write_success, WRITE_SUCCESS, f"write success {report.write_success} < {WRITE_SUCCESS}", False),
        (report.read_success, READ_SUCCESS, f"read success {report.read_success} < {READ_SUCCESS}", False),
    ]
    for value, limit, message, at_most in checks:
        if value is not None and (value > limit if at_most else value < limit):
            report.breaches.append(message)
    return report


class Canary:
    def __init__(self, client: httpx.AsyncClient, *, say: Callable[[str], None] = print) -> None:
        self.client = client
        self.say = say
        self.user = f"canary-{uuid.uuid4().hex[:12]}"
        self.acknowledged: list[str] = []

    async def run(self, rates: list[float], stage_s: float) -> list[StageReport]:
        baseline = await self.counters()
        reports: list[StageReport] = []
        stages = [("single request", 0.0, 0.0), *((f"{rate:g} RPS for {stage_s:g} s", rate, stage_s) for rate in rates)]
        try:
            for index, (name, rate, seconds) in enumerate(stages):
                calls = [await self.call(index)] if rate == 0 else await self.load(rate, seconds)
                report = judge(name, calls)
                report.breaches += await self.read_back() + self.new_problems(baseline, await self.counters())
                reports.append(report)
                self.say(f"stage {name}: {'ok' if not report.breaches else 'BREACH ' + '; '.join(report.breaches)}")
                if report.breaches:
                    break
        finally:
            await self.client.delete("/memories", params={"user_id": self.user})
        return reports

    async def load(self, rate: float, seconds: float) -> list[Call]:
        """`rate` requests a second for `seconds`, alternating writes and searches, each on its own schedule."""
        started = time.monotonic()
        total = max(1, round(rate * seconds))
        tasks = []
        for number in range(total):
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            tasks.append(asyncio.create_task(self.call(number)))
            if number and number % max(1, round(rate)) == 0:
                done = sum(task.done() for task in tasks)
                self.say(f"  {time.monotonic() - started:5.1f} s: {len(tasks)} sent, {done} answered")
        return list(await asyncio.gather(*tasks))

    async def call(self, number: int) -> Call:
        started = time.perf_counter()
        try:
            if number % 2 == 0:
                body = {
                    "messages": [{"role": "user", "content": f"canary fact {number} {uuid.uuid4().hex[:6]}"}],
                    "user_id": self.user,
                    "infer": False,
                }
                response = await self.client.post("/memories", json=body)
                ok = response.status_code == 200
                memory_id = response.json()["results"][0]["id"] if ok else None
                if memory_id:
                    self.acknowledged.append(memory_id)
                return Call("write", time.perf_counter() - started, ok, memory_id)
            response = await self.client.post("/search", json={"query": "canary fact", "user_id": self.user})
            return Call("read", time.perf_counter() - started, response.status_code == 200)
        except httpx.HTTPError:
            return Call("write" if number % 2 == 0 else "read", time.perf_counter() - started, False)

    async def read_back(self) -> list[str]:
        response = await self.client.get("/memories", params={"user_id": self.user, "top_k": 1000})
        stored = {item["id"] for item in response.json().get("results", [])} if response.status_code == 200 else set()
        lost = [memory_id for memory_id in self.acknowledged if memory_id not in stored]
        return [f"{len(lost)} acknowledged writes do not read back"] if lost else []

    async def counters(self) -> dict[str, float]:
        """Blocked egress and failed writes as /metrics counts them."""
        text = (await self.client.get("/metrics")).text
        found = {"blocked_egress": 0.0, "failed_writes": 0.0}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "mem0_blocked_egress_total":
                    found["blocked_egress"] += sample.value
                elif sample.name == "mem0_writes_total" and sample.labels.get("outcome") == "failed":
                    found["failed_writes"] += sample.value
        return found

    @staticmethod
    def new_problems(before: dict[str, float], after: dict[str, float]) -> list[str]:
        return [
            f"{after[name] - before[name]:g} new {name} on /metrics" for name in before if after[name] > before[name]
        ]


def evidence(base_url: str, reports: list[StageReport], path: Path) -> dict[str, Any]:
    passed = all(not report.breaches for report in reports)
    written = {"base_url": base_url, "passed": passed, "stages": [asdict(report) for report in reports]}
    path.write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    return written
