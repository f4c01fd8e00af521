"""Load scenario files: safe YAML, checked against the grammar, built into frozen objects.

Only ``yaml.SafeLoader`` ever sees a file, so a scenario can never execute code.
Every problem found is reported, each with file, line, path and rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sim import distributions as dist
from sim.policies.backoff import Backoff, BackoffKind, Jitter
from sim.policies.breaker import BreakerSpec
from sim.policies.budget import AwsQuota, BudgetSpec, GrpcThrottle, RatioBudget
from sim.policies.classify import Classifier, ErrorKind
from sim.policies.policy import Policy, ReconnectPolicy, RetryPolicy
from sim.policies.presets import PRESETS, preset
from sim.scenario import model as m
from sim.scenario.errors import Problem, ScenarioError, did_you_mean
from sim.scenario.grammar import MISSING, Checker, Record, complete
from sim.scenario.schema import POLICY_FILE, SCENARIO

T = TypeVar("T")


def _parse(path: Path, spec: Record) -> tuple[Any, Checker, bytes]:
    """Read and grammar-check one file; raise ScenarioError on any problem."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(
            [Problem(name, 0, "", f"cannot read the file: {exc.strerror}")]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([Problem(name, 0, "", f"not UTF-8 text: {exc.reason}")]) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = exc.problem or exc.context or "malformed YAML"
        raise ScenarioError([Problem(name, line, "", f"malformed YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(name, 0, "", f"malformed YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if node is None:
        raise ScenarioError([Problem(name, 1, "", "the file is empty")])
    checker = Checker(name, yaml.SafeLoader(""))
    try:
        value = checker.check(node, spec, "")
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        # A scalar the safe constructor cannot build (e.g. a bad timestamp).
        checker.problem(node, "", f"cannot read a value: {exc}")
        value = MISSING
    if value is MISSING:
        raise ScenarioError(checker.problems)
    # Grammar problems are kept in the checker; the caller builds the parts that
    # passed, so cross-field problems are reported in the same run.
    return value, checker, raw


class _Builder:
    """Turns checked plain values into model objects, collecting cross-field problems."""

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.checker.file, self.checker.line_of(path), path, message))

    def attempt(self, path: str, build: Callable[[], T]) -> T | None:
        """Run a library constructor; its ValueError becomes a problem at ``path``."""
        try:
            return build()
        except ValueError as exc:
            self.problem(path, str(exc))
            return None

    # ------------------------------------------------------------ pieces

    def distribution(self, d: dict[str, Any], path: str) -> dist.Distribution:
        kind = d["kind"]
        if kind == "constant":
            return dist.Constant(d["value_s"])
        if kind == "exponential":
            return dist.Exponential(d["mean_s"])
        if kind == "normal":
            return dist.FoldedNormal(d["mean_s"], d["sd_s"])
        if kind == "lognormal":
            return dist.LogNormal(d["median_s"], d["sigma"])
        if d["high_s"] < d["low_s"]:
            self.problem(f"{path}.high_s", f"must be >= low_s ({d['low_s']:g})")
        return dist.Uniform(d["low_s"], d["high_s"])

    def window(self, f: dict[str, Any], path: str, duration_s: float) -> None:
        if f["end_s"] <= f["start_s"]:
            self.problem(f"{path}.end_s", f"must be after start_s ({f['start_s']:g} s)")
        if f["end_s"] > duration_s:
            self.problem(
                f"{path}.end_s",
                f"the window ends at {f['end_s']:g} s, after the scenario's duration"
                f" ({duration_s:g} s)",
            )

    def arrival(self, a: dict[str, Any], path: str, duration_s: float) -> m.Arrival:
        kind = a["kind"]
        if kind == "burst":
            if a["at_s"] + a["spread_s"] > duration_s:
                self.problem(f"{path}.at_s", "the herd arrives after the scenario's end")
            return m.Burst(a["at_s"], a["spread_s"])
        if kind == "poisson":
            steps = tuple(m.RateStep(s["from_s"], s["rate_per_s"]) for s in a["schedule"])
            for i in range(1, len(steps)):
                if steps[i].from_s <= steps[i - 1].from_s:
                    self.problem(
                        f"{path}.schedule[{i}].from_s", "rate steps must be in increasing time"
                    )
            for i, s in enumerate(steps):
                if s.from_s >= duration_s:
                    self.problem(
                        f"{path}.schedule[{i}].from_s", "starts after the scenario's duration"
                    )
            return m.Poisson(steps)
        if kind == "ramp":
            if a["end_s"] <= a["start_s"]:
                self.problem(f"{path}.end_s", f"must be after start_s ({a['start_s']:g} s)")
            if a["end_s"] > duration_s:
                self.problem(f"{path}.end_s", "the ramp ends after the scenario's duration")
            return m.Ramp(a["start_s"], a["end_s"], a["from_rate_per_s"], a["to_rate_per_s"])
        return m.ClosedLoop(self.distribution(a["think"], f"{path}.think"))

    def clients(self, c: dict[str, Any], duration_s: float) -> m.Clients:
        arrival = self.arrival(c["arrival"], "clients.arrival", duration_s)
        if isinstance(arrival, m.Burst | m.ClosedLoop) and c["count"] is None:
            self.problem("clients.count", f"is required for {c['arrival']['kind']} arrivals")
        return m.Clients(
            count=c["count"],
            arrival=arrival,
            job_timeout_s=c["job_timeout_s"],
            request_timeout_s=c["request_timeout_s"],
            follow_stream=c["follow_stream"],
            budget_scope=m.BudgetScope(c["budget_scope"]),
            browser=c["browser"],
        )

    def service(self, s: dict[str, Any]) -> m.Service:
        rl = s["rate_limit"]
        auto = s["autoscale"]
        if auto is not None and auto["max_instances"] < s["instances"]:
            self.problem(
                "service.autoscale.max_instances",
                f"must be >= service.instances ({s['instances']})",
            )
        return m.Service(
            kind=m.ServiceKind(s["kind"]),
            instances=s["instances"],
            concurrency=s["concurrency"],
            queue_limit=s["queue_limit"],
            service_time=self.distribution(s["service_time"], "service.service_time"),
            retry_after_s=s["retry_after_s"],
            rate_limit=None
            if rl is None
            else m.RateLimit(rl["rate_per_s"], rl["burst"], rl["retry_after_s"]),
            autoscale=None
            if auto is None
            else m.Autoscale(
                auto["max_instances"],
                auto["cold_start_s"],
                auto["target_utilization"],
                auto["interval_s"],
            ),
            progress_events=s["progress_events"],
            store_on_outage=m.StoreOnOutage(s["store_on_outage"]),
            stream_retry_s=s["stream_retry_s"],
        )

    def fault(self, f: dict[str, Any], path: str, duration_s: float) -> m.Fault:
        self.window(f, path, duration_s)
        kind = m.FaultKind(f["kind"])
        extra = f.get("extra_latency")
        return m.Fault(
            kind=kind,
            start_s=f["start_s"],
            end_s=f["end_s"],
            answer=m.OutageAnswer(f.get("answer", "503")),
            retry_after_s=f.get("retry_after_s"),
            extra_latency=None
            if extra is None
            else self.distribution(extra, f"{path}.extra_latency"),
            probability=f.get("probability", 1.0),
            status=f.get("status", 500),
            fraction=f.get("fraction", 1.0),
            every_s=f.get("every_s"),
            instances=f.get("instances", 0),
        )

    # ------------------------------------------------------------ policies

    def backoff(self, base: Backoff, b: dict[str, Any], path: str) -> Backoff | None:
        changes: dict[str, Any] = dict(b)
        if "kind" in changes:
            changes["kind"] = BackoffKind(changes["kind"])
        if "jitter" in changes:
            changes["jitter"] = Jitter(changes["jitter"])
        given = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
        merged = {**given, **changes}
        if merged["cap_s"] < merged["base_s"]:
            where = f"{path}.cap_s" if "cap_s" in b else f"{path}.base_s"
            self.problem(
                where, f"cap_s ({merged['cap_s']:g} s) is below base_s ({merged['base_s']:g} s)"
            )
            return None
        return self.attempt(path, lambda: Backoff(**merged))

    def budget(self, current: BudgetSpec | None, b: dict[str, Any] | None, path: str) -> Any:
        if b is None:
            return None
        fields = {k: v for k, v in b.items() if k != "kind"}
        cls: type[Any] = {"grpc": GrpcThrottle, "aws": AwsQuota, "ratio": RatioBudget}[b["kind"]]
        if isinstance(current, cls):
            return self.attempt(path, lambda: dataclasses.replace(current, **fields))
        return self.attempt(path, lambda: cls(**fields))

    def retry(self, base: RetryPolicy, r: dict[str, Any], path: str) -> RetryPolicy | None:
        changes: dict[str, Any] = {}
        for key in ("max_attempts", "honour_retry_after", "retry_after_cap_s", "deadline_s"):
            if key in r:
                changes[key] = r[key]
        if "backoff" in r:
            changes["backoff"] = self.backoff(base.backoff, r["backoff"], f"{path}.backoff")
        if "budget" in r:
            changes["budget"] = self.budget(base.budget, r["budget"], f"{path}.budget")
        if "breaker" in r:
            br = r["breaker"]
            if br is None:
                changes["breaker"] = None
            else:
                start = base.breaker or BreakerSpec()
                changes["breaker"] = self.attempt(
                    f"{path}.breaker", lambda: dataclasses.replace(start, **br)
                )
        if "retry_on" in r or "never_retry" in r:
            on = r.get("retry_on")
            errors = (
                base.classifier.retry_errors
                if on is None
                else frozenset(ErrorKind(x) for x in on if x in ErrorKind.__members__.values())
            )
            statuses = (
                base.classifier.retry_statuses
                if on is None
                else frozenset(x for x in on if x not in ErrorKind.__members__.values())
            )
            never = r.get("never_retry")
            changes["classifier"] = Classifier(
                retry_statuses=statuses,
                never_statuses=base.classifier.never_statuses
                if never is None
                else frozenset(never),
                retry_errors=errors,
            )
        if any(v is None for k, v in changes.items() if k in ("backoff",)):
            return None
        return self.attempt(path, lambda: dataclasses.replace(base, **changes))

    def reconnect(
        self, base: ReconnectPolicy, r: dict[str, Any], path: str
    ) -> ReconnectPolicy | None:
        changes: dict[str, Any] = {
            k: r[k]
            for k in ("max_attempts", "honour_server_retry", "resume", "give_up_on_status")
            if k in r
        }
        if "backoff" in r:
            backoff = self.backoff(base.backoff, r["backoff"], f"{path}.backoff")
            if backoff is None:
                return None
            changes["backoff"] = backoff
        return self.attempt(path, lambda: dataclasses.replace(base, **changes))

    def policy(self, p: str | dict[str, Any], path: str) -> Policy | None:
        if isinstance(p, str):
            return preset(p)
        start = preset(p["base"]) if "base" in p else Policy(name=p["name"])
        retry = self.retry(start.retry, p.get("retry", {}), f"{path}.retry")
        reconnect = self.reconnect(start.reconnect, p.get("reconnect", {}), f"{path}.reconnect")
        if retry is None or reconnect is None:
            return None
        source = f"based on {p['base']}" if "base" in p else "spelled out in the scenario"
        return Policy(name=p["name"], retry=retry, reconnect=reconnect, source=source)

    def policies(self, items: list[Any], path: str) -> tuple[Policy, ...]:
        out: list[Policy] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if not complete(item):
                continue
            pol = self.policy(item, f"{path}[{i}]")
            if pol is None:
                continue
            if pol.name in seen:
                where = f"{path}[{i}]" if isinstance(item, str) else f"{path}[{i}].name"
                self.problem(
                    where,
                    f"policy name {pol.name!r} is used twice (first at {path}[{seen[pol.name]}])",
                )
                continue
            seen[pol.name] = i
            out.append(pol)
        return tuple(out)

    def expectations(
        self, items: list[dict[str, Any]], names: set[str] | None
    ) -> tuple[m.Expectation, ...]:
        out = []
        for i, e in enumerate(items):
            path = f"expect[{i}]"
            if names is not None and e["policy"] is not None and e["policy"] not in names:
                self.problem(
                    f"{path}.policy",
                    f"{e['policy']!r} is not a policy of this scenario;"
                    f" known: {', '.join(sorted(names))}",
                )
            if e["min"] is None and e["max"] is None:
                self.problem(path, "give min, max or both")
            if e["min"] is not None and e["max"] is not None and e["min"] > e["max"]:
                self.problem(f"{path}.max", f"must be >= min ({e['min']:g})")
            out.append(
                m.Expectation(
                    e["metric"], e["policy"], e["min"], e["max"], self.checker.line_of(path)
                )
            )
        return tuple(out)


def load_scenario(path: str | Path) -> m.Scenario:
    """Load one scenario file; raise ScenarioError listing every problem in it."""
    path = Path(path)
    v, checker, raw = _parse(path, SCENARIO)
    b = _Builder(checker)
    duration_s: float | None = v["duration_s"] if complete(v.get("duration_s")) else None
    horizon_s = duration_s if duration_s is not None else math.inf
    if duration_s is not None and complete(v["bucket_s"]) and v["bucket_s"] > duration_s:
        b.problem("bucket_s", f"must be <= duration_s ({duration_s:g} s)")
    clients = b.clients(v["clients"], horizon_s) if complete(v.get("clients")) else None
    service = b.service(v["service"]) if complete(v["service"]) else None
    network = (
        m.Network(b.distribution(v["network"]["latency"], "network.latency"))
        if complete(v["network"])
        else None
    )
    faults = []
    for i, f in enumerate(v["faults"] if isinstance(v["faults"], list) else []):
        if complete(f):
            faults.append(b.fault(f, f"faults[{i}]", horizon_s))
    for i, f in enumerate(faults):
        if (
            service is not None
            and f.kind is m.FaultKind.CAPACITY_DROP
            and f.instances >= service.instances
            and service.autoscale is None
        ):
            b.problem(
                f"faults[{i}].instances",
                f"a capacity drop must leave fewer than service.instances ({service.instances})",
            )
    raw_policies = v.get("policies")
    raw_policies = raw_policies if isinstance(raw_policies, list) else []
    policies = b.policies(raw_policies, "policies")
    raw_expect = v["expect"] if isinstance(v["expect"], list) else []
    names = {p.name for p in policies} if complete(raw_policies) else None
    expect = b.expectations([e for e in raw_expect if complete(e)], names)
    problems = checker.problems + b.problems
    if problems:
        raise ScenarioError(problems)
    assert duration_s is not None and clients and service and network
    return m.Scenario(
        name=v["name"],
        description=v["description"].strip(),
        seed=v["seed"],
        duration_s=duration_s,
        bucket_s=v["bucket_s"],
        clients=clients,
        service=service,
        network=network,
        faults=tuple(faults),
        policies=policies,
        expect=expect,
        source=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def load_policy_file(path: str | Path) -> tuple[Policy, ...]:
    """Policies from a file: a scenario's ``policies`` or a file holding only ``policies:``."""
    path = Path(path)
    try:
        top = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        top = None  # _parse below reports it properly
    if isinstance(top, dict) and set(top) - {"policies"}:
        return load_scenario(path).policies
    v, checker, _ = _parse(path, POLICY_FILE)
    b = _Builder(checker)
    raw_policies = v.get("policies")
    policies = b.policies(raw_policies if isinstance(raw_policies, list) else [], "policies")
    if checker.problems or b.problems:
        raise ScenarioError(checker.problems + b.problems)
    return policies


def resolve_policy(name_or_file: str) -> tuple[Policy, ...]:
    """A preset by name, or every policy in a YAML file."""
    if name_or_file in PRESETS:
        return (preset(name_or_file),)
    if name_or_file.endswith((".yaml", ".yml")) or Path(name_or_file).exists():
        return load_policy_file(name_or_file)
    raise ScenarioError(
        [
            Problem(
                name_or_file,
                0,
                "",
                f"is neither a preset nor a file{did_you_mean(name_or_file, PRESETS)};"
                f" presets: {', '.join(PRESETS)}",
            )
        ]
    )
