"""Backoff and jitter follow the formulas of docs/policies-and-faults.md."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.distributions import LogNormal, sampler
from sim.policies.backoff import Backoff, BackoffKind, BlockDraws, Jitter, polly_f
from sim.policies.classify import Outcome
from sim.policies.policy import Action
from sim.policies.presets import PRESETS, preset

backoffs = st.builds(
    lambda base, extra, mult, jitter, ratio: Backoff(
        base_s=base, cap_s=base + extra, multiplier=mult, jitter=jitter, jitter_ratio=ratio
    ),
    base=st.floats(0.001, 10.0),
    extra=st.floats(0.0, 100.0),
    mult=st.floats(1.0, 4.0),
    jitter=st.sampled_from(list(Jitter)),
    ratio=st.floats(0.0, 1.0),
)


@settings(max_examples=200, deadline=None)
@given(backoff=backoffs, seed=st.integers(0, 2**32 - 1))
def test_every_delay_lies_within_the_jitter_bounds(backoff: Backoff, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for retry, delay in enumerate(itertools.islice(backoff.delays_s(rng), 12), start=1):
        low, high = backoff.bounds_s(retry)
        assert low - 1e-9 <= delay <= high + 1e-9
        assert delay >= 0


@settings(max_examples=200, deadline=None)
@given(backoff=backoffs, seed=st.integers(0, 2**32 - 1))
def test_no_jitter_family_ever_exceeds_the_cap_except_proportional(
    backoff: Backoff, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    for delay in itertools.islice(backoff.delays_s(rng), 12):
        if backoff.jitter is Jitter.PROPORTIONAL:
            # the seed plan jitters the capped value by ±p, so it may pass the cap by p
            assert delay <= backoff.cap_s * (1 + backoff.jitter_ratio) + 1e-9
        else:
            assert delay <= backoff.cap_s + 1e-9


@given(
    base=st.floats(0.001, 10.0),
    mult=st.floats(1.0, 4.0),
    n=st.integers(1, 60),
    cap=st.floats(10, 1e4),
)
def test_exponential_value_is_min_of_cap_and_base_times_multiplier_power(
    base: float, mult: float, n: int, cap: float
) -> None:
    b = Backoff(base_s=base, multiplier=mult, cap_s=cap)
    assert b.value_s(n) == pytest.approx(min(cap, base * mult ** (n - 1)))
    assert b.value_s(n) <= b.value_s(n + 1) + 1e-12  # never shrinks


def _draws(backoff: Backoff, retries: int, n: int = 20_000, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, retries))
    for i in range(n):
        out[i] = list(itertools.islice(backoff.delays_s(rng), retries))
    return out


# (jitter, mean of retry n as a function of v_n, standard deviation as a function of v_n)
MEMORYLESS = [
    (Jitter.NONE, lambda v: v, lambda v: 0.0),
    (Jitter.PROPORTIONAL, lambda v: v, lambda v: v * 0.2 / math.sqrt(12)),
    (Jitter.FULL, lambda v: v / 2, lambda v: v / math.sqrt(12)),
    (Jitter.EQUAL, lambda v: 3 * v / 4, lambda v: v / 2 / math.sqrt(12)),
]


@pytest.mark.parametrize(
    ("jitter", "mean", "sd"), MEMORYLESS, ids=[j.value for j, *_ in MEMORYLESS]
)
def test_mean_and_spread_agree_with_the_formula(jitter, mean, sd) -> None:  # type: ignore[no-untyped-def]
    b = Backoff(base_s=1.0, cap_s=6.0, jitter=jitter, jitter_ratio=0.1)
    draws = _draws(b, 5)
    for n in range(1, 6):
        v = b.value_s(n)
        col = draws[:, n - 1]
        # 20,000 draws: the standard error of the mean is sd/141, so 5 SE is < 4% of sd
        assert col.mean() == pytest.approx(mean(v), abs=5 * sd(v) / math.sqrt(len(col)) + 1e-12)
        assert col.std() == pytest.approx(sd(v), rel=0.03, abs=1e-12)


def test_decorrelated_first_retry_is_uniform_between_base_and_three_base() -> None:
    b = Backoff(base_s=1.0, cap_s=100.0, jitter=Jitter.DECORRELATED)
    first = _draws(b, 1)[:, 0]
    assert first.min() >= 1.0 and first.max() <= 3.0
    assert first.mean() == pytest.approx(2.0, abs=0.02)
    assert first.std() == pytest.approx(2.0 / math.sqrt(12), rel=0.03)


def test_decorrelated_next_delay_depends_on_the_previous_one() -> None:
    b = Backoff(base_s=1.0, cap_s=1000.0, jitter=Jitter.DECORRELATED)
    draws = _draws(b, 2)
    # sleep_2 ~ U(base, 3 * sleep_1): never above three times the previous sleep
    assert np.all(draws[:, 1] <= 3 * draws[:, 0] + 1e-9)
    # E[sleep_2 | sleep_1] = (1 + 3 sleep_1) / 2, so E[sleep_2] = (1 + 3 * 2) / 2
    assert draws[:, 1].mean() == pytest.approx(3.5, rel=0.02)


def test_decorrelated_v2_reproduces_pollys_formula_step_by_step() -> None:
    b = Backoff(base_s=0.5, cap_s=1000.0, jitter=Jitter.DECORRELATED_V2)
    rng = np.random.default_rng(3)
    twin = np.random.default_rng(3)
    prev = 0.0
    for n, delay in enumerate(itertools.islice(b.delays_s(rng), 6), start=1):
        t = (n - 1) + twin.random()
        f = polly_f(t)
        assert delay == pytest.approx((f - prev) * 0.5 / 1.4)
        prev = f


def test_decorrelated_v2_sum_of_delays_grows_like_the_curve() -> None:
    # Telescoping: the first n delays add up to f(t_n) * base / 1.4 (no cap reached).
    b = Backoff(base_s=1.0, cap_s=1e9, jitter=Jitter.DECORRELATED_V2)
    draws = _draws(b, 5)
    total = draws.sum(axis=1)
    assert total.min() >= polly_f(4.0) / 1.4 - 1e-9
    assert total.max() <= polly_f(5.0) / 1.4 + 1e-9


def test_constant_backoff_is_constant() -> None:
    b = Backoff(kind=BackoffKind.CONSTANT, base_s=0.25, cap_s=0.25)
    assert list(itertools.islice(b.delays_s(np.random.default_rng(0)), 5)) == [0.25] * 5


def test_cap_below_base_is_refused() -> None:
    with pytest.raises(ValueError, match="cap_s"):
        Backoff(base_s=2.0, cap_s=1.0)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_seed_default_waits_within_the_seed_plans_bands_and_never_retries_a_fourth_time(
    seed: int,
) -> None:
    policy = preset("seed-default").retry
    run = policy.start(0.0, np.random.default_rng(seed))
    bands_ms = [(900, 1100), (1800, 2200), (3600, 4400)]
    now = 0.0
    retries = 0
    while True:
        assert run.before_attempt(now)
        decision = run.after(Outcome(status=503), now)
        if decision.action is not Action.RETRY:
            break
        low, high = bands_ms[retries]
        assert low <= decision.delay_s * 1000 <= high
        retries += 1
        now += decision.delay_s
    assert retries == 3
    assert decision.action is Action.GIVE_UP


def test_every_preset_has_a_docstring_naming_its_source() -> None:
    for name, factory in PRESETS.items():
        assert factory.__doc__, name
        assert preset(name).source, name
        assert preset(name).name == name


def test_block_draws_give_the_generators_own_numbers_across_blocks() -> None:
    """Policies draw through BlockDraws in the simulator and straight from a Generator
    for real: the same seed must give the same delays either way, block edges included."""
    blocked = BlockDraws(np.random.default_rng(7), block=5)
    direct = np.random.default_rng(7)
    for i in range(23):  # crosses four block edges
        if i % 2:
            assert blocked.uniform(0.5, 2.0) == direct.uniform(0.5, 2.0)
        else:
            assert blocked.random() == direct.random()


def test_sampler_gives_the_distributions_numbers_in_order_across_blocks() -> None:
    dist = LogNormal(median_s=0.02, sigma=0.5)
    draw = sampler(dist, np.random.default_rng(3), block=4)
    expected = dist.samples_s(np.random.default_rng(3), 12).tolist()
    assert [draw() for _ in range(12)] == expected


def _formula_delays(backoff: Backoff, rng: np.random.Generator, retries: int) -> list[float]:
    """The delays of docs/policies-and-faults.md retry by retry, one ``rng.uniform`` or
    ``rng.random`` call a delay: what ``delays_s`` must give, float for float."""
    out, previous_s, previous_f = [], backoff.base_s, 0.0
    for n in range(1, retries + 1):
        v, j, p = backoff.value_s(n), backoff.jitter, backoff.jitter_ratio
        if j is Jitter.NONE:
            d = v
        elif j is Jitter.FULL:
            d = rng.uniform(0.0, v)
        elif j is Jitter.EQUAL:
            d = v / 2.0 + rng.uniform(0.0, v / 2.0)
        elif j is Jitter.PROPORTIONAL:
            d = v * rng.uniform(1.0 - p, 1.0 + p)
        elif j is Jitter.DECORRELATED:
            high = max(backoff.base_s, 3.0 * previous_s)
            d = previous_s = min(backoff.cap_s, rng.uniform(backoff.base_s, high))
        else:
            f = polly_f((n - 1) + rng.random())  # Polly scales by 1 / 1.4
            step_s = (f - previous_f) * backoff.base_s * (1.0 / 1.4)
            d = backoff.cap_s if math.isinf(f) else min(backoff.cap_s, step_s)
            previous_f = previous_f if math.isinf(f) else f
        out.append(float(d))
    return out


@settings(max_examples=300, deadline=None)
@given(
    backoff=backoffs
    | st.builds(
        lambda base, jitter: Backoff(
            kind=BackoffKind.CONSTANT, base_s=base, cap_s=base, jitter=jitter
        ),
        base=st.floats(0.0, 10.0),
        jitter=st.sampled_from(list(Jitter)),
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_delays_are_the_formulas_numbers_exactly_past_the_cap_from_a_generator_or_blocks(
    backoff: Backoff, seed: int
) -> None:
    """The delay iterators are built for speed (C-level maps over the worked-out curve and
    the draws): they must still give the formula's floats, one draw a delay, long past the
    point where the curve reaches its cap, whether drawn from a Generator or in blocks."""
    expected = _formula_delays(backoff, np.random.default_rng(seed), 80)
    direct = list(itertools.islice(backoff.delays_s(np.random.default_rng(seed)), 80))
    blocked = BlockDraws(np.random.default_rng(seed), block=7)
    in_blocks = list(itertools.islice(backoff.delays_s(blocked), 80))
    assert direct == expected
    assert in_blocks == expected


@settings(max_examples=150, deadline=None)
@given(
    backoff=backoffs,
    kind=st.sampled_from(list(BackoffKind)),
    retries=st.integers(0, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_delay_samples_worked_on_arrays_are_the_drawn_schedules_bit_for_bit(
    backoff: Backoff, kind: BackoffKind, retries: int, seed: int
) -> None:
    """The reports' and the conformance check's delay samples, worked out on whole
    arrays, are the very floats the simulator's iterators draw, schedule by schedule."""
    from dataclasses import replace

    from sim.policies.describe import delay_samples, delay_samples_drawn

    backoff = replace(backoff, kind=kind)
    fast = delay_samples(backoff, retries, draws=300, seed=seed)
    drawn = delay_samples_drawn(backoff, retries, draws=300, seed=seed)
    assert fast.shape == drawn.shape == (300, retries)
    assert fast.tobytes() == drawn.tobytes()


def test_a_delay_table_is_not_made_for_decorrelated_v2() -> None:
    """Its tanh and pow are libm's per delay; numpy's need not match them to the bit."""
    backoff = Backoff(jitter=Jitter.DECORRELATED_V2)
    with pytest.raises(ValueError, match="decorrelated-v2"):
        backoff.delay_table_s(np.zeros((2, 3)))
