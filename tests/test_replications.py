"""Percentiles across replications are pooled, and their CIs cover the true value: checked
against an M/M/c queue's exact sojourn-time percentiles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.decide.figures import FIGURES
from sim.results import mean_and_ci, pooled_percentile, t95
from sim.world.run import run_policy
from sim.world.summary import PERCENTILES, inverted_cdf, samples

from .simhelp import scenario_from

ARRIVAL_PER_S, SERVICE_PER_S, SERVERS = 2.4, 1.0, 4  # utilization 0.6

MMC = f"""\
name: mmc
seed: 1
duration_s: 150
bucket_s: 1
clients:
  arrival: {{kind: poisson, schedule: [{{from_s: 0, rate_per_s: {ARRIVAL_PER_S}}}]}}
  job_timeout_s: 100000
  follow_stream: false
service:
  instances: 1
  concurrency: {SERVERS}
  queue_limit: 1000000
  service_time: {{kind: exponential, mean_s: {1 / SERVICE_PER_S}}}
network:
  latency: {{kind: constant, value_s: 0}}
policies: [no-retry]
"""


def erlang_c(servers: int, offered: float) -> float:
    """The probability that an arrival waits in an M/M/c queue (Erlang C)."""
    top = offered**servers / math.factorial(servers) * servers / (servers - offered)
    return top / (sum(offered**k / math.factorial(k) for k in range(servers)) + top)


def sojourn_percentile_s(q: float) -> float:
    """The exact ``q``-th percentile of the time in system (wait + service) of M/M/c.

    The wait is 0 with probability 1 - C, else Exp(c mu - lambda); with the service
    Exp(mu) added, P(T > t) = (1 - C) e^(-mu t) + C (a e^(-mu t) - mu e^(-a t)) / (a - mu),
    a = c mu - lambda. Solved for P(T > t) = 1 - q/100 by bisection."""
    mu, a = SERVICE_PER_S, SERVERS * SERVICE_PER_S - ARRIVAL_PER_S
    c = erlang_c(SERVERS, ARRIVAL_PER_S / SERVICE_PER_S)

    def survival(t: float) -> float:
        return (1 - c) * math.exp(-mu * t) + c * (a * math.exp(-mu * t) - mu * math.exp(-a * t)) / (
            a - mu
        )

    lo, hi = 0.0, 100.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if survival(mid) > 1 - q / 100 else (lo, mid)
    return lo


def test_the_exact_percentiles_are_right_at_the_extremes() -> None:
    # with no queueing (C -> 0) the sojourn is the service alone: p50 = ln 2 / mu
    assert erlang_c(SERVERS, 0.001) < 1e-9
    assert sojourn_percentile_s(50) > math.log(2)  # some arrivals wait


def test_pooled_percentile_cis_cover_the_exact_mmc_percentiles(tmp_path: Path) -> None:
    scenario = scenario_from(tmp_path, MMC)
    policy = scenario.policies[0]
    experiments, replications = 20, 4
    covered = {95.0: 0, 99.0: 0}
    bias_pooled = {95.0: [], 99.0: []}  # type: dict[float, list[float]]
    bias_averaged = {95.0: [], 99.0: []}  # type: dict[float, list[float]]
    for k in range(experiments):
        per_rep = [
            samples(run_policy(scenario, policy, seed=100 + k, replication=r).recorder)[
                "completion_s"
            ]
            for r in range(replications)
        ]
        for q in covered:
            exact = sojourn_percentile_s(q)
            pooled = pooled_percentile(per_rep, q)
            assert pooled is not None
            value, (low, high) = pooled
            covered[q] += low <= exact <= high
            bias_pooled[q].append(value / exact - 1)
            averaged = np.mean([np.percentile(a, q) for a in per_rep])
            bias_averaged[q].append(averaged / exact - 1)
    # 95% intervals: at least 17 of 20 cover (fewer than 1 in 50 at a true 95%)
    assert covered[95.0] >= 17 and covered[99.0] >= 17, covered
    # pooling removes most of the small-sample bias of averaging per-replication p99s
    assert abs(np.mean(bias_pooled[99.0])) < 0.5 * abs(np.mean(bias_averaged[99.0]))
    assert np.mean(bias_averaged[99.0]) < -0.02  # what the mean of p99s gave: low


def test_percentile_figures_are_the_pooled_ones_in_the_registry() -> None:
    assert set(PERCENTILES) == {n for n, f in FIGURES.items() if f.pooling == "pooled"}


def test_replications_pool_percentiles_and_average_the_rest() -> None:
    rng = np.random.default_rng(5)
    reps = [rng.exponential(1.0, 200) for _ in range(5)]
    per_rep = [{"x": float(a.mean()), "completion_s": {"p99": 0.0}} for a in reps]
    for_pooling = [{"completion_s": a, "queue_wait_s": a[:0]} for a in reps]
    mean, ci = mean_and_ci(per_rep, for_pooling)
    everything = np.concatenate(reps)
    assert mean["completion_s"]["p99"] == pytest.approx(
        np.percentile(everything, 99, method="inverted_cdf"), abs=1e-6
    )
    each = [np.percentile(a, 99, method="inverted_cdf") for a in reps]
    half = t95(4) * np.std(each, ddof=1) / math.sqrt(5)
    assert ci["completion_s"]["p99"] == pytest.approx(
        [mean["completion_s"]["p99"] - half, mean["completion_s"]["p99"] + half], abs=1e-5
    )
    assert mean["x"] == pytest.approx(np.mean([a.mean() for a in reps]), abs=1e-6)
    assert mean["queue_wait_s"]["p95"] is None  # no samples at all: nothing to pool


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.floats(0.0, 1e4), min_size=1, max_size=400),
    q=st.sampled_from([0.0, 1.0, 5.0, 25.0, 50.0, 95.0, 99.0, 99.9, 100.0]),
)
def test_the_percentile_of_a_summary_is_numpys_inverted_cdf(values: list[float], q: float) -> None:
    """Summaries take percentiles by their own index arithmetic (numpy's costs ~20x):
    it must pick numpy's observation, whatever the sample size and quantile."""
    x = np.asarray(values)
    assert inverted_cdf(np.sort(x), q) == float(np.percentile(x, q, method="inverted_cdf"))


def test_the_percentile_index_matches_numpy_at_every_size_up_to_3000() -> None:
    for n in range(1, 3001):
        x = np.arange(n, dtype=float)
        for q in (50.0, 95.0, 99.0):
            assert inverted_cdf(x, q) == float(np.percentile(x, q, method="inverted_cdf")), (n, q)
