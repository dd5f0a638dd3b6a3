"""Chaos: everything at once, several seeds; lost, duplicated and misreported leads must all be 0.

Reproduce:  .venv/bin/python benchmarks/bench_chaos.py [--leads 1000] [--seeds 1 2 3]

One run per seed, all real processes: ``noojee-desk sim`` (state file, capacity 4, 10 ms a call)
with 10% failures (103) and 10% dropped answers; ``noojee-desk send --json`` over a 1,000-row file
in which every 25th row repeats the phone number of an earlier row. During the run, at moments the
seed draws: a manual import on the PBX (2 s of 103s), the PBX killed and started again after 2 s,
and three ``kill -9`` of the sender, each followed by the same command again. A last run of the
same command then reports every row, and the report is compared with the PBX's state row by row:

- lost: a row that should be on the PBX and is not (nor reported rejected for its own reason);
- duplicated: an external id, or a phone number, on the PBX twice;
- misreported: "delivered" for a lead the PBX does not have, or anything but "delivered" (or
  "duplicate", which says it may be this lead's own earlier attempt) for a lead the PBX has.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_faults import Sim, send, wait_until

#: Every n-th row repeats the phone number of the row 13 above it.
REPEAT_EVERY = 25


def make_file(path: Path, count: int) -> dict[int, tuple[str, str]]:
    """The rows: (what the row must become, its phone). Repeats are not known in advance to be
    rejected (their first attempt's answer may be lost), so they are checked apart."""
    rows: dict[int, tuple[str, str]] = {}
    lines = ["Name,FirstPhone"]
    for row in range(1, count + 1):
        if row % REPEAT_EVERY == 0 and row > 13:
            phone = rows[row - 13][1]
            rows[row] = ("repeat", phone)
        else:
            phone = f"0414{row:06d}"
            rows[row] = ("delivered", phone)
        lines.append(f"Person {row},{phone}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


def judge(report: str, pbx: dict[str, Any], rows: dict[int, tuple[str, str]]) -> dict[str, Any]:
    lines = [json.loads(line) for line in report.splitlines() if line.strip()]
    results = {r["row"] - 1: r for r in lines[:-1]}  # the report names file rows: header is 1
    leads = [lead for lead in pbx["leads"] if lead["campaign_id"] == 42]
    by_external = Counter(lead["external_id"] for lead in leads)
    by_phone = Counter(lead["fields"]["FirstPhone"] for lead in leads)
    duplicated = sum(n - 1 for n in by_external.values() if n > 1)
    duplicated += sum(n - 1 for n in by_phone.values() if n > 1)
    on_pbx = set(by_external)
    phones_on_pbx = set(by_phone)
    lost = misreported = 0
    statuses: Counter[str] = Counter()
    for number, (want, phone) in rows.items():
        result = results.get(number)
        if result is None:
            lost += 1
            continue
        status = result["status"]
        statuses[status] += 1
        landed = result["external_id"] in on_pbx
        if (status == "delivered" and not landed) or (
            landed and status not in ("delivered", "duplicate")
        ):
            misreported += 1
        if want == "delivered" and phone not in phones_on_pbx:
            lost += 1
        if status in ("pending", "failed", "held"):
            lost += 1
    return {
        "lost": lost,
        "duplicated": duplicated,
        "misreported": misreported,
        "statuses": dict(sorted(statuses.items())),
    }


def chaos(folder: Path, count: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    sim = Sim(folder / "pbx.json", "--capacity", "4", "--min-service", "0.01",
              "--jitter", "0.002", "--failure-rate", "0.1", "--drop-rate", "0.1",
              "--seed", str(seed))  # fmt: skip
    path = folder / "leads.csv"
    rows = make_file(path, count)
    home = folder / "desk"
    kills = sorted(rng.uniform(0.1, 0.8) for _ in range(3))
    import_at = rng.uniform(0.1, 0.7)
    pbx_kill_at = rng.uniform(0.2, 0.8)
    events = sorted([(f, "kill sender") for f in kills] + [(import_at, "import"),
                     (pbx_kill_at, "kill pbx")])  # fmt: skip
    started = time.monotonic()
    proc = send(path, sim.url, home)
    try:
        for fraction, what in events:
            wait_until(lambda f=fraction: sim.count() >= count * f)
            if what == "kill sender":
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                proc = send(path, sim.url, home)
            elif what == "import":
                sim.post("faults", {"import_seconds": 2.0})
            else:
                sim.kill()
                time.sleep(2.0)
                sim.start()
        proc.communicate(timeout=900)
        proc = send(path, sim.url, home)  # the same command again: it reports every row
        out, _err = proc.communicate(timeout=900)
        state = sim.state()
    finally:
        if proc.poll() is None:
            proc.kill()
        sim.stop()
    return {
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "events": [what for _, what in events],
        **judge(out, state, rows),
        "drops": state["drops"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    failures = 0
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as folder:
            result = chaos(Path(folder), args.leads, seed)
        print(json.dumps(result))
        failures += result["lost"] + result["duplicated"] + result["misreported"]
    print(
        f"lost + duplicated + misreported over {len(args.seeds)} seeds: {failures}"
        f"   (reproduce: .venv/bin/python benchmarks/bench_chaos.py --leads {args.leads} "
        f"--seeds {' '.join(map(str, args.seeds))})"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
