"""Does an observed client keep the policy it declares? (``herdlab verify-client``)

Each rule gives one row per thing it checked, ``pass`` or ``FAIL``, or one ``n/a`` row
when there was nothing to check. The rules, for one client's jobs
(:mod:`harness.observed`), against a :class:`~sim.policies.policy.Policy`:

- ``attempts``: each job's create attempts <= ``retry.max_attempts``;
- ``retry delays``: the wait before create retry n lies in the backoff's range for n
  (``Backoff.bounds_s``), widened by ``SLACK_LOW_S`` below and ``SLACK_HIGH_S`` (plus
  ``SLACK_HIGH_RATIO`` of the bound; ``--late-slack`` sets the absolute part) above, for
  late timers, scheduling and the loopback round trip; waits that follow a Retry-After
  the policy honours are the next rule's;
- ``retry jitter``: the spread of those waits against the policy's own draws: each
  wait's place in 20,000 draws for its retry number (the probability integral
  transform), pooled, Kolmogorov-Smirnov against U(0, 1), after taking off how late
  the client's timers ran (:func:`late_shift_s`); FAIL when p < ``KS_ALPHA``;
  n/a with fewer than ``KS_MIN_SAMPLES`` waits or a policy without jitter (the range
  rule already pins those);
- ``no 4xx retried``: no create retried after a 4xx other than 429, no stream
  reconnected after one;
- ``Retry-After``: with ``honour_retry_after``, a wait after an answer carrying
  Retry-After r is at least min(r, cap) - ``SLACK_LOW_S``;
- ``reconnect delays``, ``reconnect jitter``: as for retries, per reconnect number
  within one drop; with ``honour_server_retry`` and a ``retry:`` seen, the wait is that
  value (within the slack);
- ``reconnect attempts``: reconnects in a row without the stream opening <=
  ``reconnect.max_attempts``;
- ``stops on error status`` (policies that give up on a non-200 stream answer, as
  EventSource does): no reconnect after one;
- ``resume``: with ``reconnect.resume``, every reconnect after events were sent sends
  ``Last-Event-ID``.

Through the expectations machinery (a scenario's ``{kind: client, conforms: POLICY}``,
checked by ``herdlab lab``; ``herdlab verify-client --junit-xml``), each rule that
checked something is one :class:`~sim.decide.verdict.Verdict` (source ``client``):
PASS when none of its checks failed; an ``n/a`` rule is listed as not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from harness.ks import ks_uniform, pit
from harness.observed import Gap, ObservedJob
from sim.decide.expect import Evaluation
from sim.decide.verdict import Status, Verdict
from sim.policies.backoff import Backoff, Jitter
from sim.policies.describe import delay_samples
from sim.policies.policy import Policy
from sim.scenario.model import DEFAULT_LATE_SLACK_S, ClientExpectation

SLACK_LOW_S = 0.05
SLACK_HIGH_S = DEFAULT_LATE_SLACK_S
SLACK_HIGH_RATIO = 0.05
KS_ALPHA = 0.01
KS_MIN_SAMPLES = 8
REFERENCE_DRAWS = 20_000

PASS, FAIL, NA = "pass", "FAIL", "n/a"


@dataclass(frozen=True, slots=True)
class Check:
    """One row of a rule's table."""

    verdict: str
    what: str
    detail: str


@dataclass
class Rule:
    """One rule and what it found."""

    name: str
    checks: list[Check] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if any(c.verdict == FAIL for c in self.checks):
            return FAIL
        return PASS if any(c.verdict == PASS for c in self.checks) else NA

    def check(self, ok: bool, what: str, detail: str) -> None:
        self.checks.append(Check(PASS if ok else FAIL, what, detail))

    def done(self, nothing: str) -> Rule:
        if not self.checks:
            self.checks.append(Check(NA, "-", nothing))
        return self


