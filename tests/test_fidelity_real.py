"""``--mode both`` and the harness's self-check, against the real job server, a real
Toxiproxy and a real Redis (started on loopback, stopped by pid)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from harness.client import ClientContext, create_job
from harness.network import NETWORK_TOXICS
from harness.real import RealBench
from sim.distributions import Constant
from sim.world.metrics import Recorder

from .test_harness_real import fast

pytestmark = pytest.mark.integration

TINY = """\
name: tiny-both
description: thirty clients, a one-second 503 outage, quick retries
seed: 4
duration_s: 12
bucket_s: 0.1
clients:
  count: 30
  arrival: {kind: burst, at_s: 0, spread_s: 4}
  job_timeout_s: 10
  request_timeout_s: 2
service:
  instances: 1
  concurrency: 20
  queue_limit: 20
  service_time: {kind: uniform, low_s: 0.8, high_s: 1.2}
  progress_events: 4
network:
  latency: {kind: constant, value_s: 0.01}
faults:
  - {kind: outage, start_s: 1, end_s: 2, answer: "503"}
policies:
  - name: quick
    base: seed-default
    retry: {backoff: {base_s: 0.3, cap_s: 1}}
fidelity: {completion_p95: 0.3}
"""

STEADY = """\
name: steady
seed: 9
duration_s: 8
clients:
  arrival: {kind: poisson, schedule: [{from_s: 0, rate_per_s: 25}]}
  job_timeout_s: 5
  request_timeout_s: 2
service:
  instances: 1
  concurrency: 50
  queue_limit: 50
  service_time: {kind: constant, value_s: 0.3}
  progress_events: 3
