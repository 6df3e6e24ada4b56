"""Every node's main loop (nodes.node_main) over real DDS: a simulated clock that stands still is said, once."""
from __future__ import annotations

import pytest

pytest.importorskip('rclpy')

from cell_control.testing import SimulatedClock, node_command, wait_for  # noqa: E402

pytestmark = pytest.mark.integration
TIMEOUT_S = 60.0   # wall seconds; a node says a stall after nodes.node_main.CLOCK_STALL_WARN_S
STALLED = 'no /clock for'


def test_a_node_on_simulated_time_says_when_no_clock_moves_it_and_when_one_does(node_processes, probe) -> None:
    node_processes.start('on_sim_time', node_command('weld_adjuster', 'use_sim_time:=true'))
    node_processes.start('on_wall_time', node_command('weld_adjuster') + ['--ros-args', '-r', '__node:=wall_adjuster'])
    said = wait_for(lambda: STALLED in node_processes.output('on_sim_time') and node_processes.output('on_sim_time'),
                    TIMEOUT_S, 'the node on simulated time to say that no /clock moves it')
    assert said.count(STALLED) == 1 and 'is the simulation running on this domain?' in said
    with SimulatedClock(probe):
        wait_for(lambda: '/clock moves again after' in node_processes.output('on_sim_time'), TIMEOUT_S,
                 'the node to say that its clock moves again')
    # The node on wall time ran as long as the other stood still, and never says it.
    node_processes.check_running()
    assert STALLED not in node_processes.output('on_wall_time')
    assert node_processes.output('on_sim_time').count(STALLED) == 1   # once per stall, not per check
