"""The policy library shared by the simulator and the real harness.

Every policy is a small frozen dataclass. Random draws go through an injected
``numpy.random.Generator``; time is passed in as ``now_s`` so the same object
drives a simulated client (``env.now``) and a real one (a monotonic clock).
"""

from sim.policies.backoff import Backoff, Jitter
from sim.policies.breaker import BreakerSpec, CircuitBreaker
from sim.policies.budget import AwsQuota, BudgetSpec, GrpcThrottle, RatioBudget, RetryBudget
from sim.policies.classify import Classifier, ErrorKind, Outcome, Verdict
from sim.policies.policy import Policy, ReconnectPolicy, RetryPolicy

__all__ = [
    "AwsQuota",
    "Backoff",
    "BreakerSpec",
    "BudgetSpec",
    "CircuitBreaker",
    "Classifier",
    "ErrorKind",
    "GrpcThrottle",
    "Jitter",
    "Outcome",
    "Policy",
    "RatioBudget",
    "ReconnectPolicy",
    "RetryBudget",
    "RetryPolicy",
    "Verdict",
]
