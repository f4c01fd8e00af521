"""``strategy: search``: Optuna's multi-objective TPE asks for points, batch by batch.

The objectives are the scenario objective's goal figure and its tie-breakers (``then``),
each in its figure's direction; its constraints become Optuna constraints (<= 0 holds), so
the sampler learns where the feasible region is. The sampler is seeded and trials are
asked ``batch`` at a time and told in order, whatever the number of workers, so a search
asks the same points on any executor, and a re-run asks them again and finds them in the
cache: resume needs nothing more.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from sim.decide.figures import figure, value
from sim.decide.objective import Objective
from sim.sweep.points import Point, SweepWorkload
from sim.sweep.spec import Choice, Parameter, Range, SweepSpec, tidy

#: runs a batch of points; the mean summary of each that finished (None: it cannot be
#: built), in the points' order
RunBatch = Callable[[Sequence[Point]], Sequence[Mapping[str, Any] | None]]
_CONSTRAINTS = "constraints"


def objective_figures(objective: Objective) -> tuple[str, ...]:
    """The figures a search optimises: the goal, then the tie-breakers (each once)."""
    out: list[str] = []
    for name in (objective.metric, *objective.then):
        if name not in out and figure(name).better != "none":
            out.append(name)
    return tuple(out)


def constraint_values(objective: Objective, summary: Mapping[str, Any]) -> list[float]:
    """One number per constraint side, <= 0 when it holds (Optuna's convention); a figure
    that was not measured breaks its constraint by 1."""
    out: list[float] = []
    for c in objective.subject_to:
        x = value(summary, c.metric)
        if c.bound.low is not None:
            out.append(1.0 if x is None else c.bound.low - x)
        if c.bound.high is not None:
            out.append(1.0 if x is None else x - c.bound.high)
    return out


def _distributions(spec: SweepSpec) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    if len(spec.policies) > 1:
        out["policy"] = CategoricalDistribution(list(range(len(spec.policies))))
    for p in spec.parameters:
        if isinstance(p.values, Choice):
            # by index: Optuna's choices must be plain scalars, a value may be a mapping
            out[p.path] = CategoricalDistribution(list(range(len(p.values.values))))
        elif p.values.integer:
            out[p.path] = IntDistribution(int(p.values.low), int(p.values.high), log=p.values.log)
        else:
            out[p.path] = FloatDistribution(p.values.low, p.values.high, log=p.values.log)
    return out


def _value_of(p: Parameter, x: Any) -> Any:
    if isinstance(p.values, Choice):
        return p.values.values[int(x)]
    assert isinstance(p.values, Range)
    return tidy(float(x), p.values.integer)


def search(
    spec: SweepSpec,
    workload: SweepWorkload,
    run_batch: RunBatch,
    on_trial: Callable[[int, int], None] | None = None,
) -> list[Point]:
    """Ask, run and tell ``spec.trials`` trials; every point asked, in order."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective = spec.objective
    names = objective_figures(objective)
    directions: list[Literal["minimize", "maximize"]] = [
        "maximize" if figure(n).better == "higher" else "minimize" for n in names
    ]

    def constraints(trial: Any) -> Sequence[float]:
        got: Sequence[float] = trial.user_attrs.get(_CONSTRAINTS, [1.0])
        return got

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental" notes about constraints_func
        sampler = optuna.samplers.TPESampler(
            seed=spec.seed,
            multivariate=True,
            n_startup_trials=min(10, max(1, spec.trials // 3)),
            constraints_func=constraints if objective.subject_to else None,
        )
        study = optuna.create_study(directions=directions, sampler=sampler)
    dists = _distributions(spec)
    points: list[Point] = []
    if on_trial is not None:
        on_trial(0, spec.trials)
    while len(points) < spec.trials:
        n = min(spec.batch, spec.trials - len(points))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trials = [study.ask(dists) for _ in range(n)]
        batch: list[Point] = []
        for t in trials:
            policy = int(t.params.get("policy", 0))
            values = tuple(_value_of(p, t.params[p.path]) for p in spec.parameters)
            batch.append(Point(len(points) + len(batch), policy, values))
        summaries = run_batch(batch)
        for t, summary in zip(trials, summaries, strict=True):
            got = None if summary is None else [value(summary, n) for n in names]
            if got is None or any(x is None or not math.isfinite(x) for x in got):
                study.tell(t, state=optuna.trial.TrialState.FAIL)
                continue
            assert summary is not None
            if objective.subject_to:
                t.set_user_attr(_CONSTRAINTS, constraint_values(objective, summary))
            study.tell(t, [float(x) for x in got if x is not None])
        points.extend(batch)
        if on_trial is not None:
            on_trial(len(points), spec.trials)
    return points