policies: [seed-default]
"""


def herdlab(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """``herdlab ARGS``, bounded in time; one that overstays is stopped by SIGTERM, as
    Ctrl-C would (its clean-up stops Redis, Toxiproxy and the server by pid), not
    killed outright, which would leave them behind."""
    argv = [sys.executable, "-m", "harness.cli", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
        raise AssertionError(f"herdlab {' '.join(args)} overstayed {timeout_s:g} s") from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_mode_both_writes_the_fidelity_table_and_overlay_charts(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    out = tmp_path / "both"
    result = herdlab("run", str(scenario), "--mode", "both", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "results.json").read_text())
    assert record["mode"] == "both" and record["complete"] is True
    for side in ("sim", "real"):
        side_record = json.loads((out / side / "results.json").read_text())
        assert [p["name"] for p in side_record["policies"]] == ["quick"]
        assert (out / side / "report.html").exists()
    fid = record["fidelity"]
    rows = fid["rows"]
    assert [r["metric"] for r in rows] == [
        "success_rate",
        "attempts_per_job",
        "completion_s.p50",
        "completion_s.p95",
        "peak_offered_per_s",
        "recovery_s",
    ]
    assert {r["source"] for r in rows} == {"fidelity"}
    assert all(r["status"] in ("PASS", "FAIL", "INCONCLUSIVE") for r in rows)
    assert all(r["sim"] is not None for r in rows[:5])
    assert next(r for r in rows if r["metric"] == "completion_s.p95")["tolerance"] == "± 30%"
    assert fid["status"] in ("PASS", "FAIL", "INCONCLUSIVE")
    # the real run watched itself, and says whether it kept its schedule
    check = record["self_check"]["quick"]
    assert check["arrivals"]["planned"] == 30
    assert check["timer_lag_ms"]["n"] > 0 and check["probe_lag_ms"]["n"] > 0
    assert set(check["cpu_cores"]) >= {"clients", "server", "toxiproxy", "redis", "other"}
    assert [a["label"] for a in check["fault_actions"]] == ["f0 outage 503 on", "f0 outage 503 off"]
    assert record["degraded"] is check["degraded"]
    assert all(r["degraded"] is record["degraded"] for r in rows)
    if record["degraded"]:
        assert record["degraded_reasons"] and "DEGRADED" in result.stdout
    else:  # every client got through the outage on both sides
        success = rows[0]
        assert (success["sim"], success["real"], success["status"]) == (1.0, 1.0, "PASS")
    # terminal, charts, report
    assert "fidelity: " in result.stdout and "completion_s.p95" in result.stdout
    assert "self-check quick: timer lag" in result.stdout
    for ext in ("svg", "png"):
        assert (out / "charts" / f"overlay-quick.{ext}").stat().st_size > 0
    report = (out / "report.html").read_text()
    assert 'id="fidelity"' in report and 'id="chart-overlay-quick"' in report
    assert "self-check" in report.lower()


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealBench]:
    b = RealBench(tmp_path_factory.mktemp("bench"))
    b.start()
    yield b
    b.stop()


def test_the_scenarios_network_latency_is_a_toxic_each_way(
    bench: RealBench, tmp_path: Path
) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(TINY)
    urls = bench.start_server(str(scenario), 1.0, 0, Constant(0.05))
    assert bench.toxi is not None
    for proxy in ("jobs", "streams"):
        toxics = bench.toxi._api().get(f"/proxies/{proxy}/toxics", timeout=5).json()
        by_name = {t["name"]: t for t in toxics}
        for stream, name in NETWORK_TOXICS.items():
            assert by_name[name]["stream"] == stream
            assert by_name[name]["attributes"]["latency"] == 50

    async def round_trips() -> list[float]:
        out = []
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(3):
                t = time.monotonic()
                async with session.get(f"{urls[0]}/healthz") as r:
                    await r.read()
                out.append(time.monotonic() - t)
        return out

    for rtt in asyncio.run(round_trips()):
        assert 0.1 <= rtt < 1.0  # 50 ms there and 50 ms back, as the model has it


def test_the_harness_can_hand_the_server_the_simulators_service_time(
    bench: RealBench, tmp_path: Path
) -> None:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(TINY.replace("{kind: uniform, low_s: 0.8, high_s: 1.2}",
                                     "{kind: constant, value_s: 30}"))  # fmt: skip
    urls = bench.start_server(str(scenario), 1.0, 0)

    async def job_done_after(service_s: float | None, wait_s: float) -> str:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            ctx = ClientContext(
                base_url=urls[0], stream_url=urls[1], session=session, policy=fast(),
                rng=np.random.default_rng(0), rec=Recorder(5, 0.1), clock=lambda: 0.0,
                sleep=asyncio.sleep, request_timeout_s=2.0, job_timeout_s=10.0,
                follow_stream=False,
            )  # fmt: skip
            outcome, job_id = await create_job(ctx, "offered_first", service_s)
            assert outcome.status == 201
            await asyncio.sleep(wait_s)
            async with session.get(f"{urls[0]}/api/ai/jobs/{job_id}") as r:
                return str((await r.json())["status"])

    assert asyncio.run(job_done_after(0.2, 0.8)) == "done"  # not the scenario's 30 s
    assert asyncio.run(job_done_after(None, 0.8)) != "done"


#: how long the CPU hogs run, s: the whole 8 s schedule and some
HOG_S = 20
HOG = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


def test_a_starved_real_run_is_marked_degraded_with_its_reason(tmp_path: Path) -> None:
    """CPU hogs at normal priority against a real run at the lowest (nice 19): the
    clients' event loop cannot keep the schedule, and the run says so.

    The run starts at normal priority and is lowered to nice 19 (every thread of it)
    once Redis and Toxiproxy are up (it has written its pid file), when the hogs start:
    they starve the run, not its start-up (started at nice 19 on a host at load 12, the
    bench did not come up within 120 s). The hogs stop after HOG_S, longer than the
    scenario's 8 s, so the run then finishes in seconds however loaded the host already
    is (with hogs for the whole run it took 175 s at load 3). Every process is stopped by
    pid: the hogs by SIGKILL, the run by SIGTERM (its own clean-up stops what it
    started) if it overstays."""
    scenario = tmp_path / "steady.yaml"
    scenario.write_text(STEADY)
    out = tmp_path / "starved"
    argv = [sys.executable, "-m", "harness.cli", "run", str(scenario), "--mode", "real",
            "--out", str(out), "--no-report"]  # fmt: skip
    hogs: list[subprocess.Popen[bytes]] = []
    with (tmp_path / "stdout").open("wb") as stdout, (tmp_path / "stderr").open("wb") as stderr:
        run = subprocess.Popen(argv, stdout=stdout, stderr=stderr)
        try:
            deadline = time.monotonic() + 120
            while not (out / "logs" / "pids.json").exists() and run.poll() is None:
                assert time.monotonic() < deadline, "the bench did not start within 120 s"
                time.sleep(0.2)
            for task in Path(f"/proc/{run.pid}/task").iterdir():  # every thread of the run
                with contextlib.suppress(ProcessLookupError):
                    os.setpriority(os.PRIO_PROCESS, int(task.name), 19)
            for _ in range((os.cpu_count() or 1) + 1):  # bounded in time, killed by pid below
                hogs.append(subprocess.Popen([sys.executable, "-c", HOG.format(s=HOG_S)]))
            returncode = run.wait(timeout=300)
        finally:
            for hog in hogs:
                if hog.poll() is None:
                    os.kill(hog.pid, signal.SIGKILL)
                hog.wait(timeout=10)
            if run.poll() is None:  # overstayed: stop it the way Ctrl-C would
                os.kill(run.pid, signal.SIGTERM)
                try:
                    run.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.kill(run.pid, signal.SIGKILL)
                    run.wait(timeout=10)
    printed = (tmp_path / "stdout").read_text()
    assert returncode == 0, (tmp_path / "stderr").read_text()
    record = json.loads((out / "results.json").read_text())
    assert record["complete"] is True  # it ran to its end ...
    assert record["degraded"] is True  # ... and says it could not keep its schedule
    check = record["policies"][0]["self_check"]
    assert check["degraded"] and check["reasons"]
    assert record["degraded_reasons"][0].startswith("seed-default: ")
    assert any(
        r.split(": ", 1)[1].startswith(("timer lag", "arrivals", "fault actions"))
        for r in record["degraded_reasons"]
    )
    assert "DEGRADED: the real run could not keep its schedule" in printed


# ------------------------------------------------------------------ herdlab check --mode both


def _suite(tmp_path: Path, fidelity: str) -> tuple[Path, Path]:
    """A folder holding TINY with the ``fidelity:`` block given, and a scenario without
    one (not part of the suite); the results folder."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "tiny.yaml").write_text(TINY.replace("fidelity: {completion_p95: 0.3}", fidelity))
    (folder / "steady.yaml").write_text(STEADY)
    return folder, tmp_path / "out"


