"""Dependencies run one way: sim knows nothing of harness or reports; reports not of harness."""

from __future__ import annotations

import ast
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
