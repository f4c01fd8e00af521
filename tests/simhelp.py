"""Helpers for simulator tests: scenarios from YAML text, runs, counters."""

from __future__ import annotations

from pathlib import Path

from sim.scenario import Scenario, load_scenario
from sim.world.rng import Streams
from sim.world.run import World

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def scenario_from(tmp_path: Path, text: str, name: str = "s.yaml") -> Scenario:
    path = tmp_path / name
    path.write_text(text)
    return load_scenario(path)


def run_world(scenario: Scenario, policy_index: int = 0, replication: int = 0) -> World:
    world = World(
        scenario, scenario.policies[policy_index], Streams.from_seed(scenario.seed, replication)
    )
    world.run()
    return world


BASE = """\
name: t
seed: 1
duration_s: {duration}
bucket_s: 0.1
clients:
  count: {count}
  arrival: {{kind: burst, at_s: 0, spread_s: {spread}}}
  job_timeout_s: {job_timeout}
  request_timeout_s: 2
  follow_stream: {follow}
service:
  instances: 2
  concurrency: 50
  queue_limit: 50
  service_time: {{kind: constant, value_s: 2}}
  progress_events: 10
network:
  latency: {{kind: constant, value_s: 0.01}}
faults:
{faults}
policies:
  - {policy}
"""


def base(
    faults: str = "  []",
    policy: str = "seed-default",
    count: int = 200,
    spread: float = 10,
    duration: float = 40,
    job_timeout: float = 60,
    follow: bool = True,
) -> str:
    text = BASE.format(
        faults=faults,
        policy=policy,
        count=count,
        spread=spread,
        duration=duration,
        job_timeout=job_timeout,
        follow=str(follow).lower(),
    )
    return text.replace("faults:\n  []", "faults: []")
