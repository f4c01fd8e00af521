"""What happened to one attempt, and whether a policy may retry it.

The seed plan's table (``docs/policies-and-faults.md``, "The seed plan"): retry HTTP 5xx,
network timeouts, ``ECONNRESET`` and ``ETIMEDOUT``; never retry 4xx, 401 or 403;
429 follows its own rule (the server's ``Retry-After`` hint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sim.frozen import frozen


class ErrorKind(StrEnum):
    """Transport-level failures, as both the simulator and real clients report them."""

    TIMEOUT = "timeout"  # no answer within the request timeout (ETIMEDOUT)
    RESET = "reset"  # the peer reset the connection (ECONNRESET)
    REFUSED = "refused"  # nothing listening / proxy disabled (ECONNREFUSED)
    LOCAL_REJECT = "local_reject"  # a circuit breaker refused the call without sending it
    CONFLICT = "conflict"  # an optimistic-concurrency write lost the race: read again


class Verdict(StrEnum):
    """A classifier's answer for one outcome."""

    SUCCESS = "success"
    RETRY = "retry"
    THROTTLED = "throttled"  # 429: retry only by the throttle rule
    FAIL = "fail"  # not retryable: the client reports a failure


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt: an HTTP status or a transport error, never both."""

    status: int | None = None
    error: ErrorKind | None = None
    retry_after_s: float | None = None

    def __post_init__(self) -> None:
        if (self.status is None) == (self.error is None):
            raise ValueError("an Outcome has exactly one of status and error")

    @property
    def label(self) -> str:
        """A short name for counters: ``'503'``, ``'timeout'``, ..."""
        return str(self.status) if self.status is not None else str(self.error)


STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


def _status_matches(status: int, pattern: str) -> bool:
    if pattern.endswith("xx"):
        return str(status)[0] == pattern[0]
    return str(status) == pattern


@frozen
class Classifier:
    """Maps an outcome to a verdict.

    ``retry_statuses`` and ``never_statuses`` hold exact codes (``"503"``) or classes
    (``"5xx"``); an exact code in ``never_statuses`` wins over a class in
    ``retry_statuses``. 429 is always ``THROTTLED`` unless listed in ``never_statuses``.
    A breaker's local rejection is retryable: it sent nothing, the backoff still applies.
    """

    retry_statuses: frozenset[str] = frozenset({"5xx"})
    never_statuses: frozenset[str] = frozenset({"4xx"})
    retry_errors: frozenset[ErrorKind] = frozenset(
        {ErrorKind.TIMEOUT, ErrorKind.RESET, ErrorKind.REFUSED}
    )
    # Verdicts already worked out: a simulated run meets a handful of distinct Outcome
    # objects (the service hands out one per answer) millions of times. Keyed by identity,
    # which costs no hashing of the Outcome; each entry holds its Outcome, so the id
    # cannot be reused while the entry exists.
    _verdicts: dict[int, tuple[Outcome, Verdict]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def classify(self, outcome: Outcome) -> Verdict:
        """The verdict for ``outcome``."""
        known = self._verdicts.get(id(outcome))
        if known is not None and known[0] is outcome:
            return known[1]
        verdict = self._classify(outcome)
        if len(self._verdicts) < 4096:
            self._verdicts[id(outcome)] = (outcome, verdict)
        return verdict

    def _classify(self, outcome: Outcome) -> Verdict:
        if outcome.error is not None:
            if outcome.error in (ErrorKind.LOCAL_REJECT, ErrorKind.CONFLICT):
                return Verdict.RETRY
            return Verdict.RETRY if outcome.error in self.retry_errors else Verdict.FAIL
        status = outcome.status
        assert status is not None
        if 200 <= status < 300:
            return Verdict.SUCCESS
        exact = str(status)
        if exact in self.never_statuses:
            return Verdict.FAIL
        if status == 429:
            return Verdict.THROTTLED
        if exact in self.retry_statuses:
            return Verdict.RETRY
        if any(_status_matches(status, p) for p in self.never_statuses):
            return Verdict.FAIL
        if any(_status_matches(status, p) for p in self.retry_statuses):
            return Verdict.RETRY
        return Verdict.FAIL


SEED_CLASSIFIER = Classifier(
    retry_statuses=frozenset({"5xx"}),
    never_statuses=frozenset({"4xx"}),
    retry_errors=frozenset({ErrorKind.TIMEOUT, ErrorKind.RESET}),
)
"""The seed plan exactly: 5xx, timeouts and resets; a refused connection is not on its list."""

DEFAULT_CLASSIFIER = Classifier()
"""The seed's table plus refused connections, which are as transient as resets."""
