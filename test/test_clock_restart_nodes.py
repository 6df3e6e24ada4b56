"""The coordinator and fleet_sim on simulated time survive a /clock that goes back (a restarted simulation).

The test publishes /clock at about 1x, jumps it back, and checks over DDS that both nodes log the warning, keep
their heartbeats (/cell/state, the fleet's /diagnostics) on the new clock and stay up without a traceback.
"""
from __future__ import annotations

import threading

import pytest

from cell_control.testing import SimulatedClock, wait_for

rclpy = pytest.importorskip('rclpy')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import String  # noqa: E402

pytestmark = pytest.mark.integration
WAIT_S = 30.0
NODES = ('coordinator', 'fleet_sim')
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Heartbeats:
    """Count /cell/state messages and fleet_sim's /diagnostics arrays (both come from timers on the node clock)."""

    def __init__(self, node) -> None:
        self.lock = threading.Lock()
        self.counts = {'coordinator': 0, 'fleet_sim': 0}
        self.warnings: list[str] = []
        node.create_subscription(String, '/cell/state', lambda _: self._count('coordinator'), LATCHED)
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, RELIABLE)

    def _count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        if any(s.name.startswith('fleet_sim: ') for s in msg.status):
            self._count('fleet_sim')
        with self.lock:
            self.warnings += [s.message for s in msg.status if s.name == 'coordinator: part cycle']

    def reset(self) -> None:
        with self.lock:
            self.counts = dict.fromkeys(self.counts, 0)

    def beating(self, beats: int) -> bool:
        with self.lock:
            return all(count >= beats for count in self.counts.values())


def test_the_coordinator_and_fleet_sim_survive_a_clock_that_goes_back(node_processes, probe, tmp_path):
    heartbeats = Heartbeats(probe.node)
    with SimulatedClock(probe, start_s=100.0) as clock:
        node_processes.start_node('coordinator', 'use_sim_time:=true', f'ledger_path:={tmp_path / "ledger.sqlite"}',
                                  f'records_path:={tmp_path / "records.sqlite"}')
        node_processes.start_node('fleet_sim', 'use_sim_time:=true', 'run_id:=T', 'parts:=1')
        wait_for(lambda: heartbeats.beating(2), WAIT_S, 'both heartbeats on simulated time')
        clock.jump_to(1.0)               # the simulation restarts
        for name in NODES:
            wait_for(lambda: 'clock went back by' in node_processes.output(name), WAIT_S,
                     f'the warning of {name} about the clock going back')
        heartbeats.reset()
        wait_for(lambda: heartbeats.beating(2), WAIT_S, 'both heartbeats after the jump')
        with heartbeats.lock:
            assert any('clock went back: every wait restarted' in w for w in heartbeats.warnings)
        for name in NODES:
            assert node_processes.processes[name].poll() is None, node_processes.tail(name)
            assert 'Traceback' not in node_processes.output(name), node_processes.tail(name)
