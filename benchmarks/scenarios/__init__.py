"""The scenarios of the benchmark, A to F, in the order they run."""

from __future__ import annotations

from collections.abc import Callable

from .common import ScenarioResult, Settings
from .latency import scenario_a, scenario_b, scenario_d
from .load import scenario_c, scenario_e, scenario_f

SCENARIOS: dict[str, Callable[[Settings], ScenarioResult]] = {
    "A": scenario_a,
    "B": scenario_b,
    "C": scenario_c,
    "D": scenario_d,
    "E": scenario_e,
    "F": scenario_f,
}

__all__ = ["SCENARIOS", "ScenarioResult", "Settings"]
