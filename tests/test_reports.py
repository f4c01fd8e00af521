"""Charts hold the data of the results they draw; the HTML report is whole and self-contained."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from reports.charts import (
    all_charts,
    completion_cdf,
    goodput,
    herd,
    occ,
    recovery,
    service_view,
    spans_decades,
)
from reports.data import Results, load_results
from reports.html import write_report
from reports.style import colours
from sim.results import run_scenario
from sim.scenario import load_scenario

from .simhelp import SCENARIOS, base, scenario_from


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Charts a test draws but does not save stay open in pyplot; close them after it."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("results")
    text = base(
        "  - {kind: outage, start_s: 5, end_s: 9}\n  - {kind: stream_drop, start_s: 12, end_s: 13}"
    )
    text = text.replace("  - seed-default", "  - seed-default\n  - full-jitter")
    scenario = scenario_from(tmp, text)
    run_scenario(scenario, tmp / "out", replications=2)
    return tmp / "out"


def test_herd_chart_lines_hold_the_series_from_results(results_dir: Path) -> None:
    results = load_results(results_dir)
    fig = herd(results)
    # one panel per policy: no line hides another
    lines = {line.get_gid(): line for ax in fig.axes for line in ax.get_lines()}
    for p in results.policies:
        b = results.bucket_s
        expected = (
            p.series["offered_first"] + p.series["offered_retry"] + p.series["offered_reconnect"]
        ) / b
        np.testing.assert_allclose(lines[f"total:{p.name}"].get_ydata(), expected)
        np.testing.assert_allclose(lines[f"total:{p.name}"].get_xdata(), p.series["t_s"])
        # the axis is requests/s: the pre-fault load is drawn, in requests/s, not capacity
        base = p.summary["baseline_offered_per_s"]
        assert lines[f"baseline:{p.name}"].get_ydata()[0] == pytest.approx(base)
    assert "capacity" not in lines


def test_fault_windows_are_shaded_at_their_times(results_dir: Path) -> None:
    results = load_results(results_dir)
    ax = herd(results).axes[0]
    spans = [p for p in ax.patches if p.get_gid() == "fault"]  # in every panel
    got = sorted((round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6)) for p in spans)
    assert got == [(5.0, 9.0), (12.0, 13.0)]


def test_policy_colours_agree_across_charts(results_dir: Path) -> None:
    results = load_results(results_dir)
    charts = all_charts(results)
    herd_colour = {
        line.get_gid().split(":")[1]: line.get_color()
        for ax in charts["herd"].axes
        for line in ax.get_lines()
        if (line.get_gid() or "").startswith("total:")
    }
    service_colour = {
        line.get_gid().split(":")[1]: line.get_color()
        for line in charts["service"].axes[0].get_lines()
        if line.get_gid()
    }
    assert herd_colour == service_colour
    assert len(set(herd_colour.values())) == len(herd_colour)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_report_contains_every_chart_and_the_table_and_nothing_external(
    results_dir: Path, tmp_path: Path
) -> None:
    out = write_report(load_results(results_dir), tmp_path / "report.html", tmp_path / "charts")
    text = out.read_text()
    parser = _Collector()
    parser.feed(text)
    ids = {attrs.get("id") for _, attrs in parser.tags}
    for stem in (
        "herd",
        "recovery",
        "goodput",
        "service",
        "completion_cdf",
        "attempts",
        "summary",
        "streams",
    ):
        assert f"chart-{stem}" in ids
        assert (tmp_path / "charts" / f"{stem}.png").exists()
    assert "summary" in ids
    assert text.count("<svg") >= 6
    for tag, attrs in parser.tags:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not value.startswith(("http:", "https:", "//")), (tag, key, value)
    assert "<script" not in text and "@import" not in text
    assert "★" not in text and "sha256" in text  # a ranking, not per-column stars
    # the verdict comes first, before the table and the charts
    assert text.index('id="verdict"') < text.index('id="summary"') < text.index("chart-herd")


def test_same_results_give_the_same_report_bytes(results_dir: Path, tmp_path: Path) -> None:
    results = load_results(results_dir)
    a = write_report(results, tmp_path / "a.html", tmp_path / "ca").read_bytes()
    b = write_report(results, tmp_path / "b.html", tmp_path / "cb").read_bytes()
    assert a == b
    assert (tmp_path / "ca" / "herd.svg").read_bytes() == (
        tmp_path / "cb" / "herd.svg"
    ).read_bytes()


def test_policy_plot_draws_one_box_per_retry_with_the_sampled_medians() -> None:
    from reports.policy_plot import policy_delays
    from sim.policies.describe import delay_samples
    from sim.policies.presets import preset

    samples = {
        name: delay_samples(preset(name).retry.backoff, 3, draws=2000, seed=1)
        for name in ("seed-default", "full-jitter")
    }
    ax = policy_delays(samples).axes[0]
    boxes = [p for p in ax.patches if (p.get_gid() or "").startswith("box:")]
    assert len(boxes) == 6
    medians = sorted(
        round(float(line.get_ydata()[0]), 6)
        for line in ax.get_lines()
        if len(line.get_ydata()) == 2
        and line.get_ydata()[0] == line.get_ydata()[1]
        and line.get_xdata()[1] - line.get_xdata()[0] < 0.5
    )
    expected = sorted(
        round(float(np.median(s[:, n]) * 1000), 6) for s in samples.values() for n in range(3)
    )
    for value in expected:
        assert any(abs(value - m) < 1e-6 for m in medians), value


def test_policy_plot_command_writes_png_and_svg(tmp_path: Path) -> None:
    from .test_cli import herdlab

    result = herdlab(
        "policy", "plot", "seed-default", "decorrelated-v2", "-o", str(tmp_path / "p.png")
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "p.png").stat().st_size > 0 and (tmp_path / "p.svg").exists()


def test_occ_bars_are_the_summaries_with_ci_whiskers_when_replicated(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "occ-contention-2015.yaml")
    run_scenario(scenario, tmp_path, replications=2)
    results = load_results(tmp_path)
    fig = occ(results)
    work, done = fig.axes
    calls = [p.summary["server_writes"] for p in results.policies]
    assert [bar.get_height() for bar in work.patches] == pytest.approx(calls)
    assert work.get_title() == "work (95% CI)"
    assert len(work.lines) > 0 and len(done.lines) > 0  # the whiskers' caps


def test_completion_cdf_says_so_when_no_job_completed(tmp_path: Path) -> None:
    """job-timeout's story: every job times out. The chart says that, with no empty
    legend (matplotlib warns about one)."""
    text = base(job_timeout=1, count=20).replace(
        "service_time: {kind: constant, value_s: 2}", "service_time: {kind: constant, value_s: 5}"
    )
    run_scenario(scenario_from(tmp_path, text), tmp_path / "out")
    results = load_results(tmp_path / "out")
    assert all(p.summary["success_rate"] == 0 for p in results.policies)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a legend without entries would warn
        fig = completion_cdf(results)
    (ax,) = fig.axes
    assert not ax.lines and ax.get_legend() is None
    assert [t.get_text() for t in ax.texts] == ["no job completed under any policy"]


def test_fault_spans_merge_overlaps_and_stay_bounded() -> None:
    from reports.charts import MAX_FAULT_SPANS, fault_spans

    assert fault_spans(
        [{"start_s": 1, "end_s": 3}, {"start_s": 2, "end_s": 4}, {"start_s": 6, "end_s": 7}], 10
    ) == [(1, 4), (6, 7)]
    rng = np.random.default_rng(1)
    starts = rng.uniform(0, 60, 20_000)
    many = [{"start_s": s, "end_s": s + 0.001} for s in starts]
    spans = fault_spans(many, 60)
    assert len(spans) <= MAX_FAULT_SPANS
    # every fault window lies inside a shaded span
    for f in many[:500]:
        assert any(a <= f["start_s"] and f["end_s"] <= b for a, b in spans)


def test_a_report_of_20000_faults_is_bounded(results_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil
    import time

    from reports.charts import MAX_FAULT_LABELS, MAX_FAULT_SPANS

    many = tmp_path / "many"
    shutil.copytree(results_dir, many)
    record = json.loads((many / "results.json").read_text())
    duration_s = record["scenario"]["duration_s"]
    record["scenario"]["faults"] = [
        {"kind": "loss", "start_s": t, "end_s": t + 0.002, "label": f"loss {i}"}
        for i, t in enumerate(np.linspace(0, duration_s - 0.01, 20_000).tolist())
    ]
    (many / "results.json").write_text(json.dumps(record))
    results = load_results(many)
    fig = herd(results)
    ax = fig.axes[0]
    assert len([p for p in ax.patches if p.get_gid() == "fault"]) <= MAX_FAULT_SPANS
    title = fig._suptitle.get_text()
    assert title.count("loss ") == MAX_FAULT_LABELS and "+ 19,994 more faults" in title
    started = time.perf_counter()
    out = write_report(results, many / "report.html")
    assert time.perf_counter() - started < 60
    text = out.read_text()
    assert text.count("<li>loss ") == 100 and "and 19,900 more" in text


def _many_policies(results_dir: Path, n: int) -> Results:
    """The fixture's results with ``n`` policies (copies of the first under new names)."""
    results = load_results(results_dir)
    first = results.policies[0]
    copies = tuple(dataclasses.replace(first, name=f"policy-{i:02d}") for i in range(n))
    record = dict(results.record, policies=[dict(results.record["policies"][0])] * n)
    return dataclasses.replace(results, record=record, policies=copies)


