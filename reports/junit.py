"""JUnit XML of checked runs, for CI systems that show test results.

One ``<testsuite>`` per scenario, one ``<testcase>`` per verdict: ``classname`` is the
scenario (``SCENARIO.baseline`` for the baseline comparison, ``SCENARIO.fidelity`` for
the fidelity rows) and ``name`` is
``policy::metric``, so the full id reads ``scenario::policy::metric`` as in pytest. A
failed (or, unless accepted, inconclusive) verdict is a ``<failure>`` whose message has the
bound, the observed value and its CI. Written with the standard library's ElementTree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.decide.expect import unique_names
from sim.decide.verdict import Status, Verdict


@dataclass(frozen=True, slots=True)
class Suite:
    """One scenario's checks: its name, file, ``checks`` record and time taken."""

    scenario: str
    source: str
    checks: Mapping[str, Any]
    time_s: float
    error: str = ""  # the scenario could not be run: why


#: verdicts other than expectations go to a class of their own: SCENARIO.baseline, and
#: SCENARIO.fidelity for the fidelity rows of ``herdlab check --mode both``
_CLASS_SUFFIX = {"baseline": ".baseline", "fidelity": ".fidelity"}


def case_names(verdicts: Sequence[Verdict]) -> list[str]:
    """``policy::metric`` per verdict (``@LINE`` added where one policy and metric are
    checked twice), as the pytest plugin names its tests."""
    names = [""] * len(verdicts)
    for source in {v.source for v in verdicts}:
        index = [i for i, v in enumerate(verdicts) if v.source == source]
        pairs = [(verdicts[i].policy, verdicts[i].metric, _line(verdicts[i])) for i in index]
        for i, name in zip(index, unique_names(pairs), strict=True):
            names[i] = name
    return names


def _line(v: Verdict) -> int:
    tail = v.where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def junit_xml(suites: Sequence[Suite]) -> str:
    """The JUnit XML document of every suite."""
    root = ET.Element("testsuites", name="herdlab check")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for suite in suites:
        verdicts = [Verdict.from_json(v) for v in suite.checks.get("verdicts", [])]
        accept = bool(suite.checks.get("accept_inconclusive", False))
        el = ET.SubElement(root, "testsuite", name=suite.scenario, file=suite.source)
        failures = errors = 0
        if suite.error:
            case = ET.SubElement(el, "testcase", classname=suite.scenario, name="run")
            ET.SubElement(case, "error", message=suite.error).text = suite.error
            errors += 1
        for v, name in zip(verdicts, case_names(verdicts), strict=True):
            classname = suite.scenario + _CLASS_SUFFIX.get(v.source, "")
            attrs = {"classname": classname, "name": name, "time": "0"}
            if v.source != "baseline" and ":" in v.where:
                attrs["file"], attrs["line"] = v.where.rsplit(":", 1)
            case = ET.SubElement(el, "testcase", attrs)
            failed = v.status is Status.FAIL or (v.status is Status.INCONCLUSIVE and not accept)
            if failed:
                failures += 1
                failure = ET.SubElement(case, "failure", message=v.message(), type=v.status.value)
                failure.text = v.message()
            elif v.status is Status.INCONCLUSIVE:
                ET.SubElement(case, "system-out").text = "accepted: " + v.message()
        tests = len(verdicts) + (1 if suite.error else 0)
        el.set("tests", str(tests))
        el.set("failures", str(failures))
        el.set("errors", str(errors))
        el.set("skipped", "0")
        el.set("time", f"{suite.time_s:.3f}")
        totals["tests"] += tests
        totals["failures"] += failures
        totals["errors"] += errors
        total_time += suite.time_s
    for key, n in totals.items():
        root.set(key, str(n))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
