"""The production cycle of issue 4, end to end: every node of the cell as its own process, over DDS only.

Each test brings up the whole cell (simulation, conveyor VFD over Modbus, weld adjuster, coordinator, AGV
fleet) on a ROS domain of its own, with its own ledger and record store, plays the operator and the safety
controller from the test process, and reads the part ledger (SQLite) to check that no part is lost or
counted twice.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from cell_control.bringup import NodeSpec, describe_cell
from cell_control.cell.description import home_positions, rest_positions
from cell_control.cell.ledger import PartLedger, PartState
from cell_control.cell.recipe import recipes_dir
from cell_control.drivers.vfd_emulator import DRIVE_STANDBY_W
from cell_control.motion.kinematics import load_kinematics
from cell_control.runner import find_executable
from cell_control.sim.weld_loop import run_weld_eval
from cell_control.testing import (
    CellView, NodeProcesses, RosProbe, call_service, wait_for, wait_for_service, wait_for_simulated)
from cell_control.weld.seam_profile import load_seam_csv

rclpy = pytest.importorskip('rclpy')
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from cell_control.nodes.common import SPEED_SCALING_TOPIC, SPEED_SCALING_TYPE, speed_scaling_factor  # noqa: E402
from cell_control.nodes.weld_adjuster import DRIFT_TOPIC  # noqa: E402

# Every test that brings up the whole cell is in this file. `make test` runs the DDS tests one at a time: beside a
# whole cell at full speed on the other core, a wall-clock test of a small node was seen to starve (docs/benchmarks.md).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
# At full speed: the simulation runs as fast as the slowest node of the cell takes its messages (the lock-step,
# test_cell_lockstep.py), and the scenarios must come out as at 1x (the one-part demo test below shows it).
RTF = 0.0   # cell_sim's real_time_factor: as fast as the cell keeps up
HOME = home_positions()
ARM = load_kinematics().joint_names
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Waits are counted on the cell's clock: a loaded machine runs the cell slower than RTF (the simulation waits for
# the controllers), and a wall-clock limit would then fail a cell that works. A clock that stands still fails them.
SIM_S = 400.0   # generous: simulated seconds for a stage of the cycle or a whole part
ONE_PART_DEMO_TIMEOUT_S = 500.0   # wall s: about 100 s at 1x, 70-110 s at full speed on a quiet machine


class Cell:
    """The running cell as the operator sees it: state, ledger, services, and the streams the tests judge."""

    def __init__(self, nodes: list[NodeSpec], processes: NodeProcesses, probe: RosProbe, ledger_path: Path) -> None:
        self.nodes = {node.name: node for node in nodes}
        self.processes = processes
        self.node = probe.node
        self.ledger_path = ledger_path
        self.state: dict = {}
        self.state_messages = 0
        # (cell's time, readiness, stage, parts announced) at each change of readiness
        self.readiness: list[tuple[float, str, str, int]] = []
        self.arc: list[bool] = []
        self.scaling: list[float] = []
        self.trajectories: list[JointTrajectory] = []
        self.results: list[dict] = []
        self.joints: JointState | None = None
        self.belt_command: list[float] = []
        self.drift_estimates: list[float] = []   # the adjuster publishes one as each weld is stopped
        self.located: list[dict] = []           # the coordinator's seam search reports
        self.seam_markers: list[MarkerArray] = []
        node = self.node
        node.create_subscription(MarkerArray, '/cell/seam_markers', self.seam_markers.append, LATCHED)
        node.create_subscription(String, '/cell/part_located', lambda m: self.located.append(json.loads(m.data)),
                                 LATCHED)
        node.create_subscription(String, '/cell/state', self._on_state, LATCHED)
        node.create_subscription(Bool, '/weld_tool/arc_on', lambda m: self.arc.append(m.data), RELIABLE)
        node.create_subscription(SPEED_SCALING_TYPE, SPEED_SCALING_TOPIC,
                                 lambda m: self.scaling.append(speed_scaling_factor(m)), RELIABLE)
        node.create_subscription(JointTrajectory, '/arm_controller/joint_trajectory', self.trajectories.append,
                                 RELIABLE)
        node.create_subscription(String, '/handoff/result', lambda m: self.results.append(json.loads(m.data)),
                                 RELIABLE)
        # Best effort: a reliable reader that falls behind a 1 kHz stream throttles its writer, the simulation.
        node.create_subscription(JointState, '/joint_states', self._on_joints, qos_profile_sensor_data)
        node.create_subscription(Float64, '/conveyor/speed_command', lambda m: self.belt_command.append(m.data),
                                 RELIABLE)
        node.create_subscription(Float64, DRIFT_TOPIC, lambda m: self.drift_estimates.append(m.data), RELIABLE)
        self.estop = node.create_publisher(Bool, '/cell/estop', LATCHED)
        self.view = CellView(probe)

    def _on_state(self, msg: String) -> None:
        self.state.update(json.loads(msg.data))
        self.state_messages += 1
        readiness = self.state.get('readiness', '')
        if not self.readiness or self.readiness[-1][1] != readiness:
            self.readiness.append((self.view.sim_s(), readiness, self.state.get('stage', ''),
                                   int(self.state.get('announced', -1))))

    def _on_joints(self, msg: JointState) -> None:
        self.joints = msg

    def arm_speed(self) -> float:
        msg = self.joints
        return max(abs(msg.velocity[msg.name.index(j)]) for j in msg.name if j.endswith('_joint')
                   and 'conveyor' not in j and 'station' not in j and 'slide' not in j) if msg else math.inf

    def start(self, name: str) -> None:
        """Start (or start again, after a kill) the node called `name` of the cell."""
        self.processes.start_spec(self.nodes[name])

    def call(self, service: str) -> Trigger.Response:
        return call_service(wait_for_service(self.node, service, Trigger, 60), Trigger.Request(), 60)

    def wait(self, what: str, condition, sim_budget_s: float = SIM_S):
        """Wait for `condition` for `sim_budget_s` of the cell's time; fail at once if a node of the cell died."""
        def check():
            self.processes.check_running(what)
            return condition()
        return wait_for_simulated(check, self.view.sim_s, sim_budget_s, what)

    def wait_state(self, what: str, condition, sim_budget_s: float = SIM_S) -> None:
        self.wait(what, lambda: bool(self.state) and condition(self.state), sim_budget_s)

    def ledger(self) -> tuple[dict[str, PartState], bool]:
        ledger = PartLedger(self.ledger_path)
        try:
            states = {p.part_id: p.state for p in ledger.parts()}
            counts = ledger.counts()
            return states, counts.announced == counts.delivered + counts.in_cell + counts.rejected
        finally:
            ledger.close()


