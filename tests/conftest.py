"""Shared fixtures: scenario text builders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# the pytest plugin's tests run pytest inside pytest
pytest_plugins = ("pytester",)

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"

MINIMAL = """\
name: minimal
duration_s: 60
clients:
  count: 10
  arrival: {kind: burst, at_s: 1}
policies:
  - seed-default
"""


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text to a file and return its path."""

    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


# Property tests judge behaviour, not speed: no per-example deadline (a busy 2-core CI
# machine made a 200 ms deadline fail at random), and derandomized so that CI runs the
# same examples every time.
settings.register_profile(
    "herdlab", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("herdlab")
