"""The simulation's real-time pacing: on schedule it sleeps the lead, after a stall it does not burst to catch up."""
import math

import pytest

from cell_control.sim.pacing import RealTimePacer


def test_on_schedule_the_pace_sleeps_the_lead_at_its_factor():
    pacer = RealTimePacer(2.0)
    assert pacer.delay(10.0, 100.0) == 0.0                 # the first step anchors the schedule
    assert pacer.delay(11.0, 100.1) == pytest.approx(0.4)   # 1 s simulated at 2x is 0.5 s of wall time
    assert pacer.delay(12.0, 101.0) == pytest.approx(0.0)


def test_a_small_lag_is_caught_up_to_keep_the_average_factor():
    pacer = RealTimePacer(1.0, max_lag_s=0.05)
    pacer.delay(0.0, 0.0)
    assert pacer.delay(1.0, 1.03) == 0.0                    # 30 ms behind: run on at once
    assert pacer.delay(2.0, 1.95) == pytest.approx(0.05)    # still on the first schedule
    assert pacer.reanchored == 0


def test_after_a_stall_the_world_runs_on_at_its_factor_instead_of_bursting():
    pacer = RealTimePacer(1.0, max_lag_s=0.05)
    pacer.delay(0.0, 0.0)
    assert pacer.delay(1.0, 3.0) == 0.0                     # stalled 2 s: the lost time stays lost
    assert pacer.reanchored == 1
    # From here the pace counts again: 0.5 s simulated takes 0.5 s of wall time, not 0 (no catching up).
    assert pacer.delay(1.5, 3.1) == pytest.approx(0.4)


@pytest.mark.parametrize('factor, lag', [(0.0, 0.05), (-1.0, 0.05), (math.inf, 0.05), (math.nan, 0.05),
                                         (1.0, -0.1), (1.0, math.nan)])
def test_bad_settings_are_refused(factor, lag):
    with pytest.raises(ValueError):
        RealTimePacer(factor, lag)
