"""Every transition of the circuit breaker."""

from __future__ import annotations

import numpy as np

from sim.policies.backoff import Backoff
from sim.policies.breaker import BreakerSpec, BreakerState, CircuitBreaker
from sim.policies.classify import ErrorKind, Outcome
from sim.policies.policy import Action, RetryPolicy

SPEC = BreakerSpec(failure_rate=0.5, window_calls=10, min_calls=4, open_s=5.0, half_open_probes=2)


def opened(now: float = 0.0) -> CircuitBreaker:
    b = SPEC.new()
    for _ in range(4):
        assert b.allow(now)
        b.record(now, failed=True)
    assert b.state is BreakerState.OPEN
    return b


def test_closed_stays_closed_below_min_calls_even_if_all_fail() -> None:
    b = SPEC.new()
    for _ in range(3):
        b.record(0.0, failed=True)
    assert b.state is BreakerState.CLOSED


def test_closed_stays_closed_below_the_failure_rate() -> None:
    b = SPEC.new()
    for failed in [True, False, False, False, True, False, False, False, False, False]:
        b.record(0.0, failed=failed)
    assert b.state is BreakerState.CLOSED


def test_closed_opens_at_the_failure_rate_threshold() -> None:
    b = SPEC.new()
    for failed in [True, False, True, False]:  # 50% of 4 calls
        b.record(0.0, failed=failed)
    assert b.state is BreakerState.OPEN


def test_open_rejects_until_the_wait_is_over_then_half_opens() -> None:
    b = opened(0.0)
    assert not b.allow(4.99)
    assert b.allow(5.0)
    assert b.state is BreakerState.HALF_OPEN


def test_half_open_lets_only_the_probes_through() -> None:
    b = opened(0.0)
    assert b.allow(5.0) and b.allow(5.0)
    assert not b.allow(5.0)


def test_half_open_closes_after_successful_probes() -> None:
    b = opened(0.0)
    b.allow(5.0)
    b.allow(5.0)
    b.record(5.1, failed=False)
    assert b.state is BreakerState.HALF_OPEN
    b.record(5.2, failed=False)
    assert b.state is BreakerState.CLOSED
    assert b.allow(5.3)


def test_half_open_probe_failure_opens_again_with_a_fresh_wait() -> None:
    b = opened(0.0)
    b.allow(5.0)
    b.record(6.0, failed=True)
    assert b.state is BreakerState.OPEN
    assert not b.allow(10.9)
    assert b.allow(11.0)


def test_retry_run_turns_an_open_breaker_into_a_local_rejection_that_sends_nothing() -> None:
    breaker = opened(0.0)
    policy = RetryPolicy(max_attempts=2, backoff=Backoff(base_s=1.0, cap_s=1.0), breaker=SPEC)
    run = policy.start(1.0, np.random.default_rng(0), breaker=breaker)
    assert not run.before_attempt(1.0)
    decision = run.after(Outcome(error=ErrorKind.LOCAL_REJECT), 1.0)
    assert decision.action is Action.RETRY
    assert breaker.state is BreakerState.OPEN  # a local rejection is not recorded
