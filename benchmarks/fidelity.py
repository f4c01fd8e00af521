"""The fidelity suite: the seed's four stories and the thundering herd, each simulated and
run for real at a scale both sides can run, and one fidelity table for all of them.

    python benchmarks/fidelity.py [--out DIR] [--scale F] [--keep-alive] [--report]

is ``herdlab check --mode both`` over the five stories' files (the suite itself lives in
``harness/cli/check.py``; each file's ``fidelity: {scale: F}`` is the scale it runs at).
Results go to DIR/NAME/ (default out/fidelity/). Target: every row within tolerance and
no degraded run. Exit 0 when so, 1 when a row or an expectation fails or a run was
degraded, 3 when a real component could not start.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.cli import main as herdlab  # noqa: E402

#: the stories: 503 burst, stream cut, job timeout, store outage, thundering herd
STORIES = (
    "cloud-run-503-burst.yaml",
    "sse-drop-reconnect.yaml",
    "job-timeout.yaml",
    "store-degradation.yaml",
    "thundering-herd.yaml",
)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--out" not in args:
        args += ["--out", str(ROOT / "out" / "fidelity")]
    files = [str(ROOT / "scenarios" / f) for f in STORIES]
    return herdlab(["check", "--mode", "both", *files, *args])


if __name__ == "__main__":
    sys.exit(main())
