"""Retry budgets: limits on retries across requests, so retries cannot multiply load.

A budget spec is frozen configuration; ``spec.new()`` gives the mutable runtime
state that one client (or, when a scenario says so, all clients) shares.

Runtime protocol, called by the retry loop of a simulated or a real client:

- ``on_request(now_s)`` once per first attempt (not per retry),
- ``try_retry(now_s, after_timeout)`` before each retry: ``None`` denies it,
  otherwise the returned receipt (the tokens the retry took) is handed back to
- ``on_success(now_s, receipt)`` when an attempt succeeds (receipt 0 for a first try),
- ``on_failure(now_s)`` when an attempt fails.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from sim.frozen import frozen


class RetryBudget(Protocol):
    """Runtime state of a retry budget."""

    def on_request(self, now_s: float) -> None: ...
    def try_retry(self, now_s: float, after_timeout: bool) -> float | None: ...
    def on_success(self, now_s: float, receipt: float) -> None: ...
    def on_failure(self, now_s: float) -> None: ...


class BudgetSpec(Protocol):
    """Frozen configuration of a budget."""

    @property
    def kind(self) -> str: ...
    def new(self) -> RetryBudget: ...
    def describe(self) -> str: ...


# ---------------------------------------------------------------- gRPC (gRFC A6)


@frozen
class GrpcThrottle:
    """gRPC retry throttling (gRFC A6).

    ``tokens`` starts at ``max_tokens`` and stays in ``[0, max_tokens]``; each failed
    attempt subtracts 1, each success adds ``token_ratio``; a retry is allowed only
    while ``tokens > max_tokens / 2``. Under 100% failure it allows at most
    ``ceil(max_tokens / 2) - 1`` retries, ever.
    """

    max_tokens: float = 10.0
    token_ratio: float = 0.1
    kind: str = "grpc"

    def __post_init__(self) -> None:
        if self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be > 0, got {self.max_tokens}")
        if self.token_ratio <= 0:
            raise ValueError(f"token_ratio must be > 0, got {self.token_ratio}")

    def new(self) -> GrpcThrottleState:
        return GrpcThrottleState(self)

    def describe(self) -> str:
        return f"gRPC throttle: max_tokens {self.max_tokens:g}, token_ratio {self.token_ratio:g}"


class GrpcThrottleState:
    """Runtime tokens of a :class:`GrpcThrottle`."""

    __slots__ = ("spec", "tokens")

    def __init__(self, spec: GrpcThrottle) -> None:
        self.spec = spec
        self.tokens = spec.max_tokens

    def on_request(self, now_s: float) -> None:
        pass

    def try_retry(self, now_s: float, after_timeout: bool) -> float | None:
        return 1.0 if self.tokens > self.spec.max_tokens / 2.0 else None

    def on_success(self, now_s: float, receipt: float) -> None:
        self.tokens = min(self.spec.max_tokens, self.tokens + self.spec.token_ratio)

    def on_failure(self, now_s: float) -> None:
        self.tokens = max(0.0, self.tokens - 1.0)


# ---------------------------------------------------------------- AWS SDK standard


@frozen
class AwsQuota:
    """AWS SDK standard-mode retry quota.

    The quota starts at ``initial_tokens``; a retry costs ``retry_cost`` tokens
    (``timeout_cost`` after a timeout) and is refused when the quota cannot pay;
    a success refunds what its retry took, or ``success_increment`` for a
    first-try success, never above ``initial_tokens``.
    """

    initial_tokens: float = 500.0
    retry_cost: float = 5.0
    timeout_cost: float = 10.0
    success_increment: float = 1.0
    kind: str = "aws"

    def __post_init__(self) -> None:
        if self.initial_tokens < 0 or self.retry_cost <= 0 or self.timeout_cost <= 0:
            raise ValueError("AWS quota tokens must be >= 0 and costs > 0")

    def new(self) -> AwsQuotaState:
        return AwsQuotaState(self)

    def describe(self) -> str:
        return (
            f"AWS retry quota: {self.initial_tokens:g} tokens, retry costs {self.retry_cost:g}"
            f" ({self.timeout_cost:g} after a timeout)"
        )


class AwsQuotaState:
    """Runtime quota of an :class:`AwsQuota`."""

    __slots__ = ("spec", "tokens")

    def __init__(self, spec: AwsQuota) -> None:
        self.spec = spec
        self.tokens = spec.initial_tokens

    def on_request(self, now_s: float) -> None:
        pass

    def try_retry(self, now_s: float, after_timeout: bool) -> float | None:
        cost = self.spec.timeout_cost if after_timeout else self.spec.retry_cost
        if self.tokens < cost:
            return None
        self.tokens -= cost
        return cost

    def on_success(self, now_s: float, receipt: float) -> None:
        refund = receipt if receipt > 0 else self.spec.success_increment
        self.tokens = min(self.spec.initial_tokens, self.tokens + refund)

    def on_failure(self, now_s: float) -> None:
        pass


# ---------------------------------------------------------------- ratio (SRE / Finagle)


@frozen
class RatioBudget:
    """A ratio retry budget (Google SRE book; Finagle ``RetryBudget``).

    Over a sliding window of ``window_s`` seconds, retries may number at most
    ``min_retries_per_s * window_s + percent * requests`` (requests = first
    attempts in the window). Under 100% failure at a steady request rate ``r``
    the amplification is therefore at most ``1 + percent + min_retries_per_s / r``.
    """

    percent: float = 0.1
    min_retries_per_s: float = 1.0
    window_s: float = 10.0
    kind: str = "ratio"

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 10:
            raise ValueError(f"percent must be within [0, 10], got {self.percent}")
        if self.min_retries_per_s < 0 or self.window_s <= 0:
            raise ValueError("min_retries_per_s must be >= 0 and window_s > 0")

    def new(self) -> RatioBudgetState:
        return RatioBudgetState(self)

    def describe(self) -> str:
        return (
            f"ratio budget: {self.percent * 100:g}% of requests + {self.min_retries_per_s:g}/s"
            f" over {self.window_s:g} s"
        )


class RatioBudgetState:
    """Runtime sliding windows of a :class:`RatioBudget`."""

    __slots__ = ("requests", "retries", "spec")

    def __init__(self, spec: RatioBudget) -> None:
        self.spec = spec
        self.requests: deque[float] = deque()
        self.retries: deque[float] = deque()

    def _expire(self, now_s: float) -> None:
        horizon = now_s - self.spec.window_s
        while self.requests and self.requests[0] <= horizon:
            self.requests.popleft()
        while self.retries and self.retries[0] <= horizon:
            self.retries.popleft()

    def on_request(self, now_s: float) -> None:
        self._expire(now_s)
        self.requests.append(now_s)

    def try_retry(self, now_s: float, after_timeout: bool) -> float | None:
        self._expire(now_s)
        spec = self.spec
        allowance = spec.min_retries_per_s * spec.window_s + spec.percent * len(self.requests)
        if len(self.retries) + 1 > allowance:
            return None
        self.retries.append(now_s)
        return 1.0

    def on_success(self, now_s: float, receipt: float) -> None:
        pass

    def on_failure(self, now_s: float) -> None:
        pass
