"""Sweeps: the spec's errors with FILE:LINE, points, strategies, resume, executors agree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sim.execute import DaskExecutor, InProcess, ProcessPool, run_unit
from sim.results import pooled_percentile
from sim.scenario.errors import ScenarioError
from sim.scenario.loader import load_policy_file
from sim.sweep.points import SweepWorkload, halton, strategy_points
from sim.sweep.run import SweepInterrupted, run_sweep
from sim.sweep.spec import Choice, Range, load_sweep

from .test_cli import herdlab

SCENARIO = """\
name: tiny
seed: 11
duration_s: 40
bucket_s: 0.5
clients:
  arrival: {kind: poisson, schedule: [{from_s: 0, rate_per_s: 8}]}
  job_timeout_s: 20
  request_timeout_s: 3
  follow_stream: false
  budget_scope: shared
service: {kind: rpc, instances: 10, concurrency: 1,
          service_time: {kind: constant, value_s: 1.0}}
faults:
  - {kind: capacity_drop, start_s: 10, end_s: 15, instances: 2}
policies: [seed-default, sre-budget]
"""

GRID = """\
sweep:
  scenario: tiny.yaml
  parameters:
    faults[0].end_s: [12, 18]
    retry.max_attempts: [2, 4]
  map: {x: "faults[0].end_s", y: retry.max_attempts}
"""


@pytest.fixture
def sweep_file(tmp_path: Path) -> Callable[[str], Path]:
    (tmp_path / "tiny.yaml").write_text(SCENARIO)

    def write(text: str) -> Path:
        path = tmp_path / "sweep.yaml"
        path.write_text(text)
        return path

    return write


def _problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as exc:
        load_sweep(path)
    return [str(p) for p in exc.value.problems]


def test_every_mistake_in_a_sweep_is_reported_with_its_line(
    sweep_file: Callable[[str], Path],
) -> None:
    path = sweep_file(
        """\
sweep:
  scenario: tiny.yaml
  strategy: grid
  parameters:
    retry.max_atempts: [3]
    retry.backoff.jitter: [full, fulll]
    retry.backoff.base_s: {log: [0, 5], points: 3}
    retry.backoff.cap_s: {range: [1, 5]}
    faults[2].end_s: [20]
    reconnect.backoff.kind: {range: [1, 2], points: 2}
    name: [x]
"""
    )
    problems = _problems(path)
    text = "\n".join(problems)
    assert f"{path}:5: sweep.parameters.retry.max_atempts: unknown key 'max_atempts'" in text
    assert "did you mean 'max_attempts'" in text
    assert f"{path}:6: sweep.parameters.retry.backoff.jitter[1]: 'fulll' is not one of" in text
    assert f"{path}:7: sweep.parameters.retry.backoff.base_s: a log range needs low > 0" in text
    assert f"{path}:8: sweep.parameters.retry.backoff.cap_s: a grid needs `points:`" in text
    assert f"{path}:9: sweep.parameters.faults[2].end_s: faults has 1 item(s)" in text
    assert f"{path}:10: sweep.parameters.reconnect.backoff.kind: a range needs a numeric" in text
    assert f"{path}:11: sweep.parameters.name: 'name' is not swept" in text
    assert len(problems) == 7


def test_a_point_that_cannot_be_built_is_reported_at_its_parameter_before_running(
    sweep_file: Callable[[str], Path], tmp_path: Path
) -> None:
    path = sweep_file(
        """\
sweep:
  scenario: tiny.yaml
  parameters:
    faults[0].end_s: [12, 60]
