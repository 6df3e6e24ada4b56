"""The coordinator's weld decisions without ROS: speed scaling, a silent adjuster, dry run, the verdict."""
from __future__ import annotations

import math

import pytest

from cell_control.cell.cycle import EventKind
from cell_control.cell.weld_supervision import WeldSupervisor, fresh
from cell_control.weld.trace import WeldTrace

PLANNED_MM_S = 25.0
TIMEOUT_S = 0.5


def supervisor(recipe_speed_mm_s: float = 16.0) -> WeldSupervisor:
    return WeldSupervisor(lambda v: min(max(v / PLANNED_MM_S, 0.0), 1.0), recipe_speed_mm_s, PLANNED_MM_S,
                          TIMEOUT_S)


def test_fresh_needs_a_reading_no_older_than_the_timeout() -> None:
    assert not fresh(None, 10.0, TIMEOUT_S)
    assert fresh(9.5, 10.0, TIMEOUT_S)
    assert not fresh(9.4, 10.0, TIMEOUT_S)


def test_travel_speed_drives_the_scaling_only_while_the_arc_is_on() -> None:
    weld = supervisor()
    assert weld.on_travel_speed(20.0, 1.0) is None            # no weld: recorded, nothing to apply
    weld.start(arc=False)
    assert weld.on_travel_speed(20.0, 1.1) is None            # dry run: the adjuster does not steer the arm
    weld.start(arc=True)
    assert weld.on_travel_speed(10.0, 1.2) == pytest.approx(0.4)
    weld.stop()
    assert weld.on_travel_speed(10.0, 1.3) is None


def test_non_finite_travel_speed_is_refused_and_not_recorded() -> None:
    weld = supervisor()
    weld.start(arc=True)
    weld.on_travel_speed(10.0, 1.0)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match='non-finite'):
            weld.on_travel_speed(bad, 1.1)
    assert weld.scaling_for_move('weld_path') == pytest.approx(0.4)   # the last good speed is kept


def test_a_stale_travel_speed_holds_the_arm_until_it_returns() -> None:
    weld = supervisor()
    weld.start(arc=True)
    assert weld.on_tick(0.0) == 0.0                           # never received: no speed, no motion
    weld.on_travel_speed(12.5, 1.0)
    assert weld.on_tick(1.0 + TIMEOUT_S) is None
    assert weld.on_tick(1.0 + TIMEOUT_S + 0.01) == 0.0
    assert weld.on_travel_speed(12.5, 2.0) == pytest.approx(0.5)
    assert weld.on_tick(2.1) is None


def test_a_stale_speed_does_not_matter_without_the_arc() -> None:
    weld = supervisor()
    assert weld.on_tick(100.0) is None
    weld.start(arc=False)
    assert weld.on_tick(100.0) is None


def test_scaling_of_a_new_move() -> None:
    weld = supervisor(recipe_speed_mm_s=16.0)
    for target in ('seam_start', 'home'):
        assert weld.scaling_for_move(target) == 1.0
    weld.start(arc=False)
    assert weld.scaling_for_move('weld_path') == pytest.approx(16.0 / 25.0)   # dry run: the recipe's speed
    weld.start(arc=True)
    assert weld.scaling_for_move('weld_path') == pytest.approx(16.0 / 25.0)   # no adjuster speed yet
    weld.on_travel_speed(5.0, 1.0)
    assert weld.scaling_for_move('weld_path') == pytest.approx(0.2)   # planned again within the weld
    weld.stop()
    weld.start(arc=True)                                              # the next seam or part
    assert weld.scaling_for_move('weld_path') == pytest.approx(16.0 / 25.0), 'the last weld\'s speed carried over'


def test_adjuster_fault_stops_the_cycle_only_during_a_weld() -> None:
    weld = supervisor()
    assert weld.adjuster_fault('SEAM_LOST') is None
    weld.start(arc=True)
    assert weld.adjuster_fault('') is None
    event = weld.adjuster_fault('SENSOR_STALE')
    assert event.kind is EventKind.SENSOR_DROPOUT and 'SENSOR_STALE' in event.reason


def test_arrival_verdict() -> None:
    assert WeldSupervisor.arrival('home', None).kind is EventKind.ARM_AT_GOAL
    assert WeldSupervisor.arrival('seam_start', None).kind is EventKind.ARM_AT_GOAL
    trace = WeldTrace('P-1', 'seam', 'bracket')
    good = WeldSupervisor.arrival('weld_path', trace)
    assert good.kind is EventKind.WELD_DONE and good.flag
    trace.fault(True)
    assert not WeldSupervisor.arrival('weld_path', trace).flag
    trace.fault(False)                                          # a fault that cleared before the end
    assert WeldSupervisor.arrival('weld_path', trace).flag
    assert WeldSupervisor.arrival('weld_path', None).flag        # no trace: nothing reported a fault


def test_a_clock_that_goes_back_makes_the_travel_speed_stale_a_full_timeout_after_the_jump() -> None:
    weld = supervisor()
    weld.start(arc=True)
    weld.on_travel_speed(10.0, 100.0)
    weld.clock_restarted(2.0)               # without it the reading would stay fresh until 100.5 s
    assert weld.on_tick(2.0 + TIMEOUT_S) is None
    assert weld.on_tick(2.0 + TIMEOUT_S + 0.01) == 0.0
