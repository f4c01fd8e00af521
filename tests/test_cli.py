"""The command line: exit codes, no tracebacks for user mistakes, the seed's schedule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import MINIMAL, SCENARIOS


def herdlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_validate_passes_every_shipped_scenario() -> None:
    files = sorted(str(p) for p in SCENARIOS.glob("*.yaml"))
    result = herdlab("validate", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok") == len(files)


def test_validate_prints_every_error_with_its_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("count: 10", "count: -1").replace("seed-default", "nope"))
    result = herdlab("validate", str(bad), str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert f"{bad}:4: clients.count: must be >= 1, got -1" in lines
    assert any(line.startswith(f"{bad}:7: policies[0]:") for line in lines)
    assert any("missing.yaml: cannot read the file" in line for line in lines)
    assert lines[-1] == "3 problems found"


def test_schema_is_json_and_describes_the_top_level_keys() -> None:
    result = herdlab("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert {"name", "duration_s", "clients", "policies", "faults"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_policy_show_prints_the_seed_schedule() -> None:
    result = herdlab("policy", "show", "seed-default")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    retry_rows = rows[:3]
    assert [r[0] for r in retry_rows] == ["1", "2", "3"]
    for (low, high), row in zip([(900, 1100), (1800, 2200), (3600, 4400)], retry_rows, strict=True):
        assert low <= float(row[1]) and float(row[4]) <= high  # min and max within the band
    assert "4 attempts in all (3 retries)" in result.stdout


def test_policy_show_unknown_name_is_a_clear_error() -> None:
    result = herdlab("policy", "show", "ful-jitter")
    assert result.returncode == 2
    assert "did you mean 'full-jitter'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_flag_exits_2_without_traceback() -> None:
    result = herdlab("validate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_validate_goes_on_past_unreadable_files_without_a_traceback(tmp_path: Path) -> None:
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(MINIMAL.encode().replace(b"count: 10", b"count: 1\x000"))
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 2000 + "]" * 2000 + "\n")
    good = sorted(SCENARIOS.glob("*.yaml"))[0]
    result = herdlab("validate", str(nul), str(deep), str(tmp_path), str(good))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{good}: ok" in result.stdout  # checked after the broken ones
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"{nul}:4: character U+0000") for line in lines)
    assert any(line.startswith(f"{deep}:1: nested deeper") for line in lines)
    assert f"{tmp_path}: is a directory, not a scenario file" in lines


@pytest.mark.parametrize("columns", [None, "0", "-5", "abc", "50", "200"])
def test_the_help_width_is_the_one_shutil_gives(
    columns: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from harness.cli import _terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert _terminal_columns() == shutil.get_terminal_size().columns