@pytest.fixture
def cell(request, tmp_path, node_processes, probe):
    """The whole cell on the test's own domain; param: (parts, {node: {parameter: value}})."""
    parts, overrides = request.param
    settings = {'cell_sim': {'real_time_factor': RTF}, 'fleet_sim': {'run_id': 'T'},   # part ids P-T-<n>
                'coordinator': {'ledger_path': str(tmp_path / 'ledger.sqlite'),
                                'records_path': str(tmp_path / 'records.sqlite')},
                'maintenance': {'store_path': str(tmp_path / 'condition.sqlite')}}   # not the user's store
    for node, values in overrides.items():
        settings.setdefault(node, {}).update(values)
    nodes = describe_cell('mujoco', ros_tools=False, overrides=settings, parts=parts)
    running = Cell(nodes, node_processes, probe, tmp_path / 'ledger.sqlite')
    for node in nodes:
        running.start(node.name)

    def brought_up() -> bool:   # before the simulation's first /clock: a wall-clock wait
        running.processes.check_running('the coordinator to publish its state')
        return 'state' in running.state
    wait_for(brought_up, 180, 'the coordinator to publish its state', poll_s=0.05)
    return running


def start(cell: Cell) -> None:
    reply = cell.call('/cell/start')
    assert reply.success, reply.message


