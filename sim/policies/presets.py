"""Named policies, each following a published source.

``seed-default`` is the seed plan exactly; the others are the strategies the
2015 AWS post, gRPC, the AWS SDKs and the Google SRE book describe, given the
seed's scale (1 s base, 30 s cap) where the source leaves it open, so the
comparison isolates the strategy.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.policies.backoff import Backoff, BackoffKind, Jitter
from sim.policies.budget import AwsQuota, GrpcThrottle, RatioBudget
from sim.policies.classify import DEFAULT_CLASSIFIER, SEED_CLASSIFIER
from sim.policies.policy import Policy, ReconnectPolicy, RetryPolicy

_SEED_RECONNECT = ReconnectPolicy(
    max_attempts=3,
    backoff=Backoff(base_s=1.0, cap_s=10.0, jitter=Jitter.PROPORTIONAL, jitter_ratio=0.1),
    honour_server_retry=False,
    resume=True,
)


def _exp(jitter: Jitter, cap_s: float = 30.0, base_s: float = 1.0) -> Backoff:
    return Backoff(base_s=base_s, cap_s=cap_s, jitter=jitter)


def _reconnect(jitter: Jitter) -> ReconnectPolicy:
    return ReconnectPolicy(max_attempts=3, backoff=_exp(jitter, cap_s=10.0), resume=True)


def seed_default() -> Policy:
    """The seed plan (docs/policies-and-faults.md): 3 retries, delay
    min(1 s * 2^attempt, 30 s) ±10%; retry 5xx, timeouts and resets, never 4xx;
    SSE reconnect 3 attempts, 1 s base, 10 s max."""
    return Policy(
        name="seed-default",
        retry=RetryPolicy(
            max_attempts=4,
            backoff=Backoff(base_s=1.0, cap_s=30.0, jitter=Jitter.PROPORTIONAL, jitter_ratio=0.1),
            classifier=SEED_CLASSIFIER,
        ),
        reconnect=_SEED_RECONNECT,
        source="seed-system.md: the job queue's work plan",
    )


def no_retry() -> Policy:
    """No retries and no reconnects: the seed plan's starting point (a plain timeout)."""
    return Policy(
        name="no-retry",
        retry=RetryPolicy(max_attempts=1),
        reconnect=ReconnectPolicy(max_attempts=0),
        source="seed-system.md: 'job creation had a plain timeout and no retry'",
    )


def immediate() -> Policy:
    """Naive tight retries: 3 retries with no wait at all, reconnect at once."""
    zero = Backoff(kind=BackoffKind.CONSTANT, base_s=0.0, cap_s=0.0)
    return Policy(
        name="immediate",
        retry=RetryPolicy(max_attempts=4, backoff=zero),
        reconnect=ReconnectPolicy(max_attempts=3, backoff=zero),
        source="the anti-pattern the Amazon Builders' Library warns of",
    )


def exponential() -> Policy:
    """Plain exponential backoff, no jitter (AWS 2015 'Exponential')."""
    return Policy(
        name="exponential",
        retry=RetryPolicy(max_attempts=4, backoff=_exp(Jitter.NONE)),
        reconnect=_reconnect(Jitter.NONE),
        source="AWS Architecture Blog 2015, 'Exponential Backoff And Jitter'",
    )


def full_jitter() -> Policy:
    """Exponential backoff with full jitter, U(0, v) (AWS 2015 'Full Jitter')."""
    return Policy(
        name="full-jitter",
        retry=RetryPolicy(max_attempts=4, backoff=_exp(Jitter.FULL)),
        reconnect=_reconnect(Jitter.FULL),
        source="AWS Architecture Blog 2015, 'Exponential Backoff And Jitter'",
    )


def equal_jitter() -> Policy:
    """Exponential backoff with equal jitter, v/2 + U(0, v/2) (AWS 2015 'Equal Jitter')."""
    return Policy(
        name="equal-jitter",
        retry=RetryPolicy(max_attempts=4, backoff=_exp(Jitter.EQUAL)),
        reconnect=_reconnect(Jitter.EQUAL),
        source="AWS Architecture Blog 2015, 'Exponential Backoff And Jitter'",
    )


def decorrelated() -> Policy:
    """Decorrelated jitter, min(cap, U(base, 3 * previous)) (AWS 2015 'Decorrelated Jitter')."""
    return Policy(
        name="decorrelated",
        retry=RetryPolicy(max_attempts=4, backoff=_exp(Jitter.DECORRELATED)),
        reconnect=_reconnect(Jitter.DECORRELATED),
        source="AWS Architecture Blog 2015, 'Exponential Backoff And Jitter'",
    )


