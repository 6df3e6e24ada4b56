"""The whole cell's lock-step over DDS (issue 11, point 3): the simulation waits for the slowest node on its clock.

`cell_sim` runs as fast as it can (real_time_factor 0). A node of the cell reports the simulated time it has
reached on /sim/clock_reached (here the test's probe reports by hand, as `node_main` does for every node on
simulated time); the simulation must not lead the slowest report by more than its lead, must go on as the report
moves, and must run on without a node that stops reporting once its patience is out. A real node (the fleet) run
by the shared node main is counted too.
"""
from __future__ import annotations

import threading
import time

import pytest

from cell_control.testing import wait_for

rclpy = pytest.importorskip('rclpy')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from cell_control.nodes.common import stamp_to_msg, to_seconds  # noqa: E402
from cell_control.nodes.node_main import (CLOCK_MARK_QOS, CLOCK_MARK_TOPIC, CLOCK_REACHED_QOS,  # noqa: E402
                                          CLOCK_REACHED_TOPIC)

pytestmark = pytest.mark.integration
LEAD_S = 0.3
PATIENCE_S = 10.0   # wall s: long beside the 0.5 s the test watches the clock stand
WAIT_S = 60.0
# Deep: the simulation's last /clock before it holds must not be dropped behind a burst of earlier ones.
BEST_EFFORT = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


class World:
    """The simulation's clock and its lock-step diagnostics, as the probe hears them."""

    def __init__(self, node) -> None:
        self.lock = threading.Lock()
        self.clock_s = 0.0
        self.marks: list[float] = []
        self.diagnostics: dict[str, str] = {}
        node.create_subscription(Clock, '/clock', self._on_clock, BEST_EFFORT)
        node.create_subscription(Header, CLOCK_MARK_TOPIC, self._on_mark, BEST_EFFORT)
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, RELIABLE)
        self.reports = node.create_publisher(Header, CLOCK_REACHED_TOPIC, CLOCK_REACHED_QOS)

    def _on_clock(self, msg: Clock) -> None:
        with self.lock:
            self.clock_s = max(self.clock_s, to_seconds(msg.clock))

    def _on_mark(self, msg: Header) -> None:
        with self.lock:
            self.marks.append(to_seconds(msg.stamp))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == 'cell_sim: simulation':
                with self.lock:
                    self.diagnostics = {v.key: v.value for v in status.values}

    def now_s(self) -> float:
        with self.lock:
            return self.clock_s

    def report(self, node: str, sim_s: float) -> None:
        self.reports.publish(Header(stamp=stamp_to_msg(sim_s), frame_id=node))

    def value(self, key: str) -> str | None:
        with self.lock:
            return self.diagnostics.get(key)


def held_past(world: World, mark_s: float) -> float:
    """Wait until the clock has reached `mark_s` and then stood still for 0.5 s of wall time; return where it stands.

    Reached within one /clock period (10 ms): the world holds on its first step past the mark, and /clock shows
    the last 10 ms tick before it.
    """
    def standing() -> float | None:
        before = world.now_s()
        if before < mark_s - 0.011:
            return None
        time.sleep(0.5)   # standing still is a duration: nothing to wait on but time
        return before if world.now_s() == before else None
    return wait_for(standing, WAIT_S, f'the simulation to hold past {mark_s} s')