def welding_for(cell: Cell, seconds: float) -> None:
    """Wait until the station has been welding for `seconds` of the cell's time."""
    cell.wait_state('a weld', lambda s: s['stage'] == 'welding')
    deadline = cell.view.sim_s() + seconds
    cell.wait_state(f'{seconds} s of welding',
                    lambda s: cell.view.sim_s() > deadline and s['stage'] == 'welding', seconds + 30.0)


@pytest.mark.timeout(1800)
def test_three_parts_end_to_end_in_auto(node_processes, tmp_path):
    """The demo command itself: three parts delivered, weld quality per part, nothing lost.

    The demo limits itself on the cell's clock (and ends when that clock stands still); the wall-clock limit here
    is only the last resort against a demo that hangs, wide enough for a machine that runs the cell at 0.2x.
    """
    result = node_processes.run('cell-control demo', [
        find_executable('cell-control'), 'demo', '--parts', '3', '--json', '--rtf', 'max',
        '--domain-id', str(node_processes.domain_id), '--out', str(tmp_path)], timeout_s=1700)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['parts_requested'] == 3
    assert report['parts_delivered'] == 3 and report['parts_lost'] == 0 and report['parts_rejected'] == 0
    assert report['ledger_invariant_holds'] is True
    run_ids = {re.fullmatch(r'P-(\d{8}T\d{6}_[0-9a-f]{4})-[123]', part)[1] for part in report['weld_quality_pct']}
    assert len(report['weld_quality_pct']) == 3 and len(run_ids) == 1, 'three parts of one fresh run'
    assert all(q >= 99.5 for q in report['weld_quality_pct'].values())
    # The process model's own score of each weld in the cell (issue 10, point 4): the arm welds as smoothly as
    # the model assumes, and the weld is the one weld-eval gives on the same seam, drift and seed (config: 0, 0).
    reference = run_weld_eval(load_seam_csv(recipes_dir() / 'bracket_seam_a.csv')).summary
    assert len(report['weld_results']) == 3
    for weld in report['weld_results']:
        # 0 also beside a busy loop since the arc's strike, not the adjuster's clock, ends the lead-in (before it,
        # a loaded machine got 1 at the strike in one weld of three).
        assert weld['limit_violations'] == 0, weld
        assert abs(weld['quality_pct'] - reference['quality_pct']) <= 0.5, (weld, reference)
        assert abs(weld['weld_time_s'] / reference['weld_time_s'] - 1.0) <= 0.02, (weld, reference)
    assert len(report['cycle_s']) == 3 and report['critical_path_s'] > 0
    # A busy cell always expects its next part: the idle policy (on, 60 s) never parks it (issue 13, point 5).
    assert report['idle_policy'] == {'parks': 0, 'standby_s': 0.0, 'wakes_s': []}
    # Seam finding (issue 10, point 6): the demo's clamp locates each part off the fixture datum (±3 mm, ±1°); the
    # coordinator's search finds each within 0.3 mm and 0.1° of where the simulation put it (its weld results'
    # part_pose), and the welds above scored as on the datum.
    finding = report['seam_finding']
    assert (finding['searched'], finding['not_found'], finding['judged']) == (3, 0, 3), finding
    assert finding['within_target'] is True, finding
    assert any(abs(p['true_offset']['x_mm']) > 0.3 for p in finding['parts'].values()), 'the parts were placed off'
    assert (tmp_path / 'report.png').stat().st_size > 10_000
    # Energy per part (issue 13, point 4): each part that left by name, its arc energy the weld's, every state
    # summed; the maintenance node's prediction per indicator, and its page with the energy per part.
    assert [p['part'] for p in report['energy_per_part_wh']] == list(report['weld_quality_pct'])
    for part in report['energy_per_part_wh']:
        assert part['by_source_wh']['arc'] > 0.0 and part['by_state_wh']['welding'] > 0.0
        assert sum(part['by_state_wh'].values()) == pytest.approx(part['total_wh'], abs=1e-3)
    assert report['energy_total_wh'] >= sum(p['total_wh'] for p in report['energy_per_part_wh']) - 1e-3
    assert report['maintenance']['weld_power/drift_estimate']['samples'] == 3
    assert (tmp_path / 'maintenance.png').stat().st_size > 10_000 and report['maintenance_png']


