"""The fidelity suite: the seed's four stories and the thundering herd, each simulated and
run for real at a scale both sides can run, and one fidelity table for all of them.

    python benchmarks/fidelity.py [--out DIR] [--only NAME ...] [--keep-alive]

Each story is ``herdlab run SCENARIO --mode both --scale F`` (results in DIR/NAME/).
Target: every row within tolerance and no degraded run. Exit 0 when so, 1 when a row
fails or a run was degraded, 3 when a real component could not start.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.fidelity import run_both  # noqa: E402
from harness.procs import ProcessError  # noqa: E402
from reports.fidelity import fidelity_table, self_check_lines, write_all_reports  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402

#: (story, scenario file, scale): scales that keep the real side well under the harness's
#: capacity (README, "Capacity") on a shared 2-core machine
STORIES = (
    ("503 burst", "cloud-run-503-burst.yaml", 0.5),
    ("stream cut", "sse-drop-reconnect.yaml", 0.2),
    ("job timeout", "job-timeout.yaml", 1.0),
    ("store outage", "store-degradation.yaml", 0.2),
    ("thundering herd", "thundering-herd.yaml", 0.1),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "fidelity"))
    parser.add_argument("--only", nargs="*", metavar="NAME", help="scenario names to run")
    parser.add_argument("--keep-alive", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    failed = degraded = False
    tables = []
    for story, file, scale in STORIES:
        scenario = load_scenario(ROOT / "scenarios" / file)
        if args.only and scenario.name not in args.only:
            continue
        cmd = f"herdlab run scenarios/{file} --mode both --scale {scale:g}"
        print(f"== {story}: {cmd}", flush=True)
        started = time.monotonic()
        try:
            record = run_both(
                scenario,
                out / scenario.name,
                scale=scale,
                keep_alive=args.keep_alive,
                progress=lambda m: print(f"   {m}", flush=True),
            )
        except ProcessError as exc:
            print(f"cannot start the real bench: {exc}", file=sys.stderr)
            return 3
        write_all_reports(out / scenario.name)
        for line in self_check_lines(record):
            print(f"   {line}")
        table = fidelity_table(record)
        print(table)
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
        tables.append((story, cmd, table))
        failed |= record["fidelity"]["status"] == "FAIL"
        degraded |= bool(record["degraded"])
    print("\n== fidelity suite")
    for story, cmd, table in tables:
        print(f"\n{story}: {cmd}\n{table}")
    print(f"\nsuite: {'FAIL' if failed else 'PASS'}{', DEGRADED run(s)' if degraded else ''}")
    return 1 if failed or degraded else 0


if __name__ == "__main__":
    sys.exit(main())
