"""Human-readable summaries of policies: settings and delay distributions per retry."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from sim.policies.backoff import Backoff, BlockDraws, Jitter
from sim.policies.policy import Policy

MAX_RETRIES_SHOWN = 10


@dataclass(frozen=True, slots=True)
class DelayStats:
    """Delay before one retry number over many seeded draws, in seconds."""

    retry: int
    min_s: float
    p50_s: float
    p95_s: float
    max_s: float
    mean_s: float


def delay_samples(backoff: Backoff, retries: int, draws: int = 10_000, seed: int = 0) -> np.ndarray:
    """``draws`` independent schedules of ``retries`` delays: shape (draws, retries), seconds.

    The schedules draw one after another from one Generator, one U[0, 1) a delay, as
    ``backoff.delays_s`` draws (:func:`delay_samples_drawn` runs exactly that). Every
    jitter but ``decorrelated-v2`` is worked out on whole arrays of those draws
    (``Backoff.delay_table_s``: the same numbers); ``decorrelated-v2`` is drawn
    schedule by schedule."""
    if backoff.jitter is Jitter.DECORRELATED_V2 or retries == 0:
        return delay_samples_drawn(backoff, retries, draws, seed)
    # row i's delays take draws i * retries ... (i + 1) * retries - 1 of the stream
    u = np.random.default_rng(seed).random(draws * retries).reshape(draws, retries)
    return backoff.delay_table_s(u)


def delay_samples_drawn(
    backoff: Backoff, retries: int, draws: int = 10_000, seed: int = 0
) -> np.ndarray:
    """:func:`delay_samples` drawn as the simulator draws: ``backoff.delays_s`` once a
    schedule, from one Generator, a block at a time (:class:`BlockDraws`: the same
    numbers as a call a draw)."""
    rng = BlockDraws(np.random.default_rng(seed))
    rows = [list(itertools.islice(backoff.delays_s(rng), retries)) for _ in range(draws)]
    return np.array(rows, dtype=float).reshape(draws, retries)


def delay_stats(
    backoff: Backoff, retries: int, draws: int = 10_000, seed: int = 0
) -> list[DelayStats]:
    """Draw ``draws`` independent schedules of ``retries`` delays and summarise each retry."""
    samples = delay_samples(backoff, retries, draws, seed)
    out = []
    for n in range(retries):
        col = samples[:, n]
        p50, p95 = np.percentile(col, [50, 95])
        out.append(
            DelayStats(
                n + 1, float(col.min()), float(p50), float(p95), float(col.max()), float(col.mean())
            )
        )
    return out


def _table(stats: list[DelayStats]) -> list[str]:
    lines = [f"    {'retry':>5} {'min ms':>10} {'p50 ms':>10} {'p95 ms':>10} {'max ms':>10}"]
    for s in stats:
        lines.append(
            f"    {s.retry:>5} {s.min_s * 1e3:>10.0f} {s.p50_s * 1e3:>10.0f}"
            f" {s.p95_s * 1e3:>10.0f} {s.max_s * 1e3:>10.0f}"
        )
    return lines


def describe_policy(policy: Policy, draws: int = 10_000, seed: int = 0) -> str:
    """A multi-line description: settings, then the delay of every retry."""
    r, c = policy.retry, policy.reconnect
    cl = r.classifier
    lines = [f"policy {policy.name}" + (f"  ({policy.source})" if policy.source else "")]
    lines.append(f"  retry: {r.max_attempts} attempts in all ({r.max_attempts - 1} retries)")
    lines.append(f"    backoff: {r.backoff.describe()}")
    lines.append(
        "    retry on: "
        + ", ".join(sorted(cl.retry_statuses) + sorted(e.value for e in cl.retry_errors))
        + "; never: "
        + ", ".join(sorted(cl.never_statuses))
        + "; 429: Retry-After"
        + (f" (capped at {r.retry_after_cap_s:g} s)" if r.honour_retry_after else " ignored")
    )
    if r.deadline_s is not None:
        lines.append(f"    deadline: {r.deadline_s:g} s")
    lines.append(f"    budget: {r.budget.describe() if r.budget else 'none'}")
    lines.append(f"    breaker: {r.breaker.describe() if r.breaker else 'none'}")
    if r.max_attempts > 1:
        shown = min(r.max_attempts - 1, MAX_RETRIES_SHOWN)
        lines.extend(_table(delay_stats(r.backoff, shown, draws, seed)))
        if shown < r.max_attempts - 1:
            lines.append(f"    ... ({r.max_attempts - 1 - shown} more retries not shown)")
    limit = "no limit" if c.max_attempts is None else f"{c.max_attempts} attempts per drop"
    lines.append(
        f"  reconnect: {limit}, "
        f"{'resume from Last-Event-ID' if c.resume else 'restart the stream'},"
        f" server retry: {'honoured' if c.honour_server_retry else 'ignored'}"
        + (", a non-200 answer ends it for good" if c.give_up_on_status else "")
    )
    if c.max_attempts != 0:
        lines.append(f"    backoff: {c.backoff.describe()}")
        shown = c.max_attempts if c.max_attempts is not None else 5
        lines.extend(_table(delay_stats(c.backoff, shown, draws, seed)))
    return "\n".join(lines)
