"""The lock-steps' rules: how far the world may lead the adjuster's answers and the nodes' clocks, and when it
lets go."""
import math

import pytest

from cell_control.cell.signals import ClockReporter
from cell_control.sim.lockstep import CellLockstep, WeldLockstep


def test_free_running_until_the_adjuster_answers_in_a_weld():
    lockstep = WeldLockstep(max_lead_s=0.01, patience_s=1.0)
    assert not lockstep.must_wait(100.0), 'nobody has answered yet: nothing to wait for'
    lockstep.answered(5.0, welding=False)
    assert not lockstep.engaged and not lockstep.must_wait(100.0), 'an answer outside a weld engages nothing'
    lockstep.answered(5.0, welding=True)
    assert lockstep.engaged


def test_the_world_leads_the_last_answer_by_at_most_the_lead():
    lockstep = WeldLockstep(max_lead_s=0.01, patience_s=1.0)
    lockstep.answered(2.000, welding=True)
    assert not lockstep.must_wait(2.010)
    assert lockstep.must_wait(2.012)
    lockstep.answered(2.004, welding=True)
    assert not lockstep.must_wait(2.012)
    lockstep.answered(1.0, welding=True)   # a late answer to an older sample does not move the mark back
    assert not lockstep.must_wait(2.012)


def test_a_weld_end_or_a_lost_patience_releases_the_world():
    lockstep = WeldLockstep(max_lead_s=0.01, patience_s=1.0)
    lockstep.answered(2.0, welding=True)
    lockstep.waited(in_time=True)
    assert lockstep.must_wait(3.0) and lockstep.waits == 1 and lockstep.gave_up == 0
    lockstep.waited(in_time=False)
    assert not lockstep.must_wait(3.0) and lockstep.gave_up == 1, 'a dead adjuster must not freeze the world'
    lockstep.answered(3.0, welding=True)
    assert lockstep.must_wait(3.5), 'the next answer engages it again'
    lockstep.weld_ended()
    assert not lockstep.engaged and not lockstep.must_wait(3.5)


@pytest.mark.parametrize('lead, patience', [(0.0, 1.0), (math.nan, 1.0), (0.01, 0.0), (0.01, math.inf)])
def test_bad_settings_are_refused(lead, patience):
    for lockstep in (WeldLockstep, CellLockstep):
        with pytest.raises(ValueError, match='must be a positive number'):
            lockstep(lead, patience)


@pytest.mark.parametrize('period', [0.0, -0.1, math.nan, math.inf])
def test_a_bad_report_period_is_refused(period):
    with pytest.raises(ValueError, match='period_s must be a positive number'):
        ClockReporter(period)


# ----- the whole cell -----------------------------------------------------------------------------------------
def test_a_node_reports_every_period_of_its_clock_and_when_it_goes_back():
    reporter = ClockReporter(period_s=0.1)
    assert not reporter.due(0.0), 'no /clock yet: nothing reached'
    assert reporter.due(5.0)
    assert not reporter.due(5.0) and not reporter.due(5.099)
    assert reporter.due(5.1)
    assert reporter.due(0.5), 'a restarted world: report at once, not 4.6 s later'
    assert not reporter.due(0.55) and reporter.due(0.6)


def test_a_node_reports_no_time_past_the_last_mark_it_has_taken():
    """Its clock jumps to the newest /clock; the messages before it may still be queued, and the mark behind them."""
    reporter = ClockReporter(period_s=0.1)
    assert reporter.reached(5.0) == 5.0, 'no mark yet (the Gazebo route has none): the clock'
    reporter.marked(4.2)
    assert reporter.reached(5.0) == 4.2, 'behind on its queue: the mark'
    assert reporter.reached(3.0) == 3.0, 'the clock behind the mark (a restarted world): the clock'
    reporter.marked(math.nan)
    assert reporter.reached(5.0) == 4.2, 'a mark that is not a time is ignored'
    reporter.marked(0.4)   # the world restarted
    assert reporter.reached(0.5) == 0.4


