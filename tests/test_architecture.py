"""Dependencies run one way: sim knows nothing of harness or reports; reports not of harness."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FORBIDDEN = {"sim": {"harness", "reports"}, "reports": {"harness"}}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upward(package: str) -> None:
    for path in (REPO / package).rglob("*.py"):
        bad = imported_top_levels(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_no_module_draws_from_a_global_random_source() -> None:
    for package in ("sim", "harness", "reports"):
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text()
            assert "np.random.seed" not in text and "np.random.rand" not in text, path
            assert "import random" not in text.replace("import random_", ""), path


# What ``herdlab --help`` and ``herdlab validate`` must not import: each costs start-up
# time (numpy alone ~0.1 s) and none is needed to read a scenario. shutil brings zlib,
# bz2 and lzma (7 M instructions): argparse imports it for the terminal's width, unless
# given a formatter that finds it (harness.cli._Formatter).
HEAVY = (
    "numpy", "simpy", "scipy", "matplotlib", "aiohttp", "redis", "optuna", "dask",
    "sim.world", "sim.sweep.spec", "sim.decide.objective", "reports", "shutil",
)  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [["--help"], ["validate", "scenarios/thundering-herd.yaml"], ["validate", "--help"]],
)
def test_help_and_validate_import_nothing_heavy(args: list[str]) -> None:
    code = (
        "import contextlib, io, sys\n"
        "from harness.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({args!r})\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    modules = set(out.stdout.split())
    assert "harness.cli" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == [], f"herdlab {' '.join(args)} imports {heavy}"