def decorrelated_v2() -> Policy:
    """Polly's decorrelated jitter v2 (Polly.Contrib.WaitAndRetry, Polly v8 default)."""
    return Policy(
        name="decorrelated-v2",
        retry=RetryPolicy(max_attempts=4, backoff=_exp(Jitter.DECORRELATED_V2)),
        reconnect=_reconnect(Jitter.DECORRELATED_V2),
        source="Polly: DecorrelatedJitterBackoffV2",
    )


def aws_standard() -> Policy:
    """AWS SDK standard retry mode: 3 attempts, U(0,1) * min(1 s * 2^i, 20 s),
    a 500-token retry quota (5 a retry, 10 after a timeout)."""
    return Policy(
        name="aws-standard",
        retry=RetryPolicy(
            max_attempts=3,
            backoff=_exp(Jitter.FULL, cap_s=20.0),
            budget=AwsQuota(),
        ),
        reconnect=_reconnect(Jitter.FULL),
        source="AWS SDKs and Tools reference guide: standard retry mode",
    )


def grpc_default() -> Policy:
    """gRPC: A6 retry policy (4 attempts, U(0, min(0.1 s * 2^(n-1), 1 s)), throttling
    max_tokens 10, token_ratio 0.1) and connection backoff for reconnects (1 s,
    x1.6, ±20%, max 120 s, no attempt limit)."""
    return Policy(
        name="grpc-default",
        retry=RetryPolicy(
            max_attempts=4,
            backoff=Backoff(base_s=0.1, multiplier=2.0, cap_s=1.0, jitter=Jitter.FULL),
            budget=GrpcThrottle(max_tokens=10.0, token_ratio=0.1),
        ),
        reconnect=ReconnectPolicy(
            max_attempts=None,
            backoff=Backoff(
                base_s=1.0,
                multiplier=1.6,
                cap_s=120.0,
                jitter=Jitter.PROPORTIONAL,
                jitter_ratio=0.2,
            ),
            resume=True,
        ),
        source="gRFC A6 (retries, throttling); gRPC connection-backoff.md",
    )


def sre_budget() -> Policy:
    """Google SRE book: at most 3 attempts, a 10% retry budget (plus a floor of one
    retry per 10 s window, Finagle's idea, so a quiet client can still retry), full jitter."""
    return Policy(
        name="sre-budget",
        retry=RetryPolicy(
            max_attempts=3,
            backoff=_exp(Jitter.FULL),
            classifier=DEFAULT_CLASSIFIER,
            budget=RatioBudget(percent=0.1, min_retries_per_s=0.1, window_s=10.0),
        ),
        reconnect=_reconnect(Jitter.FULL),
        source="Site Reliability Engineering (O'Reilly 2016), ch. 22; Finagle RetryBudget",
    )


#: Chromium's reconnection time when the server sends no ``retry:`` (its
#: ``EventSource::kDefaultReconnectDelay``; the spec leaves it to the browser)
EVENTSOURCE_DEFAULT_RETRY_S = 3.0


def eventsource() -> Policy:
    """The browser's EventSource (HTML Living Standard 9.2) with the seed's job
    creation: reconnect after the server's ``retry:`` or the browser's default (3 s in
    Chromium), no backoff, no jitter, no limit, resume with Last-Event-ID; a non-200
    answer or a wrong content type closes the stream for good."""
    return Policy(
        name="eventsource",
        retry=seed_default().retry,
        reconnect=ReconnectPolicy(
            max_attempts=None,
            backoff=Backoff(
                kind=BackoffKind.CONSTANT,
                base_s=EVENTSOURCE_DEFAULT_RETRY_S,
                cap_s=EVENTSOURCE_DEFAULT_RETRY_S,
            ),
            honour_server_retry=True,
            resume=True,
            give_up_on_status=True,
        ),
        source="HTML Living Standard 9.2 (EventSource); Chromium's 3 s default",
    )


PRESETS: dict[str, Callable[[], Policy]] = {
    "seed-default": seed_default,
    "no-retry": no_retry,
    "immediate": immediate,
    "exponential": exponential,
    "full-jitter": full_jitter,
    "equal-jitter": equal_jitter,
    "decorrelated": decorrelated,
    "decorrelated-v2": decorrelated_v2,
    "aws-standard": aws_standard,
    "grpc-default": grpc_default,
    "sre-budget": sre_budget,
    "eventsource": eventsource,
}


def preset(name: str) -> Policy:
    """The preset called ``name``; KeyError lists the known names."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
