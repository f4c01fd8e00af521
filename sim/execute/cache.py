"""The result cache: one JSON file per finished unit, under the unit's key.

A key is the SHA-256 of everything that decides a unit's numbers (the scenario and policy
as plain values, the seed, the replication and herdlab's version), so a cached result is
reused only when it would be recomputed identically. Files are written whole and renamed
into place: an interrupted write leaves no half a result.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from sim import __version__
from sim.decide.figures import names as figure_names
from sim.execute.units import UnitResult


def unit_key(what: Any, seed: int, replication: int) -> str:
    """The cache key of a unit: ``what`` is any JSON-able description of its scenario and
    policy (sorted keys, so dict order does not matter). The registry's figure names are
    in it too: a summary cached before a figure was added is not reused without it."""
    text = json.dumps(
        {
            "what": what,
            "seed": seed,
            "replication": replication,
            "herdlab": __version__,
            "figures": figure_names(),
        },
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """Finished units' summaries in ``folder`` (created on first write)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> UnitResult | None:
        try:
            data = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None  # absent, or unreadable: computed again
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        return UnitResult(key, data["summary"], float(data.get("sim_s", 0.0)))

    def put(self, result: UnitResult) -> None:
        path = self._path(result.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        record = {"key": result.key, "summary": result.summary, "sim_s": result.sim_s}
        # key order kept: a cached summary must write out exactly as a fresh one
        tmp.write_text(json.dumps(record, allow_nan=False) + "\n")
        tmp.replace(path)

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.json")) if self.folder.exists() else 0
