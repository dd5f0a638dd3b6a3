"""PBX outages of 30 s, 3 min, 10 min and 30 min: how soon sending resumes after the PBX's
return, and how often the dispatcher asked while it was away.

Reproduce:  .venv/bin/python benchmarks/bench_outage.py [--seeds 5] [--outages 30,180,600,1800]

The dispatcher (default ``RetryTiming``, the real outbox and its writer thread) sends 3,000 leads
to a fake PBX on simulated time (an event loop whose timers fire at once, in order), so a
30-minute outage takes seconds. Three seconds in, the PBX goes away for the outage's length:

- ``down``: nothing answers (connections refused): probes are list calls;
- ``import``: a manual import, every insert answers 103 while list calls work: the probe is a lead.

Printed per outage: seconds from the return to the first lead inserted (worst over the seeds),
calls while away per minute (after the first minute, the highest over the seeds), and the longest
stretch without a call.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers.outage import OutageRun, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--outages", default="30,180,600,1800")
    parser.add_argument("--kinds", default="down,import")
    args = parser.parse_args()
    outages = [float(x) for x in args.outages.split(",")]
    command = ".venv/bin/python benchmarks/bench_outage.py"
    print("| Outage | Kind | Return to first insert (worst) | Calls/min while away (after 1 min) "
          "| Longest gap | Reproduce |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for kind in args.kinds.split(","):
        for outage in outages:
            runs: list[OutageRun] = []
            with tempfile.TemporaryDirectory() as folder:
                for seed in range(1, args.seeds + 1):
                    runs.append(simulate(Path(folder), outage, kind=kind, seed=seed))
            recovery = [r.recovery for r in runs if r.recovery is not None]
            worst = "never" if len(recovery) < len(runs) else f"{max(recovery):.1f} s"
            rate = max(r.per_minute(60.0) for r in runs) if outage > 60 else None
            overall = max(r.per_minute() for r in runs)
            rate_text = f"{rate:.1f}" if rate is not None else f"({overall:.1f} overall)"
            gap = max(r.largest_gap() for r in runs)
            again = f"{command} --seeds {args.seeds} --outages {outage:g} --kinds {kind}"
            print(f"| {outage:g} s | {kind} | {worst} | {rate_text} | {gap:.1f} s | `{again}` |")


if __name__ == "__main__":
    main()