def one_part_demo(node_processes, tmp_path, rtf: str) -> dict:
    out = tmp_path / f'rtf_{rtf}'
    out.mkdir()
    result = node_processes.run(f'demo at {rtf}', [
        find_executable('cell-control'), 'demo', '--parts', '1', '--json', '--rtf', rtf,
        '--domain-id', str(node_processes.domain_id), '--out', str(out)], timeout_s=ONE_PART_DEMO_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report['parts_delivered'], report['parts_rejected'], report['parts_lost']) == (1, 0, 0), report
    assert report['ledger_invariant_holds'] is True
    return report


@pytest.mark.timeout(1200)
def test_the_same_part_comes_out_the_same_at_1x_and_at_full_speed(node_processes, tmp_path):
    """Results that do not depend on speed (issue 11, point 3): the same one-part demo at 1x and at full speed.

    At `--rtf max` the simulation runs as fast as the cell's nodes keep up: it holds at the start until every node
    has joined and then leads the slowest node by at most 0.3 s of what it has processed (`sim.lockstep`, tested
    on its own in test_cell_lockstep.py), and waits for the weld adjuster's answers during a weld. The same
    scenario (recipe, seeds, fixture scatter) must then give the same part outcome, the same weld and the same
    seam found, and KPIs within 2 %.
    """
    slow, fast = one_part_demo(node_processes, tmp_path, '1'), one_part_demo(node_processes, tmp_path, 'max')
    (weld_1x,), (weld_max,) = slow['weld_results'], fast['weld_results']
    assert weld_max['interrupted'] == weld_1x['interrupted'] == ''
    assert weld_max['limit_violations'] == weld_1x['limit_violations'] == 0
    assert weld_max['welded_mm'] == pytest.approx(weld_1x['welded_mm'], abs=0.1)
    assert weld_max['quality_pct'] == pytest.approx(weld_1x['quality_pct'], abs=0.5)
    assert weld_max['arc_time_s'] == pytest.approx(weld_1x['arc_time_s'], rel=0.02)
    assert weld_max['arc_energy_j'] == pytest.approx(weld_1x['arc_energy_j'], rel=0.02)
    # The seam found where the clamp put the part: the same placement (seeded), found the same.
    (found_1x,), (found_max,) = slow['seam_finding']['parts'].values(), fast['seam_finding']['parts'].values()
    assert found_1x['true_offset'] == found_max['true_offset']
    assert found_1x['found'] and found_max['found']
    for axis in ('x_mm', 'y_mm'):
        assert found_max['found_offset'][axis] == pytest.approx(found_1x['found_offset'][axis], abs=0.05)
    # KPIs within 2 %; the energy by source says where a difference came from.
    energy = {rtf: (report['energy_total_wh'], report['energy_by_source_wh'], report['energy_by_state_wh'])
              for rtf, report in (('1x', slow), ('max', fast))}
    assert fast['energy_total_wh'] == pytest.approx(slow['energy_total_wh'], rel=0.02), energy
    assert fast['mean_cycle_s'] == pytest.approx(slow['mean_cycle_s'], rel=0.02), (slow['cycle_s'], fast['cycle_s'])
    assert fast['availability_pct'] == pytest.approx(slow['availability_pct'], abs=2.0)