"""
    )
    spec = load_sweep(path)
    with pytest.raises(ScenarioError) as exc:
        run_sweep(spec, tmp_path / "out", InProcess())
    (problem,) = exc.value.problems
    assert problem.line == 4 and "faults[0].end_s=60" in problem.message
    assert "after the scenario's duration" in problem.message
    assert not (tmp_path / "out" / "points").exists()  # nothing ran


def test_the_cli_exits_2_without_a_traceback_on_a_bad_sweep(
    sweep_file: Callable[[str], Path],
) -> None:
    path = sweep_file("sweep:\n  scenario: tiny.yaml\n  parameters: {retry.nope: [1]}\n")
    result = herdlab("sweep", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{path}:3: sweep.parameters.retry.nope: unknown key" in result.stderr


def test_policy_parameters_change_only_their_key_of_the_base_policy(
    sweep_file: Callable[[str], Path],
) -> None:
    spec = load_sweep(
        sweep_file(
            "sweep:\n  scenario: tiny.yaml\n  parameters:\n"
            "    retry.backoff.base_s: [0.25]\n    retry.budget.percent: [0.05]\n"
        )
    )
    workload = SweepWorkload.of(spec)
    points = strategy_points(spec)
    assert len(points) == 2  # one combination per base policy
    _, seed_default = workload.realize(points[0])
    assert seed_default.retry.backoff.base_s == 0.25
    assert seed_default.retry.backoff.cap_s == 30.0  # the preset's, untouched
    assert seed_default.retry.budget is not None  # a ratio budget made for the key
    assert seed_default.retry.budget.kind == "ratio"
    _, sre = workload.realize(points[1])
    assert sre.retry.budget is not None and getattr(sre.retry.budget, "percent", None) == 0.05


def test_a_grid_range_is_evenly_spaced_and_log_ranges_in_log_space(
    sweep_file: Callable[[str], Path],
) -> None:
    spec = load_sweep(
        sweep_file(
            "sweep:\n  scenario: tiny.yaml\n  parameters:\n"
            "    retry.backoff.base_s: {log: [0.1, 10], points: 3}\n"
            "    retry.max_attempts: {range: [2, 8], points: 4}\n"
        )
    )
    base, attempts = spec.parameters
    assert isinstance(base.values, Range) and base.values.grid() == (0.1, 1.0, 10.0)
    assert isinstance(attempts.values, Range) and attempts.values.grid() == (2, 4, 6, 8)
    assert len(strategy_points(spec)) == 2 * 3 * 4


def test_random_and_halton_points_stay_in_range_and_repeat_for_a_seed(
    sweep_file: Callable[[str], Path],
) -> None:
    for strategy in ("random", "halton"):
        text = (
            f"sweep:\n  scenario: tiny.yaml\n  strategy: {strategy}\n  trials: 20\n"
            "  parameters:\n    retry.backoff.base_s: {log: [0.1, 10]}\n"
            "    retry.backoff.jitter: [full, proportional]\n"
        )
        a = strategy_points(load_sweep(sweep_file(text)))
        b = strategy_points(load_sweep(sweep_file(text)))
        assert a == b and len(a) == 40
        assert all(0.1 <= p.values[0] <= 10 for p in a)
        assert {p.values[1] for p in a} == {"full", "proportional"}


def test_halton_points_fill_the_unit_square_evenly() -> None:
    u = halton(64, 2, seed=3)
    assert ((u >= 0) & (u < 1)).all()
    # every quarter of the square gets 16 +- 3 of 64 points (uniform draws scatter more)
    counts = [((u[:, 0] < 0.5) == a) & ((u[:, 1] < 0.5) == b) for a in (0, 1) for b in (0, 1)]
    assert all(13 <= int(c.sum()) <= 19 for c in counts)


def _outputs(folder: Path) -> tuple[bytes, bytes]:
    return (folder / "sweep.json").read_bytes(), (folder / "points.csv").read_bytes()


@pytest.mark.slow
def test_a_sweep_writes_the_same_bytes_in_process_and_on_a_2_worker_dask_cluster(
    sweep_file: Callable[[str], Path], tmp_path: Path
) -> None:
    spec = load_sweep(sweep_file(GRID))
    run_sweep(spec, tmp_path / "a", InProcess())
    with DaskExecutor("local", 2) as dask:
        run_sweep(spec, tmp_path / "b", dask)
    with ProcessPool(2) as pool:
        run_sweep(spec, tmp_path / "c", pool)
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "b") == _outputs(tmp_path / "c")


def test_an_interrupted_sweep_keeps_its_points_and_the_rerun_computes_only_the_rest(
    sweep_file: Callable[[str], Path], tmp_path: Path
) -> None:
    spec = load_sweep(sweep_file(GRID))
    out = tmp_path / "out"

    def interrupt_at_3(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as exc:
        run_sweep(spec, out, InProcess(), on_progress=interrupt_at_3)
    assert len(exc.value.record["points"]) == 3
    assert json.loads((out / "sweep.json").read_text())["complete"] is False
    seen: list[tuple[int, int]] = []
    run_sweep(spec, out, InProcess(), on_progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (3, 8)  # three cached, five run
    run_sweep(spec, tmp_path / "fresh", InProcess())
    assert _outputs(out) == _outputs(tmp_path / "fresh")


def test_a_replicated_sweep_pools_its_percentiles_on_any_executor_and_from_its_cache(
    sweep_file: Callable[[str], Path], tmp_path: Path
) -> None:
    spec = load_sweep(sweep_file(GRID.replace("  map:", "  replications: 3\n  map:")))
    record = run_sweep(spec, tmp_path / "a", InProcess())
    # a point's p99 is the percentile of its three replications' samples together
    workload = SweepWorkload.of(spec)
    point = strategy_points(spec)[0]
    per_rep = [run_unit(workload, u).samples for u in workload.units(point, 3)]
    pooled = pooled_percentile([s["completion_s"] for s in per_rep if s is not None], 99.0)
    assert pooled is not None and len(per_rep) == 3
    row = record["points"][[p["id"] for p in record["points"]].index(point.id)]
    assert row["summary"]["completion_s"]["p99"] == round(pooled[0], 6)
    assert row["ci95"]["completion_s"]["p99"] == [round(x, 6) for x in pooled[1]]
    with ProcessPool(2) as pool:
        run_sweep(spec, tmp_path / "b", pool)
    seen: list[tuple[int, int]] = []
    run_sweep(spec, tmp_path / "a", InProcess(), on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(24, 24)]  # every replication and its samples read back, none run
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "b")


def test_a_sweep_record_ranks_maps_and_recommends(
    sweep_file: Callable[[str], Path], tmp_path: Path
) -> None:
    record = run_sweep(load_sweep(sweep_file(GRID)), tmp_path, InProcess())
    assert sorted(record["ranking"]) == [p["id"] for p in record["points"]]
    assert [p["rank"] for p in sorted(record["points"], key=lambda p: p["rank"])] == list(
        range(1, 9)
    )
    maps = record["maps"]
    assert maps["xs"] == [12, 18] and maps["ys"] == [2, 4]
    assert set(maps["policies"]) == {"seed-default", "sre-budget"}
    assert set(record["pareto"]["front"]) <= set(record["ranking"])
    rows = (tmp_path / "points.csv").read_text().splitlines()
    assert len(rows) == 9 and rows[0].startswith("id,policy,faults[0].end_s,retry.max_attempts")
    # the recommended block pastes into a scenario as it is
    rec = record["recommended"]
    policy_file = tmp_path / "recommended.yaml"
    policy_file.write_text(rec["yaml"])
    (policy,) = load_policy_file(policy_file)
    assert policy.name == "recommended"


def test_a_search_asks_the_same_trials_on_any_executor(
    sweep_file: Callable[[str], Path], tmp_path: Path
) -> None:
    text = (
        "sweep:\n  scenario: tiny.yaml\n  strategy: search\n  trials: 6\n  batch: 3\n"
        "  policies: [seed-default]\n  parameters:\n"
        "    retry.max_attempts: {range: [1, 6]}\n    retry.backoff.base_s: {log: [0.1, 4]}\n"
    )
    spec = load_sweep(sweep_file(text))
    run_sweep(spec, tmp_path / "a", InProcess())
    with ProcessPool(2) as pool:
        run_sweep(spec, tmp_path / "b", pool)
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "b")
    record = json.loads((tmp_path / "a" / "sweep.json").read_text())
    assert len(record["points"]) == 6


def test_herdlab_sweep_prints_the_ranking_and_writes_the_report(
    sweep_file: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = herdlab("sweep", str(sweep_file(GRID)), "--out", str(out), "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "rank  point" in result.stdout and "recommended" in result.stdout
    assert (
        yaml.safe_load(
            result.stdout.split("recommended", 1)[1].split(":\n", 1)[1].split("\nsweep:")[0]
        )["policies"][0]["name"]
        == "recommended"
    )
    for name in (
        "sweep.json",
        "points.csv",
        "report.html",
        "charts/sweep-pareto.svg",
        "charts/sweep-heatmap.svg",
        "charts/sweep-metastability.svg",
    ):
        assert (out / name).exists(), name


def test_choice_values_may_be_mappings_and_null(sweep_file: Callable[[str], Path]) -> None:
    spec = load_sweep(
        sweep_file(
            "sweep:\n  scenario: tiny.yaml\n  parameters:\n"
            "    retry.budget: [null, {kind: grpc, max_tokens: 4}]\n"
        )
    )
    (param,) = spec.parameters
    assert isinstance(param.values, Choice)
    assert param.values.values == (None, {"kind": "grpc", "max_tokens": 4})
    workload = SweepWorkload.of(spec)
    budgets = [workload.realize(p)[1].retry.budget for p in strategy_points(spec)]
    assert budgets[0] is None and getattr(budgets[1], "max_tokens", None) == 4


def test_the_shipped_sweeps_validate() -> None:
    sweeps = sorted(
        (Path(__file__).resolve().parent.parent / "scenarios" / "sweeps").glob("*.yaml")
    )
    assert len(sweeps) >= 2
    result = herdlab("validate", *map(str, sweeps))
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ Ctrl-C, for real

#: a grid of 24 points whose each takes a few tenths of a second: long enough to interrupt
LONG_GRID = """\
sweep:
  scenario: tiny.yaml
  parameters:
    faults[0].end_s: [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]
    retry.max_attempts: [2, 4]
