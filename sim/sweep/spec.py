"""A sweep's definition: read from a ``sweep:`` block, checked with FILE:LINE.

A sweep lives in a scenario (a ``sweep:`` key next to ``policies:``) or in a file of its
own whose ``sweep.scenario`` names the scenario, relative to that file. Its parameters are
paths, each with the values to try::

    sweep:
      parameters:
        retry.max_attempts: [3, 4, 6, 8]                 # these values
        retry.backoff.base_s: {log: [0.1, 5], points: 8} # 8 points, evenly spaced in log
        faults[0].end_s: {range: [35, 90], points: 6}    # 6 points, evenly spaced

Every value is checked against the rule of the key it sets, at the line it stands on;
problems that need the whole scenario (a cap below a base, a fault past the end) are found
when the points are built, before anything runs.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sim.decide.objective import Objective, default_objective, objective_for
from sim.scenario.errors import Problem, ScenarioError
from sim.scenario.grammar import Checker, Number, Spec, String, complete
from sim.scenario.loader import _Builder, _parse, build_scenario, parse_scenario, top_level
from sim.scenario.model import Scenario
from sim.scenario.schema import POLICY_RECORD, SCENARIO, SWEEP_FILE
from sim.sweep.paths import (
    FIXED_SCENARIO_KEYS,
    PathError,
    Step,
    is_policy_path,
    parse_path,
    resolve,
)

#: significant digits of generated numbers: short enough to read and paste
DIGITS = 4


def tidy(x: float, integer: bool) -> float | int:
    """A generated number as written: whole for an integer key, else 4 significant digits."""
    if integer:
        return round(x)
    return float(f"{x:.{DIGITS}g}")


@dataclass(frozen=True, slots=True)
class Choice:
    """Values listed in the file (any kind: numbers, names, null, mappings)."""

    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Range:
    """Numbers between ``low`` and ``high``; ``points`` of them in a grid (evenly spaced,
    in log space if ``log``); drawn continuously by random, halton and search."""

    low: float
    high: float
    log: bool
    points: int | None
    integer: bool

    def grid(self) -> tuple[float | int, ...]:
        n = self.points or 2
        if n == 1:
            return (tidy(self.low, self.integer),)
        if self.log:
            a, b = math.log(self.low), math.log(self.high)
            xs = [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]
        else:
            xs = [self.low + (self.high - self.low) * i / (n - 1) for i in range(n)]
        out: list[float | int] = []
        for x in xs:
            v = tidy(x, self.integer)
            if v not in out:
                out.append(v)
        return tuple(out)

    def at(self, u: float) -> float | int:
        """The value at quantile ``u`` in [0, 1) of the range (log-uniform if ``log``)."""
        if self.log:
            x = math.exp(math.log(self.low) + (math.log(self.high) - math.log(self.low)) * u)
        else:
            x = self.low + (self.high - self.low) * u
        if self.integer:
            return min(int(self.high), math.floor(self.low + (self.high - self.low + 1) * u))
        return tidy(x, False)


@dataclass(frozen=True, slots=True)
class Parameter:
    path: str
    steps: tuple[Step, ...]
    values: Choice | Range
    line: int

    @property
    def in_policy(self) -> bool:
        return is_policy_path(self.path)


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """Everything a sweep needs, the scenario as checked plain values."""

    name: str
    file: Path
    scenario_file: Path
    values: dict[str, Any]  # the scenario's checked plain values (policies, sweep removed)
    lines: dict[str, int]  # the scenario file's line of every path
    raw: bytes  # the scenario file's bytes
    policies: tuple[Any, ...]  # base policies as plain values: preset names or records
    parameters: tuple[Parameter, ...]
    strategy: str
    trials: int
    batch: int
    seed: int
    replications: int
    map_xy: tuple[str, str] | None
    pareto_xy: tuple[str, str] | None
    objective: Objective
    line: int  # of the sweep block

    @property
    def policy_names(self) -> tuple[str, ...]:
        return tuple(p if isinstance(p, str) else p["name"] for p in self.policies)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep (a scenario with ``sweep:`` or a sweep file); ScenarioError lists every
    problem, in the sweep file and in the scenario it names."""
    path = Path(path)
    top = top_level(path)  # None: the parse below reports why
    own_file = top is not None and set(top) == {"sweep"}
    if own_file:
        v, checker, _ = _parse(path, SWEEP_FILE)
        block, block_path = v["sweep"], "sweep"
        scenario_name = block.get("scenario")
        if scenario_name is None:
            raise ScenarioError(
                [
                    Problem(
                        str(path),
                        checker.line_of("sweep"),
                        "sweep.scenario",
                        "is required in a sweep file of its own: the scenario to sweep",
                    )
                ]
            )
        scenario_file = (path.parent / scenario_name).resolve()
        with contextlib.suppress(ValueError):  # shown relative when it can be
            scenario_file = scenario_file.relative_to(Path.cwd())
        sv, sc_checker, raw = parse_scenario(scenario_file)
        problems = list(checker.problems) + list(sc_checker.problems)
    else:
        sv, sc_checker, raw = parse_scenario(path)
        checker = sc_checker
        scenario_file = path
        block, block_path = sv.get("sweep"), "sweep"
        problems = list(checker.problems)
        if block is None:
            problems.append(
                Problem(
                    str(path),
                    1,
                    "sweep",
                    "no sweep here: add a `sweep:` block, or give"
                    " a sweep file (`sweep: {scenario: FILE, parameters: ...}`)",
                )
            )
            raise ScenarioError(problems)
        if "scenario" in block:
            problems.append(
                Problem(
                    str(path),
                    checker.line_of("sweep.scenario"),
                    "sweep.scenario",
                    "only in a sweep file of its own: this sweep is in its scenario",
                )
            )
    if problems:
        raise ScenarioError(problems)
    return _read_block(path, checker, block, block_path, scenario_file, sv, sc_checker, raw)


