"""Load scenario files: safe YAML, checked against the grammar, built into frozen objects.

Only ``yaml.SafeLoader`` (or its libyaml twin ``yaml.CSafeLoader``: the same safe
constructor and resolver over libyaml's parser) ever sees a file, so a scenario can
never execute code. Every problem found is reported, each with file, line, path and rule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from sim import distributions as dist
from sim.decide.figures import figure
from sim.policies.backoff import Backoff, BackoffKind, Jitter
from sim.policies.breaker import BreakerSpec
from sim.policies.budget import AwsQuota, BudgetSpec, GrpcThrottle, RatioBudget
from sim.policies.classify import Classifier, ErrorKind
from sim.policies.policy import Policy, ReconnectPolicy, RetryPolicy
from sim.policies.presets import PRESETS, preset
from sim.scenario import model as m
from sim.scenario.errors import Problem, ScenarioError, did_you_mean
from sim.scenario.grammar import MISSING, Checker, Record, complete
from sim.scenario.schema import (
    MAX_BUCKETS,
    MAX_CLIENTS,
    MAX_STREAM_CUTS,
    POLICY_FILE,
    SCENARIO,
)

if TYPE_CHECKING:
    from sim.decide.objective import Objective

T = TypeVar("T")


MAX_FILE_BYTES = 1_000_000
"""A scenario is a few KB; anything this big is the wrong file (or /dev/zero)."""
MAX_DEPTH = 20
"""Nesting levels a file may have; the grammar's deepest path needs 5."""
MAX_NODES = 200_000
"""Values a file may hold, aliases counted as the copies they stand for (so a
"billion laughs" file is refused before anything walks it)."""


