"""Everything a finished run is checked against: its scenario's expectations and, when
given, a baseline. ``herdlab run`` and ``herdlab check`` call this; the pytest plugin checks
each expectation itself (``sim.decide.expect.check``), one test each.

Tolerances for the baseline, most specific first: ``--tolerance FIGURE=AMOUNT``, the
scenario's ``tolerances:``, ``--tolerance AMOUNT%`` (every other figure), 5%.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.decide.baseline import (
    DEFAULT_TOLERANCE,
    BaselineError,
    baseline_file,
    check_comparable,
    compare,
    load_baseline,
)
from sim.decide.expect import Evaluation, evaluate
from sim.decide.figures import figure
from sim.scenario.model import Scenario, Tolerance


@dataclass(frozen=True, slots=True)
class Tolerances:
    """Tolerances given on the command line: per figure, and one for every other figure."""

    per_figure: Mapping[str, Tolerance] = field(default_factory=dict)
    default: Tolerance | None = None

    def for_scenario(self, scenario: Scenario) -> tuple[dict[str, Tolerance], Tolerance]:
        """(per figure, default) for one scenario: the command line's per-figure ones over
        the scenario's, then the command line's default or 5%."""
        return (
            {**scenario.tolerances, **self.per_figure},
            self.default or DEFAULT_TOLERANCE,
        )


def parse_tolerances(options: Sequence[str]) -> Tolerances:
    """``--tolerance`` values: ``FIGURE=AMOUNT`` (a number in the figure's unit, or N%) or
    ``N%`` for every figure. ValueError (with the option and the rule) otherwise."""
    per: dict[str, Tolerance] = {}
    default: Tolerance | None = None
    for text in options:
        name, sep, amount = text.partition("=")
        if sep:
            figure(name.strip())  # UnknownFigure, with a "did you mean"
            per[name.strip()] = _amount(amount, text)
        else:
            if not text.strip().endswith("%"):
                raise ValueError(
                    f"--tolerance {text}: a tolerance for every figure is a percentage"
                    " (e.g. 5%); give absolute ones per figure (success_rate=0.01)"
                )
            default = _amount(text, text)
    return Tolerances(per, default)


def _amount(amount: str, option: str) -> Tolerance:
    amount = amount.strip()
    try:
        return Tolerance.parse(amount if amount.endswith("%") else float(amount))
    except ValueError:
        raise ValueError(
            f"--tolerance {option}: {amount!r} is not a number >= 0 or a percentage like 5%"
        ) from None


def open_baseline(directory: Path, scenario: Scenario, mode: str) -> tuple[Path, dict[str, Any]]:
    """The baseline record for ``scenario`` under ``directory``, checked before anything is
    run: BaselineError for another scenario, mode or results format."""
    path = baseline_file(directory, scenario.name)
    record = load_baseline(path)
    check_comparable({"scenario": {"name": scenario.name}, "mode": mode}, record, path)
    return path, record


def check_run(
    scenario: Scenario,
    record: Mapping[str, Any],
    baseline: tuple[Path, Mapping[str, Any]] | None = None,
    tolerances: Tolerances | None = None,
) -> Evaluation:
    """The verdicts of one finished run: its expectations (those of its mode), then, with a
    baseline (from :func:`open_baseline`), every figure against it."""
    evaluation = evaluate(scenario.expect, record["policies"], record["mode"], scenario.source)
    lab_only = tuple(
        f"{scenario.source}:{e.line}: {e.describe()}: checked by herdlab lab only"
        for e in scenario.client_expect
    )
    evaluation = evaluation + Evaluation(not_checked=lab_only)
    if baseline is not None:
        path, old = baseline
        check_comparable(record, old, path)
        per, default = (tolerances or Tolerances()).for_scenario(scenario)
        evaluation = evaluation + compare(record, old, per, default, where=str(path))
    return evaluation


__all__ = [
    "BaselineError",
    "Tolerances",
    "check_run",
    "open_baseline",
    "parse_tolerances",
]