"""


def _press_ctrl_c(
    sweep: Path, out: Path, executor: list[str], when: Callable[[set[int]], bool]
) -> tuple[int, str, set[int]]:
    """Run ``herdlab sweep`` in a session of its own, press Ctrl-C (SIGINT to the whole
    process group, as a terminal does) once ``when(pids it has started so far)`` holds;
    its exit code, its stderr and the pids of every process it had started. It starts
    with SIGINT ignored, the harder case (see ``harness.cli.main``)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    argv = [sys.executable, "-m", "harness.cli", "sweep", str(sweep), "--out", str(out)]
    proc = subprocess.Popen(
        [*argv, "--quiet", "--no-report", *executor],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # started with SIGINT ignored, as a shell's background job or nohup starts it (and
        # as a test runner may be started): herdlab takes Ctrl-C all the same
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not when(started) and proc.poll() is None and time.monotonic() < deadline:
            started |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        started |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # the test failed: stop it all the same
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, stderr, started


def _gone(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running after up to 10 s (zombies count as gone)."""
    import time

    import psutil

    deadline = time.monotonic() + 10
    while True:
        alive = set()
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.add(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "executor", [["--workers", "2"], ["--dask", "local", "--workers", "2"]], ids=["pool", "dask"]
)
def test_ctrl_c_mid_sweep_keeps_the_finished_points_stops_every_process_and_exits_130(
    sweep_file: Callable[[str], Path], tmp_path: Path, executor: list[str]
) -> None:
    sweep = sweep_file(LONG_GRID)
    out = tmp_path / "out"

    def two_points_done(_started: set[int]) -> bool:
        return len(list((out / "points").glob("*/*.json"))) >= 2

    code, stderr, started = _press_ctrl_c(sweep, out, executor, two_points_done)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "interrupted:" in stderr
    assert started and not _gone(started)  # every worker (and nanny) stopped
    kept = len(list((out / "points").glob("*/*.json")))
    assert 2 <= kept < 24
    record = json.loads((out / "sweep.json").read_text())
    assert record["complete"] is False and len(record["points"]) == kept
    # the same command again computes only the rest, and gives what one run gives
    rerun = herdlab("sweep", str(sweep), "--out", str(out), "--workers", "1", "--no-report")
    assert rerun.returncode == 0, rerun.stderr
    fresh = herdlab(
        "sweep", str(sweep), "--out", str(tmp_path / "fresh"), "--workers", "1", "--no-report"
    )
    assert fresh.returncode == 0, fresh.stderr
    assert _outputs(out) == _outputs(tmp_path / "fresh")


@pytest.mark.slow
def test_ctrl_c_while_the_dask_cluster_starts_is_not_lost(
    sweep_file: Callable[[str], Path], tmp_path: Path
) -> None:
    """Pressed as the first worker process starts (the workers start with SIGINT held
    back from them): the sweep stops once the cluster is up, closes it and exits 130."""
    sweep = sweep_file(LONG_GRID)
    out = tmp_path / "out"
    code, stderr, started = _press_ctrl_c(
        sweep, out, ["--dask", "local", "--workers", "2"], lambda started: bool(started)
    )
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert not _gone(started)
    assert not list((out / "points").glob("*/*.json"))  # nothing ran
