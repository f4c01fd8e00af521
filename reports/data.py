"""Read a results directory: ``results.json`` and the per-policy time-series CSVs."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class ResultsError(Exception):
    """A results directory that cannot be read, with the file and the reason."""


@dataclass(frozen=True)
class PolicySeries:
    name: str
    summary: dict[str, Any]
    ci95: dict[str, Any]
    distributions: dict[str, Any]
    series: dict[str, np.ndarray]  # column -> values per bucket


@dataclass(frozen=True)
class Results:
    directory: Path
    record: dict[str, Any]
    policies: tuple[PolicySeries, ...]

    @property
    def scenario(self) -> dict[str, Any]:
        return dict(self.record["scenario"])

    @property
    def bucket_s(self) -> float:
        return float(self.record["scenario"]["bucket_s"])


def load_results(directory: Path) -> Results:
    path = directory / "results.json"
    try:
        record = json.loads(path.read_text())
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    policies = []
    for p in record.get("policies", []):
        csv_path = directory / p["timeseries"]
        try:
            with csv_path.open(newline="") as f:
                rows = list(csv.reader(f))
        except OSError as exc:
            raise ResultsError(f"{csv_path}: cannot read: {exc.strerror}") from None
        header, body = rows[0], rows[1:]
        data = np.asarray(body, dtype=float) if body else np.zeros((0, len(header)))
        series = {name: data[:, i] for i, name in enumerate(header)}
        policies.append(
            PolicySeries(p["name"], p["summary"], p.get("ci95", {}), p["distributions"], series)
        )
    return Results(directory, record, tuple(policies))
