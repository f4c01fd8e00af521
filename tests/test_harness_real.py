"""The harness against the real job server, a real Toxiproxy and a real Redis.

The fixtures start each process on a free loopback port and stop it by pid.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import redis

from harness.client import ClientContext, classify_exception, create_job, job_client
from harness.faults import JOBS_PROXY, REDIS_PROXY, STREAMS_PROXY
from harness.procs import LOOPBACK, free_port, port_open
from harness.real import RealBench, run_real, server_stats
from harness.runfile import ProcessId
from reports.data import load_results
from reports.html import write_report
from sim.policies.backoff import Backoff, Jitter
from sim.policies.classify import ErrorKind, Outcome
from sim.policies.policy import Policy, ReconnectPolicy, RetryPolicy
from sim.policies.presets import preset
from sim.scenario import load_scenario
from sim.world.metrics import JobOutcome, Recorder

from .simhelp import SCENARIOS

pytestmark = pytest.mark.integration

LONG_JOB = """\
name: long-job
duration_s: 30
clients:
  count: 1
  arrival: {kind: burst, at_s: 0}
  job_timeout_s: 30
  request_timeout_s: 2
service:
  instances: 1
  concurrency: 10
  queue_limit: 10
  service_time: {kind: constant, value_s: 4.0}
  progress_events: 8
