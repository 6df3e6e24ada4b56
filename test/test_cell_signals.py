"""Raw device signals the coordinator filters before they become cycle events, without ROS."""
from __future__ import annotations

import math

import pytest

from cell_control.cell.signals import (CLOCK_WENT_BACK, FIRST_CLOCK, ClockWatch, SwitchEdges, clock_jump_restarts,
                                       parse_part_id, rollers_running)


def test_part_ids() -> None:
    assert parse_part_id('  P-1_a \n') == 'P-1_a'
    assert parse_part_id('x' * 64) == 'x' * 64
    for bad in ('', '   ', 'x' * 65, 'P 1', 'P/1', 'P;drop'):
        with pytest.raises(ValueError, match='is not 1-64 letters, digits, - or _'):
            parse_part_id(bad)


def test_rollers_running() -> None:
    assert rollers_running(0.3) and rollers_running(-0.3)
    assert not rollers_running(0.05) and not rollers_running(0.0)
    assert not rollers_running(math.nan) and not rollers_running(math.inf)


def test_switch_edges() -> None:
    edges = SwitchEdges()
    assert edges.changed('infeed', False)            # the first reading is an edge
    assert not edges.changed('infeed', False)        # a heartbeat is not
    assert edges.changed('infeed', True)
    assert edges.changed('station', True)            # switches are independent
    assert not edges.changed('infeed', True)


def test_a_clock_standing_still_is_said_once_and_its_return_once() -> None:
    watch = ClockWatch(5.0)
    assert watch.check(0.0, 100.0) is None          # first look: nothing known yet
    assert watch.check(0.0, 104.0) is None          # 4 s still: within the limit
    assert watch.check(0.0, 105.5) == ('stalled', 5.5)
    assert watch.stalled
    assert watch.check(0.0, 130.0) is None          # said once per stall
    assert watch.check(12.5, 131.0) == ('running', 31.0)
    assert not watch.stalled
    assert watch.check(12.6, 132.0) is None


def test_a_moving_clock_is_never_stalled_however_long_it_runs() -> None:
    watch = ClockWatch(5.0)
    for tick in range(1000):
        assert watch.check(tick * 0.01, tick * 1.0) is None   # slower than real time, but moving


@pytest.mark.parametrize('limit_s', [0.0, -1.0, math.nan, math.inf])
def test_a_clock_stall_limit_must_be_a_positive_number(limit_s: float) -> None:
    with pytest.raises(ValueError, match='clock stall limit'):
        ClockWatch(limit_s)


def test_a_clock_that_goes_back_or_is_first_heard_far_from_zero_restarts_what_is_timed() -> None:
    assert clock_jump_restarts(1_000_000_000, -999_000_000_000) == CLOCK_WENT_BACK      # 1000 s → 1 s
    assert clock_jump_restarts(600_000_000_000, 600_000_000_000) == FIRST_CLOCK          # 0 → 600 s
    assert clock_jump_restarts(605_000_000_000, 5_000_000_000) is None    # 600 → 605 s: a stalled node catching up
    assert clock_jump_restarts(0, 0) is None
