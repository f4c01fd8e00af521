"""Fidelity rows, scenario tolerances, one scaling for both sides, the harness's
self-measurement, and the latency toxics' arithmetic (no real components here)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.fidelity import construction_notes
from harness.network import latency_toxic_ms
from harness.server import ServerConfig
from harness.watch import TIMER_LAG_P99_LIMIT_MS, Watch, lag_figures_ms
from reports.fidelity import fidelity_table
from sim.decide.fidelity import COMPARED, Floors, compare, table_status
from sim.decide.verdict import Status
from sim.distributions import Constant, Exponential, FoldedNormal, LogNormal, Uniform
from sim.scenario import load_scenario
from sim.scenario.model import Fidelity, Scenario
from sim.scenario.scale import scale_scenario

from .simhelp import SCENARIOS
from .test_cli import herdlab

SUMMARY = {
    "success_rate": 0.99,
    "attempts_per_job": 1.5,
    "completion_s": {"p50": 4.0, "p95": 10.0, "p99": 12.0},
    "peak_offered_per_s": 40.0,
    "recovery_s": 3.0,
}


def with_(**changes: object) -> dict[str, object]:
    out = json.loads(json.dumps(SUMMARY))
    for k, v in changes.items():
        if "__" in k:
            a, b = k.split("__")
            out[a][b] = v
        else:
            out[k] = v
    return out


def rows_by_metric(real: dict[str, object], **kw: object) -> dict[str, Status]:
    rows = compare({"p": SUMMARY}, {"p": real}, Fidelity(), **kw)  # type: ignore[arg-type]
    return {r.verdict.metric: r.verdict.status for r in rows}


def test_every_compared_figure_gets_a_fidelity_verdict_per_policy() -> None:
    rows = compare({"a": SUMMARY, "b": SUMMARY}, {"a": SUMMARY, "b": SUMMARY}, Fidelity())
    assert len(rows) == 2 * len(COMPARED)
    assert {r.verdict.source for r in rows} == {"fidelity"}
    assert all(r.verdict.status is Status.PASS for r in rows)
    assert table_status(rows) is Status.PASS


def test_success_rate_is_compared_in_percentage_points_the_rest_relatively() -> None:
    # 0.99 -> 0.975: 1.5 pp, within 2 pp
    assert rows_by_metric(with_(success_rate=0.975))["success_rate"] is Status.PASS
    assert rows_by_metric(with_(success_rate=0.965))["success_rate"] is Status.FAIL
    # attempts 1.5 -> 1.64: 9.3% (PASS); 1.5 -> 1.67: 11.3% (FAIL)
    assert rows_by_metric(with_(attempts_per_job=1.64))["attempts_per_job"] is Status.PASS
    assert rows_by_metric(with_(attempts_per_job=1.67))["attempts_per_job"] is Status.FAIL
    # p50 4.0 -> 3.45 is 13.75% below (PASS), 3.3 is 17.5% (FAIL)
    assert rows_by_metric(with_(completion_s__p50=3.45))["completion_s.p50"] is Status.PASS
    assert rows_by_metric(with_(completion_s__p50=3.3))["completion_s.p50"] is Status.FAIL


def test_the_scenarios_fidelity_block_changes_the_tolerances() -> None:
    real = with_(completion_s__p95=12.0)  # 20% above
    rows = compare({"p": SUMMARY}, {"p": real}, Fidelity(completion_p95=0.25))
    p95 = next(r for r in rows if r.verdict.metric == "completion_s.p95")
    assert p95.verdict.status is Status.PASS
    assert p95.tolerance == "± 25%"


def test_a_floor_keeps_a_step_sized_difference_from_failing() -> None:
    real = with_(recovery_s=3.4)  # 13%: passes anyway; 3.6 is 20%
    assert rows_by_metric(with_(recovery_s=3.6))["recovery_s"] is Status.FAIL
    floors = Floors(recovery_s=0.6)
    assert rows_by_metric(with_(recovery_s=3.6), floors=floors)["recovery_s"] is Status.PASS
    assert rows_by_metric(real)["recovery_s"] is Status.PASS


def test_null_on_both_sides_agrees_and_null_on_one_side_fails() -> None:
    both = compare(
        {"p": with_(recovery_s=None)}, {"p": with_(recovery_s=None)}, Fidelity()
    )  # never recovered, in both worlds
    assert {r.verdict.status for r in both} == {Status.PASS}
    one = rows_by_metric(with_(recovery_s=None))
    assert one["recovery_s"] is Status.FAIL


def test_a_figure_that_cannot_match_by_construction_is_explained_not_failed() -> None:
    real = with_(success_rate=0.5)
    rows = compare(
        {"p": SUMMARY},
        {"p": real},
        Fidelity(),
        by_construction={"success_rate": "toxicity picks connections"},
    )
    row = next(r for r in rows if r.verdict.metric == "success_rate")
    assert row.verdict.status is Status.INCONCLUSIVE
    assert "cannot match by construction: toxicity picks connections" in row.verdict.note
    assert table_status(rows) is Status.PASS  # it does not count


def test_rows_from_a_degraded_real_run_are_marked() -> None:
    rows = compare({"p": SUMMARY, "q": SUMMARY}, {"p": SUMMARY, "q": SUMMARY}, Fidelity(),
                   degraded={"q"})  # fmt: skip
    assert {r.verdict.policy for r in rows if r.degraded} == {"q"}
    assert all("degraded" in r.verdict.note for r in rows if r.degraded)
    record = {
        "fidelity": {
            "status": "PASS",
            "rows": [r.to_json() for r in rows],
            "by_construction": {},
            "degraded_policies": ["q"],
        }
    }
    text = fidelity_table(record)
    assert "PASS†" in text and "from a degraded real run" in text


def test_keep_alive_with_partial_toxicity_cannot_match_by_construction(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        (SCENARIOS / "job-timeout.yaml").read_text()
        + "faults:\n  - {kind: reset, start_s: 1, end_s: 2, probability: 0.3}\n"
    )
    s = load_scenario(path)
    assert construction_notes(s, keep_alive=False) == {}
    notes = construction_notes(s, keep_alive=True)
    assert "pooled connections" in notes["success_rate"]
    # a share of streams cut is routed per connection, not a toxic: comparable either way
    cut = load_scenario(SCENARIOS / "sse-drop-reconnect.yaml")
    assert construction_notes(cut, keep_alive=True) == {}


def test_fidelity_block_is_validated_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (SCENARIOS / "retry-storm-metastable.yaml").read_text()
        + "fidelity:\n  success_rate_p: 3\n  recovery: -0.1\n"
    )
    result = herdlab("validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"{bad}:") and "fidelity.success_rate_p: unknown key" in line
        and "did you mean 'success_rate_pp'" in line
        for line in lines
    )  # fmt: skip
    assert any("fidelity.recovery: must be >= 0" in line for line in lines)
    good = tmp_path / "good.yaml"
    good.write_text(
        (SCENARIOS / "retry-storm-metastable.yaml").read_text()
        + "fidelity: {completion_p50: 0.3}\n"
    )
    s = load_scenario(good)
    assert s.fidelity == Fidelity(completion_p50=0.3)
    assert load_scenario(SCENARIOS / "retry-storm-metastable.yaml").fidelity == Fidelity()
    # the scale the fidelity suite runs a story at
    assert load_scenario(SCENARIOS / "sse-drop-reconnect.yaml").fidelity.scale == 0.2


def test_the_simulator_and_the_server_scale_one_way() -> None:
    for name in ("thundering-herd", "store-degradation", "job-timeout", "cloud-run-503-burst"):
        s = load_scenario(SCENARIOS / f"{name}.yaml")
        for scale in (0.05, 0.1, 0.2, 0.5, 1.0):
            scaled = scale_scenario(s, scale).service
            server = ServerConfig.from_scenario(s, scale)
            assert (server.instances, server.queue_limit) == (
                scaled.instances,
                scaled.queue_limit,
            )
    with pytest.raises(ValueError, match="scale must be in"):
        scale_scenario(s, 0.0)


def test_sim_mode_runs_at_a_scale(tmp_path: Path) -> None:
    out = tmp_path / "o"
    result = herdlab(
        "run", str(SCENARIOS / "cloud-run-503-burst.yaml"), "--scale", "0.25",
        "--out", str(out), "--quiet", "--no-report",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text())
    assert record["scenario"]["clients"] == 50
    assert record["policies"][0]["summary"]["jobs"] == 50
    assert "scale 0.25" in result.stdout
    bad = herdlab("run", str(SCENARIOS / "job-timeout.yaml"), "--scale", "2", "--out", str(out))
    assert bad.returncode == 2 and "--scale must be in (0, 1]" in bad.stderr


@pytest.mark.parametrize(
    ("dist", "latency_ms", "jitter_ms"),
    [
        (Constant(0.005), 5, 0),
        (Uniform(0.010, 0.030), 20, 10),
        (FoldedNormal(0.020, 0.005), 20, round(5 * math.sqrt(3))),
        (Exponential(0.010), 10, 10),  # a uniform U(0, 20 ms): cut at zero
        (LogNormal(0.010, 0.1), 10, 2),
    ],
)
def test_a_latency_distribution_becomes_a_toxic_with_its_mean_and_spread(
    dist: object, latency_ms: int, jitter_ms: int
) -> None:
    assert latency_toxic_ms(dist) == (latency_ms, jitter_ms)  # type: ignore[arg-type]


def test_lag_figures_are_in_ms() -> None:
    figs = lag_figures_ms([0.001] * 98 + [0.05, 0.1])
    assert figs["n"] == 100 and figs["p50"] == pytest.approx(1.0)
    assert figs["max"] == pytest.approx(100.0)
    assert lag_figures_ms([])["p99"] is None


def test_a_second_short_of_its_planned_arrivals_marks_the_run_degraded() -> None:
    planned = [i * 0.1 for i in range(100)]  # 10 per second for 10 s
    watch = Watch(planned)
    for t in planned:  # every arrival on time, except seconds 4 and 5: 0.5 s late
        watch.arrived(t + (0.5 if 4 <= t < 6 else 0.001))
    report = watch.report()
    assert report["degraded"]
    assert report["arrivals_per_s"]["planned"][:10] == [10] * 10
    assert report["arrivals_per_s"]["on_time"][4] == 0
    assert report["arrivals"]["seconds_short"] == 2
    assert any("arrivals: 2 second(s)" in r for r in report["reasons"])


def test_a_run_that_kept_its_schedule_is_not_degraded() -> None:
    planned = [i * 0.1 for i in range(50)]
    watch = Watch(planned)
    for t in planned:
        watch.arrived(t + 0.002)
    watch.sleep_lags_s = [0.001] * 100
    watch.switched("f0 outage on", 0.0)  # the clock reads 0: on time
    report = watch.report()
    assert not report["degraded"], report["reasons"]
    watch.sleep_lags_s = [0.001] * 90 + [0.05] * 10
    report = watch.report()
    assert report["degraded"]
    assert f"> {TIMER_LAG_P99_LIMIT_MS:g} ms" in report["reasons"][0]


def test_a_late_fault_switch_marks_the_run_degraded() -> None:
    watch = Watch([], clock=lambda: 12.0)
    watch.switched("f0 store_outage on", 11.5)
    report = watch.report()
    assert report["degraded"]
    assert report["fault_actions"][0]["late_s"] == pytest.approx(0.5)
    assert "f0 store_outage on" in report["reasons"][0]


def test_the_watch_measures_real_sleeps_and_cpu() -> None:
    async def go() -> dict[str, object]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        watch = Watch([0.0, 0.05])
        watch.begin(lambda: loop.time() - t0)
        watch.arrived(0.0)
        await watch.sleep(0.05)
        watch.arrived(watch.clock())
        await watch.probe(0.2)
        sum(i * i for i in range(200_000))  # some CPU of our own
        watch.end()
        return watch.report()

    report = asyncio.run(go())
    lag = report["timer_lag_ms"]
    probe = report["probe_lag_ms"]
    assert lag["n"] == 1 and lag["max"] >= 0  # type: ignore[index]
    assert probe["n"] >= 3  # type: ignore[index]
    cpu = report["cpu_cores"]
    assert cpu["clients"] is not None and cpu["clients"] > 0  # type: ignore[index]
    assert report["arrivals"] == {"planned": 2, "started": 2, "seconds_short": 0}


class _Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def add_toxic(self, proxy: str, name: str, kind: str, *args: object) -> None:
        self.calls.append(("add", proxy, name))

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.calls.append(("remove", proxy, name))

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self.calls.append(("enable" if enabled else "disable", proxy, ""))


def scenario_from_text(path: Path, old: str, new: str) -> Scenario:
    other = path.with_name("other.yaml")
    other.write_text(path.read_text().replace(old, new))
    return load_scenario(other)


def test_a_stream_cut_closes_its_share_of_the_open_streams_at_one_instant(
    tmp_path: Path,
) -> None:
    from harness.faults import StreamRouter, client_proxies, cut_proxies, plan

    path = tmp_path / "s.yaml"
    path.write_text(
        (SCENARIOS / "sse-drop-reconnect.yaml")
        .read_text()
        .replace("every_s: 10}\n", "every_s: 10}\n  - {kind: outage, start_s: 60, end_s: 61,"
                 " answer: refuse}\n")
    )  # fmt: skip
    faults = load_scenario(path).faults
    spares = cut_proxies(faults)  # cuts at 10, 20, 30, 40 s; then the streams none hits
    assert spares == ["streams_0", "streams_1", "streams_2", "streams_3", "streams_uncut"]
    cuts = [a for a in plan(faults) if a.cut is not None]
    assert [(a.cut, a.at_s) for a in cuts] == [(0, 10), (1, 20), (2, 30), (3, 40)]
    for n, action in enumerate(cuts):
        fake = _Calls()
        assert action.toxi is not None
        action.toxi(fake)
        # the cut's own proxy is disabled: every stream routed to it closes at once; the
        # one streams proxy (browser tabs) gets the share as a toxic
        assert fake.calls == [("disable", f"streams_{n}", ""), ("add", "streams", f"f0_cut{n}")]
    # each connection draws, when it opens, the first later cut that hits it (p = 0.5)
    router = StreamRouter(faults, spares, np.random.default_rng(7))
    draws = [router.url() for _ in range(20_000)]
    for n, name in enumerate(spares):
        share = draws.count(name) / len(draws)
        assert share == pytest.approx(0.5 ** min(n + 1, 4), abs=0.015)
    router.cut(0)
    router.cut(1)  # a stream opened after the second cut is hit by a later one only
    after = {router.url() for _ in range(1_000)}
    assert after == {"streams_2", "streams_3", "streams_uncut"}
    every = scenario_from_text(path, "fraction: 0.5", "fraction: 1.0")
    router = StreamRouter(every.faults, spares, np.random.default_rng(7))
    assert {router.url() for _ in range(100)} == {"streams_0"}  # the next cut hits all
    fake = _Calls()
    for action in plan(every.faults):
        if action.cut == 1 and action.toxi is not None:
            action.toxi(fake)
    assert fake.calls == [("disable", "streams_1", ""), ("disable", "streams", "")]
    refuse = next(a for a in plan(faults) if a.label.endswith("refuse on"))
    fake = _Calls()
    assert refuse.toxi is not None
    refuse.toxi(fake)
    assert [c[1] for c in fake.calls] == list(client_proxies(faults))
    # the lab's external client: one streams proxy, a toxic, no spares
    lab = [a for a in plan(faults, routed=False) if "cut" in a.label or "refuse" in a.label]
    fake = _Calls()
    for action in lab:
        assert action.cut is None and action.toxi is not None
        action.toxi(fake)
    assert {c[1] for c in fake.calls} == {"jobs", "streams"}


def test_independent_fault_draws_widen_the_success_tolerance_to_chance() -> None:
    sim = with_(success_rate=0.18, jobs=100)
    real = with_(success_rate=0.10, jobs=100)
    strict = compare({"p": sim}, {"p": real}, Fidelity())
    assert strict[0].verdict.status is Status.FAIL
    loose = compare({"p": sim}, {"p": real}, Fidelity(), independent_draws=True)
    assert loose[0].verdict.status is Status.PASS
    assert "chance" in loose[0].tolerance
    # with many jobs chance is narrower than 2 pp, and 2 pp holds
    big_sim, big_real = (
        with_(success_rate=0.99, jobs=100_000),
        with_(success_rate=0.95, jobs=100_000),
    )
    assert compare({"p": big_sim}, {"p": big_real}, Fidelity(),
                   independent_draws=True)[0].verdict.status is Status.FAIL  # fmt: skip