policies: [seed-default]
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealBench]:
    b = RealBench(tmp_path_factory.mktemp("bench"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def long_job(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sc") / "long-job.yaml"
    path.write_text(LONG_JOB)
    return str(path)


def fast(jitter: Jitter = Jitter.NONE, resume: bool = True, attempts: int = 6) -> Policy:
    quick = Backoff(base_s=0.3, cap_s=1.0, jitter=jitter)
    return Policy(
        name="fast",
        retry=RetryPolicy(max_attempts=attempts, backoff=quick),
        reconnect=ReconnectPolicy(max_attempts=5, backoff=quick, resume=resume),
    )


async def run_clients(urls: tuple[str, str, str], policy: Policy, n: int = 1,
                      job_timeout_s: float = 20.0,
                      rec: Recorder | None = None) -> Recorder:  # fmt: skip
    rec = Recorder(60.0, 0.1) if rec is None else rec
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        ctx = ClientContext(
            base_url=urls[0],
            stream_url=urls[1],
            session=session,
            policy=policy,
            rng=np.random.default_rng(0),
            rec=rec,
            clock=lambda: loop.time() - t0,
            sleep=asyncio.sleep,
            request_timeout_s=2.0,
            job_timeout_s=job_timeout_s,
            follow_stream=True,
        )
        await asyncio.gather(*(job_client(ctx, rec.new_job(0.0)) for _ in range(n)))
    rec.close(loop.time() - t0)
    return rec


async def create_once(base_url: str, request_timeout_s: float) -> tuple[Outcome, str | None]:
    """One ``POST /api/ai/jobs`` on a fresh connection: its Outcome and job id."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        ctx = ClientContext(
            base_url=base_url, stream_url=base_url, session=session, policy=fast(),
            rng=np.random.default_rng(0), rec=Recorder(5, 0.1), clock=lambda: 0.0,
            sleep=asyncio.sleep, request_timeout_s=request_timeout_s, job_timeout_s=10.0,
            follow_stream=False,
        )  # fmt: skip
        return await create_job(ctx, "offered_first")


async def later(delay_s: float, fn: Any, *args: Any) -> None:
    await asyncio.sleep(delay_s)
    await asyncio.to_thread(fn, *args)


@pytest.mark.parametrize("keep_alive", [False, True], ids=["per-request", "keep-alive"])
def test_cloud_run_503_burst_clients_retry_through_the_window_and_succeed(
    tmp_path: Path, keep_alive: bool
) -> None:
    scenario = load_scenario(SCENARIOS / "cloud-run-503-burst.yaml")
    record = run_real(
        scenario, tmp_path, [scenario.policy("seed-default")], scale=0.25, keep_alive=keep_alive
    )
    assert record["complete"] is True
    assert record["connections"] == ("keep-alive" if keep_alive else "per-request")
    entry = record["policies"][0]
    assert entry["summary"]["success_rate"] == 1.0
    assert entry["summary"]["attempts_per_job"] > 1.0  # some met the 503s and retried
    series = (tmp_path / entry["timeseries"]).read_text().splitlines()
    header = series[0].split(",")
    col = header.index("rejected_503")
    rejected = [(float(r.split(",")[0]), int(r.split(",")[col])) for r in series[1:]]
    assert sum(n for _, n in rejected) > 0
    assert all(9.5 <= t <= 14.5 for t, n in rejected if n)  # only in the 503 window
    assert "outage 503 on" in " ".join(record["fault_log"]["seed-default"])
    report = write_report(load_results(tmp_path), tmp_path / "report.html", tmp_path / "charts")
    connections = "keep-alive" if keep_alive else "per-request"
    assert f"mode real (scale 0.25, {connections}, " in report.read_text()


async def wait_until(condition: Any, timeout_s: float, what: str) -> None:
    """Poll ``condition()`` every 10 ms; fail the test with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        await asyncio.sleep(0.01)


def _reset_mid_stream(bench: RealBench, long_job: str, resume: bool) -> Recorder:
    """One client follows a 4 s job (an event every 0.5 s); once it has had a second of
    events, its stream gets a reset_peer toxic, kept until the client sees the reset.

    Toxiproxy's reset_peer (timeout 0) resets when the next chunk passes, so removing
    the toxic on a timer races the server's next event; waiting for the client to see
    the break does not."""
    urls = bench.start_server(long_job, 1.0, 0)
    assert bench.toxi is not None
    toxi = bench.toxi
    rec = Recorder(60.0, 0.1)

    async def cut_once() -> None:
        started = time.monotonic()
        await wait_until(
            lambda: rec.connected == 1 and time.monotonic() - started >= 1.2, 10, "stream open"
        )
        await asyncio.to_thread(
            toxi.add_toxic, STREAMS_PROXY, "rst", "reset_peer", {"timeout": 0}, "downstream"
        )
        try:
            await wait_until(lambda: rec.connected == 0, 10, "the client sees the reset")
        finally:
            await asyncio.to_thread(toxi.remove_toxic, STREAMS_PROXY, "rst")

    async def scenario() -> Recorder:
        cut = asyncio.create_task(cut_once())
        await run_clients(urls, fast(resume=resume), rec=rec)
        await cut
        return rec

    return asyncio.run(scenario())


def test_reset_mid_stream_reconnects_and_resume_delivers_every_event_once(
    bench: RealBench, long_job: str
) -> None:
    rec = _reset_mid_stream(bench, long_job, resume=True)
    assert list(rec.outcome) == [JobOutcome.COMPLETED]
    assert rec.reconnects[0] >= 1
    assert list(rec.events_lost) == [0] and list(rec.events_duplicated) == [0]


def test_reset_mid_stream_without_resume_repeats_events(bench: RealBench, long_job: str) -> None:
    rec = _reset_mid_stream(bench, long_job, resume=False)
    assert list(rec.outcome) == [JobOutcome.COMPLETED]
    assert rec.reconnects[0] >= 1
    assert rec.events_duplicated[0] > 0


def test_disabled_proxy_is_refused_classified_and_retried_per_policy(
    bench: RealBench, long_job: str
) -> None:
    urls = bench.start_server(long_job, 1.0, 0)
    assert bench.toxi is not None
    toxi = bench.toxi
    toxi.set_enabled(JOBS_PROXY, False)

    async def scenario() -> Recorder:
        heal = asyncio.create_task(later(1.0, toxi.set_enabled, JOBS_PROXY, True))
        rec = await run_clients(urls, fast(attempts=8))
        await heal
        return rec

    rec = asyncio.run(scenario())
    assert rec.counters["error_refused"].sum() >= 1
    assert rec.attempts[0] >= 2
    assert list(rec.outcome) == [JobOutcome.COMPLETED]

    # the seed plan does not retry a refused connection: one attempt, then a failure
    toxi.set_enabled(JOBS_PROXY, False)
    try:
        rec = asyncio.run(run_clients(urls, preset("seed-default")))
    finally:
        toxi.set_enabled(JOBS_PROXY, True)
    assert list(rec.outcome) == [JobOutcome.FAILED] and list(rec.attempts) == [1]


def test_store_down_jobs_still_accepted_then_written_to_redis_when_it_returns(
    bench: RealBench, long_job: str
) -> None:
    urls = bench.start_server(long_job, 1.0, 0)
    assert bench.toxi is not None and bench.redis is not None
    bench.toxi.set_enabled(REDIS_PROXY, False)
    try:

        async def create() -> tuple[Outcome, str | None]:
            return await create_once(urls[0], request_timeout_s=3.0)

        outcome, job_id = asyncio.run(create())
        assert outcome.status == 201 and job_id
        stats = server_stats(urls[2])
        assert stats["degraded"] == 1 and stats["degraded_now"] == 1
    finally:
        bench.toxi.set_enabled(REDIS_PROXY, True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and server_stats(urls[2])["degraded_now"]:
        time.sleep(0.2)
    assert server_stats(urls[2])["resynced"] >= 1
    store = redis.Redis(host=LOOPBACK, port=bench.redis.port)
    assert store.exists(f"job:{job_id}")


WIDE = """\
name: wide
duration_s: 10
clients: {count: 1, arrival: {kind: burst}}
service:
  instances: 10
  concurrency: 100
  queue_limit: 1000
  service_time: {kind: constant, value_s: 0.2}
  progress_events: 2
policies: [no-retry]
"""


def start_wide_server(bench: RealBench, tmp_path: Path) -> str:
    """A server with room for hundreds of jobs at once; returns its own URL (straight to
    the server, not through Toxiproxy, so a burst of creates arrives together)."""
    (tmp_path / "wide.yaml").write_text(WIDE)
    return bench.start_server(str(tmp_path / "wide.yaml"), 1.0, 0)[2]


async def create_burst(base_url: str, n: int) -> list[str]:
    """``n`` concurrent ``POST /api/ai/jobs``, each answered 201; their job ids."""
    async with aiohttp.ClientSession() as session:

        async def one() -> str:
            async with session.post(f"{base_url}/api/ai/jobs", json={}) as r:
                assert r.status == 201
                return str((await r.json())["id"])

        return await asyncio.gather(*(one() for _ in range(n)))


def test_concurrent_creates_are_all_written_to_redis(bench: RealBench, tmp_path: Path) -> None:
    """The server groups Redis writes that arrive together into one pipeline: every job
    still lands in Redis, none is marked degraded."""
    direct = start_wide_server(bench, tmp_path)
    assert bench.redis is not None

    ids = asyncio.run(create_burst(direct, 300))
    assert len(set(ids)) == 300
    store = redis.Redis(host=LOOPBACK, port=bench.redis.port)
    assert all(store.hget(f"job:{i}", "status") is not None for i in ids)
    stats = server_stats(direct)
    assert stats["degraded"] == 0 and stats["accepted"] == 300
    assert stats["store_round_trips"] < 300  # grouped: fewer round trips than writes


def test_store_down_under_load_every_create_degrades_then_reaches_redis(
    bench: RealBench, tmp_path: Path
) -> None:
    """Writes queued behind a failed Redis round trip are answered at once: every
    create is still accepted (degraded), and every job is in Redis after it returns."""
    direct = start_wide_server(bench, tmp_path)
    assert bench.toxi is not None and bench.redis is not None

    bench.toxi.set_enabled(REDIS_PROXY, False)
    try:
        ids = asyncio.run(create_burst(direct, 50))
        assert server_stats(direct)["degraded"] == 50
    finally:
        bench.toxi.set_enabled(REDIS_PROXY, True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and server_stats(direct)["degraded_now"]:
        time.sleep(0.2)
    store = redis.Redis(host=LOOPBACK, port=bench.redis.port)
    assert all(store.exists(f"job:{i}") for i in ids)


def test_job_timeout_gives_the_clear_timed_out_outcome(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "job-timeout.yaml")
    record = run_real(scenario, tmp_path, scale=0.1)
    summary = record["policies"][0]["summary"]
    assert summary["outcomes"]["timed_out"] == summary["jobs"] == 5
    assert summary["success_rate"] == 0


def test_errors_are_classified_one_by_one(bench: RealBench, long_job: str) -> None:
    urls = bench.start_server(long_job, 1.0, 0)
    assert bench.toxi is not None
    toxi = bench.toxi

    async def one(base_url: str) -> Outcome:
        return (await create_once(base_url, request_timeout_s=1.0))[0]

    def admin(body: dict[str, Any]) -> None:
        import urllib.request

        req = urllib.request.Request(
            f"{urls[2]}/admin/faults",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=2).close()

    assert asyncio.run(one(f"http://{LOOPBACK}:{free_port()}")) == Outcome(error=ErrorKind.REFUSED)
    toxi.add_toxic(JOBS_PROXY, "rst", "reset_peer", {"timeout": 0}, "upstream", 1.0)
    try:
        assert asyncio.run(one(urls[0])).error is ErrorKind.RESET
    finally:
        toxi.remove_toxic(JOBS_PROXY, "rst")
    toxi.add_toxic(JOBS_PROXY, "blackhole", "timeout", {"timeout": 0}, "upstream", 1.0)
    try:
        assert asyncio.run(one(urls[0])).error is ErrorKind.TIMEOUT
    finally:
        toxi.remove_toxic(JOBS_PROXY, "blackhole")
    admin({"outage": {"retry_after_s": 3}})
    assert asyncio.run(one(urls[0])) == Outcome(status=503, retry_after_s=3.0)
    admin({"outage": None, "errors": {"status": 500, "probability": 1.0}})
    assert asyncio.run(one(urls[0])).status == 500
    admin({"errors": None})
    assert asyncio.run(one(urls[0])).status == 201
    assert classify_exception(TimeoutError()).error is ErrorKind.TIMEOUT


def test_interrupting_a_real_run_leaves_no_process_and_keeps_partial_results(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    scenario = SCENARIOS / "cloud-run-503-burst.yaml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(scenario),
            "--mode",
            "real",
            "--scale",
            "0.25",
            "--out",
            str(out),
            "--quiet",
            "--no-report",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids_file = out / "logs" / "pids.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        pids_file.exists() and "job-server" in pids_file.read_text()
    ):
        time.sleep(0.1)
    time.sleep(2.0)  # clients are running now
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "partial results kept" in err
    pids = json.loads(pids_file.read_text()).values()
    assert len(pids) >= 3
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    record = json.loads((out / "results.json").read_text())
    assert record["complete"] is False and record["interrupted"] is True


def test_a_fault_that_cannot_be_made_for_real_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    text = LONG_JOB + "faults:\n  - {kind: refuse, start_s: 1, end_s: 2, probability: 0.5}\n"
    path = tmp_path / "s.yaml"
    path.write_text(text)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(path),
            "--mode",
            "real",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "faults[0].probability" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_serve_refuses_a_non_loopback_host_unless_told() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "loopback only" in result.stderr
    assert not port_open(1)


def real_run_argv(out: Path, scenario: Path = SCENARIOS / "cloud-run-503-burst.yaml") -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", str(scenario), "--mode", "real",
            "--scale", "0.25", "--out", str(out), "--no-report"]  # fmt: skip


def wait_for_pid(
    proc: subprocess.Popen[str], out: Path, name: str = "job-server"
) -> dict[str, int]:
    """The pids a real run wrote, once it has started ``name``."""
    pids_file = out / "logs" / "pids.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if pids_file.exists() and f'"{name}:' in pids_file.read_text():
            return dict(json.loads(pids_file.read_text()))
        time.sleep(0.1)
    raise AssertionError(f"no {name} within 120 s; exit code {proc.poll()}")


def running(pid: int) -> bool:
    """True while ``pid`` is a process that has not exited (a zombie has)."""
    return ProcessId.of("", pid) is not None


def test_sigkill_of_a_real_run_leaves_nothing_running_within_seconds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "HERDLAB_RUN_DIR": str(tmp_path / "runs")}
    proc = subprocess.Popen(real_run_argv(out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        pids = wait_for_pid(proc, out)
        assert len(pids) >= 3 and all(running(p) for p in pids.values())
        proc.kill()
        proc.wait(timeout=10)
        killed = time.monotonic()
        while time.monotonic() - killed < 5 and any(running(p) for p in pids.values()):
            time.sleep(0.02)
        took_s = time.monotonic() - killed
    finally:
        proc.kill()
    assert not [p for p in pids.values() if running(p)], "children outlived the harness"
    print(f"every child gone {took_s:.3f} s after SIGKILL of the harness")


def test_a_new_run_stops_what_a_killed_run_left_running(tmp_path: Path) -> None:
    """A pidfile of a harness that is gone names a Redis still running (started here
    without the parent-death signal, as on a system without it) and a pid now used by
    another program; the next real run stops the Redis and leaves the other alone."""
    runs = tmp_path / "runs"
    runs.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    port = free_port()
    leftover = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", LOOPBACK, "--save", ""],
        stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    other = subprocess.Popen(["sleep", "600"])  # outlives the test; killed at its end
    try:
        deadline = time.monotonic() + 10
        while not port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        redis_id = ProcessId.of("redis", leftover.pid)
        other_id = ProcessId.of("toxiproxy", other.pid)
        assert redis_id is not None and other_id is not None
        owner = dataclasses.replace(redis_id, name="harness", pid=gone.pid)
        reused = dataclasses.replace(other_id, exe="/usr/bin/toxiproxy-server")  # pid reused
        children = [dataclasses.asdict(redis_id), dataclasses.asdict(reused)]
        record = {"owner": dataclasses.asdict(owner), "children": children}
        (runs / f"{gone.pid}.json").write_text(json.dumps(record))

        out = tmp_path / "out"
        env = {**os.environ, "HERDLAB_RUN_DIR": str(runs)}
        proc = subprocess.Popen(real_run_argv(out), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            wait_for_pid(proc, out, "redis")  # started after the leftovers were stopped
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        assert f"redis (pid {leftover.pid})" in err
        assert leftover.wait(timeout=5) is not None  # stopped
        assert other.poll() is None  # not the recorded process: left alone
        assert not (runs / f"{gone.pid}.json").exists()
    finally:
        leftover.kill()
        other.kill()
        leftover.wait()
        other.wait()


def test_ctrl_c_again_during_shutdown_still_records_the_interruption(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(real_run_argv(out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    pids = wait_for_pid(proc, out)
    time.sleep(1.0)
    for _ in range(4):  # the first starts the shutdown; the others land during it
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        time.sleep(0.15)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    record = json.loads((out / "results.json").read_text())
    assert record["complete"] is False and record["interrupted"] is True
    assert not [p for p in pids.values() if running(p)]


QUEUED = """\
name: queued
duration_s: 10
clients: {count: 1, arrival: {kind: burst}}
service:
  instances: 1
  concurrency: 1
  queue_limit: 100
  service_time: {kind: constant, value_s: 0.5}
  progress_events: 5
policies: [no-retry]
"""


def test_sigterm_with_jobs_queued_stops_the_server_cleanly(
    bench: RealBench, tmp_path: Path
) -> None:
    (tmp_path / "queued.yaml").write_text(QUEUED)
    direct = bench.start_server(str(tmp_path / "queued.yaml"), 1.0, 0)[2]
    asyncio.run(create_burst(direct, 30))
    assert server_stats(direct)["queued"] > 0
    assert bench.server is not None and bench.server.process.proc is not None
    proc = bench.server.process.proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    log = bench.server.process.log_path.read_text()
    assert "Traceback" not in log and "Event loop is closed" not in log, log
    assert "Task was destroyed" not in log, log


def test_redis_killed_mid_run_loses_no_accepted_job(bench: RealBench, tmp_path: Path) -> None:
    """Jobs are created in batches while Redis is killed (SIGKILL, by pid) and started
    again from its append-only file: every accepted job is in Redis at the end."""
    direct = start_wide_server(bench, tmp_path)
    assert bench.redis is not None

    async def batches() -> list[str]:
        ids: list[str] = []
        for i in range(30):
            if i == 10:
                assert bench.redis is not None and bench.redis.process.pid is not None
                os.kill(bench.redis.process.pid, signal.SIGKILL)
            if i == 20:
                bench.restart_redis()  # on the main thread: its children die with it
            ids += await create_burst(direct, 20)  # every one answered 201
            await asyncio.sleep(0.05)
        return ids

    ids = asyncio.run(batches())
    assert len(set(ids)) == 600
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stats = server_stats(direct)
        if stats["degraded_now"] == 0 and stats["store_restarts"] >= 1:
            break
        time.sleep(0.2)
    assert stats["store_restarts"] >= 1 and stats["rewritten"] >= 200, stats
    store = redis.Redis(host=LOOPBACK, port=bench.redis.port)
    missing = [i for i in ids if not store.exists(f"job:{i}")]
    assert missing == [], f"{len(missing)} accepted jobs lost"