def test_charts_stay_readable_with_fifty_policies(results_dir: Path) -> None:
    results = _many_policies(results_dir, 50)
    fig = herd(results)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 50  # small multiples, one policy each, no shared legend
    assert all(ax.get_legend() is None for ax in panels)
    colour = {
        line.get_gid(): line.get_color()
        for ax in panels
        for line in ax.get_lines()
        if (line.get_gid() or "").startswith("total:")
    }
    assert len(colour) == 50 and len(set(colour.values())) == 50
    assert len(set(colours(f"x{i}" for i in range(50)).values())) == 50


def test_a_log_axis_when_the_load_spans_more_than_two_decades(results_dir: Path) -> None:
    results = load_results(results_dir)
    totals = [
        (p.series["offered_first"] + p.series["offered_retry"] + p.series["offered_reconnect"])
        / results.bucket_s
        for p in results.policies
    ]
    expected = "log" if spans_decades(totals) else "linear"
    assert herd(results).axes[0].get_yscale() == expected
    assert spans_decades([np.array([0.0, 1.0, 1000.0])])
    assert not spans_decades([np.array([0.0, 10.0, 900.0])])


def test_capacity_is_drawn_in_jobs_per_second_on_the_goodput_axis(results_dir: Path) -> None:
    results = load_results(results_dir)
    ax = goodput(results).axes[0]
    assert ax.get_ylabel() == "jobs/s"
    (cap,) = [line for line in ax.get_lines() if line.get_gid() == "capacity"]
    assert cap.get_ydata()[0] == pytest.approx(results.scenario["capacity_per_s"])


