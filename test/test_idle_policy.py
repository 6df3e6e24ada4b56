"""The idle policy's decisions (cell.idle), without a coordinator."""
import math

import pytest

from cell_control.cell.idle import IdlePolicy, IdleStep, Readiness


def test_it_parks_after_the_idle_time_of_quiet_and_any_expected_part_restarts_the_count():
    policy = IdlePolicy(10.0, 20.0)
    assert policy.update(True, True, 0.0) is None
    assert policy.update(False, True, 8.0) is None    # a part came and went: the quiet starts again
    assert policy.update(True, True, 9.0) is None
    assert policy.update(True, True, 18.9) is None
    assert policy.update(True, True, 19.0) is IdleStep.PARK and policy.readiness is Readiness.PARKING
    assert not policy.ready and policy.moving
    policy.arrived(25.0)
    assert policy.readiness is Readiness.STANDBY and policy.update(True, True, 100.0) is None
    assert policy.update(False, True, 101.0) is IdleStep.WAKE and policy.woken_s == 101.0
    policy.arrived(104.0)
    assert policy.ready
    assert policy.update(True, True, 113.9) is None   # woken: a whole idle time again before the next park
    assert policy.update(True, True, 114.0) is IdleStep.PARK


def test_a_part_announced_while_parking_wakes_at_once_and_a_move_past_its_time_fails():
    policy = IdlePolicy(1.0, 5.0)
    policy.update(True, True, 0.0)
    assert policy.update(True, True, 1.0) is IdleStep.PARK
    assert policy.update(False, True, 2.0) is IdleStep.WAKE
    assert policy.update(False, True, 6.9) is None
    assert policy.update(False, True, 7.0) is IdleStep.FAILED and policy.readiness is Readiness.STANDBY
    assert policy.update(False, True, 7.1) is IdleStep.WAKE   # after the fault is cleared: the next try


def test_nothing_happens_nor_counts_while_the_cell_may_not_move_and_a_halt_mid_move_leaves_standby():
    policy = IdlePolicy(1.0, 5.0)
    assert policy.update(True, False, 0.0) is None and policy.update(True, False, 50.0) is None
    assert policy.update(True, True, 50.0) is None            # quiet while stopped does not count: a start
    assert policy.update(True, True, 50.9) is None            # waits the whole idle time
    assert policy.update(True, True, 51.0) is IdleStep.PARK
    policy.halted()
    assert policy.readiness is Readiness.STANDBY
    assert policy.update(False, False, 60.0) is None
    assert policy.update(False, True, 61.0) is IdleStep.WAKE


def test_a_clock_that_jumps_counts_the_quiet_and_a_move_again_from_its_new_time():
    policy = IdlePolicy(10.0, 5.0)
    policy.update(True, True, 1000.0)                  # quiet since 1000 s
    policy.clock_restarted(2.0)                        # the simulation restarted near zero
    assert policy.update(True, True, 11.9) is None
    assert policy.update(True, True, 12.0) is IdleStep.PARK   # 10 s after the jump, not at 1010 s
    policy.clock_restarted(500.0)                      # mid-park: the move's 5 s count from the new time
    assert policy.update(True, True, 504.9) is None
    assert policy.update(True, True, 505.0) is IdleStep.FAILED
    woken = IdlePolicy(10.0, 5.0)
    woken.clock_restarted(3.0)                         # before any quiet: nothing to count yet
    assert woken.update(True, True, 3.0) is None and woken.update(True, True, 13.0) is IdleStep.PARK


def test_an_idle_time_of_zero_never_parks():
    policy = IdlePolicy(0.0, 5.0)
    assert not policy.enabled
    assert all(policy.update(True, True, t) is None for t in (0.0, 1e3, 1e6))


@pytest.mark.parametrize('idle_after_s, move_timeout_s, words', [
    (-1.0, 5.0, 'idle_after_s'), (math.nan, 5.0, 'idle_after_s'), (True, 5.0, 'idle_after_s'),
    (1.0, 0.0, 'move_timeout_s'), (1.0, math.inf, 'move_timeout_s')])
def test_bad_settings_are_refused_with_their_name(idle_after_s, move_timeout_s, words):
    with pytest.raises(ValueError, match=words):
        IdlePolicy(idle_after_s, move_timeout_s)
