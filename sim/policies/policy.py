"""Retry and reconnect policies, and the per-request loops both kinds of client run.

The simulator and the real asyncio clients drive the *same* objects: a
:class:`RetryPolicy` says what to do after each attempt through a
:class:`RetryRun`, a :class:`ReconnectPolicy` after each dropped stream through a
:class:`ReconnectRun`. Neither sleeps nor reads a clock: callers pass ``now_s``
and do the waiting, with ``env.timeout`` or ``asyncio.sleep``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import field
from enum import StrEnum
from typing import NamedTuple

from sim.frozen import frozen
from sim.policies.backoff import Backoff, Draws
from sim.policies.breaker import BreakerSpec, CircuitBreaker
from sim.policies.budget import BudgetSpec, RetryBudget
from sim.policies.classify import DEFAULT_CLASSIFIER, Classifier, ErrorKind, Outcome, Verdict


class Action(StrEnum):
    """What the client does after an attempt."""

    DONE = "done"  # success
    RETRY = "retry"  # wait ``delay_s`` then try again
    FAIL = "fail"  # a non-retryable answer
    GIVE_UP = "give_up"  # retryable, but attempts, deadline, budget or hint say stop


class Decision(NamedTuple):
    """The answer of :meth:`RetryRun.after` (a named tuple: made once per attempt, and
    a tuple is made in a fraction of a frozen dataclass's time)."""

    action: Action
    delay_s: float = 0.0
    reason: str = ""


_DONE = Decision(Action.DONE)

# Enum members read on every attempt, bound to module names once: on Python 3.11 every
# attribute read on an Enum class goes through ``EnumType.__getattr__``'s attribute
# hook, about 140 ns, twenty times a global's cost (faster from 3.12 on).
_SUCCESS, _FAILURE, _RETRYABLE, _THROTTLED = (
    Verdict.SUCCESS,
    Verdict.FAIL,
    Verdict.RETRY,
    Verdict.THROTTLED,
)
_LOCAL_REJECT, _TIMEOUT = ErrorKind.LOCAL_REJECT, ErrorKind.TIMEOUT
_RETRY = Action.RETRY
# makes a named tuple from its fields in one C call: ``Decision(...)`` runs the generated
# Python ``__new__`` (twice the cost, once per retry)
_new_tuple = tuple.__new__


@frozen
class RetryPolicy:
    """How one request is retried.

    ``max_attempts`` counts the first attempt (the seed plan's 3 retries = 4).
    A ``Retry-After`` hint (503 or 429) replaces the backoff delay when
    ``honour_retry_after`` holds, capped at ``retry_after_cap_s`` (as urllib3 does);
    a 429 without a hint waits the backoff delay. ``deadline_s`` bounds the time
    from the first attempt to the start of the last retry.
    """

    max_attempts: int = 4
    backoff: Backoff = field(default_factory=Backoff)
    classifier: Classifier = DEFAULT_CLASSIFIER
    honour_retry_after: bool = True
    retry_after_cap_s: float = 60.0
    deadline_s: float | None = None
    budget: BudgetSpec | None = None
    breaker: BreakerSpec | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.retry_after_cap_s < 0:
            raise ValueError(f"retry_after_cap_s must be >= 0, got {self.retry_after_cap_s}")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, got {self.deadline_s}")

    def new_state(self) -> tuple[RetryBudget | None, CircuitBreaker | None]:
        """Fresh runtime state of this policy's budget and breaker (None where it has none)."""
        return (
            self.budget.new() if self.budget else None,
            self.breaker.new() if self.breaker else None,
        )

    def start(
        self,
        now_s: float,
        rng: Draws,
        budget: RetryBudget | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> RetryRun:
        """Begin one request at ``now_s``; budget and breaker are the caller's runtime state."""
        return RetryRun(self, now_s, rng, budget, breaker)


class RetryRun:
    """The retry loop of one request: ask ``before_attempt``, report ``after``."""

    __slots__ = (
        "attempts",
        "breaker",
        "budget",
        "delays",
        "last_outcome",
        "last_verdict",
        "policy",
        "receipt",
        "rng",
        "started_s",
    )

    def __init__(
        self,
        policy: RetryPolicy,
        now_s: float,
        rng: Draws,
        budget: RetryBudget | None,
        breaker: CircuitBreaker | None,
    ) -> None:
        self.policy = policy
        self.started_s = now_s
        self.rng = rng
        self.delays: Iterator[float] | None = None  # made at the first retry: most never retry
        self.budget = budget
        self.breaker = breaker
        self.attempts = 0
        self.receipt = 0.0
        self.last_outcome: Outcome | None = None  # and its verdict: classified once
        self.last_verdict = _SUCCESS
        if budget is not None:
            budget.on_request(now_s)

    def before_attempt(self, now_s: float) -> bool:
        """Count an attempt; False means the breaker rejects it locally (send nothing)."""
        self.attempts += 1
        return self.breaker is None or self.breaker.allow(now_s)

    def _account(self, verdict: Verdict, now_s: float) -> None:
        """Tell the breaker and the budget how a sent attempt went."""
        if self.breaker is not None:
            self.breaker.record(now_s, failed=verdict in (_RETRYABLE, _THROTTLED))
        if self.budget is not None:
            if verdict is _SUCCESS:
                self.budget.on_success(now_s, self.receipt)
            else:
                self.budget.on_failure(now_s)

    def after(self, outcome: Outcome, now_s: float) -> Decision:
        """Decide what follows ``outcome`` of the attempt just made."""
        policy = self.policy
        if outcome is self.last_outcome:  # a retried request mostly meets one outcome
            verdict = self.last_verdict
        else:
            verdict = self.last_verdict = policy.classifier.classify(outcome)
            self.last_outcome = outcome
        if (self.breaker is not None or self.budget is not None) and (
            outcome.error is not _LOCAL_REJECT  # a sent attempt
        ):
            self._account(verdict, now_s)
        if verdict is _SUCCESS:
            return _DONE
        if verdict is _FAILURE:
            return Decision(Action.FAIL, reason=f"not retryable: {outcome.label}")
        if self.attempts >= policy.max_attempts:
            return Decision(Action.GIVE_UP, reason=f"{self.attempts} attempts made")
        delays = self.delays
        if delays is None:
            delays = self.delays = policy.backoff.delays_s(self.rng)
        delay_s = next(delays)
        hint = outcome.retry_after_s
        if hint is not None and policy.honour_retry_after:
            if hint < 0:
                return Decision(Action.GIVE_UP, reason="server pushback: do not retry")
            delay_s = min(hint, policy.retry_after_cap_s)
        if policy.deadline_s is not None and now_s + delay_s - self.started_s > policy.deadline_s:
            return Decision(Action.GIVE_UP, reason="retry deadline passed")
        if self.budget is not None:
            receipt = self.budget.try_retry(now_s, after_timeout=outcome.error is _TIMEOUT)
            if receipt is None:
                return Decision(Action.GIVE_UP, reason="retry budget exhausted")
            self.receipt = receipt
        return _new_tuple(Decision, (_RETRY, delay_s, ""))  # Decision(_RETRY, delay_s), faster


@frozen
class ReconnectPolicy:
    """How a dropped progress stream (SSE) is recovered.

    ``max_attempts`` reconnect attempts per drop (``None``: until the job's
    deadline); a successful reconnect starts the count again, as EventSource does.
    With ``honour_server_retry`` the server's ``retry:`` field replaces the backoff
    (browsers do exactly this); with ``resume`` the client sends ``Last-Event-ID``
    and the server continues after it, otherwise the stream restarts from the start.
    With ``give_up_on_status`` a connect answered with anything but 200 ends recovery
    for good, as EventSource does (a transport error is still retried).
    """

    max_attempts: int | None = 3
    backoff: Backoff = field(default_factory=lambda: Backoff(cap_s=10.0))
    honour_server_retry: bool = False
    resume: bool = True
    give_up_on_status: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError(f"max_attempts must be >= 0, got {self.max_attempts}")

    def start(self, rng: Draws) -> ReconnectRun:
        """Begin recovering one stream."""
        return ReconnectRun(self, rng)


class ReconnectRun:
    """Reconnect bookkeeping for one stream."""

    __slots__ = ("failed_attempts", "policy", "rng", "schedule")

    def __init__(self, policy: ReconnectPolicy, rng: Draws) -> None:
        self.policy = policy
        self.rng = rng
        self.failed_attempts = 0
        self.schedule: Iterator[float] | None = None

    def next_delay_s(self, server_retry_s: float | None) -> float | None:
        """Delay before the next reconnect attempt, or None: recovery failed."""
        limit = self.policy.max_attempts
        if limit is not None and self.failed_attempts >= limit:
            return None
        self.failed_attempts += 1
        if self.schedule is None:
            self.schedule = self.policy.backoff.delays_s(self.rng)
        delay_s = next(self.schedule)
        if self.policy.honour_server_retry and server_retry_s is not None:
            delay_s = server_retry_s
        return delay_s

    def connected(self) -> None:
        """The stream is open again: the next drop starts a fresh count and backoff."""
        self.failed_attempts = 0
        self.schedule = None


@frozen
class Policy:
    """A named pair of retry and reconnect policies, the unit herdlab compares."""

    name: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    source: str = ""
