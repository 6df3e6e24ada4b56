"""The weld loop lock-step's rule: how far the world may lead the adjuster's answers, and when it lets go."""
import math

import pytest

from cell_control.sim.lockstep import WeldLockstep


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
    with pytest.raises(ValueError, match='must be a positive number'):
        WeldLockstep(lead, patience)
