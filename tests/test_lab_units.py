"""The lab's analysis without a bench: request records in, figures and verdicts out."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.cli import main as cli
from harness.conformance import FAIL, NA, PASS, conforms, verify
from harness.ks import ks_uniform, pit
from harness.observed import Req, group_jobs, load_requests, summarize_client
from sim.policies.presets import preset
from sim.scenario import load_scenario
from sim.world.metrics import JobOutcome
from sim.world.run import run_policy

SEED = preset("seed-default")


def create(t_s: float, status: int, job: str | None = None, **kw: Any) -> Req:
    return Req(
        client="c", kind="create", job=job, key=kw.pop("key", "k1"), start_s=t_s,
        end_s=t_s + 0.001, status=status, **kw,
    )  # fmt: skip


def stream(t_s: float, end_s: float, ids: tuple[int, ...], lei: int | None = None) -> Req:
    return Req(
        client="c", kind="stream", job="j1", key=None, start_s=t_s, end_s=end_s,
        status=200, last_event_id=lei, event_ids=ids,
    )  # fmt: skip


def seed_like_run(rng: np.random.Generator, start_s: float = 0.0) -> list[Req]:
    """Two 503s then a 201, waits drawn as the seed plan draws them."""
    d1, d2 = rng.uniform(0.9, 1.1), 2 * rng.uniform(0.9, 1.1)
    key = f"k{start_s}"
    return [
        create(start_s, 503, key=key),
        create(start_s + 0.001 + d1, 503, key=key),
        create(start_s + 0.002 + d1 + d2, 201, job="j1", key=key),
    ]


def test_ks_accepts_uniform_and_rejects_a_shifted_sample() -> None:
    rng = np.random.default_rng(3)
    assert ks_uniform(rng.random(50))[1] > 0.05
    assert ks_uniform(rng.random(50) * 0.5)[1] < 0.001


def test_pit_of_a_sample_is_its_place_among_the_reference() -> None:
    ref = np.arange(100, dtype=float)
    assert pit(49.5, ref) == 0.5
    assert pit(-1.0, ref) == 0.0
    assert pit(1000.0, ref) == 1.0


def test_attempts_with_one_key_are_one_job_and_delays_are_numbered_from_one() -> None:
    jobs = group_jobs([create(0.0, 503), create(1.0, 503), create(3.0, 201, job="j1")])
    (job,) = jobs["c"]
    assert job.job_id == "j1"
    assert [round(g.delay_s, 3) for g in job.create_gaps()] == [0.999, 1.999]
    assert [g.n for g in job.create_gaps()] == [1, 2]


def test_without_a_key_a_201_ends_the_job() -> None:
    reqs = [create(0.0, 503, key=None), create(1.0, 201, job="j1", key=None)]
    reqs += [create(5.0, 201, job="j2", key=None)]
    assert [len(j.creates) for j in group_jobs(reqs)["c"]] == [2, 1]


def test_a_cut_stream_that_never_reached_the_client_does_not_reset_the_count() -> None:
    reqs = [
        create(0.0, 201, job="j1"),
        stream(0.1, 2.0, (1, 2)),  # open, then cut
        stream(3.0, 3.01, (3,), lei=2),  # cut before a byte got through
        stream(5.0, 9.0, (3, 4, 5), lei=2),  # the client still had 2: resumed
    ]
    (job,) = group_jobs(reqs)["c"]
    assert [g.n for g in job.stream_gaps()] == [1, 2]
    assert job.events(5) == (0, 0, 0)


def test_a_restart_counts_the_events_sent_again_and_a_stop_the_events_lost() -> None:
    reqs = [create(0.0, 201, job="j1"), stream(0.1, 2.0, (1, 2)), stream(3.0, 4.0, (1, 2, 3))]
    (job,) = group_jobs(reqs)["c"]
    lost, duplicated, _ = job.events(10)
    assert (lost, duplicated) == (7, 2)
    assert job.reconnects_without_resume() == 1


def test_summary_counts_retried_4xx_and_retry_after_honoured() -> None:
    reqs = [
        create(0.0, 400),
        create(0.5, 503, retry_after_s=2.0),
        create(2.6, 503, retry_after_s=2.0),
        create(3.0, 201, job="j1"),
    ]
    summary = summarize_client(group_jobs(reqs)["c"], 10)
    assert summary["retried_non_retryable"] == 1
    assert summary["retry_after"] == {"seen": 2, "honoured": 1}


def test_seed_like_waits_conform_to_seed_default_and_not_to_grpc() -> None:
    rng = np.random.default_rng(1)
    reqs = [r for i in range(6) for r in seed_like_run(rng, 100.0 * i)]
    jobs = group_jobs(reqs)["c"]
    rules = {r.name: r for r in verify(SEED, jobs)}
    assert conforms(list(rules.values()))
    assert rules["retry jitter"].verdict == PASS  # 12 waits: enough for the fit test
    assert rules["resume"].verdict == NA
    grpc = {r.name: r for r in verify(preset("grpc-default"), jobs)}
    assert grpc["retry delays"].verdict == FAIL


def test_the_fit_test_fails_waits_in_range_but_not_spread_as_declared() -> None:
    # every wait at the bottom of the seed's ±10% band: in range, but no jitter
    reqs: list[Req] = []
    for i in range(8):
        t = 100.0 * i
        reqs += [
            create(t, 503, key=f"k{i}"),
            create(t + 0.001 + 0.9, 503, key=f"k{i}"),
            create(t + 0.002 + 0.9 + 1.8, 201, job="j1", key=f"k{i}"),
        ]
    rules = {r.name: r for r in verify(SEED, group_jobs(reqs)["c"])}
    assert rules["retry delays"].verdict == PASS
    assert rules["retry jitter"].verdict == FAIL


def test_retrying_a_4xx_or_ignoring_retry_after_breaks_the_policy() -> None:
    jobs = group_jobs([create(0.0, 404), create(1.0, 503, retry_after_s=5.0), create(2.0, 201)])
    rules = {r.name: r for r in verify(SEED, jobs["c"])}
    assert rules["no 4xx retried"].verdict == FAIL
    assert rules["Retry-After"].verdict == FAIL


def test_eventsource_policy_forbids_a_reconnect_after_an_error_answer() -> None:
    es = preset("eventsource")
    reqs = [
        create(0.0, 201, job="j1"),
        stream(0.1, 2.0, (1,)),
        Req("c", "stream", "j1", None, 5.0, 5.01, 503, last_event_id=1),
        stream(8.0, 9.0, (2,), lei=1),
    ]
    rules = {r.name: r for r in verify(es, group_jobs(reqs)["c"])}
    assert rules["stops on error status"].verdict == FAIL


def test_load_requests_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    good = {"client": "c", "kind": "create", "start_s": 1.0, "end_s": 1.1, "status": 201}
    path.write_text(json.dumps(good) + "\n" + '{"client": "c", "ki')
    assert len(load_requests(path)) == 1


def test_verify_client_exits_2_on_a_missing_dir_and_an_unknown_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["verify-client", "--policy", "seed-default", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli(["verify-client", "--policy", "seed-defualt", str(tmp_path)]) == 2
    assert "neither a preset nor a file" in capsys.readouterr().err


def test_simulated_eventsource_clients_give_up_on_a_503_reconnect() -> None:
    scenario = load_scenario(str(Path("scenarios") / "lab-503-during-reconnect.yaml"))
    browser = run_policy(scenario, preset("eventsource")).recorder
    seed = run_policy(scenario, SEED).recorder
    assert [JobOutcome(o) for o in browser.outcome] == [JobOutcome.GAVE_UP]
    assert browser.reconnects[0] == 1
    assert [JobOutcome(o) for o in seed.outcome] == [JobOutcome.COMPLETED]


def test_timers_running_late_do_not_fail_the_fit_test_of_the_spread() -> None:
    # the seed's waits, each 0.15 s late (a loaded machine): the range rule allows it
    # with late slack, and the fit test takes the lateness off before judging the shape
    rng = np.random.default_rng(5)
    late = []
    for k in range(8):
        first, second, third = seed_like_run(rng, 100.0 * k)
        second = dataclasses.replace(
            second, start_s=second.start_s + 0.15, end_s=second.end_s + 0.15
        )
        third = dataclasses.replace(third, start_s=third.start_s + 0.3, end_s=third.end_s + 0.3)
        late += [first, second, third]
    rules = {r.name: r for r in verify(SEED, group_jobs(late)["c"], late_slack_s=0.5)}
    assert rules["retry delays"].verdict == PASS
    assert rules["retry jitter"].verdict == PASS
    assert "lateness taken off: 1" in rules["retry jitter"].checks[0].detail  # 100-199 ms
    strict = {r.name: r for r in verify(SEED, group_jobs(late)["c"], late_slack_s=0.0)}
    assert strict["retry jitter"].verdict == FAIL  # with no lateness allowed


def test_a_tabs_requests_are_counted_as_the_asyncio_client_counts_its_own() -> None:
    from harness.browser_clients import count_requests
    from sim.world.metrics import Recorder

    def req(client: str, kind: str, t_s: float, status: int) -> Req:
        return Req(client, kind, "j1", None, 100.0 + t_s, 100.0 + t_s + 0.01, status)

    requests = [
        req("browser-0", "create", 0.05, 503),
        req("browser-0", "create", 1.05, 201),
        req("browser-0", "stream", 1.15, 200),
        req("browser-0", "stream", 4.25, 0),  # broke before an answer
        req("browser-0", "state", 4.3, 200),  # not an attempt: never counted
        req("browser-1", "stream", 0.15, 503),
        req("conn-1", "create", 0.05, 201),  # an asyncio client: counts its own
        req("browser-2", "create", 0.05, 201),  # tab 2 is not one of this run's 2 tabs
    ]
    rec = Recorder(10.0, 0.1)
    assert count_requests(rec, requests, tabs=2, clock_offset_s=100.0) == 5
    rec.close(10.0)
    c = rec.counters
    nonzero = {k: {int(i): int(v[i]) for i in np.flatnonzero(v)} for k, v in c.items() if v.any()}
    assert nonzero == {
        "offered_first": {0: 1, 11: 1, 1: 1},
        "offered_retry": {10: 1},
        "offered_reconnect": {42: 1},
        "rejected_503": {0: 1, 1: 1},
        "accepted": {10: 1},
        "stream_connected": {11: 1},
        "error_reset": {42: 1},
    }
    assert sorted(rec.sent_s) == pytest.approx([0.05, 0.15, 1.05, 1.15, 4.25])


LAB_SCENARIO = Path("scenarios") / "lab-503-burst-and-cut.yaml"


def with_client_expectations(tmp_path: Path, *items: str) -> Path:
    """The lab scenario with ``items`` appended to its ``expect:`` (its last key)."""
    text = LAB_SCENARIO.read_text()
    assert text.rstrip().splitlines()[-1].startswith("  - {metric:")
    path = tmp_path / "lab.yaml"
    path.write_text(text + "".join(f"  - {item}\n" for item in items))
    return path


def test_a_client_expectation_gives_one_verdict_per_rule_and_fails_a_policy_not_kept(
    tmp_path: Path,
) -> None:
    from harness.conformance import check_expectation

    path = with_client_expectations(
        tmp_path, "{kind: client, conforms: seed-default}", "{kind: client, conforms: grpc-default}"
    )
    scenario = load_scenario(str(path))
    assert scenario.expect and len(scenario.client_expect) == 2
    kept, broken = scenario.client_expect
    rng = np.random.default_rng(1)
    clients = group_jobs([r for i in range(6) for r in seed_like_run(rng, 100.0 * i)])
    lines = len(LAB_SCENARIO.read_text().splitlines())
    ok = check_expectation(kept, clients, f"{path}:{kept.line}")
    assert kept.line == lines + 1 and broken.line == lines + 2
    assert ok.status().value == "PASS"
    assert {v.metric for v in ok.verdicts} >= {"client c: attempts", "client c: retry jitter"}
    assert all(v.source == "client" and v.policy == "seed-default" for v in ok.verdicts)
    (idle,) = ok.not_checked
    assert idle.startswith(f"{path}:{kept.line}: client c, seed-default: n/a: ")
    assert "resume (no reconnect)" in idle
    jitter = next(v for v in ok.verdicts if v.metric == "client c: retry jitter")
    assert "KS D =" in jitter.note and "p = " in jitter.note  # the p-value is shown
    bad = check_expectation(broken, clients, f"{path}:{broken.line}")
    assert bad.status().value == "FAIL"
    delays = next(v for v in bad.verdicts if v.metric == "client c: retry delays")
    assert delays.status.value == "FAIL" and delays.observed == 12  # every wait
    assert delays.bound == "0 of 12 fail" and "create retry 1 after 503" in delays.note
    assert delays.where == f"{path}:{lines + 2}"


def test_a_client_expectation_fails_when_its_client_was_not_recorded(tmp_path: Path) -> None:
    from harness.conformance import check_expectation

    path = with_client_expectations(tmp_path, "{kind: client, conforms: seed-default, client: x}")
    (exp,) = load_scenario(str(path)).client_expect
    clients = group_jobs([create(0.0, 201, job="j1")])
    (verdict,) = check_expectation(exp, clients, "here:1").verdicts
    assert verdict.status.value == "FAIL" and verdict.observed is None
    assert verdict.note == "no client 'x' recorded; recorded: c"
    (none,) = check_expectation(exp, {}, "here:1").verdicts
    assert none.note == "no request was recorded"


def test_a_client_expectation_is_validated_with_file_and_line(tmp_path: Path) -> None:
    from sim.scenario.errors import ScenarioError

    path = with_client_expectations(
        tmp_path,
        "{kind: client, conforms: sede-default}",
        "{kind: client, conforms: seed-default, min: 1}",
        "{kind: client, late_slack_s: 61}",
    )
    lines = len(LAB_SCENARIO.read_text().splitlines())
    with pytest.raises(ScenarioError) as exc:
        load_scenario(str(path))
    problems = [str(p) for p in exc.value.problems]
    n = len([*LAB_SCENARIO.read_text().split("  - {metric:")]) - 1  # figure expectations
    assert sorted(problems) == sorted(
        [
            f"{path}:{lines + 2}: expect[{n + 1}].min: unknown key; allowed here: conforms,"
            " client, late_slack_s",
            f"{path}:{lines + 3}: expect[{n + 2}].late_slack_s: must be <= 60, got 61",
            f"{path}:{lines + 3}: expect[{n + 2}].conforms: is required but missing",
            f"{path}:{lines + 1}: expect[{n}].conforms: 'sede-default' is neither a policy of this"
            " scenario nor a preset (did you mean 'seed-default'?); its policies: seed-default",
        ]
    )


def test_a_simulated_run_lists_a_client_expectation_as_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = with_client_expectations(tmp_path, "{kind: client, conforms: seed-default}")
    assert cli(["run", str(path), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    lines = len(LAB_SCENARIO.read_text().splitlines())
    checks = json.loads((tmp_path / "out" / "results.json").read_text())["checks"]
    assert checks["status"] == "PASS"
    assert checks["not_checked"] == [
        f"{path}:{lines + 1}: the client keeps seed-default: checked by herdlab lab only"
    ]
    assert "checked by herdlab lab only" in capsys.readouterr().out


def test_the_schema_documents_the_client_expectation() -> None:
    from sim.scenario.grammar import json_schema
    from sim.scenario.schema import SCENARIO

    item = json_schema(SCENARIO)["properties"]["expect"]["items"]
    figure_kind, client_kind = item["oneOf"]
    assert "metric" in figure_kind["required"]
    assert client_kind["required"] == ["kind", "conforms"]
    assert "herdlab lab" in client_kind["properties"]["conforms"]["description"]


def test_the_lab_report_says_when_attempts_can_go_unrecorded(tmp_path: Path) -> None:
    from harness.lab import lab_record, lab_report

    text = LAB_SCENARIO.read_text().replace(
        "faults:\n", "faults:\n  - {kind: reset, start_s: 10, end_s: 11}\n"
    )
    path = tmp_path / "reset.yaml"
    path.write_text(text)
    record = lab_record(load_scenario(str(path)), tmp_path / "none.jsonl", None, [], "duration")
    assert record["unseen_during"] == ["reset 10-11 s p=1"]
    assert "Not counted, during reset 10-11 s p=1: attempts whose connection was refused" in (
        lab_report(record)
    )
    quiet = lab_record(load_scenario(str(LAB_SCENARIO)), tmp_path / "none.jsonl", None, [], "")
    assert quiet["unseen_during"] == [] and "Not counted" not in lab_report(quiet)
