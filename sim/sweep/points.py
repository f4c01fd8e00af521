"""The points of a sweep, and how a point becomes a scenario and a policy.

A point is a base policy and one value per parameter. It is realized from the scenario's
checked plain values (sent to each worker once, in :class:`SweepWorkload`): the policy
parameters change a copy of the base policy's record, the scenario parameters a copy of
the scenario, and the loader builds both exactly as it builds a file. A point's cache key
is the SHA-256 of those changed plain values (+ seed, replication, herdlab version): the
same point has the same key in any sweep, in any order, so an extended grid reuses it.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.cost import estimate
from sim.execute.cache import unit_key
from sim.execute.units import Unit
from sim.policies.policy import Policy
from sim.scenario.errors import Problem, ScenarioError
from sim.scenario.grammar import Checker
from sim.scenario.loader import build_scenario
from sim.scenario.model import Scenario
from sim.scenario.schema import POLICY_RECORD, SCENARIO
from sim.sweep.paths import set_value
from sim.sweep.spec import Choice, Parameter, Range, SweepSpec, policy_item

#: scenario keys that describe rather than simulate: left out of a point's key
_NOT_IN_KEY = ("name", "description", "expect", "policies")


@dataclass(frozen=True, slots=True)
class Point:
    """One point: its number in the sweep, the base policy's index, a value per parameter
    (in the sweep's parameter order)."""

    index: int
    policy: int
    values: tuple[Any, ...]

    @property
    def id(self) -> str:
        return f"p{self.index:04d}"


def realize_values(
    spec_values: dict[str, Any],
    base_policy: Any,
    parameters: Sequence[Parameter],
    values: Sequence[Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scenario's and the policy's plain values at a point (copies, changed)."""
    scenario = copy.deepcopy(spec_values)
    policy = policy_item(base_policy)
    for p, v in zip(parameters, values, strict=True):
        if p.in_policy:
            set_value(policy, p.steps, copy.deepcopy(v), POLICY_RECORD)
        else:
            set_value(scenario, p.steps, copy.deepcopy(v), SCENARIO)
    scenario["policies"] = [policy]
    scenario["expect"] = []
    return scenario, policy


@dataclass(frozen=True, slots=True)
class SweepWorkload:
    """What every point of a sweep shares: the scenario's plain values and lines, the base
    policies and the parameters. Realizes a unit's :class:`Point`."""

    values: dict[str, Any]
    lines: dict[str, int]
    source: str
    raw: bytes
    policies: tuple[Any, ...]
    parameters: tuple[Parameter, ...]

    @classmethod
    def of(cls, spec: SweepSpec) -> SweepWorkload:
        return cls(
            spec.values,
            spec.lines,
            str(spec.scenario_file),
            spec.raw,
            spec.policies,
            spec.parameters,
        )

    def plain(self, point: Point) -> tuple[dict[str, Any], dict[str, Any]]:
        return realize_values(
            self.values, self.policies[point.policy], self.parameters, point.values
        )

    def realize(self, spec: Hashable) -> tuple[Scenario, Policy]:
        assert isinstance(spec, Point)
        scenario_values, _ = self.plain(spec)
        import yaml

        checker = Checker(self.source, yaml.SafeLoader(""), [], self.lines)
        scenario = build_scenario(scenario_values, checker, Path(self.source), self.raw)
        return scenario, scenario.policies[0]

    def units(self, point: Point, replications: int, cost_s: float = 0.0) -> list[Unit]:
        """The point's units, one per replication, seeded by the point's own scenario seed
        and keyed by its plain values. With more than one replication each keeps its
        samples, which the point's percentiles pool."""
        scenario_values, policy = self.plain(point)
        seed = int(scenario_values["seed"])
        what = {
            "scenario": {k: v for k, v in scenario_values.items() if k not in _NOT_IN_KEY},
            "policy": {k: v for k, v in policy.items() if k != "name"},
        }
        return [
            Unit(unit_key(what, seed, r), point, seed, r, samples=replications > 1, cost_s=cost_s)
            for r in range(replications)
        ]

    def cost_s(self, point: Point) -> float:
        """The point's estimated simulation seconds (:func:`sim.cost.estimate`);
        ScenarioError when it cannot be built."""
        scenario, policy = self.realize(point)
        return estimate(scenario, [policy]).seconds

    def check(self, points: Sequence[Point], sweep_file: str, line: int) -> dict[int, float]:
        """Build every point once; ScenarioError lists the points that cannot be built
        (a cap below a base, a fault past the scenario's end), each once per rule.
        Returns every point's estimated simulation seconds, by index."""
        problems: dict[str, Problem] = {}
        costs: dict[int, float] = {}
        for point in points:
            try:
                costs[point.index] = self.cost_s(point)
            except ScenarioError as exc:
                for p in exc.problems:
                    text = f"{p.path}: {p.message}"
                    if text not in problems:
                        param = self._parameter_at(p.path)
                        problems[text] = Problem(
                            sweep_file,
                            line if param is None else param.line,
                            "sweep.parameters" + ("" if param is None else f".{param.path}"),
                            f"point {describe(self.parameters, point)} makes {text}",
                        )
        if problems:
            raise ScenarioError(problems.values())
        return costs

    def _parameter_at(self, path: str) -> Parameter | None:
        """The parameter a built point's problem at ``path`` comes from: the one setting
        that path, else one setting a key beside it (a base_s that passes the cap_s)."""
        if path.startswith("policies["):
            path = path.split(".", 1)[1] if "." in path else ""
        for p in self.parameters:
            if p.path == path:
                return p
        parent = path.rsplit(".", 1)[0]
        for p in self.parameters:
            if p.path.startswith(parent + "."):
                return p
        return None


def describe(parameters: Sequence[Parameter], point: Point) -> str:
    return ", ".join(f"{p.path}={_show(v)}" for p, v in zip(parameters, point.values, strict=True))


def _show(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    return "null" if v is None else str(v)


# ------------------------------------------------------------------ strategies


def grid_points(spec: SweepSpec) -> list[Point]:
    """Every combination, base policy outermost, then the parameters in file order."""
    axes = [
        p.values.values if isinstance(p.values, Choice) else p.values.grid()
        for p in spec.parameters
    ]
    combos = list(itertools.product(*axes))
    return [
        Point(i * len(combos) + j, i, tuple(c))
        for i in range(len(spec.policies))
        for j, c in enumerate(combos)
    ]


def _from_unit(p: Parameter, u: float) -> Any:
    if isinstance(p.values, Choice):
        vs = p.values.values
        return vs[min(len(vs) - 1, int(u * len(vs)))]
    assert isinstance(p.values, Range)
    return p.values.at(u)


def random_points(spec: SweepSpec) -> list[Point]:
    """``trials`` uniform draws (log-uniform for log ranges) from the sweep's seed, the
    same draws for every base policy."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([spec.seed, 14])))
    u = rng.random((spec.trials, len(spec.parameters)))
    return _cross(spec, u)


def halton(n: int, dims: int, seed: int) -> np.ndarray:
    """The first ``n`` points (from index 1) of the Halton sequence in ``dims`` dimensions,
    bases the first primes, each dimension shifted by a seeded uniform modulo 1
    (Cranley-Patterson rotation): low discrepancy, and a seed to vary it."""
    primes: list[int] = []
    k = 2
    while len(primes) < dims:
        if all(k % q for q in primes):
            primes.append(k)
        k += 1
    shift = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 15]))).random(dims)
    out = np.empty((n, dims))
    for d, base in enumerate(primes):
        for i in range(n):
            f, r, x = 1.0, 0.0, i + 1
            while x > 0:
                f /= base
                r += f * (x % base)
                x //= base
            out[i, d] = (r + shift[d]) % 1.0
    return out


def halton_points(spec: SweepSpec) -> list[Point]:
    return _cross(spec, halton(spec.trials, len(spec.parameters), spec.seed))


def _cross(spec: SweepSpec, u: np.ndarray) -> list[Point]:
    rows = [
        tuple(_from_unit(p, float(x)) for p, x in zip(spec.parameters, row, strict=True))
        for row in u
    ]
    return [
        Point(i * len(rows) + j, i, row)
        for i in range(len(spec.policies))
        for j, row in enumerate(rows)
    ]


def strategy_points(spec: SweepSpec) -> list[Point]:
    """The points of a grid, random or halton sweep (search asks Optuna as it goes)."""
    if spec.strategy == "grid":
        return grid_points(spec)
    if spec.strategy == "random":
        return random_points(spec)
    if spec.strategy == "halton":
        return halton_points(spec)
    raise ValueError(f"strategy {spec.strategy!r} has no fixed points")