def _table_rows(stdout: str, scenario: str) -> dict[str, list[str]]:
    """figure -> the suite table's cells after it, for one scenario's rows."""
    return {
        cells[2]: cells[3:]
        for cells in (line.split() for line in stdout.splitlines())
        if len(cells) >= 7 and cells[0] == scenario
    }


def test_check_mode_both_prints_one_fidelity_table_and_exits_by_it(tmp_path: Path) -> None:
    folder, out = _suite(tmp_path, "fidelity: {completion_p95: 0.3, scale: 1}")
    result = herdlab("check", "--mode", "both", str(folder), "--out", str(out), "--quiet")
    both = out / "tiny-both"
    record = json.loads((both / "results.json").read_text())
    assert record["mode"] == "both" and record["complete"] is True and record["scale"] == 1
    real = json.loads((both / "real" / "results.json").read_text())
    assert real["checks"]["status"] == "PASS" and real["checks"]["verdicts"] == []
    assert (both / "sim" / "results.json").exists()
    assert not (out / "steady").exists()  # no fidelity: block, not in the suite
    assert f"skipped (no fidelity: block): {folder / 'steady.yaml'}" in result.stdout
    # one table, a row per figure, the statuses of results.json
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["scenario", "policy", "figure", "sim", "real", "tolerance",
                                "status"]  # fmt: skip
    rows = _table_rows(result.stdout, "tiny-both")
    expected = {r["metric"]: r["status"] for r in record["fidelity"]["rows"]}
    assert {k: v[-1].rstrip("†") for k, v in rows.items()} == expected
    # exit 0 exactly when every row is within tolerance and the real run kept its schedule
    good = record["fidelity"]["status"] == "PASS" and not record["degraded"]
    assert result.returncode == (0 if good else 1), result.stdout + result.stderr
    assert lines[-1].startswith("PASS: 1 scenario(s)" if good else "FAIL: 1 scenario(s)")
    if record["degraded"]:  # which run, and why
        assert "DEGRADED: tiny-both: the real run could not keep its schedule" in result.stdout
        assert record["degraded_reasons"][0] in result.stdout


def test_check_mode_both_fails_a_tolerance_no_real_run_can_meet(tmp_path: Path) -> None:
    # the real median completion time equal to the simulated one to the microsecond
    folder, out = _suite(tmp_path, "fidelity: {completion_p50: 0}")
    junit = tmp_path / "junit.xml"
    result = herdlab("check", "--mode", "both", str(folder / "tiny.yaml"), "--out", str(out),
                     "--junit-xml", str(junit), "--quiet")  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert _table_rows(result.stdout, "tiny-both")["completion_s.p50"][-1].startswith("FAIL")
    last = result.stdout.splitlines()[-1]
    assert last.startswith("FAIL: 1 scenario(s)") and "FAIL in tiny-both" in last
    cases = {
        f"{c.get('classname')}::{c.get('name')}": c
        for c in ET.parse(junit).getroot().iter("testcase")
    }
    assert cases["tiny-both.fidelity::quick::completion_s.p50"].find("failure") is not None


def test_check_mode_both_exits_3_when_a_real_component_cannot_start(tmp_path: Path) -> None:
    folder, out = _suite(tmp_path, "fidelity: {scale: 1}")
    env = {**os.environ, "PATH": str(tmp_path / "nothing-here")}  # no redis-server
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", "--mode", "both", str(folder),
         "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert "cannot start the real bench: redis-server not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_mode_both_interrupted_stops_every_process_and_exits_130(tmp_path: Path) -> None:
    folder, out = _suite(tmp_path, "fidelity: {scale: 1}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "check", "--mode", "both", str(folder),
         "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    pids_file = out / "tiny-both" / "real" / "logs" / "pids.json"
    try:
        deadline = time.monotonic() + 60
        while not (pids_file.exists() and "job-server" in pids_file.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, "no bench within 60 s"
            time.sleep(0.1)
        time.sleep(1.0)  # clients are running now
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    for pid in json.loads(pids_file.read_text()).values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert json.loads((out / "tiny-both" / "results.json").read_text())["interrupted"] is True
