"""The result cache: one JSON file per finished unit, under the unit's key.

A key is the SHA-256 of everything that decides a unit's numbers (the scenario and policy
as plain values, the seed, the replication and herdlab's version), so a cached result is
reused only when it would be recomputed identically. Files are written whole and renamed
into place: an interrupted write leaves no half a result.

A unit that kept its samples (``Unit.samples``: a replication whose percentiles are pooled
with its siblings') stores them beside its summary, ``KEY.npz``, written before the summary:
a summary whose samples are asked for and missing is computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

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

    def _path(self, key: str, suffix: str = ".json") -> Path:
        return self.folder / key[:2] / f"{key}{suffix}"

    def get(self, key: str, samples: bool = False) -> UnitResult | None:
        """The unit's result, with its samples if ``samples``; None when absent or
        unreadable (computed again)."""
        try:
            data = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        kept = None
        if samples:
            try:
                with np.load(self._path(key, ".npz")) as npz:
                    kept = {name: npz[name] for name in npz.files}
            except (OSError, ValueError, zipfile.BadZipFile):
                return None
        return UnitResult(key, data["summary"], float(data.get("sim_s", 0.0)), samples=kept)

    def put(self, result: UnitResult) -> None:
        path = self._path(result.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if result.samples is not None:  # float64 as they are: pooled exactly as fresh ones
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **result.samples)  # type: ignore[arg-type]  # (numpy stubs: allow_pickle)
            tmp.replace(self._path(result.key, ".npz"))
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        record = {"key": result.key, "summary": result.summary, "sim_s": result.sim_s}
        # key order kept: a cached summary must write out exactly as a fresh one
        tmp.write_text(json.dumps(record, allow_nan=False) + "\n")
        tmp.replace(path)

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.json")) if self.folder.exists() else 0