@pytest.mark.parametrize('cell', [(1, {})], indirect=True)
def test_emergency_stop_mid_weld_marks_rework_and_never_replays_the_old_trajectory(cell):
    start(cell)
    welding_for(cell, 3.0)
    weld_trajectory = cell.trajectories[-1]
    cell.estop.publish(Bool(data=True))
    cell.wait_state('the cell in emergency stop', lambda s: s['state'] == 'estop')
    cell.wait('the arc to be switched off', lambda: cell.arc and cell.arc[-1] is False, 30)
    cell.wait('the arm to stand still', lambda: cell.arm_speed() < 0.01, 30)
    states, invariant = cell.ledger()
    assert states == {'P-T-1': PartState.REWORK} and invariant

    refused = cell.call('/cell/reset')
    assert not refused.success and 'still active' in refused.message   # e-stop input still on
    cell.estop.publish(Bool(data=False))
    wait_for(lambda: cell.call('/cell/reset').success, 30, 'reset to be accepted once the e-stop is released')
    trajectories_before = len(cell.trajectories)
    refused = cell.call('/cell/start')
    assert not refused.success and 'acknowledge' in refused.message
    assert cell.arm_speed() < 0.01 and len(cell.trajectories) == trajectories_before   # reset moved nothing
    assert cell.call('/cell/acknowledge').success
    start(cell)
    cell.wait('a new arm trajectory', lambda: len(cell.trajectories) > trajectories_before, 60)
    replanned = cell.trajectories[trajectories_before]
    assert replanned.points[-1].positions.tolist() != weld_trajectory.points[-1].positions.tolist()
    assert max(abs(a - b) for a, b in zip(replanned.points[-1].positions, HOME)) < 1e-6   # retract home
    cell.wait_state('the reworked part to leave the cell', lambda s: int(s['rejected']) == 1)
    states, invariant = cell.ledger()
    assert states == {'P-T-1': PartState.REJECTED} and invariant


@pytest.mark.parametrize('cell', [(1, {'fleet_sim': {'inbound_enabled': False},
                                       'coordinator': {'timeouts.docked_s': 8.0}})], indirect=True)
def test_an_agv_that_never_arrives_fails_the_handoff_with_a_reason_and_the_cell_waits(cell):
    diagnostics = []
    from diagnostic_msgs.msg import DiagnosticArray
    cell.node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: diagnostics.extend(
        s.message for s in m.status if s.name.startswith('coordinator')), RELIABLE)
    start(cell)
    cell.wait('the handoff to fail', lambda: any(r['status'] == 'FAILED' for r in cell.results))
    failed = next(r for r in cell.results if r['status'] == 'FAILED')
    assert failed['request_id'] == 'P-T-1-load' and 'timeout in await_docked' in failed['reason']
    wait_for(lambda: any('FAILED' in m and 'P-T-1-load' in m for m in diagnostics), 30,
             'the failure reported on /diagnostics')
    assert cell.state['state'] == 'running'          # the cell waits for a new request, it does not fault
    states, invariant = cell.ledger()
    assert states == {'P-T-1': PartState.ON_INBOUND_AGV} and invariant


@pytest.mark.parametrize('cell', [(2, {})], indirect=True)
def test_a_conveyor_jam_faults_the_cell_and_is_recovered_without_costing_the_next_weld(cell):
    """A jam in a release (found by the DDS soak): the released part snags and the queued one runs into it.

    The cell faults with the belt stopped; once the operator has cleared the jam by hand, reset, acknowledge
    and start bring the released part out and the queued one to the station, clamped, and its weld goes on.
    """
    start(cell)
    cell.wait_state('part 1 released with part 2 queued behind it',
                    lambda s: s['stage'] == 'releasing' and s['queued_part'] == 'P-T-2', SIM_S * 1.5)
    cell.wait('the belt to run the release', lambda: cell.belt_command and cell.belt_command[-1] > 0.0, 60)
    assert cell.call('/sim/jam_belt').success
    cell.wait_state('a fault', lambda s: s['state'] == 'fault', 120)
    cell.wait('the belt to be stopped', lambda: cell.belt_command and cell.belt_command[-1] == 0.0, 30)
    states, invariant = cell.ledger()
    assert states == {'P-T-1': PartState.ON_OUTBOUND_CONVEYOR, 'P-T-2': PartState.ON_CONVEYOR} and invariant
    assert not cell.call('/cell/start').success      # a fault needs reset and acknowledge first
    assert cell.call('/sim/clear_faults').success    # the operator frees the snag and undoes the pile-up
    assert cell.call('/cell/reset').success
    assert cell.call('/cell/acknowledge').success
    start(cell)
    cell.wait_state("part 2's weld", lambda s: s['stage'] == 'welding' and s['station_part'] == 'P-T-2')
    struck = cell.view.sim_s()   # a part clamped on air faulted 1 s after the strike (SEAM_LOST)
    cell.wait_state('10 s of welding part 2, or a fault',
                    lambda s: s['state'] != 'running' or cell.view.sim_s() > struck + 10.0, 60)
    assert cell.state['state'] == 'running' and cell.state['stage'] == 'welding', cell.state
    states, invariant = cell.ledger()
    assert states['P-T-2'] is PartState.WELDING and invariant


