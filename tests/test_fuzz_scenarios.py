"""Mutants of the shipped scenarios: validate never raises anything but ScenarioError
(every problem with its file and line), and what validates is either refused by the
cost estimate or runs, in a child process with a memory limit and a timeout, making
no more jobs and requests than the estimate said.

Mutations: a value replaced (wrong types, zero, negatives, tiny and huge numbers,
bounds), a key deleted, a list item repeated, a value nested deeply; then, on the
text, garbage bytes, control characters, truncation, deep brackets. Deterministic
(derandomized, fixed example counts), so CI sees the same mutants every time;
``HERDLAB_FUZZ_EXAMPLES=N`` runs N of each for a longer hunt.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings

from sim.cost import BASE_BYTES, Limits, estimate, refusals
from sim.results import artifacts_of, new_record, policy_entry, write_results
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.loader import _compose
from sim.scenario.model import Scenario
from sim.world.run import run_policy
from sim.world.summary import summarize

from .scenario_mutants import mutant_bytes, structured_mutant

_EXAMPLES = int(os.environ.get("HERDLAB_FUZZ_EXAMPLES", "0"))
settings.register_profile(
    "herdlab-fuzz-validate",
    max_examples=_EXAMPLES or 200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "herdlab-fuzz-run",
    max_examples=_EXAMPLES or 30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FUZZ_LIMITS = Limits(memory_bytes=BASE_BYTES + 150e6, seconds=0.6, memory_source="fuzz budget")
"""What a mutant may cost, estimated, to be run here: small, so the suite stays fast."""
CHILD_EXTRA_BYTES = 768 * 2**20
"""Address space a child may add to what it inherits: a run past this fails to allocate."""
MEMORY_SLACK_BYTES = 16 * 2**20
"""What a first run adds to a process whatever its size (SimPy's first use, block
draw buffers, allocator arenas): 9.5 MB measured for cloud-run-503-burst, whose
estimate's per-job and per-bucket part is 0.9 MB. The estimate's BASE_BYTES holds
it; here the base is the forked process's own size, so it is allowed for apart."""
CHILD_TIMEOUT_S = 60.0
"""A hang guard, far above the 0.6 s the estimate allows (the machine may be busy)."""


def _load_or_problems(tmp: Path, raw: bytes) -> Scenario | None:
    """The scenario, or None after checking every problem names the file and a line."""
    path = tmp / "mutant.yaml"
    path.write_bytes(raw)
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.file == str(path), p
            assert p.line >= 1, p
            assert p.message, p
        return None


@settings(settings.get_profile("herdlab-fuzz-validate"))
@given(raw=mutant_bytes())
def test_validate_raises_only_scenario_errors_with_file_and_line(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    scenario = _load_or_problems(tmp_path_factory.mktemp("v"), raw)
    event("valid" if scenario is not None else "refused by validate")
    if scenario is not None:  # whatever validates can be estimated
        cost = estimate(scenario, scenario.policies)
        assert cost.memory_bytes > 0 and cost.seconds >= 0


def _tree(node: yaml.Node) -> Any:
    """A node tree as plain values: kind, tag, style, start mark, children (a plain
    scalar's style and a block collection's flow_style are None in PyYAML, "" and False
    in libyaml; end marks, which nothing reads, differ at the end of a file)."""
    marks = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, node.style or None, marks)
    if isinstance(node, yaml.SequenceNode):
        return ("seq", node.tag, bool(node.flow_style), marks, [_tree(n) for n in node.value])
    pairs = [(_tree(k), _tree(v)) for k, v in node.value]
    return ("map", node.tag, bool(node.flow_style), marks, pairs)


def _read_with(loader: Any, text: str) -> Any:
    try:
        node = _compose("mutant.yaml", text, loader)
    except (yaml.YAMLError, ScenarioError):
        return "refused"
    return None if node is None else _tree(node)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
