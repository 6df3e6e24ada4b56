"""The weld adjuster node's checks and the seam sensor's health, without ROS."""
from __future__ import annotations

import math

import pytest

from cell_control.weld.adjuster import WeldAdjuster
from cell_control.weld.seam_measurement import SeamMeasurement
from cell_control.weld.loop_watch import SampleCheck, SilenceWatch, check_sample, frame_stale, loop_status
from cell_control.weld.loop_watch import STRIKE_KEPT, StrikeRelay, sensor_status, take_strike


def test_sample_check() -> None:
    # binary fractions, so "exactly at the limit" is exact
    assert check_sample(10.0, 10.0, 10.125, 0.25) is SampleCheck.BEFORE_START     # taken as the weld started
    assert check_sample(10.5, 10.0, 10.625, 0.25) is SampleCheck.ACCEPT
    assert check_sample(10.5, 10.0, 10.75, 0.25) is SampleCheck.ACCEPT            # exactly at the limit
    assert check_sample(10.5, 10.0, 10.875, 0.25) is SampleCheck.TOO_OLD
    assert check_sample(11.0, 10.0, 10.5, 0.25) is SampleCheck.TOO_OLD            # from the future
    assert check_sample(math.nan, 10.0, 10.5, 0.25) is SampleCheck.TOO_OLD


def test_a_strike_reaches_only_the_lead_in_that_waits_for_it_near_the_clock() -> None:
    assert take_strike(None, 10.5, 10.5, 1.0) == 'no weld is waiting for one'
    clock_only = WeldAdjuster(start_stamp_s=10.0, lead_in_mm=10.0)
    assert not clock_only.waits_for_strike
    assert take_strike(clock_only, 10.5, 10.5, 1.0) == 'no weld is waiting for one'
    waiting = WeldAdjuster(start_stamp_s=10.0, lead_in_mm=10.0, strike_timeout_s=1.0)
    assert waiting.waits_for_strike
    assert 'from the node clock' in take_strike(waiting, 10.5, 12.0, 1.0)    # 1.5 s old
    assert 'from the node clock' in take_strike(waiting, math.nan, 10.5, 1.0)
    assert 'from before this weld' in take_strike(waiting, 8.95, 9.9, 1.0)    # more than the timeout before
    assert take_strike(waiting, 10.4, 10.5, 1.0) == ''
    assert take_strike(waiting, 10.45, 10.5, 1.0) == 'the arc had already struck'


def test_a_strike_heard_before_its_weld_started_is_kept_for_that_weld() -> None:
    # Found at full speed: the strike came before the adjuster had served its start (two service calls), was
    # ignored, and the clock ended the lead-in 1 s later with the tool placed wrongly.
    relay = StrikeRelay()
    assert relay.heard(None, 10.3, 10.3, 1.0) == STRIKE_KEPT
    adjuster = WeldAdjuster(start_stamp_s=10.5, lead_in_mm=5.0, strike_timeout_s=1.0)
    assert relay.weld_started(adjuster, 10.5, 1.0) == (10.3, '')
    assert adjuster.update(SeamMeasurement(10.6, 1, 0, 0.0, 0.0, 0.0, 0.0)).tool_s_mm == pytest.approx(16.0 * 0.3)
    assert adjuster.strike_source == 'signal'
    assert relay.weld_started(WeldAdjuster(start_stamp_s=20.0, strike_timeout_s=1.0), 20.0, 1.0) is None, 'used once'
    relay.heard(None, 30.0, 30.0, 1.0)                     # a stray strike, long before the next weld
    late = WeldAdjuster(start_stamp_s=40.0, lead_in_mm=5.0, strike_timeout_s=1.0)
    stamp_s, problem = relay.weld_started(late, 40.0, 1.0)
    assert stamp_s == 30.0 and 'from the node clock' in problem and late.strike_source == ''
    assert relay.heard(late, 40.2, 40.2, 1.0) == '', 'the weld takes its own strike'


def test_silence_watch() -> None:
    watch = SilenceWatch(0.0)
    assert watch.check(0.1, 0.1) is None
    silent_s, newly = watch.check(0.15, 0.1)
    assert newly and watch.stale and silent_s == 0.15
    assert watch.check(0.2, 0.1) == (0.2, False)      # still stale: no new event
    assert watch.arrived(0.25)                         # ends the stale period
    assert not watch.stale and not watch.arrived(0.26)
    assert watch.check(0.3, 0.1) is None


def test_loop_status() -> None:
    assert loop_status('SEAM_LOST', True) == ('ERROR', 'fault SEAM_LOST')
    assert loop_status('', True) == ('OK', 'welding')
    assert loop_status('', False) == ('OK', 'idle')


def test_sensor_health() -> None:
    assert frame_stale(None, 0.1) and frame_stale(0.11, 0.1) and not frame_stale(0.1, 0.1)
    assert sensor_status(False, '/dev/x', True, 0.1, True) == ('ERROR', 'serial port /dev/x not connected')
    assert sensor_status(True, '/dev/x', True, 0.1, True) == ('ERROR', 'no frame for more than 0.1 s')
    assert sensor_status(True, '/dev/x', False, 0.1, True)[0] == 'WARN'
    assert sensor_status(True, '/dev/x', False, 0.1, False) == ('OK', 'streaming')
