"""How long the telemetry flusher's spill-file work takes to drain a full spill: fill it with `--events`, then
read and forget `--batch` events at a time until empty (the database side is left out).

python -m scripts.bench_spill [--events 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from app.telemetry.backlog import Backlog, Event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        backlog = Backlog(0, Path(directory) / "spill.sqlite3", args.events, lambda n: None)
        events = [Event(f"{n:032x}", "bench", "2026-01-01T00:00:00+00:00", {"n": n}) for n in range(args.events)]
        started = time.perf_counter()
        for first in range(0, args.events, args.batch):
            backlog.write_spill(events[first : first + args.batch])
        filled = time.perf_counter() - started
        started = time.perf_counter()
        while backlog.spilled:
            backlog.remove_spilled(len(backlog.read_spilled(args.batch)))
        drained = time.perf_counter() - started
        backlog.close()
    print(f"{args.events} events in batches of {args.batch}: spilled in {filled:.2f} s, drained in {drained:.2f} s")


if __name__ == "__main__":
    main()
