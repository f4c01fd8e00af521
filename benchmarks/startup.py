"""Start-up cost of the command line: CPU time of ``herdlab --help`` and of
``herdlab validate FILE``, against a bare ``python -c pass`` of the same interpreter.

    python benchmarks/startup.py [--repeats 15]

Each command runs as a fresh process, interleaved with the others, ``--repeats``
times; the best (least disturbed) CPU time (user + system, from the kernel's child
accounting) and wall time of each are printed. Bytecode caches are written first
(one unmeasured run each, without PYTHONDONTWRITEBYTECODE), as an installed herdlab
has them: otherwise every run would compile its modules from source.
Asserts nothing (target: < 0.15 s each).

    python -X importtime -m harness.cli validate FILE 2> imports.txt

shows which imports the time goes to.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "thundering-herd.yaml"
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "herdlab --help": [sys.executable, "-m", "harness.cli", "--help"],
    "herdlab validate": [sys.executable, "-m", "harness.cli", "validate", str(SCENARIO)],
}


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    wall_s = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu_s, wall_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for argv in COMMANDS.values():  # write the bytecode caches; not measured
        run_once(argv, env)
    best = {name: (float("inf"), float("inf")) for name in COMMANDS}
    for _ in range(args.repeats):
        for name, argv in COMMANDS.items():
            cpu_s, wall_s = run_once(argv, env)
            best[name] = (min(best[name][0], cpu_s), min(best[name][1], wall_s))
    print(f"start-up, best of {args.repeats} (target < 0.15 s CPU for each herdlab command):")
    for name, (cpu_s, wall_s) in best.items():
        print(f"  {name:18} CPU {cpu_s:.3f} s   wall {wall_s:.3f} s")


if __name__ == "__main__":
    main()