def _within(delay_s: float, low_s: float, high_s: float, late_s: float) -> bool:
    return low_s - SLACK_LOW_S <= delay_s <= high_s * (1 + SLACK_HIGH_RATIO) + late_s


def _range(low_s: float, high_s: float) -> str:
    return f"[{low_s:.3f}, {high_s:.3f}] s"


def _non_retryable(status: int) -> bool:
    return 400 <= status < 500 and status != 429


def verify(
    policy: Policy, jobs: list[ObservedJob], late_slack_s: float = SLACK_HIGH_S
) -> list[Rule]:
    """Every rule's findings for one client's ``jobs`` against ``policy``; a wait may be
    ``late_slack_s`` (plus ``SLACK_HIGH_RATIO``) longer than the policy's range: a
    client's timer fires late on a loaded machine, and the client did wait that long."""
    create = [(j, g) for j in jobs for g in j.create_gaps()]
    stream = [(j, g) for j in jobs for g in j.stream_gaps()]
    honour_hint = policy.retry.honour_retry_after
    backoff_gaps = [
        g
        for _, g in create
        if not _non_retryable(g.after_status) and not (honour_hint and g.retry_after_s is not None)
    ]
    rc = policy.reconnect
    server_set = [g for _, g in stream if rc.honour_server_retry and g.sse_retry_s is not None]
    reconnect_backoff = [
        g for _, g in stream if not (rc.honour_server_retry and g.sse_retry_s is not None)
    ]
    return [
        _attempts(policy, jobs),
        _delays("retry delays", policy.retry.backoff, backoff_gaps, "create retry", late_slack_s),
        _jitter("retry jitter", policy.retry.backoff, backoff_gaps, late_slack_s),
        _no_4xx_retried(create, stream),
        _retry_after(policy, create),
        _reconnect_delays(rc.backoff, reconnect_backoff, server_set, late_slack_s),
        _jitter("reconnect jitter", rc.backoff, reconnect_backoff, late_slack_s),
        _reconnect_attempts(policy, stream),
        _stops_on_status(policy, stream),
        _resume(policy, jobs),
    ]


def conforms(rules: list[Rule]) -> bool:
    return all(r.verdict != FAIL for r in rules)


def _attempts(policy: Policy, jobs: list[ObservedJob]) -> Rule:
    rule = Rule("attempts")
    limit = policy.retry.max_attempts
    for i, j in enumerate(jobs, 1):
        if j.creates:
            n = len(j.creates)
            rule.check(n <= limit, f"job {i} ({j.job_id or 'not accepted'})", f"{n} <= {limit}")
    return rule.done("no job created")


def _delays(name: str, backoff: Backoff, gaps: list[Gap], label: str, late_s: float) -> Rule:
    rule = Rule(name)
    for g in gaps:
        low, high = backoff.bounds_s(g.n)
        rule.check(
            _within(g.delay_s, low, high, late_s),
            f"{label} {g.n} after {g.after_status}",
            f"{g.delay_s:.3f} s in {_range(low, high)}",
        )
    return rule.done("no wait to check")


def _reconnect_delays(
    backoff: Backoff, gaps: list[Gap], server_set: list[Gap], late_s: float
) -> Rule:
    rule = _delays("reconnect delays", backoff, gaps, "reconnect", late_s)
    rule.checks = [c for c in rule.checks if c.verdict != NA]
    for g in server_set:
        assert g.sse_retry_s is not None
        rule.check(
            _within(g.delay_s, g.sse_retry_s, g.sse_retry_s, late_s),
            f"reconnect {g.n} after {g.after_status}",
            f"{g.delay_s:.3f} s, server's retry: {g.sse_retry_s:.3f} s",
        )
    return rule.done("no reconnect")


def reference_draws(backoff: Backoff, retries: int) -> np.ndarray:
    """Sorted draws of the policy's own delays, one column per retry number."""
    return np.sort(delay_samples(backoff, retries, REFERENCE_DRAWS, seed=0), axis=0)