def _read_block(
    path: Path,
    checker: Checker,
    block: dict[str, Any],
    block_path: str,
    scenario_file: Path,
    sv: dict[str, Any],
    sc_checker: Checker,
    raw: bytes,
) -> SweepSpec:
    problems: list[Problem] = []

    def problem(at: str, message: str, line: int | None = None) -> None:
        problems.append(Problem(str(path), line or checker.line_of(at), at, message))

    # the scenario as it is must build: its own problems, at its own lines
    values = {k: v for k, v in sv.items() if k != "sweep"}
    base = None
    try:
        base = build_scenario(values, fresh(sc_checker), Path(sc_checker.file), raw)
    except ScenarioError as exc:
        problems.extend(exc.problems)
    policies: tuple[Any, ...] = tuple(values["policies"])
    if "policies" in block:
        policies = tuple(block["policies"])
        # a sweep's own policies are checked as a scenario's would be
        b2 = _Builder(checker)
        b2.policies(list(policies), f"{block_path}.policies")
        problems.extend(b2.problems)
    params = _parameters(checker, block["parameters"], f"{block_path}.parameters", values, problem)
    strategy = block["strategy"]
    for p in params:
        if strategy == "grid" and isinstance(p.values, Range) and p.values.points is None:
            problem(
                f"{block_path}.parameters.{p.path}",
                "a grid needs `points:` for a range (how many values to try)",
                p.line,
            )
    known = {p.path for p in params}
    map_xy = None
    if block.get("map") is not None:
        map_xy = (block["map"]["x"], block["map"]["y"])
        for axis, name in zip("xy", map_xy, strict=True):
            if name not in known:
                problem(
                    f"{block_path}.map.{axis}",
                    f"{name!r} is not a parameter of this sweep; parameters: "
                    + ", ".join(sorted(known)),
                )
    pareto_xy = None
    if block.get("pareto") is not None:
        pareto_xy = (block["pareto"]["x"], block["pareto"]["y"])
    if not params and "parameters" in block:
        problem(f"{block_path}.parameters", "give at least one parameter to sweep")
    problems.extend(p for p in checker.problems if p not in problems)
    if problems:
        raise ScenarioError(problems)
    seed = block["seed"] if block["seed"] is not None else values["seed"]
    name = block.get("name") or f"{values['name']}-sweep"
    return SweepSpec(
        name=name,
        file=path,
        scenario_file=scenario_file,
        values=values,
        lines=dict(sc_checker.lines),
        raw=raw,
        policies=policies,
        parameters=tuple(params),
        strategy=strategy,
        trials=block["trials"],
        batch=block["batch"],
        seed=seed,
        replications=block["replications"],
        map_xy=map_xy,
        pareto_xy=pareto_xy,
        objective=scenario_objective(base, values),
        line=checker.line_of(block_path),
    )


def fresh(checker: Checker) -> Checker:
    """A checker with ``checker``'s lines and no problems: for building changed values."""
    return Checker(checker.file, checker.constructor, [], checker.lines)


