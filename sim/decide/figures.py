"""Every summary figure, declared once.

A figure's *name* is its dotted path in a policy's ``summary`` in ``results.json``
(``completion_s.p99``, ``outcomes.gave_up``). ``better`` says which way is an improvement
(``higher``, ``lower``, or ``none`` for figures that describe rather than judge);
baselines, objectives and relative expectations read it. ``pooling`` says how the figure
combines over replications: ``mean`` (mean of per-replication values, Student-t CI) or
``pooled`` (a percentile, computed once over every replication's samples together; its CI
is that value plus or minus Student t times the standard error of the per-replication
percentiles, as in the method of batch means; see :func:`sim.results.mean_and_ci`).

A test holds this registry and :func:`sim.world.summary.summarize` to the same names, so a
figure cannot be added to one and not the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from sim.frozen import frozen

Better = Literal["higher", "lower", "none"]
Pooling = Literal["mean", "pooled"]
#: service kinds a figure is meaningful for
JOBLIKE = frozenset({"job", "rpc"})
ALL_KINDS = frozenset({"job", "rpc", "occ"})


@frozen
class Figure:
    """One summary figure: what it is called, measured in, and which way is better."""

    name: str
    unit: str
    better: Better
    definition: str
    pooling: Pooling = "mean"
    kinds: frozenset[str] = ALL_KINDS

    def improves(self, new: float, old: float) -> bool:
        """Whether ``new`` is better than ``old`` for this figure (False when it has no
        direction)."""
        if self.better == "higher":
            return new > old
        if self.better == "lower":
            return new < old
        return False

    def worse_by(self, new: float, old: float) -> float:
        """How much worse ``new`` is than ``old``, in the figure's unit (<= 0: not worse)."""
        if self.better == "higher":
            return old - new
        if self.better == "lower":
            return new - old
        return 0.0


def _f(
    name: str,
    unit: str,
    better: Better,
    definition: str,
    pooling: Pooling = "mean",
    kinds: frozenset[str] = ALL_KINDS,
) -> Figure:
    return Figure(name, unit, better, definition, pooling, kinds)


_DECLARED: tuple[Figure, ...] = (
    _f("jobs", "jobs", "none", "jobs (client arrivals) in the run."),
    _f(
        "success_rate",
        "fraction",
        "higher",
        "share of jobs whose client received the finished result.",
    ),
    _f(
        "attempts_per_job",
        "attempts",
        "lower",
        "requests a client sent to get its job accepted, averaged over jobs (1.0: no retries).",
    ),
    _f(
        "completion_s.p50",
        "s",
        "lower",
        "median time from a job's arrival to its client receiving the result, over completed jobs.",
        "pooled",
    ),
    _f(
        "completion_s.p95",
        "s",
        "lower",
        "95th percentile of completion time over completed jobs.",
        "pooled",
    ),
    _f(
        "completion_s.p99",
        "s",
        "lower",
        "99th percentile of completion time over completed jobs.",
        "pooled",
    ),
    _f(
        "peak_offered_per_s",
        "requests/s",
        "lower",
        "the most requests (first attempts, retries and reconnects) sent in any sliding"
        " window of peak_window_s (default 1 s) over the run, per second; bucket_s plays no"
        " part.",
    ),
    _f(
        "peak_load_ratio",
        "x capacity",
        "lower",
        "peak offered load divided by the service's capacity in jobs per second.",
        kinds=JOBLIKE,
    ),
    _f(
        "baseline_offered_per_s",
        "requests/s",
        "none",
        "requests sent per second in the 10 s (at most) before the first fault; null"
        " without faults or with a fault at 0 s.",
    ),
    _f(
        "fault_load_ratio",
        "x baseline",
        "lower",
        "the busiest peak_window_s starting within a fault, over baseline_offered_per_s.",
    ),
    _f(
        "recovery_load_ratio",
        "x baseline",
        "lower",
        "the busiest peak_window_s starting between the end of the last fault and the end of"
        " the scenario, over baseline_offered_per_s: the surge an operator sizes for.",
    ),
    _f(
        "recovery_s",
        "s",
        "lower",
        "seconds from the end of the last fault until goodput (completions a client"
        " received) is back to at least 90% of its pre-fault level and the backlog (queue"
        " and clients waiting to retry or reconnect) is back within 10% of it; null if"
        " never, or if the faults made users give up (more lost jobs than 10% of the"
        " faults' span of pre-fault goodput), since giving up is not recovering.",
    ),
    _f("outcomes.completed", "jobs", "higher", "jobs whose client received the result."),
    _f(
        "outcomes.failed",
        "jobs",
        "lower",
        "jobs whose client got a non-retryable answer.",
    ),
    _f(
        "outcomes.gave_up",
        "jobs",
        "lower",
        "jobs whose client stopped without the result: retries or reconnects exhausted.",
    ),
    _f(
        "outcomes.timed_out",
        "jobs",
        "lower",
        "jobs that passed the job deadline without a result.",
    ),
    _f(
        "completed_unseen",
        "jobs",
        "lower",
        "jobs the service finished after their client had stopped waiting for them (gave"
        " up or timed out): work done that nobody received.",
        kinds=frozenset({"job"}),
    ),
    _f(
        "work_amplification",
        "x",
        "lower",
        "server work done over the work of the results clients received: the service time"
        " of every job the service took on over that of the completed ones (OCC: calls"
        " over two per completed update).",
    ),
    _f(
        "wasted_work_s",
        "s",
        "lower",
        "service seconds spent on jobs or calls whose result no client received (orphans,"
        " given-up and timed-out jobs, calls answered after their timeout).",
        kinds=JOBLIKE,
    ),
    _f(
        "queue_wait_s.mean",
        "s",
        "lower",
        "mean time a job the service started waited in its queue (0 when a slot was free).",
        kinds=JOBLIKE,
    ),
    _f(
        "queue_wait_s.p95",
        "s",
        "lower",
        "95th percentile of the queue wait of the jobs the service started.",
        "pooled",
        kinds=JOBLIKE,
    ),
    _f(
        "server_calls",
        "calls",
        "lower",
        "OCC: calls the clients made to the store, reads and writes.",
        kinds=frozenset({"occ"}),
    ),
    _f(
        "server_writes",
        "calls",
        "lower",
        "OCC: conditional writes, the 2015 post's (and its simulator's) \"calls\".",
        kinds=frozenset({"occ"}),
    ),
    _f(
        "server_reads",
        "calls",
        "lower",
        "OCC: version reads, one before every write.",
        kinds=frozenset({"occ"}),
    ),
    _f("events_lost", "events", "lower", "progress events a client never received."),
    _f(
        "events_duplicated",
        "events",
        "lower",
        "progress events a client received more than once.",
    ),
    _f(
        "reconnects_per_job",
        "reconnects",
        "lower",
        "stream reconnects per job, averaged over jobs.",
    ),
    _f(
        "orphaned_jobs",
        "jobs",
        "lower",
        "jobs admitted for an attempt whose client had timed out and never learnt of it.",
    ),
    _f(
        "degraded_accepts",
        "jobs",
        "none",
        "jobs accepted while the store was down (kept in memory, written back later).",
    ),
    _f("makespan_s", "s", "lower", "time of the last job's end."),
)