@settings(settings.get_profile("herdlab-fuzz-validate"))
@given(raw=mutant_bytes())
def test_libyaml_reads_what_pyyaml_reads_with_the_same_nodes_and_lines(raw: bytes) -> None:
    # the loader reads with libyaml and, on any problem, again with PyYAML for its
    # wording: so libyaml must accept nothing PyYAML refuses, and build the same nodes
    text = raw.decode("utf-8", errors="replace")
    if "\t" in text:  # read by PyYAML alone (libyaml takes tabs PyYAML refuses)
        return
    pure = _read_with(yaml.SafeLoader, text)
    fast = _read_with(yaml.CSafeLoader, text)
    event(f"pyyaml {'refuses' if pure == 'refused' else 'reads'}")
    if pure == "refused":
        assert fast == "refused"
    elif fast != "refused":  # refused by libyaml alone: PyYAML reads it, as before
        assert fast == pure


# ---------------------------------------------------------------- running what validates


def _status_bytes(field: str) -> int:
    """A size from /proc/self/status (``VmSize:``, ``VmRSS:``, ``VmHWM:``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _child_run(scenario: Scenario, out_dir: Path, write_fd: int) -> None:
    """In the forked child: limit memory and time, run every policy, write the results
    as ``run`` does, report each policy's jobs and requests. Never returns."""
    code = 1
    try:
        extra = _status_bytes("VmSize:") + CHILD_EXTRA_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (extra, extra))
        signal.alarm(int(CHILD_TIMEOUT_S))
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here on
        start_rss = _status_bytes("VmRSS:")
        counts = []
        record = new_record(scenario, "sim", scenario.seed, 1)
        out_dir.mkdir()
        for policy in scenario.policies:
            rec = run_policy(scenario, policy).recorder
            offered = sum(
                int(rec.counters[k].sum())
                for k in ("offered_first", "offered_retry", "offered_reconnect")
            )
            counts.append({"jobs": len(rec.arrival_s), "requests": offered})
            entry = policy_entry(
                out_dir, scenario, policy, artifacts_of(rec, scenario), [summarize(rec, scenario)]
            )
            record["policies"].append(entry)
        record["complete"] = True
        write_results(out_dir, record)
        grown = _status_bytes("VmHWM:") - start_rss
        os.write(write_fd, json.dumps({"runs": counts, "grown_bytes": grown}).encode())
        code = 0
    except BaseException as exc:  # reported to the parent, which fails the example
        os.write(write_fd, json.dumps({"error": repr(exc)[:2000]}).encode())
    finally:
        os._exit(code)


def _run_in_child(scenario: Scenario, out_dir: Path) -> tuple[int, Any, float]:
    """Exit status, the child's report and its wall time."""
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _child_run(scenario, out_dir, write_fd)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    elapsed = time.monotonic() - started
    body = b"".join(chunks)
    return status, json.loads(body) if body else None, elapsed


@settings(settings.get_profile("herdlab-fuzz-run"))
@given(raw=structured_mutant().map(str.encode))
def test_what_validates_is_refused_or_runs_within_its_estimate(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    tmp = tmp_path_factory.mktemp("r")
    scenario = _load_or_problems(tmp, raw)
    if scenario is None:
        event("refused by validate")
        return
    cost = estimate(scenario, scenario.policies)
    found = refusals(cost, FUZZ_LIMITS)
    event("refused by the cost estimate" if found else "run")
    if found:
        assert all(r.knob.path and r.message for r in found)
        return
    status, report, elapsed_s = _run_in_child(scenario, tmp / "out")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (status, report)
    assert elapsed_s < CHILD_TIMEOUT_S
    for policy, est, got in zip(scenario.policies, cost.policies, report["runs"], strict=True):
        assert got["jobs"] <= est.jobs, (policy.name, got, est)
        assert got["requests"] <= est.requests, (policy.name, got, est)
    # memory: what the runs added to the process, against the estimate less the
    # interpreter's own share, plus room for the allocator's arenas
    assert report["grown_bytes"] <= cost.memory_bytes - BASE_BYTES + MEMORY_SLACK_BYTES, report
    assert (tmp / "out" / "results.json").exists()