def scenario_objective(scenario: Scenario | None, values: dict[str, Any]) -> Objective:
    """The objective the points are ranked by: the scenario's ``objective:`` when it has
    one, else the default for its service kind (as the run report ranks)."""
    if scenario is not None:
        return objective_for(scenario)
    return default_objective(values["service"]["kind"], bool(values["faults"]))


def _parameters(
    checker: Checker,
    node: yaml.Node,
    at: str,
    values: dict[str, Any],
    problem: Any,
) -> list[Parameter]:
    if not isinstance(node, yaml.MappingNode):
        problem(at, "expected a mapping of PATH: values", node.start_mark.line + 1)
        return []
    out: list[Parameter] = []
    seen: set[str] = set()
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            problem(at, "keys must be paths, e.g. retry.max_attempts", line)
            continue
        where = f"{at}.{key}"
        if key in seen:
            problem(where, "this parameter is given twice", line)
            continue
        seen.add(key)
        try:
            steps = parse_path(key)
            if is_policy_path(key):
                target = resolve(POLICY_RECORD, steps)
            else:
                if steps[0] in FIXED_SCENARIO_KEYS:
                    raise PathError(
                        f"{steps[0]!r} is not swept: give policy paths"
                        " (retry.*, reconnect.*) or scenario values"
                    )
                target = resolve(SCENARIO, steps, values)
        except PathError as exc:
            problem(where, str(exc), line)
            continue
        spec = target.spec
        if isinstance(value_node, yaml.SequenceNode):
            if not value_node.value:
                problem(where, "give at least one value", line)
                continue
            got = [
                _value(checker, item, target, f"{where}[{i}]")
                for i, item in enumerate(value_node.value)
            ]
            if any(g is _BAD for g in got):
                continue
            out.append(Parameter(key, steps, Choice(tuple(got)), line))
        elif isinstance(value_node, yaml.MappingNode) and _is_range(value_node):
            rng = _range(checker, value_node, spec, where, problem)
            if rng is not None:
                out.append(Parameter(key, steps, rng, line))
        else:
            got1 = _value(checker, value_node, target, where)
            if got1 is not _BAD:
                out.append(Parameter(key, steps, Choice((got1,)), line))
    return out


_BAD: Any = object()


def _value(checker: Checker, node: yaml.Node, target: Any, where: str) -> Any:
    """One listed value, checked against the key's rule at its own line."""
    if target.nullable and isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return None
    before = len(checker.problems)
    got = checker.check(node, target.spec, where)
    if len(checker.problems) > before or not complete(got):
        return _BAD
    return got


def _is_range(node: yaml.MappingNode) -> bool:
    keys = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return bool(keys & {"range", "log"})


def _range(
    checker: Checker, node: yaml.MappingNode, spec: Spec, where: str, problem: Any
) -> Range | None:
    line = node.start_mark.line + 1
    if not isinstance(spec, Number):
        kind = "a string" if isinstance(spec, String) else "not a number"
        problem(where, f"a range needs a numeric key; this one is {kind}: list its values", line)
        return None
    items = {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    unknown = set(items) - {"range", "log", "points"}
    if unknown:
        problem(
            where,
            f"unknown key(s) {', '.join(sorted(unknown))}; a range has range or log, and points",
            line,
        )
        return None
    if "range" in items and "log" in items:
        problem(where, "give range or log, not both", line)
        return None
    log = "log" in items
    bounds_node = items["log" if log else "range"]
    if not isinstance(bounds_node, yaml.SequenceNode) or len(bounds_node.value) != 2:
        problem(where, "expected [low, high]", bounds_node.start_mark.line + 1)
        return None
    before = len(checker.problems)
    low, high = (checker.check(n, spec, f"{where}[{i}]") for i, n in enumerate(bounds_node.value))
    if len(checker.problems) > before:
        return None
    if not high > low:
        problem(where, f"high ({high:g}) must be above low ({low:g})", line)
        return None
    if log and low <= 0:
        problem(where, f"a log range needs low > 0, got {low:g}", line)
        return None
    points = None
    if "points" in items:
        points = checker.check(items["points"], Number(integer=True, minimum=1), f"{where}.points")
        if not isinstance(points, int):
            return None
    return Range(float(low), float(high), log, points, spec.integer)


def policy_item(base: Any) -> dict[str, Any]:
    """A base policy (a preset name or a record) as a record a point can change."""
    import copy

    if isinstance(base, str):
        return {"name": base, "base": base}
    return copy.deepcopy(dict(base))


__all__ = [
    "Choice",
    "Parameter",
    "Range",
    "SweepSpec",
    "load_sweep",
    "policy_item",
    "tidy",
]