# Seed 1 draws the first part 7.3 mm off the datum toward the infeed: its seam starts outside the search's window.
@pytest.mark.parametrize('cell', [(1, {'cell_sim': {'fixture_position_tolerance_mm': 10.0, 'seed': 1}})],
                         indirect=True)
def test_a_part_whose_seam_is_not_found_goes_to_rework_unwelded_and_the_cell_goes_on(cell):
    """Issue 10, point 6: a seam that cannot be found sends the part to rework with a clear reason."""
    start(cell)
    cell.wait('the seam search report', lambda: cell.located and cell.seam_markers)
    report = cell.located[0]
    assert report['found'] is False and report['part_id'] == 'P-T-1'
    assert report['reason'].startswith('seam start not found'), report
    cell.wait('the part to leave for rework', lambda: cell.ledger()[0].get('P-T-1') is PartState.REJECTED)
    states, invariant = cell.ledger()
    assert invariant and cell.state['state'] == 'running'
    assert True not in cell.arc, 'the arc was never switched on'
    # RViz's seams: the part was not found, so it is welded (would be) where programmed.
    markers = {m.ns: m for m in cell.seam_markers[-1].markers}
    assert set(markers) == {'programmed', 'welded'} and markers['welded'].points == markers['programmed'].points
    assert len(markers['programmed'].points) == 2 and markers['programmed'].header.frame_id == 'world'


@pytest.mark.parametrize('cell', [(1, {})], indirect=True)
def test_a_silent_seam_sensor_pauses_the_weld_safely(cell):
    start(cell)
    welding_for(cell, 3.0)
    assert cell.call('/sim/silence_seam_sensor').success
    cell.wait_state('a fault', lambda s: s['state'] == 'fault', 120)
    cell.wait('the arc to be switched off', lambda: cell.arc and cell.arc[-1] is False, 30)
    cell.wait('the arm to stand still', lambda: cell.arm_speed() < 0.01, 30)
    states, invariant = cell.ledger()
    assert states == {'P-T-1': PartState.REWORK} and invariant


@pytest.mark.parametrize('cell', [(2, {})], indirect=True)
def test_the_coordinator_killed_mid_weld_restarts_from_the_ledger(cell):
    start(cell)
    welding_for(cell, 3.0)
    cell.processes.kill('coordinator')
    cell.state.clear()
    published = cell.state_messages
    assert not cell.drift_estimates   # the killed process never stopped its weld
    cell.start('coordinator')
    # Its state heartbeat runs on the simulation's clock: a few beats mean it has /clock (and the joints with
    # it); started before that, it would judge its waits from time 0.
    cell.wait('the restarted coordinator on the simulated clock', lambda: cell.state_messages >= published + 3, 120)
    # The adjuster still ran the killed process's weld: the new one ends it before anything else.
    cell.wait('the restarted coordinator to stop the weld left in the adjuster', lambda: cell.drift_estimates, 60)
    states, invariant = cell.ledger()
    assert states['P-T-1'] is PartState.REWORK and invariant    # an interrupted weld is never passed as good
    if cell.state['state'] == 'await_ack':
        assert cell.call('/cell/acknowledge').success
    start(cell)
    cell.wait_state('both parts to leave the cell', lambda s: int(s['delivered']) + int(s['rejected']) == 2)
    states, invariant = cell.ledger()
    assert states == {'P-T-1': PartState.REJECTED, 'P-T-2': PartState.DELIVERED} and invariant


