"""Retry budgets keep retries within their theoretical limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.backoff import Backoff, BackoffKind
from sim.policies.budget import AwsQuota, BudgetSpec, GrpcThrottle, RatioBudget
from sim.policies.classify import ErrorKind, Outcome
from sim.policies.policy import Action, RetryPolicy

NO_WAIT = Backoff(kind=BackoffKind.CONSTANT, base_s=0.0, cap_s=0.0)


def run_all_failing(
    spec: BudgetSpec, requests: int, rate_per_s: float, max_attempts: int = 4
) -> int:
    """Send ``requests`` requests at ``rate_per_s``, every attempt failing with 503.
    Return the number of attempts made."""
    policy = RetryPolicy(max_attempts=max_attempts, backoff=NO_WAIT, budget=spec)
    budget = spec.new()
    rng = np.random.default_rng(0)
    attempts = 0
    for i in range(requests):
        now = i / rate_per_s
        run = policy.start(now, rng, budget=budget)
        while True:
            run.before_attempt(now)
            attempts += 1
            if run.after(Outcome(status=503), now).action is not Action.RETRY:
                break
    return attempts


@given(
    events=st.lists(st.sampled_from(["ok", "fail", "retry"]), max_size=300),
    max_tokens=st.floats(1, 100),
    ratio=st.floats(0.01, 1),
)
def test_grpc_tokens_stay_within_zero_and_max(
    events: list[str], max_tokens: float, ratio: float
) -> None:
    state = GrpcThrottle(max_tokens=max_tokens, token_ratio=ratio).new()
    for e in events:
        if e == "ok":
            state.on_success(0.0, 0.0)
        elif e == "fail":
            state.on_failure(0.0)
        else:
            allowed = state.try_retry(0.0, after_timeout=False) is not None
            assert allowed == (state.tokens > max_tokens / 2)
        assert 0.0 <= state.tokens <= max_tokens


def test_grpc_throttle_under_total_failure_allows_at_most_half_the_tokens_in_retries() -> None:
    # Limit: tokens fall 1 per failure from 10; retries stop at tokens <= 5, and with no
    # success nothing refills them, so at most ceil(10/2) - 1 = 4 retries are ever made.
    requests = 1000
    attempts = run_all_failing(GrpcThrottle(max_tokens=10, token_ratio=0.1), requests, 100.0)
    assert requests < attempts <= requests + 4
    assert attempts / requests <= 1.004


def test_grpc_throttle_recovers_after_successes() -> None:
    state = GrpcThrottle(max_tokens=10, token_ratio=0.1).new()
    for _ in range(10):
        state.on_failure(0.0)
    assert state.try_retry(0.0, after_timeout=False) is None
    for _ in range(51):  # 0 + 51 * 0.1 = 5.1 > 5
        state.on_success(0.0, 0.0)
    assert state.try_retry(0.0, after_timeout=False) is not None


def test_aws_quota_under_total_failure_pays_for_exactly_initial_over_cost_retries() -> None:
    # 500 tokens at 5 a retry and no success to refund: exactly 100 retries, then none.
    attempts = run_all_failing(AwsQuota(), 1000, 100.0, max_attempts=3)
    assert attempts == 1000 + 100


def test_aws_quota_charges_more_after_a_timeout_and_refunds_on_success() -> None:
    state = AwsQuota(initial_tokens=20, retry_cost=5, timeout_cost=10).new()
    assert state.try_retry(0.0, after_timeout=True) == 10
    assert state.tokens == 10
    state.on_success(0.0, 10)  # the retry's cost comes back
    assert state.tokens == 20
    state.on_success(0.0, 0)  # a first-try success adds 1, capped at the initial quota
    assert state.tokens == 20


@given(rate=st.sampled_from([20.0, 50.0, 100.0]), percent=st.sampled_from([0.1, 0.2]))
def test_ratio_budget_holds_amplification_at_one_plus_percent_plus_floor_over_rate(
    rate: float, percent: float
) -> None:
    # Limit at a steady rate r under 100% failure: 1 + percent + min_retries_per_s / r.
    # Tolerance 0.01: only the first window (10 s of 60 s) may run ahead of the ratio.
    spec = RatioBudget(percent=percent, min_retries_per_s=1.0, window_s=10.0)
    requests = int(60 * rate)
    amplification = run_all_failing(spec, requests, rate) / requests
    limit = 1 + percent + 1.0 / rate
    assert amplification <= limit + 0.01
    assert amplification >= limit - 0.03  # it really does spend its budget


def test_ratio_budget_forgets_requests_older_than_its_window() -> None:
    state = RatioBudget(percent=1.0, min_retries_per_s=0.0, window_s=1.0).new()
    state.on_request(0.0)
    assert state.try_retry(0.5, after_timeout=False) is not None
    assert state.try_retry(0.6, after_timeout=False) is None  # 1 retry per request
    assert state.try_retry(1.6, after_timeout=False) is None  # the request has expired


def test_without_budget_amplification_is_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=4, backoff=NO_WAIT)
    run = policy.start(0.0, np.random.default_rng(0))
    n = 0
    while True:
        run.before_attempt(0.0)
        n += 1
        if run.after(Outcome(error=ErrorKind.RESET), 0.0).action is not Action.RETRY:
            break
    assert n == 4


@pytest.mark.parametrize("bad", [dict(max_tokens=0), dict(token_ratio=-1)])
def test_grpc_spec_refuses_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GrpcThrottle(**bad)