def test_gauges_with_nothing_to_show_are_left_out_with_a_note(results_dir: Path) -> None:
    results = load_results(results_dir)
    fig = service_view(results)
    labels = [ax.get_ylabel() for ax in fig.axes]
    # the fixture never scales: instances are constant, so that panel is left out, said so
    assert "active instances" not in labels
    assert (
        "not shown: " in fig.axes[0].get_title() and "active instances 2" in fig.axes[0].get_title()
    )


def test_the_recovery_window_is_zoomed_on_the_last_fault(results_dir: Path) -> None:
    results = load_results(results_dir)
    ax = recovery(results).axes[0]
    low, high = ax.get_xlim()
    last = max(f["end_s"] for f in results.scenario["faults"])
    assert low == pytest.approx(last - 5) and high <= results.scenario["duration_s"]


def test_policy_plot_shows_reconnect_delays_beside_retry_delays() -> None:
    from reports.policy_plot import policy_delays
    from sim.policies.describe import delay_samples
    from sim.policies.presets import preset

    names = ("seed-default", "grpc-default", "no-retry")
    retries = {
        n: delay_samples(preset(n).retry.backoff, preset(n).retry.max_attempts - 1, 500, 1)
        for n in names
    }

    def reconnect_count(name: str) -> int:
        most = preset(name).reconnect.max_attempts
        return 10 if most is None else most

    reconnects = {
        n: delay_samples(preset(n).reconnect.backoff, reconnect_count(n), 500, 1) for n in names
    }
    left, right = policy_delays(retries, reconnect_s=reconnects).axes
    assert right.get_title() == "progress stream: reconnects"
    boxes = [p.get_gid() for p in right.patches if (p.get_gid() or "").startswith("reconnect:")]
    # seed-default reconnects 3 times, gRPC without limit (10 shown), no-retry never
    assert boxes.count("reconnect:seed-default") == 3
    assert boxes.count("reconnect:grpc-default") == 10
    assert "reconnect:no-retry" not in boxes
    assert any("no-retry" in t.get_text() for t in left.texts)  # no retries, said so