def test_the_world_leads_the_slowest_node_by_at_most_the_lead():
    lockstep = CellLockstep(max_lead_s=0.3, patience_s=5.0)
    assert not lockstep.must_wait(100.0), 'no node has reported: nothing to wait for'
    lockstep.reached('/coordinator', 10.0)
    lockstep.reached('/fleet_sim', 9.9)
    assert not lockstep.must_wait(10.2)
    assert lockstep.laggards(10.25) == ['/fleet_sim']
    assert lockstep.laggards(10.5) == ['/fleet_sim', '/coordinator'], 'slowest first'
    lockstep.reached('/fleet_sim', 10.4)
    assert lockstep.laggards(10.5) == ['/coordinator']
    lockstep.reached('/coordinator', 1.0)   # its world restarted: taken as it comes
    assert lockstep.laggards(10.5) == ['/coordinator']
    lockstep.reached('/coordinator', math.nan)   # not a time: ignored
    assert lockstep.nodes == 2 and lockstep.laggards(1.2) == []


def test_a_node_that_outlasts_the_patience_is_left_out_until_it_reports_again():
    lockstep = CellLockstep(max_lead_s=0.3, patience_s=5.0)
    lockstep.reached('/coordinator', 10.0)
    lockstep.reached('/fleet_sim', 10.5)
    assert lockstep.waited(in_time=True, sim_now_s=10.6) == [] and lockstep.waits == 1
    assert lockstep.waited(in_time=False, sim_now_s=10.6) == ['/coordinator'], 'a dead node must not freeze the world'
    assert lockstep.gave_up == 1 and lockstep.nodes == 1 and not lockstep.must_wait(10.6)
    lockstep.reached('/coordinator', 10.1)   # restarted: counted again
    assert lockstep.must_wait(10.6)


def test_the_world_holds_at_the_start_until_every_node_the_bringup_started_has_joined():
    lockstep = CellLockstep(max_lead_s=0.3, patience_s=5.0, expected=('/coordinator', '/fleet_sim'), bringup_s=60.0)
    assert lockstep.nodes == 2 and not lockstep.must_wait(0.3)
    assert lockstep.must_wait(0.31) and lockstep.laggards(0.31) == ['/coordinator', '/fleet_sim']
    assert lockstep.wait_limit_s(0.31) == 60.0, 'a process still starting gets the bring-up time, not the patience'
    lockstep.reached('/coordinator', 0.3)
    assert lockstep.laggards(0.31) == ['/fleet_sim'] and lockstep.wait_limit_s(0.31) == 60.0
    lockstep.reached('/fleet_sim', 0.2)
    assert lockstep.wait_limit_s(0.6) == 5.0, 'every node has joined: the usual patience'
    assert not lockstep.must_wait(0.5) and lockstep.must_wait(0.51)


def test_an_expected_node_that_never_starts_is_left_out_after_the_bringup_time():
    lockstep = CellLockstep(max_lead_s=0.3, patience_s=5.0, expected=('/coordinator', '/gateway'), bringup_s=30.0)
    lockstep.reached('/coordinator', 0.4)
    assert lockstep.waited(in_time=False, sim_now_s=0.4) == ['/gateway']
    assert not lockstep.must_wait(0.7) and lockstep.must_wait(0.71), 'the others still set the pace'
    assert lockstep.wait_limit_s(0.8) == 5.0
    lockstep.reached('/coordinator', 0.6)
    lockstep.reached('/gateway', 0.5)   # it came up late: counted from its first report like any node
    assert lockstep.laggards(0.81) == ['/gateway'] and lockstep.wait_limit_s(0.81) == 5.0


def test_a_bad_bringup_time_is_refused():
    with pytest.raises(ValueError, match='bringup_s must be a positive number'):
        CellLockstep(0.3, 5.0, expected=('/coordinator',), bringup_s=0.0)
