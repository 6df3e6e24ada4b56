"""The coordinator and fleet_sim on simulated time survive a /clock that goes back (a restarted simulation), and the
coordinator's waits begun before its first /clock count from that clock.

The test publishes /clock at about 1x, jumps it back, and checks over DDS that both nodes log the warning, keep
their heartbeats (/cell/state, the fleet's /diagnostics) on the new clock and stay up without a traceback.
"""
from __future__ import annotations

import threading

import pytest

from cell_control.logistics.handoff import HandoffKind, HandoffRequest, HandoffStatus, decode_result, encode_request
from cell_control.testing import Latest, SimulatedClock, call_service, wait_for, wait_for_service

rclpy = pytest.importorskip('rclpy')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

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
            assert any('clock jumped: every wait restarted' in w for w in heartbeats.warnings)
        for name in NODES:
            assert node_processes.processes[name].poll() is None, node_processes.tail(name)
            assert 'Traceback' not in node_processes.output(name), node_processes.tail(name)


def test_a_handoff_requested_before_the_first_clock_times_out_from_that_clock(node_processes, probe, tmp_path):
    """A coordinator that joins a simulation already running (Gazebo up for a while, a restart) reads time zero
    until its first /clock. A handoff requested meanwhile waits its `docked_s` from the first /clock, not from zero,
    where it would fail the moment the clock arrives (nodes.common.on_clock_back)."""
    results = Latest(probe, String, '/handoff/result', RELIABLE, keep=True)
    node_processes.start_node('coordinator', 'use_sim_time:=true', 'timeouts.docked_s:=5.0',
                              f'ledger_path:={tmp_path / "ledger.sqlite"}',
                              f'records_path:={tmp_path / "records.sqlite"}')
    start = wait_for_service(probe.node, '/cell/start', Trigger, WAIT_S)
    assert call_service(start, Trigger.Request(), WAIT_S).success
    announce = probe.node.create_publisher(String, '/handoff/announce', LATCHED)
    request = probe.node.create_publisher(String, '/handoff/request', RELIABLE)
    wait_for(lambda: request.get_subscription_count() > 0 and announce.get_subscription_count() > 0, WAIT_S,
             'the coordinator to read announcements and handoff requests')
    announce.publish(String(data='P-early-1'))
    handoff = HandoffRequest('in-P-early-1', HandoffKind.LOAD_TO_CELL, 'agv_1', 'inbound', 'P-early-1', 0.0)

    def statuses() -> list[HandoffStatus]:
        return [decode_result(m.data).status for m in list(results.all)]
    sent_once = [False]

    def acknowledged() -> bool:   # sent until answered: the announcement has to be in the ledger first
        if not sent_once[0] or not statuses():
            request.publish(String(data=encode_request(handoff)))
            sent_once[0] = True
        return bool(statuses())
    wait_for(acknowledged, WAIT_S, 'the request to be acknowledged at time zero', poll_s=0.5)
    assert statuses() == [HandoffStatus.ACKNOWLEDGED]
    with SimulatedClock(probe, start_s=600.0) as clock:
        failed_at_s: list[float] = []

        def failed() -> bool:
            if HandoffStatus.FAILED in statuses() and not failed_at_s:
                failed_at_s.append(clock.now_s)
            return bool(failed_at_s)
        wait_for(failed, WAIT_S, 'the handoff to time out, docked_s after the first /clock', poll_s=0.01)
    reasons = [decode_result(m.data).reason for m in list(results.all)
               if decode_result(m.data).status is HandoffStatus.FAILED]
    assert 'await_docked' in reasons[0]
    assert failed_at_s[0] >= 605.0 - 0.1, f'failed at {failed_at_s[0]:.2f} s: timed from zero, not from 600 s'
    log = node_processes.output('coordinator')
    assert 'first /clock at 600' in log and 'Traceback' not in log