def _jitter(name: str, backoff: Backoff, gaps: list[Gap], late_s: float) -> Rule:
    rule = Rule(name)
    if backoff.jitter is Jitter.NONE:
        return rule.done("the policy has no jitter: the delay rule pins each wait")
    if len(gaps) < KS_MIN_SAMPLES:
        return rule.done(f"{len(gaps)} waits: a fit test needs {KS_MIN_SAMPLES}")
    reference = reference_draws(backoff, max(g.n for g in gaps))
    lateness_s = late_shift_s(gaps, reference, late_s)
    u = [pit(g.delay_s - lateness_s, reference[:, g.n - 1]) for g in gaps]
    d, p = ks_uniform(u)
    rule.check(
        p >= KS_ALPHA,
        f"{len(gaps)} waits, retries {sorted({g.n for g in gaps})}",
        f"KS D = {d:.3f}, p = {p:.3g} (fails below {KS_ALPHA:g});"
        f" lateness taken off: {lateness_s * 1000:.0f} ms",
    )
    return rule


def late_shift_s(gaps: list[Gap], reference: np.ndarray, late_s: float) -> float:
    """How late the client's timers ran, to take off before the fit test: the median of
    each wait minus the policy's median for its retry number, within [0, ``late_s``].
    A loaded machine makes every wait a little longer, which says nothing about the
    jitter's shape (the range rule judges the location); waits too short are never
    moved. Estimating the shift makes the test conservative (p-values a little high)."""
    medians = np.median(reference, axis=0)
    offsets = [g.delay_s - float(medians[g.n - 1]) for g in gaps]
    return float(min(max(float(np.median(offsets)), 0.0), late_s))


def _no_4xx_retried(
    create: list[tuple[ObservedJob, Gap]], stream: list[tuple[ObservedJob, Gap]]
) -> Rule:
    rule = Rule("no 4xx retried")
    for kind, pairs in (("create retry", create), ("reconnect", stream)):
        for _, g in pairs:
            if _non_retryable(g.after_status):
                rule.check(False, f"{kind} {g.n}", f"after {g.after_status}")
    seen = sum(1 for _, g in create + stream if not _non_retryable(g.after_status))
    if rule.verdict != FAIL and seen:
        rule.check(True, f"{seen} retries and reconnects", "none after a 4xx")
    return rule.done("no retry or reconnect")


def _retry_after(policy: Policy, create: list[tuple[ObservedJob, Gap]]) -> Rule:
    rule = Rule("Retry-After")
    if not policy.retry.honour_retry_after:
        return rule.done("the policy ignores Retry-After")
    cap = policy.retry.retry_after_cap_s
    for _, g in create:
        if g.retry_after_s is not None:
            want = min(g.retry_after_s, cap)
            rule.check(
                g.delay_s >= want - SLACK_LOW_S,
                f"create retry {g.n} after {g.after_status}",
                f"waited {g.delay_s:.3f} s, Retry-After {g.retry_after_s:g} s",
            )
    return rule.done("no answer carried Retry-After")


def _reconnect_attempts(policy: Policy, stream: list[tuple[ObservedJob, Gap]]) -> Rule:
    rule = Rule("reconnect attempts")
    limit = policy.reconnect.max_attempts
    if limit is None:
        return rule.done("the policy has no limit")
    for _, g in stream:
        rule.check(g.n <= limit, f"reconnect {g.n} of a drop", f"{g.n} <= {limit}")
    return rule.done("no reconnect")


def _stops_on_status(policy: Policy, stream: list[tuple[ObservedJob, Gap]]) -> Rule:
    rule = Rule("stops on error status")
    if not policy.reconnect.give_up_on_status:
        return rule.done("the policy reconnects after error answers")
    for _, g in stream:
        if g.after_status not in (0, 200):
            rule.check(False, f"reconnect {g.n}", f"after a {g.after_status} stream answer")
    if not rule.checks and stream:
        rule.check(True, f"{len(stream)} reconnects", "none after an error answer")
    return rule.done("no reconnect")


