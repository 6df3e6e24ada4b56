"""The simulated devices' refusals, without MuJoCo."""
from __future__ import annotations

import math

from cell_control.sim.commands import command_problem


def test_non_finite_values_are_refused() -> None:
    assert command_problem(0.1, math.nan) == 'non-finite value in (0.1, nan)'
    assert command_problem(math.inf, low=0.0, high=1.0).startswith('non-finite')


def test_ranges_are_inclusive() -> None:
    assert command_problem(0.0, low=0.0, high=1.0) is None
    assert command_problem(1.0, low=0.0, high=1.0) is None
    assert command_problem(1.01, low=0.0, high=1.0) == '1.01 is outside [0, 1]'
    assert command_problem(-0.6, low=-0.5, high=0.5, unit=' m/s') == '-0.6 m/s is outside [-0.5, 0.5]'


def test_no_range_accepts_any_finite_value() -> None:
    assert command_problem(-1e9, 1e9) is None
