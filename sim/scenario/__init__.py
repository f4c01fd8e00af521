"""The scenario format: YAML in, frozen typed objects out, every mistake reported with its line."""

# before anything imports PyYAML: see the module
from sim.scenario import yaml_start  # noqa: F401  # isort: skip
from sim.scenario.errors import Problem, ScenarioError
from sim.scenario.loader import load_policy_file, load_scenario
from sim.scenario.model import Scenario

__all__ = ["Problem", "Scenario", "ScenarioError", "load_policy_file", "load_scenario"]
