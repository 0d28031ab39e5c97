"""`python -m scripts.bench --peer mem0`, the side-by-side benchmark issue 25's numbers come from, run short: both
systems serve every level without an error and each reports what the README's table shows."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.server_process import REPO_ROOT, clean_environment


def test_the_side_by_side_bench_measures_both_systems_on_every_level(tmp_path):
    out = tmp_path / "peer.json"
    command = [sys.executable, "-m", "scripts.bench", "--peer", "mem0", "--levels", "write1-c1,search-hit-c8"]

    result = subprocess.run(
        [*command, "--requests", "30", "--out", str(out)],
        cwd=REPO_ROOT,
        env=clean_environment(XDG_RUNTIME_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["levels"]) == {"write1-c1", "search-hit-c8"}
    for level in report["levels"].values():
        for system in ("ours", "mem0"):
            measured = level[system]
            assert (measured["requests"], measured["errors"]) == (30, {})
            assert measured["server_cpu_ms_per_request"] > 0 and measured["rss_mb"] > 0
    # Repeated searches: ours answers from its result cache, mem0 embeds every query again.
    hits = report["levels"]["search-hit-c8"]
    assert (hits["ours"]["embed_calls_per_request"], hits["mem0"]["embed_calls_per_request"]) == (0.0, 1.0)
    assert set(report["ratio"]["write1-c1"]) == {"throughput", "p95", "overhead_p50", "server_cpu"}
    assert "ours/mem0" in result.stdout