def _read_text(path: Path) -> tuple[str, bytes]:
    """The file's bytes and its UTF-8 text; ScenarioError when it cannot be had."""
    name = str(path)
    if path.is_dir():
        raise ScenarioError([Problem(name, 0, "", "is a directory, not a scenario file")])
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ScenarioError([Problem(name, 0, "", f"cannot read the file: {reason}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(
            [
                Problem(
                    name,
                    0,
                    "",
                    f"the file is over {MAX_FILE_BYTES:,} bytes; a scenario file is a few KB"
                    " (is this the right file?)",
                )
            ]
        )
    try:
        return raw.decode("utf-8"), raw
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start]
        raise ScenarioError(
            [
                Problem(
                    name,
                    line,
                    "",
                    f"not UTF-8 text: byte 0x{byte:02x} at column {column} cannot be decoded"
                    f" ({exc.reason}); save the file as UTF-8",
                )
            ]
        ) from None


def _yaml_problem(name: str, text: str, exc: Exception) -> Problem:
    """A problem for an error PyYAML raised while reading ``text``."""
    if isinstance(exc, yaml.reader.ReaderError):
        # raised for a character YAML does not allow anywhere (NUL, other controls)
        line = text.count("\n", 0, max(0, exc.position)) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        return Problem(
            name,
            line,
            "",
            f"character U+{ord(char):04X} is not allowed in YAML"
            " (only tab, newline and printable characters)",
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = exc.problem or exc.context or "malformed YAML"
        return Problem(name, line, "", f"malformed YAML: {what}")
    return Problem(name, 1, "", f"malformed YAML: {exc}")


_Loader = type[yaml.SafeLoader] | type[yaml.CSafeLoader]
_FAST_LOADER: _Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML was built with it: thundering-herd.yaml reads in 1 ms
where PyYAML takes 15 (and ``validate`` reads a file twice, each time a shape pass and
a compose). It builds the same nodes with the same start marks (a plain scalar's style
is "" where PyYAML's is None). A file it cannot read is read again by
``yaml.SafeLoader``, so every problem keeps PyYAML's wording and line; so is a file
with a tab, which libyaml takes inside a plain scalar where PyYAML refuses it
(``tests/test_fuzz_scenarios.py`` holds libyaml to refusing whatever PyYAML refuses,
and to the same nodes)."""


def _check_shape(name: str, text: str, loader_class: _Loader) -> None:
    """Refuse nesting deeper than MAX_DEPTH and more than MAX_NODES values, from the
    parser's events (an iterative pass), before the recursive composer sees the file."""
    loader = loader_class(text)
    try:
        depth = 0
        total = 0
        anchored: dict[str, int] = {}  # anchor -> values it stands for
        open_at: list[tuple[str | None, int]] = []  # per open collection: anchor, total then
        while loader.check_event():
            event = loader.get_event()
            assert event is not None  # check_event said there is one
            line = event.start_mark.line + 1 if event.start_mark is not None else 1
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ScenarioError(
                        [
                            Problem(
                                name,
                                line,
                                "",
                                f"nested deeper than {MAX_DEPTH} levels; a scenario needs"
                                " at most 5",
                            )
                        ]
                    )
                open_at.append((event.anchor, total))
                total += 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                anchor, before = open_at.pop()
                if anchor is not None:
                    anchored[anchor] = total - before
            elif isinstance(event, yaml.ScalarEvent):
                total += 1
                if event.anchor is not None:
                    anchored[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                # an unknown alias counts 1: the composer reports it
                total += anchored.get(event.anchor or "", 1)
            if total > MAX_NODES:
                raise ScenarioError(
                    [
                        Problem(
                            name,
                            line,
                            "",
                            f"the file holds more than {MAX_NODES:,} values (aliases counted"
                            " as copies); a scenario holds a few hundred",
                        )
                    ]
                )
    finally:
        loader.dispose()


def _read_node(path: Path) -> tuple[yaml.Node, str, bytes]:
    """The YAML node tree of one file; ScenarioError (with a line where one applies)
    for anything that keeps it from being read: never another exception."""
    name = str(path)
    text, raw = _read_text(path)
    try:
        fast = _FAST_LOADER if "\t" not in text else yaml.SafeLoader
        try:
            node = _compose(name, text, fast)
        except (yaml.YAMLError, ScenarioError):
            if fast is yaml.SafeLoader:
                raise
            # libyaml found a problem: read the file again, for PyYAML's words and line
            node = _compose(name, text, yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ScenarioError([_yaml_problem(name, text, exc)]) from None
    except RecursionError:  # pragma: no cover - _check_shape bounds the nesting first
        raise ScenarioError([Problem(name, 1, "", "nested too deeply to read")]) from None
    if node is None:
        raise ScenarioError([Problem(name, 1, "", "the file is empty")])
    return node, name, raw


def _compose(name: str, text: str, loader_class: _Loader) -> yaml.Node | None:
    """The node tree of ``text`` (None: no document), its shape checked first."""
    _check_shape(name, text, loader_class)
    loader = loader_class(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
    finally:
        loader.dispose()
    return node


def top_level(path: str | Path) -> dict[str, yaml.Node] | None:
    """The top-level keys of a YAML file and their nodes, read as safely as a scenario is
    (bounded size and nesting, no other exception); None when it cannot be read or is
    not a mapping (loading it properly says why)."""
    try:
        node, _, _ = _read_node(Path(path))
    except ScenarioError:
        return None
    if not isinstance(node, yaml.MappingNode):
        return None
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def has_sweep(path: str | Path) -> bool:
    """Whether a YAML file holds a sweep (of its own, or a scenario's ``sweep:`` block):
    here, not in :mod:`sim.sweep.spec`, so ``validate`` of a scenario reads no sweep code."""
    top = top_level(path)
    if top is None or "sweep" not in top:
        return False
    node = top["sweep"]
    return not (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"))


def _parse(path: Path, spec: Record) -> tuple[Any, Checker, bytes]:
    """Read and grammar-check one file; raise ScenarioError on any problem."""
    node, name, raw = _read_node(path)
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

    def bounds(
        self,
        duration_s: float,
        bucket_s: float | None,
        clients: m.Clients,
        service: m.Service,
        faults: list[m.Fault],
    ) -> None:
        """Rules across fields that keep a run within what the model can hold; each
        bound is named in the schema (``sim/scenario/schema.py``)."""
        if not service.service_time.mean_s > 0:
            self.problem(
                "service.service_time",
                "its mean must be > 0: a job that takes no time gives the service"
                " unbounded capacity",
            )
        horizon_s = duration_s + clients.job_timeout_s + clients.request_timeout_s + 1.0
        buckets = horizon_s / bucket_s if bucket_s is not None else 0.0
        if bucket_s is not None and buckets > MAX_BUCKETS:
            self.problem(
                "bucket_s",
                f"the run's horizon ({horizon_s:g} s: duration_s + clients.job_timeout_s +"
                f" clients.request_timeout_s + 1 s) holds {buckets:,.0f} buckets of"
                f" {bucket_s:g} s; at most {MAX_BUCKETS:,}: raise bucket_s or shorten"
                " the horizon",
            )
        expected = expected_arrivals(clients.arrival, duration_s)
        if expected > MAX_CLIENTS:
            self.problem(
                "clients.arrival",
                f"{expected:,.0f} arrivals expected; at most {MAX_CLIENTS:,} (clients.count"
                " only cuts them short, they are all drawn): lower the rates",
            )
        cuts = 0.0
        for f in faults:
            if f.kind is m.FaultKind.STREAM_DROP:
                cuts += 1 if f.every_s is None else math.ceil((f.end_s - f.start_s) / f.every_s)
        if cuts > MAX_STREAM_CUTS:
            first = next(
                i for i, f in enumerate(faults) if f.kind is m.FaultKind.STREAM_DROP and f.every_s
            )
            self.problem(
                f"faults[{first}].every_s",
                f"stream_drop faults cut streams at {cuts:,.0f} instants; at most"
                f" {MAX_STREAM_CUTS:,}: raise every_s",
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
        self, items: list[Any], names: list[str] | None, kind: str | None
    ) -> tuple[m.Expectation, ...]:
        """Every complete ``expect`` item, checked against the scenario's policies (when
        they loaded: ``names``) and the figures its service kind measures (``kind``)."""
        out = []
        for i, e in enumerate(items):
            if not complete(e) or e["kind"] != "figure":
                continue
            path = f"expect[{i}]"
            exp = self.expectation(e, path, names, kind)
            if exp is not None:
                out.append(exp)
        return tuple(out)

    def client_expectations(
        self, items: list[Any], policies: tuple[Policy, ...] | None
    ) -> tuple[m.ClientExpectation, ...]:
        """Every complete ``kind: client`` item of ``expect``: the policy it names is one
        of the scenario's (when they loaded: ``policies``) or a preset."""
        out = []
        for i, e in enumerate(items):
            if not complete(e) or e["kind"] != "client":
                continue
            path = f"expect[{i}]"
            name = e["conforms"]
            mine = {p.name: p for p in policies or ()}
            if name in mine:
                pol = mine[name]
            elif name in PRESETS:
                pol = preset(name)
            else:
                if policies is not None:
                    known = [*mine, *(n for n in PRESETS if n not in mine)]
                    self.problem(
                        f"{path}.conforms",
                        f"{name!r} is neither a policy of this scenario nor a preset"
                        f"{did_you_mean(name, known)}; its policies: {', '.join(mine)}",
                    )
                continue
            out.append(
                m.ClientExpectation(
                    pol, e.get("client"), e["late_slack_s"], self.checker.line_of(path)
                )
            )
        return tuple(out)

    def expectation(
        self, e: dict[str, Any], path: str, names: list[str] | None, kind: str | None
    ) -> m.Expectation | None:
        ok = True
        fig = figure(e["metric"])
        if kind is not None and kind not in fig.kinds:
            measured = ", ".join(sorted(fig.kinds))
            self.problem(
                f"{path}.metric",
                f"{fig.name!r} is measured for {measured} services only; this one is {kind}",
            )
            ok = False
        policies = tuple(e["policy"]) if e["policy"] is not None else None
        for j, name in enumerate(policies or ()):
            where = f"{path}.policy" if len(policies or ()) == 1 else f"{path}.policy[{j}]"
            ok &= self.known_policy(name, where, names)
        relative: m.Relative | None = None
        given = [d for d in ("at_least", "at_most") if d in e]
        if len(given) == 2:
            self.problem(f"{path}.at_most", "give at_least or at_most, not both")
            ok = False
        elif given:
            direction = given[0]
            other = e[direction]
            ok &= self.known_policy(other, f"{path}.{direction}", names)
            if e["min"] is not None or e["max"] is not None:
                self.problem(path, f"give min/max or {direction}, not both")
                ok = False
            if policies is not None and other in policies:
                self.problem(f"{path}.{direction}", f"compares {other!r} with itself")
                ok = False
            relative = m.Relative(other, direction, e["by"], e["times"])
        else:
            for key in ("by", "times"):
                if self.checker.lines.get(f"{path}.{key}") is not None:
                    self.problem(f"{path}.{key}", "applies only with at_least or at_most")
                    ok = False
            if e["min"] is None and e["max"] is None:
                self.problem(path, "give min, max or both, or at_least / at_most another policy")
                ok = False
            if e["min"] is not None and e["max"] is not None and e["min"] > e["max"]:
                self.problem(f"{path}.max", f"must be >= min ({e['min']:g})")
                ok = False
        if not ok:
            return None
        return m.Expectation(
            metric=e["metric"],
            policies=policies,
            min=e["min"],
            max=e["max"],
            line=self.checker.line_of(path),
            relative=relative,
            mode=e["mode"],
        )

    def known_policy(self, name: str, path: str, names: list[str] | None) -> bool:
        if names is None or name in names:
            return True
        self.problem(
            path,
            f"{name!r} is not a policy of this scenario{did_you_mean(name, names)};"
            f" its policies: {', '.join(names)}",
        )
        return False

    def tolerances(self, t: dict[str, Any]) -> dict[str, m.Tolerance]:
        return {name: m.Tolerance.parse(amount) for name, amount in t.items()}

    def objective(self, o: dict[str, Any], kind: str | None) -> Objective | None:
        """The scenario's ``objective:``: one goal, constraints, tie-breakers."""
        # imported here: most scenarios have none, and validate starts faster without
        from sim.decide.objective import Constraint, Objective
        from sim.decide.verdict import Bound

        path = "objective"
        goals = [g for g in ("maximize", "minimize") if g in o]
        if len(goals) != 1:
            self.problem(path, "give exactly one of maximize or minimize")
            return None
        goal = goals[0]
        metric = o[goal]
        ok = True
        better = figure(metric).better
        if (goal, better) in (("maximize", "lower"), ("minimize", "higher")):
            other = "minimize" if goal == "maximize" else "maximize"
            self.problem(f"{path}.{goal}", f"{metric} is better {better}: use {other}")
            ok = False
        named = [(f"{path}.{goal}", metric)]
        named += [(f"{path}.subject_to.{k}", k) for k in o["subject_to"]]
        named += [(f"{path}.then[{i}]", t) for i, t in enumerate(o["then"])]
        for where, name in named:
            kinds = figure(name).kinds
            if kind is not None and kind not in kinds:
                self.problem(
                    where,
                    f"{name} is measured for {', '.join(sorted(kinds))} services only, not {kind}",
                )
                ok = False
        for i, name in enumerate(o["then"]):
            if figure(name).better == "none":
                self.problem(f"{path}.then[{i}]", f"{name} has no better direction to break ties")
                ok = False
        constraints = []
        for name, bound in o["subject_to"].items():
            where = f"{path}.subject_to.{name}"
            if bound["min"] is None and bound["max"] is None:
                self.problem(where, "give min, max or both")
                ok = False
            elif (
                bound["min"] is not None
                and bound["max"] is not None
                and bound["min"] > bound["max"]
            ):
                self.problem(f"{where}.max", f"must be >= min ({bound['min']:g})")
                ok = False
            constraints.append(Constraint(name, Bound(bound["min"], bound["max"])))
        if not ok:
            return None
        return Objective(
            metric,
            "maximize" if goal == "maximize" else "minimize",
            tuple(constraints),
            tuple(o["then"]),
            o["tie_tolerance"],
        )


def expected_arrivals(arrival: m.Arrival, duration_s: float) -> float:
    """Open-loop arrivals drawn up front: the mean of the Poisson count(s) drawn (a
    ramp draws at its peak rate and thins); 0 for burst and closed loops."""
    if isinstance(arrival, m.Poisson):
        steps = arrival.schedule
        total = 0.0
        for i, step in enumerate(steps):
            end_s = min(steps[i + 1].from_s if i + 1 < len(steps) else duration_s, duration_s)
            total += step.rate_per_s * max(0.0, end_s - step.from_s)
        return total
    if isinstance(arrival, m.Ramp):
        peak = max(arrival.from_rate_per_s, arrival.to_rate_per_s)
        return peak * max(0.0, arrival.end_s - arrival.start_s)
    return 0.0


def load_scenario(path: str | Path) -> m.Scenario:
    """Load one scenario file; raise ScenarioError listing every problem in it."""
    path = Path(path)
    v, checker, raw = _parse(path, SCENARIO)
    return build_scenario(v, checker, path, raw)


def parse_scenario(path: str | Path) -> tuple[dict[str, Any], Checker, bytes]:
    """A scenario file's checked plain values (defaults filled in), the checker that holds
    the line of every path, and the file's bytes. Raises ScenarioError only for problems
    that leave nothing to build; :func:`build_scenario` reports the rest."""
    return _parse(Path(path), SCENARIO)


def build_scenario(v: dict[str, Any], checker: Checker, path: Path, raw: bytes) -> m.Scenario:
    """The scenario of checked plain values ``v`` (perhaps changed since they were read,
    as a sweep point changes them); ScenarioError lists every problem, at the lines
    ``checker`` recorded."""
    b = _Builder(checker)
    duration_s: float | None = v["duration_s"] if complete(v.get("duration_s")) else None
    horizon_s = duration_s if duration_s is not None else math.inf
    if duration_s is not None and complete(v["bucket_s"]) and v["bucket_s"] > duration_s:
        b.problem("bucket_s", f"must be <= duration_s ({duration_s:g} s)")
    if duration_s is not None and complete(v["peak_window_s"]) and v["peak_window_s"] > duration_s:
        b.problem("peak_window_s", f"must be <= duration_s ({duration_s:g} s)")
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
    if duration_s is not None and clients is not None and service is not None:
        bucket_s = v["bucket_s"] if complete(v["bucket_s"]) else None
        b.bounds(duration_s, bucket_s, clients, service, faults)
    raw_policies = v.get("policies")
    raw_policies = raw_policies if isinstance(raw_policies, list) else []
    policies = b.policies(raw_policies, "policies")
    raw_expect = v["expect"] if isinstance(v["expect"], list) else []
    names = [p.name for p in policies] if complete(raw_policies) else None
    kind = v["service"]["kind"] if complete(v["service"]) else None
    expect = b.expectations(raw_expect, names, kind)
    client_expect = b.client_expectations(raw_expect, policies if names is not None else None)
    tolerances = b.tolerances(v["tolerances"]) if complete(v["tolerances"]) else {}
    objective = (
        b.objective(v["objective"], kind)
        if v["objective"] is not None and complete(v["objective"])
        else None
    )
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
        client_expect=client_expect,
        tolerances=tolerances,
        source=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        lines=dict(checker.lines),
        fidelity=m.Fidelity(**v["fidelity"]),
        peak_window_s=v["peak_window_s"],
        objective=objective,
    )


def load_policy_file(path: str | Path) -> tuple[Policy, ...]:
    """Policies from a file: a scenario's ``policies`` or a file holding only ``policies:``."""
    path = Path(path)
    node, _, _ = _read_node(path)
    if isinstance(node, yaml.MappingNode) and any(
        not (isinstance(k, yaml.ScalarNode) and k.value == "policies") for k, _ in node.value
    ):
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