def _resume(policy: Policy, jobs: list[ObservedJob]) -> Rule:
    rule = Rule("resume")
    if not policy.reconnect.resume:
        return rule.done("the policy restarts streams")
    for i, j in enumerate(jobs, 1):
        if len(j.streams) > 1:
            missing = j.reconnects_without_resume()
            rule.check(
                missing == 0,
                f"job {i} ({j.job_id or '?'})",
                f"{len(j.streams) - 1} reconnects, {missing} without Last-Event-ID",
            )
    return rule.done("no reconnect")


def render(rules: list[Rule], title: str, out: Callable[[str], None]) -> None:
    """One table per rule, then the verdict."""
    out(title)
    for r in rules:
        out("")
        out(f"{r.name}: {r.verdict}")
        width = max(len(c.what) for c in r.checks)
        for c in r.checks:
            out(f"  {c.verdict:<5} {c.what:<{width}}  {c.detail}")
    out("")
    failed = [r.name for r in rules if r.verdict == FAIL]
    out("conforms" if not failed else f"does NOT conform: {', '.join(failed)}")


def pick_client(clients: Mapping[str, list[ObservedJob]], wanted: str | None) -> tuple[str, str]:
    """(the client to check, "") or ("", why none can be): ``wanted``, else the only
    client recorded, else the only one that named itself (the others are ``conn-N``)."""
    recorded = ", ".join(clients) or "none"
    if not clients:
        return "", "no request was recorded"
    if wanted is not None:
        if wanted in clients:
            return wanted, ""
        return "", f"no client {wanted!r} recorded; recorded: {recorded}"
    named = [c for c in clients if not c.startswith("conn-")]
    if len(clients) > 1 and len(named) != 1:
        return "", f"{len(clients)} clients recorded; name one: {recorded}"
    return (named[0] if named else next(iter(clients))), ""


MAX_NOTED = 3  # failing checks named in a verdict's note


def rule_verdicts(rules: list[Rule], policy: str, client: str, where: str) -> Evaluation:
    """One verdict per rule that checked something; the n/a rules in one not-checked line."""
    verdicts = []
    idle = [f"{r.name} ({r.checks[0].detail})" for r in rules if r.verdict == NA]
    for r in rules:
        if r.verdict == NA:
            continue
        failed = [c for c in r.checks if c.verdict == FAIL]
        shown = failed or r.checks
        note = "; ".join(f"{c.what}: {c.detail}" for c in shown[:MAX_NOTED])
        if len(shown) > MAX_NOTED:
            note += f"; {len(shown) - MAX_NOTED} more"
        verdicts.append(
            Verdict(
                source="client",
                policy=policy,
                metric=f"client {client}: {r.name}",
                bound=f"0 of {len(r.checks)} fail",
                observed=float(len(failed)),
                ci95=None,
                status=Status.FAIL if failed else Status.PASS,
                note=note,
                where=where,
            )
        )
    not_checked = f"{where}: client {client}, {policy}: n/a: {'; '.join(idle)}"
    return Evaluation(tuple(verdicts), (not_checked,) if idle else ())


def check_expectation(
    exp: ClientExpectation, clients: Mapping[str, list[ObservedJob]], where: str
) -> Evaluation:
    """A scenario's ``kind: client`` expectation against what the lab recorded; a client
    that cannot be found (none recorded, or not the one named) fails it."""
    client, why = pick_client(clients, exp.client)
    if not client:
        missing = Verdict(
            source="client",
            policy=exp.policy.name,
            metric=f"client {exp.client or '?'}: recorded",
            bound="recorded",
            observed=None,
            ci95=None,
            status=Status.FAIL,
            note=why,
            where=where,
        )
        return Evaluation((missing,))
    rules = verify(exp.policy, clients[client], exp.late_slack_s)
    return rule_verdicts(rules, exp.policy.name, client, where)