# Part 2 comes 100 s after the inbound AGV is home from part 1: part 1 is welded and gone long before.
@pytest.mark.parametrize('cell', [(2, {'fleet_sim': {'supply_gap_s': 100.0, 'supply_gap_after': 1},
                                       'coordinator': {'idle_after_s': 5.0}})], indirect=True)
def test_a_cell_without_parts_parks_in_standby_and_wakes_for_the_next_part_before_it_arrives(cell):
    """Issue 13, point 5: the idle policy over DDS, with the drive's standby over Modbus and the energy it saves.

    What the parked cell did is recorded as it happens and judged at the end against the cell's own times of
    parking and waking: the test process is not in the simulation's lock-step, and at full speed (or beside other
    work) it may read a stream after the cell has already woken.
    """
    standby_commands: list[bool] = []
    input_power: list[tuple[float, float]] = []
    energy: list[dict] = []
    at_rest_s: list[float] = []   # the joint states' stamps (the cell's time) with the arm at its rest pose
    rest = dict(zip(ARM, rest_positions()))

    def on_joints(msg: JointState) -> None:
        if all(abs(msg.position[msg.name.index(joint)] - q) < 0.01 for joint, q in rest.items()):
            at_rest_s.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)
    node = cell.node
    node.create_subscription(Bool, '/conveyor/standby', lambda m: standby_commands.append(m.data), LATCHED)
    node.create_subscription(Float64, '/conveyor/input_power',
                             lambda m: input_power.append((cell.view.sim_s(), m.data)), qos_profile_sensor_data)
    node.create_subscription(String, '/cell/energy', lambda m: energy.append(json.loads(m.data)), LATCHED)
    node.create_subscription(JointState, '/joint_states', on_joints, qos_profile_sensor_data)
    start(cell)
    cell.wait_state('part 1 to leave the cell', lambda s: int(s['delivered']) == 1)
    cell.wait_state('part 2 to leave the cell', lambda s: int(s['delivered']) == 2, SIM_S * 2.0)
    states, invariant = cell.ledger()
    assert states == {'P-T-1': PartState.DELIVERED, 'P-T-2': PartState.DELIVERED} and invariant
    # After part 2 the cell is quiet again and may park once more: judge the first park and wake.
    assert [r for _, r, _, _ in cell.readiness[:5]] == ['ready', 'parking', 'standby', 'waking', 'ready'], \
        cell.readiness
    parked_s, woken = cell.readiness[2][0], cell.readiness[3][0]
    assert cell.readiness[2][3] == 1, 'parked with nothing announced'
    ready = cell.readiness[4]
    assert ready[0] - woken < 10.0, cell.readiness                 # the wake: the arm's move home
    assert ready[2] == 'empty', 'awake before part 2 reached the station: the wake cost the part nothing'
    assert any(parked_s <= t <= woken for t in at_rest_s), 'the arm at its rest pose while parked'
    assert True in standby_commands[:-1] and standby_commands[-1] is False, standby_commands   # on, then off
    assert any(parked_s + 1.0 < t < woken and w < DRIVE_STANDBY_W + 1.0 for t, w in input_power), \
        'the drive drew its standby power while parked'
    # Energy: the cell's standing draw in standby is a fraction of its draw when ready.
    # Energy: part 2's share runs from part 1's departure, so it holds the whole standby as the state 'idle'.
    cell.wait('the energy of both parts', lambda: energy and len(energy[-1]['parts']) == 2, 60)
    standby_s = woken - parked_s
    idle = energy[-1]['parts'][1]['by_state_source_wh']['idle']
    standing_w = (idle['arm'] + idle['arc'] + idle['conveyor']) * 3600.0 / standby_s   # the AGVs drive on their own
    assert 25.0 < standing_w < 40.0, (standing_w, standby_s, energy[-1])   # arm 20 + source 8 + drive 3 W
