"""Staged rollout behind nginx: move the candidate's weight 5 % -> 50 % -> 100 %, gate each step with the canary.

The nginx config (from docker/nginx/rollout.conf.template) has one upstream whose two server lines are tagged
`# rollout:stable` and `# rollout:candidate`; only their weights are rewritten, then `nginx -s reload`. After each
reload the split nginx actually serves is counted (the `X-Upstream` header over `--split-requests` GET /health), and
`mem0-fixed canary` runs against the nginx front. On a breach (or a split off by more than `--split-tolerance`
points) the weight goes back to 100 % stable, the reason is printed, and the exit code is 1.

    mem0-fixed rollout --config /etc/nginx/rollout.conf --front http://127.0.0.1:8080 \\
        --steps 5,50,100 --rates 1,5 --stage-seconds 60 --api-key "$MEM0_ADMIN_API_KEY"
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

# `server ADDR [weight=N] [down]; # rollout:ROLE`: the two lines this command owns in the config.
SERVER_LINE = re.compile(
    r"^(?P<indent>\s*)server\s+(?P<addr>\S+?)(?:\s+weight=\d+)?(?:\s+down)?\s*;\s*#\s*rollout:(?P<role>stable|candidate)"
    r"\s*$",
    re.MULTILINE,
)
EXIT_ROLLED_BACK = 1


PLACEHOLDER = re.compile(r"\$\{(PREFIX|LISTEN|STABLE|CANDIDATE)\}")


class RolloutError(Exception):
    """The config or nginx cannot be driven (not a breach: nothing was judged)."""


def render(template: str, values: dict[str, str]) -> str:
    """The template with its `${PREFIX}`, `${LISTEN}`, `${STABLE}` and `${CANDIDATE}` filled in; nginx's own
    `$variables` are left alone (string.Template would take them for placeholders)."""
    return PLACEHOLDER.sub(lambda match: values[match[1]], template)


def upstreams(config: str) -> dict[str, str]:
    """role -> address of the two tagged server lines."""
    found = {match["role"]: match["addr"] for match in SERVER_LINE.finditer(config)}
    if set(found) != {"stable", "candidate"}:
        raise RolloutError("the config needs one `server … # rollout:stable` and one `# rollout:candidate` line")
    return found


def with_weights(config: str, candidate_percent: int) -> str:
    """The config with the candidate at `candidate_percent` and the stable server at the rest. nginx has no weight 0,
    so a server at 0 % is marked `down`."""
    weights = {"candidate": candidate_percent, "stable": 100 - candidate_percent}

    def line(match: re.Match[str]) -> str:
        weight = weights[match["role"]]
        setting = f"weight={weight}" if weight else "weight=1 down"
        return f"{match['indent']}server {match['addr']} {setting}; # rollout:{match['role']}"

    return SERVER_LINE.sub(line, config)


class Rollout:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.config_path: Path = args.config
        self.addresses = upstreams(self.config_path.read_text(encoding="utf-8"))
        self.evidence_dir: Path = args.evidence_dir
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        self.steps: list[dict[str, Any]] = []
        self.current = 0  # the candidate's share last written to the config

    def nginx(self, *flags: str) -> None:
        argv = [
            self.args.nginx,
            "-c",
            str(self.config_path.resolve()),
            *(["-p", self.args.prefix] if self.args.prefix else []),
            *flags,
        ]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if result.returncode != 0:
            raise RolloutError(f"{' '.join(argv)} failed: {result.stderr.strip()}")

    def set_weight(self, candidate_percent: int) -> None:
        previous = self.config_path.read_text(encoding="utf-8")
        self.current = candidate_percent
        self.config_path.write_text(with_weights(previous, candidate_percent), encoding="utf-8")
        try:
            self.nginx("-t", "-q")  # a config nginx refuses must not replace the running one
        except RolloutError:
            self.config_path.write_text(previous, encoding="utf-8")
            raise
        self.nginx("-s", "reload")
        # The reload is asynchronous: the old worker finishes its connections while the new one starts.
        time.sleep(self.args.settle_seconds)

    def observed_split(self) -> dict[str, int]:
        """How many of `--split-requests` fresh GET /health each upstream answered, by role."""
        roles = {address: role for role, address in self.addresses.items()}
        counted: Counter[str] = Counter()
        # A new client each time, so no keep-alive connection to a worker of the previous config is reused.
        with httpx.Client(base_url=self.args.front, timeout=10, trust_env=False) as client:
            for _ in range(self.args.split_requests):
                answered = client.get("/health").headers.get("x-upstream", "")
                counted[roles.get(answered, f"other:{answered}")] += 1
        return dict(counted)

    def canary(self, candidate_percent: int) -> tuple[bool, list[str], Path]:
        evidence = self.evidence_dir / f"canary-{candidate_percent}.json"
        argv = [
            *self.args.canary_command.split(),
            "canary",
            self.args.front,
            "--rates",
            self.args.rates,
            "--stage-seconds",
            str(self.args.stage_seconds),
            "--evidence",
            str(evidence),
            *(["--api-key", self.args.api_key] if self.args.api_key else []),
        ]
        evidence.unlink(missing_ok=True)  # a previous run's file must not stand in for this canary's verdict
        result = subprocess.run(argv, check=False, timeout=3600)
        breaches: list[str] = []
        try:
            written = json.loads(evidence.read_text(encoding="utf-8"))
            breaches = [f"{stage['name']}: {b}" for stage in written["stages"] for b in stage["breaches"]]
        except (OSError, ValueError, KeyError):
            breaches = [f"the canary exited {result.returncode} without readable evidence"]
        if result.returncode != 0 and not breaches:
            breaches = [f"the canary exited {result.returncode}"]
        return result.returncode == 0, breaches, evidence

    def run(self, percents: list[int]) -> int:
        try:
            return self.steps_through(percents)
        except (RolloutError, httpx.HTTPError, subprocess.TimeoutExpired) as error:
            # A step that cannot be judged is a failed step: the candidate must not keep the share it may have.
            return self.roll_back(self.current, [f"the step could not be judged: {error}"])

    def steps_through(self, percents: list[int]) -> int:
        for percent in percents:
            print(f"rollout: candidate at {percent} %", flush=True)
            self.set_weight(percent)
            split = self.observed_split()
            total = sum(split.values())
            observed = 100.0 * split.get("candidate", 0) / total if total else 0.0
            step: dict[str, Any] = {"candidate_percent": percent, "split": split, "observed_percent": observed}
            self.steps.append(step)
            print(f"rollout: observed {observed:.1f} % candidate over {total} requests ({split})", flush=True)
            reasons: list[str] = []
            if abs(observed - percent) > self.args.split_tolerance or any(r.startswith("other:") for r in split):
                reasons.append(f"nginx served {observed:.1f} % to the candidate, not {percent} % ({split})")
            else:
                passed, breaches, evidence = self.canary(percent)
                step.update(canary_passed=passed, canary_evidence=str(evidence), breaches=breaches)
                reasons += breaches
            if reasons:
                return self.roll_back(percent, reasons)
        self.write_summary("completed", [])
        print("rollout: completed, the candidate takes all traffic", flush=True)
        return 0

    def roll_back(self, percent: int, reasons: list[str]) -> int:
        self.set_weight(0)
        split = self.observed_split()
        self.write_summary("rolled_back", reasons, after=split)
        print(f"rollout: BREACH at {percent} %, rolled back to 100 % stable ({self.addresses['stable']}):", flush=True)
        for reason in reasons:
            print(f"  reason: {reason}", flush=True)
        print(f"rollout: after the rollback nginx served {split}", flush=True)
        return EXIT_ROLLED_BACK

    def write_summary(self, outcome: str, reasons: list[str], after: dict[str, int] | None = None) -> None:
        summary = {"outcome": outcome, "upstreams": self.addresses, "steps": self.steps, "reasons": reasons}
        if after is not None:
            summary["split_after_rollback"] = after
        (self.evidence_dir / "rollout.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def add_rollout_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "rollout",
        help="staged rollout behind nginx (5 -> 50 -> 100 %%), gated by the canary; exit 1 after a rollback",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--config", type=Path, required=True, help="the nginx config this script controls")
    parser.add_argument("--front", required=True, help="nginx's address, e.g. http://127.0.0.1:8080")
    parser.add_argument("--nginx", default="nginx", help="the nginx binary (nginx)")
    parser.add_argument("--prefix", help="nginx's -p prefix, when the config's relative paths need one")
    parser.add_argument("--steps", default="5,50,100", help="the candidate's weight at each step, percent")
    parser.add_argument("--rates", default="1,5", help="the canary's rates per stage (see mem0-fixed canary)")
    parser.add_argument("--stage-seconds", type=float, default=60.0, help="the canary's stage length (60)")
    parser.add_argument("--api-key", help="the canary's key (default: MEM0_ADMIN_API_KEY)")
    parser.add_argument("--canary-command", default=f"{sys.executable} -m app", help="how to run mem0-fixed")
    parser.add_argument("--split-requests", type=int, default=400, help="GET /health counted per step (400)")
    parser.add_argument("--split-tolerance", type=float, default=5.0, help="allowed split error, points (5)")
    parser.add_argument("--settle-seconds", type=float, default=1.0, help="wait after a reload (1)")
    parser.add_argument("--evidence-dir", type=Path, default=Path("rollout-evidence"))


def run_rollout(args: argparse.Namespace) -> int:
    percents = [int(step) for step in args.steps.split(",") if step.strip()]
    if not percents or any(not 0 < p <= 100 for p in percents):
        print("rollout: --steps must be percentages in 1..100", file=sys.stderr)
        return 2
    try:
        return Rollout(args).run(percents)
    except RolloutError as error:
        print(f"rollout: {error}", file=sys.stderr)
        return 2
