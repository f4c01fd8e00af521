"""Every mistake in a scenario file is reported with file, line, path and rule, all at once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.scenario import ScenarioError, load_scenario
from sim.scenario.errors import Problem
from sim.scenario.loader import load_policy_file

from .conftest import MINIMAL, SCENARIOS

WriteYaml = Callable[[str], Path]


def problems_of(path: Path) -> tuple[Problem, ...]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value.problems


def only(problems: tuple[Problem, ...]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def test_minimal_scenario_loads_with_defaults(write_yaml: WriteYaml) -> None:
    s = load_scenario(write_yaml(MINIMAL))
    assert s.name == "minimal"
    assert s.service.concurrency == 80
    assert s.policies[0].name == "seed-default"
    assert len(s.sha256) == 64


def test_unknown_key_names_its_line_and_suggests_the_right_one(write_yaml: WriteYaml) -> None:
    p = only(problems_of(write_yaml(MINIMAL.replace("duration_s", "duraton_s: 60\nduration_s"))))
    assert (p.line, p.path) == (2, "duraton_s")
    assert "unknown key" in p.message and "did you mean 'duration_s'" in p.message


def test_wrong_type(write_yaml: WriteYaml) -> None:
    p = only(problems_of(write_yaml(MINIMAL.replace("count: 10", "count: ten"))))
    assert (p.line, p.path) == (4, "clients.count")
    assert "expected a whole number" in p.message


def test_negative_time(write_yaml: WriteYaml) -> None:
    p = only(problems_of(write_yaml(MINIMAL.replace("at_s: 1", "at_s: -1"))))
    assert (p.line, p.path) == (5, "clients.arrival.at_s")
    assert "must be >= 0" in p.message


def test_cap_below_base(write_yaml: WriteYaml) -> None:
    text = MINIMAL + "  - name: tight\n    retry:\n      backoff: {base_s: 5, cap_s: 1}\n"
    p = only(problems_of(write_yaml(text)))
    assert (p.line, p.path) == (10, "policies[1].retry.backoff.cap_s")
    assert "cap_s (1 s) is below base_s (5 s)" in p.message


def test_fault_window_outside_the_duration(write_yaml: WriteYaml) -> None:
    text = MINIMAL + "faults:\n  - {kind: outage, start_s: 50, end_s: 90}\n"
    p = only(problems_of(write_yaml(text)))
    assert (p.line, p.path) == (9, "faults[0].end_s")
    assert "after the scenario's duration (60 s)" in p.message


def test_unknown_preset(write_yaml: WriteYaml) -> None:
    p = only(problems_of(write_yaml(MINIMAL.replace("seed-default", "ful-jitter"))))
    assert (p.line, p.path) == (7, "policies[0]")
    assert "did you mean 'full-jitter'" in p.message


def test_policy_name_used_twice(write_yaml: WriteYaml) -> None:
    text = MINIMAL + "  - name: seed-default\n    base: full-jitter\n"
    p = only(problems_of(write_yaml(text)))
    assert (p.line, p.path) == (8, "policies[1].name")
    assert "used twice" in p.message


def test_malformed_yaml(write_yaml: WriteYaml) -> None:
    p = only(problems_of(write_yaml(MINIMAL + "faults: [unclosed\n")))
    assert p.line >= 8
    assert "malformed YAML" in p.message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (MINIMAL + "faults: [unclosed\n", 9, "expected ',' or ']', but got '<stream end>'"),
        (MINIMAL + "a: *nope\n", 8, "found undefined alias 'nope'"),
        # libyaml would take this tab as part of the key; PyYAML refuses it
        (MINIMAL.replace("count: 10", "co\tunt: 10"), 4, "found character '\\t' that cannot"),
    ],
)
def test_malformed_yaml_keeps_pyyamls_words_when_libyaml_reads_first(
    write_yaml: WriteYaml, text: str, line: int, message: str
) -> None:
    # libyaml reads every file first (it is faster); what it refuses, and any file with
    # a tab, PyYAML reads again, so the problem has PyYAML's words and line
    p = only(problems_of(write_yaml(text)))
    assert p.line == line
    assert p.message.startswith(f"malformed YAML: {message}")


def test_the_character_pattern_pyyaml_is_handed_matches_its_own() -> None:
    import re

    from sim.scenario import yaml_start

    every = "".join(map(chr, range(0x110000)))
    ours = [m.start() for m in re.compile(yaml_start.NON_PRINTABLE).finditer(every)]
    theirs = [m.start() for m in re.compile(yaml_start.PYYAML_NON_PRINTABLE).finditer(every)]
    assert ours == theirs and len(ours) == 2111
    # imported first (as herdlab does), it is the pattern PyYAML's reader uses
    code = (
        "import sim.scenario, yaml.reader; from sim.scenario import yaml_start as y;"
        " print(yaml.reader.Reader.NON_PRINTABLE.pattern == y.NON_PRINTABLE)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_missing_file(tmp_path: Path) -> None:
    p = only(problems_of(tmp_path / "nope.yaml"))
    assert p.file.endswith("nope.yaml")
    assert "cannot read the file" in p.message


def test_missing_required_key(write_yaml: WriteYaml) -> None:
    p = only(problems_of(write_yaml(MINIMAL.replace("duration_s: 60\n", ""))))
    assert p.path == "duration_s" and "required" in p.message


def test_all_problems_are_reported_at_once(write_yaml: WriteYaml) -> None:
    text = (
        MINIMAL.replace("count: 10", "count: -3").replace("seed-default", "seed-defualt")
        + "  - name: x\n    retry: {backoff: {base_s: 3, cap_s: 1}}\n"
        + "faults:\n  - {kind: outage, start_s: 10, end_s: 100}\n"
        + "  - {kind: los, start_s: 1, end_s: 2}\n"
    )
    found = problems_of(write_yaml(text))
    paths = [p.path for p in found]
    assert paths == sorted(paths, key=lambda x: [p.path for p in found].index(x))
    assert set(paths) == {
        "clients.count",
        "policies[0]",
        "policies[1].retry.backoff.cap_s",
        "faults[0].end_s",
        "faults[1].kind",
    }
    assert [p.line for p in found] == sorted(p.line for p in found)


def test_yaml_tags_that_would_build_objects_are_refused(write_yaml: WriteYaml) -> None:
    marker = write_yaml("", name="marker")
    marker.unlink()
    text = MINIMAL.replace(
        "name: minimal", f"name: !!python/object/apply:os.system ['touch {marker}']"
    )
    assert only(problems_of(write_yaml(text))).path == "name"
    text = MINIMAL.replace("name: minimal", "name: !!python/name:os.system")
    p = only(problems_of(write_yaml(text)))
    assert (p.line, p.path) == (1, "name")
    assert "cannot read this value" in p.message
    assert not marker.exists()


def test_error_text_reads_file_line_path_message(write_yaml: WriteYaml) -> None:
    path = write_yaml(MINIMAL.replace("count: 10", "count: ten"))
    p = only(problems_of(path))
    assert str(p) == f"{path}:4: clients.count: expected a whole number, got 'ten'"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.description, "each scenario says what a reader should see"


def test_policy_file_with_only_policies(write_yaml: WriteYaml) -> None:
    path = write_yaml("policies:\n  - exponential\n  - name: mine\n    base: full-jitter\n")
    assert [p.name for p in load_policy_file(path)] == ["exponential", "mine"]


# ---------------------------------------------------------------- fuzz

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["burst", "poisson", "outage", "seed-default", "full", "exponential", "kind"]),
)
_keys = st.sampled_from(
    [
        "name",
        "duration_s",
        "clients",
        "arrival",
        "kind",
        "count",
        "policies",
        "faults",
        "service",
        "retry",
        "backoff",
        "base_s",
        "cap_s",
        "start_s",
        "end_s",
        "expect",
        "x",
    ]
)
_yaml_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=25,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=_yaml_values)
def test_fuzz_structured_documents_raise_only_scenario_errors(
    write_yaml: WriteYaml, doc: object
) -> None:
    import yaml

    path = write_yaml(yaml.safe_dump(doc))
    try:
        load_scenario(path)
    except ScenarioError as exc:
        assert exc.problems and all(isinstance(p, Problem) for p in exc.problems)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.sampled_from(list("abc:{}[]-,'\"!&*#|>\n \t0.5")), max_size=80))
def test_fuzz_raw_text_raises_only_scenario_errors(write_yaml: WriteYaml, text: str) -> None:
    try:
        load_scenario(write_yaml(MINIMAL + text))
    except ScenarioError as exc:
        assert exc.problems


# ---------------------------------------------------------------- unreadable files


def test_a_control_character_is_a_problem_on_its_line(write_yaml: WriteYaml) -> None:
    p = only(problems_of(write_yaml(MINIMAL.replace("count: 10", "count: 1\x000"))))
    assert p.line == 4 and "U+0000 is not allowed" in p.message


def test_deep_nesting_is_refused_before_anything_recurses(write_yaml: WriteYaml) -> None:
    p = only(problems_of(write_yaml(MINIMAL + "expect: " + "[" * 5000 + "]" * 5000 + "\n")))
    assert p.line == 8 and "nested deeper than" in p.message


def test_deep_block_nesting_is_refused_too(write_yaml: WriteYaml) -> None:
    deep = "".join(f"{'  ' * i}k{i}:\n" for i in range(60)) + "  " * 60 + "v\n"
    p = only(problems_of(write_yaml(deep)))
    assert "nested deeper than" in p.message


def test_alias_expansion_bomb_is_refused(write_yaml: WriteYaml) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    p = only(problems_of(write_yaml("\n".join(lines) + "\n")))
    assert "more than" in p.message and "aliases" in p.message


def test_a_small_alias_is_still_fine(write_yaml: WriteYaml) -> None:
    text = MINIMAL.replace("name: minimal", "name: &n minimal") + "description: *n\n"
    assert load_scenario(write_yaml(text)).description == "minimal"


def test_non_utf8_names_the_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINIMAL.replace("minimal", "caf\xe9").encode("latin-1"))
    p = only(problems_of(path))
    assert p.line == 1 and "not UTF-8" in p.message and "0xe9" in p.message


def test_a_directory_is_named_as_such(tmp_path: Path) -> None:
    p = only(problems_of(tmp_path))
    assert p.line == 0 and "is a directory" in p.message


def test_an_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text(MINIMAL + "#" * 2_000_000 + "\n")
    p = only(problems_of(path))
    assert "over 1,000,000 bytes" in p.message


def test_policy_file_reader_never_recurses_either(write_yaml: WriteYaml) -> None:
    path = write_yaml("policies: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ScenarioError) as info:
        load_policy_file(path)
    assert "nested deeper than" in info.value.problems[0].message


# ---------------------------------------------------------------- bounds the model honours

_POISSON = MINIMAL.replace(
    "  count: 10\n  arrival: {kind: burst, at_s: 1}",
    "  arrival: {kind: poisson, schedule: [{from_s: 0, rate_per_s: 10}]}",
)


@pytest.mark.parametrize(
    ("text", "path", "rule"),
    [
        # each of these once crashed, hung or exhausted memory in `run`
        (
            MINIMAL + "service: {service_time: {kind: constant, value_s: 0}}\n",
            "service.service_time",
            "mean must be > 0",
        ),
        (
            MINIMAL + "service: {service_time: {kind: lognormal, median_s: 1, sigma: 40}}\n",
            "service.service_time.sigma",
            "must be <= 10",
        ),
        (
            MINIMAL.replace("count: 10", "count: 10\n  request_timeout_s: 1e30"),
            "clients.request_timeout_s",
            "must be <= 604800",
        ),
        (MINIMAL.replace("duration_s: 60", "duration_s: 1e9"), "duration_s", "must be <= 604800"),
        (
            _POISSON.replace("rate_per_s: 10", "rate_per_s: 1e9"),
            "clients.arrival.schedule[0].rate_per_s",
            "must be <= 1e+06",
        ),
        (
            _POISSON.replace("rate_per_s: 10", "rate_per_s: 1e6"),
            "clients.arrival",
            "60,000,000 arrivals expected; at most 20,000,000",
        ),
        (
            MINIMAL + "service: {autoscale: {max_instances: 2, interval_s: 1e-9}}\n",
            "service.autoscale.interval_s",
            "must be >= 0.001",
        ),
        (MINIMAL.replace("count: 10", "count: 1000000000"), "clients.count", "must be <= 2e+07"),
        (
            MINIMAL + "faults: [{kind: stream_drop, start_s: 0, end_s: 60, every_s: 0.000001}]\n",
            "faults[0].every_s",
            "must be >= 0.001",
        ),
        (
            MINIMAL + "faults: [{kind: stream_drop, start_s: 0, end_s: 60, every_s: 0.0001}]\n",
            "faults[0].every_s",
            "must be >= 0.001",
        ),
        (
            MINIMAL + "faults: [{kind: stream_drop, start_s: 0, end_s: 60, every_s: 0.001}]\n",
            "",
            "",
        ),
        (MINIMAL + "bucket_s: 1e-7\n", "bucket_s", "must be >= 0.001"),
        (
            MINIMAL.replace("duration_s: 60", "duration_s: 600000") + "bucket_s: 0.001\n",
            "bucket_s",
            "at most 1,000,000: raise bucket_s",
        ),
        (MINIMAL.replace("name: minimal", "name: ../../etc"), "name", "must match"),
        (
            MINIMAL + "faults:\n" + "  - {kind: loss, start_s: 1, end_s: 2}\n" * 1001,
            "faults",
            "has 1,001 items; at most 1,000",
        ),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)
def test_values_past_what_the_model_can_honour_are_refused(
    write_yaml: WriteYaml, text: str, path: str, rule: str
) -> None:
    if not path:  # 60,000 cuts: within bounds
        load_scenario(write_yaml(text))
        return
    p = only(problems_of(write_yaml(text)))
    assert p.path == path and rule in p.message, p
    assert p.line > 0


def test_stream_cuts_over_every_fault_are_bounded(write_yaml: WriteYaml) -> None:
    text = MINIMAL.replace("duration_s: 60", "duration_s: 600") + (
        "faults: [{kind: stream_drop, start_s: 0, end_s: 600, every_s: 0.005}]\n"
    )
    p = only(problems_of(write_yaml(text)))
    assert p.path == "faults[0].every_s" and "120,000 instants; at most 100,000" in p.message


def test_every_number_in_the_schema_has_an_upper_bound() -> None:
    """What `herdlab schema` prints states every bound: no number without a maximum
    (except expectations' min/max, which bound results, not the model)."""
    from sim.scenario.grammar import json_schema
    from sim.scenario.schema import SCENARIO

    unbounded: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("number", "integer") and "maximum" not in node:
                unbounded.append(where)
            if (
                node.get("type") == "array"
                and "maxItems" not in node
                and "enum" not in str(node.get("items", {}))
            ):
                unbounded.append(where + "[]")
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(json_schema(SCENARIO), "")
    # bounds on figures (expectations, objective constraints) take any number a figure can be
    assert all(".expect." in w or ".subject_to." in w or ".tolerances." in w for w in unbounded), (
        unbounded
    )


def test_plain_exponent_numbers_read_as_numbers(write_yaml: WriteYaml) -> None:
    """YAML 1.1 reads 1e3 as a string; YAML 1.2 and every user read it as 1000."""
    s = load_scenario(write_yaml(MINIMAL.replace("duration_s: 60", "duration_s: 6e1")))
    assert s.duration_s == 60.0
    p = only(problems_of(write_yaml(MINIMAL.replace("duration_s: 60", "duration_s: '6e1'"))))
    assert "expected a number, got '6e1'" in p.message
