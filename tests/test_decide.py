"""The decision layer: one figure registry, verdicts that respect CIs, one objective."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.decide.figures import FIGURES, UnknownFigure, figure, flat_names, interval, value
from sim.decide.objective import Constraint, Objective, default_objective, objective_for
from sim.decide.verdict import Bound, Status, Verdict, overall
from sim.scenario import load_scenario
from sim.world.summary import summarize

from .conftest import MINIMAL
from .simhelp import SCENARIOS, run_world, scenario_from


@pytest.mark.parametrize("scenario_file", ["cloud-run-503-burst.yaml", "occ-contention-2015.yaml"])
def test_every_summary_figure_is_declared_and_every_declared_figure_is_summarized(
    scenario_file: str,
) -> None:
    scenario = load_scenario(SCENARIOS / scenario_file)
    world = run_world(scenario)
    names = set(flat_names(summarize(world.rec, scenario)))
    assert names == set(FIGURES)


def test_every_figure_has_a_unit_a_direction_and_one_sentence() -> None:
    for f in FIGURES.values():
        assert f.unit and f.better in ("higher", "lower", "none")
        assert f.definition.endswith(".") and f.definition.count(". ") == 0, f.name


def test_an_unknown_figure_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownFigure, match=r"did you mean 'success_rate'"):
        figure("sucess_rate")


def test_values_and_intervals_follow_dotted_names() -> None:
    summary = {"completion_s": {"p99": 3.5}, "recovery_s": None}
    ci = {"completion_s": {"p99": [3.0, 4.0]}, "recovery_s": None}
    assert value(summary, "completion_s.p99") == 3.5
    assert value(summary, "recovery_s") is None
    assert value(summary, "nope.x") is None
    assert interval(ci, "completion_s.p99") == (3.0, 4.0)
    assert interval(ci, "recovery_s") is None


def test_direction_decides_what_worse_means() -> None:
    assert figure("success_rate").worse_by(0.9, 0.95) == pytest.approx(0.05)
    assert figure("attempts_per_job").worse_by(1.5, 1.2) == pytest.approx(0.3)
    assert figure("attempts_per_job").worse_by(1.0, 1.2) < 0
    assert figure("jobs").worse_by(1, 1000) == 0.0


@pytest.mark.parametrize(
    ("bound", "observed", "ci", "status"),
    [
        (Bound(low=0.99), 0.995, None, Status.PASS),
        (Bound(low=0.99), 0.98, None, Status.FAIL),
        (Bound(low=0.99), 0.995, (0.992, 0.998), Status.PASS),
        (Bound(low=0.99), 0.995, (0.985, 1.0), Status.INCONCLUSIVE),
        (Bound(low=0.99), 0.98, (0.97, 0.985), Status.FAIL),
        (Bound(high=3.0), 2.0, (1.5, 2.5), Status.PASS),
        (Bound(high=3.0), 3.5, (2.9, 4.1), Status.INCONCLUSIVE),
        (Bound(low=1, high=2), 2.5, None, Status.FAIL),
        (Bound(low=0.5), None, None, Status.FAIL),
        (Bound(low=0.5), float("nan"), None, Status.FAIL),
    ],
)
def test_a_bound_holds_only_when_the_whole_interval_is_inside(
    bound: Bound, observed: float | None, ci: tuple[float, float] | None, status: Status
) -> None:
    assert bound.judge(observed, ci) is status


def test_a_verdict_round_trips_through_json_and_reads_as_one_line() -> None:
    v = Verdict(
        "expect",
        "tuned",
        "success_rate",
        ">= 0.99",
        0.98,
        (0.97, 0.985),
        Status.FAIL,
        where="s.yaml:12",
    )
    assert Verdict.from_json(v.to_json()) == v
    assert v.message() == (
        "FAIL: tuned success_rate = 0.98 [0.97, 0.985], expected >= 0.99 [s.yaml:12]"
    )
    assert overall([v]) is Status.FAIL
    inconclusive = Verdict("expect", "a", "m", "x", 1.0, (0.0, 2.0), Status.INCONCLUSIVE)
    assert overall([inconclusive]) is Status.INCONCLUSIVE
    assert overall([inconclusive], accept_inconclusive=True) is Status.PASS


def _s(success: float, ratio: float, p99: float) -> dict[str, object]:
    return {"success_rate": success, "peak_load_ratio": ratio, "completion_s": {"p99": p99}}


def test_the_objective_ranks_feasible_policies_first_then_by_goal_then_tie_breakers() -> None:
    objective = Objective(
        "success_rate",
        "maximize",
        subject_to=(Constraint("peak_load_ratio", Bound(high=3.0)),),
        then=("completion_s.p99",),
    )
    ranked = objective.rank(
        [
            ("storm", _s(1.0, 9.0, 5.0)),  # best success, breaks the constraint
            ("slow", _s(0.99, 2.0, 30.0)),
            ("fast", _s(0.99, 2.5, 10.0)),  # ties slow on success, shorter tail
            ("weak", _s(0.5, 1.0, 1.0)),
        ]
    )
    assert [r.name for r in ranked] == ["fast", "slow", "weak", "storm"]
    assert [r.rank for r in ranked] == [1, 2, 3, 4]
    assert ranked[-1].broken == ("peak_load_ratio <= 3",) and not ranked[-1].feasible
    assert "maximize success_rate subject to peak_load_ratio <= 3" in objective.describe()


def test_a_null_goal_ranks_last_and_tie_tolerance_lets_the_tie_breaker_decide() -> None:
    objective = Objective("success_rate", "maximize", then=("completion_s.p99",))
    ranked = objective.rank([("none", _s(None, 1, 1)), ("some", _s(0.1, 1, 1))])  # type: ignore[arg-type]
    assert [r.name for r in ranked] == ["some", "none"]
    tolerant = Objective("success_rate", "maximize", then=("completion_s.p99",), tie_tolerance=0.01)
    ranked = tolerant.rank([("a", _s(0.995, 1, 20.0)), ("b", _s(0.994, 1, 5.0))])
    assert [r.name for r in ranked] == ["b", "a"]


def test_an_objective_over_an_unknown_figure_is_refused() -> None:
    with pytest.raises(UnknownFigure):
        Objective("succes_rate", "maximize")


def test_default_objectives_rank_by_known_figures() -> None:
    assert default_objective("job").metric == "success_rate"
    assert default_objective("occ").goal == "minimize"


def test_minimal_scenario_ranks_under_the_default_objective(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, MINIMAL)
    summary = summarize(run_world(scenario).rec, scenario)
    # without faults there is no recovery surge to limit: the default has no constraint
    (only,) = objective_for(scenario).rank([("seed-default", summary)])
    assert only.rank == 1 and only.feasible


def test_a_run_records_its_verdict_in_results_json(tmp_path: Path) -> None:
    from sim.results import run_scenario

    scenario = load_scenario(SCENARIOS / "occ-contention-2015.yaml")
    chosen = [scenario.policy(n) for n in ("exponential", "full-jitter")]
    record = run_scenario(scenario, tmp_path, chosen, replications=3)
    verdict = record["verdict"]
    assert verdict["winner"] == "full-jitter" and verdict["ranking"] == [
        "full-jitter",
        "exponential",
    ]
    assert "lowest server_writes" in verdict["why"] and "CIs" in verdict["why"]
    assert record["scenario"]["objective"]["minimize"] == "server_writes"


def _record(
    policies: dict[str, dict[str, float]],
    objective: Objective,
    cis: dict[str, dict[str, list[float]]] | None = None,
) -> dict:  # type: ignore[type-arg]
    return {
        "replications": 5 if cis else 1,
        "scenario": {"service_kind": "job", "faults": [], "objective": objective.to_json()},
        "policies": [
            {"name": n, "summary": s, "ci95": (cis or {}).get(n, {})} for n, s in policies.items()
        ],
    }


def test_the_verdict_gives_the_margin_and_whether_the_cis_overlap() -> None:
    from sim.decide.decision import decide

    goal = Objective("success_rate", "maximize")
    apart = decide(
        _record(
            {"a": {"success_rate": 0.9}, "b": {"success_rate": 0.99}},
            goal,
            {"a": {"success_rate": [0.88, 0.92]}, "b": {"success_rate": [0.98, 1.0]}},
        )
    )
    assert apart.winner is not None and apart.winner.name == "b"
    assert "0.99 against 0.9 for a, a margin of 0.09" in apart.why
    assert "do not overlap" in apart.why
    close = decide(
        _record(
            {"a": {"success_rate": 0.95}, "b": {"success_rate": 0.96}},
            goal,
            {"a": {"success_rate": [0.93, 0.97]}, "b": {"success_rate": [0.94, 0.98]}},
        )
    )
    assert "overlap, so more replications could still reverse the order" in close.why
    single = decide(_record({"a": {"success_rate": 0.9}, "b": {"success_rate": 0.8}}, goal))
    assert "one replication" in single.why


def test_the_verdict_explains_a_constraint_and_a_tie() -> None:
    from sim.decide.decision import decide

    limited = Objective(
        "success_rate",
        "maximize",
        (Constraint("recovery_load_ratio", Bound(high=3)),),
    )
    d = decide(
        _record(
            {
                "bold": {"success_rate": 0.99, "recovery_load_ratio": 5.0},
                "calm": {"success_rate": 0.9, "recovery_load_ratio": 2.0},
            },
            limited,
        )
    )
    assert d.winner is not None and d.winner.name == "calm"
    assert "only policy within every constraint" in d.why
    assert "bold has the better success_rate (0.99 against 0.9)" in d.why
    tied = Objective("success_rate", "maximize", then=("attempts_per_job",), tie_tolerance=0.01)
    d = decide(
        _record(
            {
                "a": {"success_rate": 0.995, "attempts_per_job": 1.5},
                "b": {"success_rate": 0.99, "attempts_per_job": 1.2},
            },
            tied,
        )
    )
    assert d.winner is not None and d.winner.name == "b"
    assert "ties with a on success_rate" in d.why and "better attempts_per_job" in d.why


def test_a_constraint_no_policy_can_be_measured_on_is_set_aside_and_said_so() -> None:
    from sim.decide.decision import decide

    limited = Objective(
        "success_rate", "maximize", (Constraint("recovery_load_ratio", Bound(high=3)),)
    )
    d = decide(
        _record(
            {
                "a": {"success_rate": 0.9, "recovery_load_ratio": None},  # type: ignore[dict-item]
                "b": {"success_rate": 0.8, "recovery_load_ratio": None},  # type: ignore[dict-item]
            },
            limited,
        )
    )
    assert d.winner is not None and d.winner.name == "a" and d.winner.feasible
    assert "recovery_load_ratio is null for every policy" in d.why


def test_the_verdict_says_when_better_policies_break_a_constraint() -> None:
    from sim.decide.decision import decide

    limited = Objective(
        "success_rate", "maximize", (Constraint("recovery_load_ratio", Bound(high=3)),)
    )
    d = decide(
        _record(
            {
                "a": {"success_rate": 0.9, "recovery_load_ratio": 2.0},
                "b": {"success_rate": 0.8, "recovery_load_ratio": 1.0},
                "c": {"success_rate": 1.0, "recovery_load_ratio": 9.0},
            },
            limited,
        )
    )
    assert [r.name for r in d.ranking] == ["a", "b", "c"]
    assert d.why.startswith("Of the 2 policies within every constraint, it has the highest")
    assert "1 policy does better on success_rate (best: c, 1) but breaks" in d.why