FIGURES: Mapping[str, Figure] = {f.name: f for f in _DECLARED}


class UnknownFigure(KeyError):
    """A figure name that is not in the registry; the message suggests the closest."""

    def __init__(self, name: str) -> None:
        # imported here: the scenario grammar imports this registry (sim.scenario's
        # package init would otherwise be half-built when this module loads)
        from sim.scenario.errors import did_you_mean

        self.name = name
        super().__init__(f"unknown figure {name!r}{did_you_mean(name, FIGURES)}")

    def __str__(self) -> str:
        return str(self.args[0])


def figure(name: str) -> Figure:
    """The figure called ``name``; UnknownFigure (with a 'did you mean') otherwise."""
    try:
        return FIGURES[name]
    except KeyError:
        raise UnknownFigure(name) from None


def value(summary: Mapping[str, Any], name: str) -> float | None:
    """The value of figure ``name`` in a summary (or CI) dict, following the dotted path;
    None when the figure is null or absent from this summary."""
    node: Any = summary
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if node is None or isinstance(node, bool):
        return None
    if isinstance(node, list | tuple):  # a CI: [low, high]
        return None
    return float(node)


def interval(ci95: Mapping[str, Any] | None, name: str) -> tuple[float, float] | None:
    """The 95% confidence interval of figure ``name`` from a ``ci95`` dict, if any."""
    if ci95 is None:
        return None
    node: Any = ci95
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, list | tuple) and len(node) == 2 and None not in node:
        return float(node[0]), float(node[1])
    return None


def names(kind: str | None = None) -> list[str]:
    """Every figure name, in declaration order; only those meaningful for ``kind`` if given."""
    return [f.name for f in _DECLARED if kind is None or kind in f.kinds]


def flat_names(summary: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    """Every leaf's dotted name in a summary dict (for checking it against the registry)."""
    for key, v in summary.items():
        if isinstance(v, Mapping):
            yield from flat_names(v, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def markdown_table() -> str:
    """The README's table of figures, made from this registry (a test holds the README to
    it; ``python -m sim.decide.figures`` prints it)."""
    rows = [
        "| figure | unit | better | across replications | definition |",
        "|---|---|---|---|---|",
    ]
    for f in _DECLARED:
        kinds = "" if f.kinds == ALL_KINDS else f" ({', '.join(sorted(f.kinds))} only)"
        pooled = "pooled percentile" if f.pooling == "pooled" else "mean"
        rows.append(f"| `{f.name}` | {f.unit} | {f.better} | {pooled} | {f.definition}{kinds} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