def test_the_simulation_waits_for_the_slowest_node_and_not_for_a_dead_one(node_processes, probe):
    world = World(probe.node)
    node_processes.start_node('cell_sim', 'real_time_factor:=0.0', f'cell_lockstep_lead_s:={LEAD_S}',
                              f'cell_lockstep_patience_s:={PATIENCE_S}')
    wait_for(lambda: world.now_s() > 0.5, WAIT_S, 'the simulation to run')
    # Volatile: a report sent before the simulation's reader matched would be lost.
    wait_for(lambda: world.reports.get_subscription_count() >= 1, WAIT_S, 'the simulation to hear the reports')
    # A node reports a time ahead of the world: the world runs to the lead past it and holds there (it steps
    # 10 ms at a time).
    first = world.now_s() + 5.0
    world.report('/slow_node', first)
    stood = held_past(world, first + LEAD_S)
    assert stood <= first + LEAD_S + 0.02, (first, stood)
    # Its marks (what the nodes report against): every 50 ms of its time, in order, and where it holds (repeated
    # there with its clock, off the 50 ms grid).
    with world.lock:
        marks = list(world.marks)
    assert marks == sorted(marks) and stood - 0.011 <= marks[-1] <= stood + 0.011, (marks[-5:], stood)
    steps = [round(b - a, 3) for a, b in zip(marks, marks[1:]) if b > a]
    assert steps and max(steps) <= 0.05 + 0.011 and sorted(steps)[len(steps) // 2] == 0.05, steps
    # The report moves on: so does the world, again to the lead past it.
    world.report('/slow_node', stood + 2.0)
    moved = held_past(world, stood + 2.0 + LEAD_S)
    assert moved <= stood + 2.0 + LEAD_S + 0.02, (stood, moved)
    # The first wait (ended by the report) is in the diagnostics the world published between the two holds.
    assert (world.value('cell_lockstep_nodes'), world.value('cell_lockstep_waits'),
            world.value('cell_lockstep_gave_up')) == ('1', '1', '0'), world.diagnostics
    # The node goes silent: after its patience the world runs on without it.
    wait_for(lambda: world.now_s() > moved + 5.0, PATIENCE_S + WAIT_S, 'the simulation to run on without the node')
    wait_for(lambda: world.value('cell_lockstep_gave_up') == '1', WAIT_S, 'the given-up wait in the diagnostics')
    assert (world.value('cell_lockstep_nodes'), world.value('cell_lockstep_waits')) == ('0', '2'), world.diagnostics
    assert 'reached no simulated time past' in node_processes.output('cell_sim')


def test_every_node_on_simulated_time_reports_the_time_it_has_reached(node_processes, probe):
    reports: list[tuple[str, float]] = []
    lock = threading.Lock()

    def on_report(msg: Header) -> None:
        with lock:
            reports.append((msg.frame_id, to_seconds(msg.stamp)))
    probe.node.create_subscription(Header, CLOCK_REACHED_TOPIC, on_report, RELIABLE)
    clock = probe.node.create_publisher(Clock, '/clock', BEST_EFFORT)
    node_processes.start_node('fleet_sim', 'use_sim_time:=true', 'run_id:=T', 'parts:=1')

    def fleet_reports() -> list[float]:
        with lock:
            return [s for node, s in reports if node == '/fleet_sim']
    steps = 0
    while len(fleet_reports()) < 5:   # the test is the clock: 10 ms steps, about 1x
        assert steps < WAIT_S * 100, f'fleet_sim reported {fleet_reports()} up to {steps / 100:.1f} s of simulated time'
        steps += 1
        clock.publish(Clock(clock=stamp_to_msg(steps / 100)))
        time.sleep(0.01)   # the clock's own pace
    times = fleet_reports()
    assert times == sorted(times) and all(0.0 < s <= steps / 100 + 1e-6 for s in times), (times, steps)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(gap >= 0.1 - 1e-6 for gap in gaps), f'one report per 0.1 s of its clock: {times}'


def test_a_node_reports_no_time_past_the_simulations_last_mark(node_processes, probe):
    """A busy node's clock jumps to the newest /clock while older messages still queue; the mark comes behind them.

    The test is the simulation: its clock runs to 3 s while its mark stays at 1 s (a node behind on its queues),
    then the mark catches up.
    """
    reports: list[float] = []
    lock = threading.Lock()

    def on_report(msg: Header) -> None:
        if msg.frame_id == '/fleet_sim':
            with lock:
                reports.append(to_seconds(msg.stamp))

    def reached() -> float:
        with lock:
            return max(reports, default=0.0)
    probe.node.create_subscription(Header, CLOCK_REACHED_TOPIC, on_report, RELIABLE)
    clock = probe.node.create_publisher(Clock, '/clock', BEST_EFFORT)
    marks = probe.node.create_publisher(Header, CLOCK_MARK_TOPIC, CLOCK_MARK_QOS)
    node_processes.start_node('fleet_sim', 'use_sim_time:=true', 'run_id:=T', 'parts:=0')
    wait_for(lambda: marks.get_subscription_count() >= 1, WAIT_S, 'the fleet to take the marks')
    for step in range(1, 301):   # 10 ms steps to 3 s, the mark repeated at 1 s (best effort: one may be lost)
        clock.publish(Clock(clock=stamp_to_msg(step / 100)))
        marks.publish(Header(stamp=stamp_to_msg(min(step / 100, 1.0))))
        time.sleep(0.01)   # the clock's own pace
    wait_for(lambda: reached() >= 0.9, WAIT_S, 'the fleet to report the time up to the mark')
    assert reached() <= 1.0 + 1e-6, f'reported {reached()} s with the last mark at 1 s and the clock at 3 s'

    def caught_up() -> bool:
        marks.publish(Header(stamp=stamp_to_msg(3.0)))
        return reached() >= 3.0 - 1e-6
    wait_for(caught_up, WAIT_S, 'the fleet to report 3 s once the mark is there', poll_s=0.1)


def test_the_simulation_holds_at_the_start_until_the_nodes_of_the_bringup_have_joined(node_processes, probe):
    """At full speed the world would otherwise be tens of seconds on before a slow process has started."""
    world = World(probe.node)
    node_processes.start_node('cell_sim', 'real_time_factor:=0.0', f'cell_lockstep_lead_s:={LEAD_S}',
                              "cell_lockstep_nodes:=['/fleet_sim']", 'cell_lockstep_bringup_s:=300.0')
    stood = held_past(world, LEAD_S)
    assert stood <= LEAD_S + 0.02, stood
    # The fleet starts late: it hears the clock the held world repeats (/clock is volatile), reports, and the
    # world goes on at its pace (within the 300 s of bring-up time, which this test would otherwise wait out).
    node_processes.start_node('fleet_sim', 'use_sim_time:=true', 'run_id:=T', 'parts:=0')
    wait_for(lambda: world.now_s() > 5.0, WAIT_S, 'the simulation to go on once the fleet has joined')
    wait_for(lambda: world.value('cell_lockstep_nodes') == '1', WAIT_S, 'the fleet counted in the diagnostics')
    assert world.value('cell_lockstep_gave_up') == '0', world.diagnostics


def test_a_report_sent_before_the_simulation_started_still_counts(node_processes, probe):
    """Reports are latched: a node quicker to start than the simulation's reader must not hold the world."""
    world = World(probe.node)
    world.report('/early_node', 2.0)   # nobody listens yet
    node_processes.start_node('cell_sim', 'real_time_factor:=0.0', f'cell_lockstep_lead_s:={LEAD_S}',
                              "cell_lockstep_nodes:=['/early_node']", 'cell_lockstep_bringup_s:=300.0')
    stood = held_past(world, 2.0 + LEAD_S)
    assert stood <= 2.0 + LEAD_S + 0.02, stood
