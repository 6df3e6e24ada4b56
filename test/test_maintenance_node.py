"""The maintenance node as its own process, over DDS: parts simulated fast by publishing its inputs, and one
cheap end-to-end check with the conveyor driver's emulated drive behind a real Modbus link.
"""
import json
import threading

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger

from cell_control.drivers.vfd_emulator import running_current_a
from cell_control.testing import Latest, RosProbe, call_service, wait_for, wait_for_service

pytestmark = pytest.mark.integration

WAIT_S = 20.0
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
DRIFT = 'maintenance: weld_power/drift_estimate'
CURRENT = 'maintenance: conveyor/motor_current'


class MaintenanceProbe:
    def __init__(self, probe: RosProbe) -> None:
        self.node = probe.node
        self.lock = threading.Lock()
        self.statuses: dict[str, list[DiagnosticStatus]] = {}
        self.energy: dict = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, RELIABLE)
        self.node.create_subscription(String, '/cell/energy', self._on_energy, LATCHED)
        self.drift_pub = self.node.create_publisher(Float64, '/weld/drift_estimate', RELIABLE)
        self.state_pub = self.node.create_publisher(String, '/cell/state', LATCHED)
        self.speed_pub = self.node.create_publisher(Float64, '/conveyor/speed_command', RELIABLE)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                self.statuses.setdefault(status.name, []).append(status)

    def _on_energy(self, msg: String) -> None:
        with self.lock:
            self.energy = json.loads(msg.data)

    def last(self, name: str) -> DiagnosticStatus | None:
        with self.lock:
            return self.statuses[name][-1] if self.statuses.get(name) else None

    def value(self, name: str, key: str) -> str:
        status = self.last(name)
        return next((kv.value for kv in status.values if kv.key == key), '') if status else ''

    def part_done(self, delivered: int, state: str = 'running') -> None:
        """Count `delivered` parts as the coordinator does; the next part (P-<delivered + 1>) is at the station."""
        self.state_pub.publish(String(data=json.dumps({'state': state, 'stage': 'releasing', 'delivered': delivered,
                                                       'rejected': 0, 'station_part': f'P-{delivered + 1}'})))


def first_reading_recorded(cell: MaintenanceProbe) -> int:
    """Send parts with a drift reading of 0.0 until one is recorded; return how many parts were sent.

    A writer can see the node's reader before that reader has matched the writer, and what it sends meanwhile is
    lost; a recorded reading shows both topics matched both ways. The wait between tries is long against a record's
    few milliseconds, so at most rarely a second 0.0 is recorded (the tests read `last_seq`, not a count).
    """
    sent = 0

    def recorded() -> bool:
        nonlocal sent
        if cell.value(DRIFT, 'last_seq') not in ('', 'None'):   # 'None': nothing recorded yet
            return True
        cell.drift_pub.publish(Float64(data=0.0))
        sent += 1
        cell.part_done(sent)
        return False
    wait_for(recorded, 3 * WAIT_S, 'a first drift reading recorded', poll_s=1.0)
    return sent


def test_a_wearing_contact_tip_warns_before_its_limit_then_errors_and_a_reset_starts_again(node_processes, probe,
                                                                                           tmp_path):
    node_processes.start_node('maintenance', f'store_path:={tmp_path / "condition.sqlite"}',
                              'weld_power.drift_estimate.min_samples:=5', 'weld_power.drift_estimate.window:=20',
                              'weld_power.drift_estimate.warn_horizon:=10')
    cell = MaintenanceProbe(probe)
    wait_for(lambda: cell.drift_pub.get_subscription_count() >= 1 and cell.state_pub.get_subscription_count() >= 1,
             WAIT_S, 'the maintenance node subscribed')
    # The count before the first part, sent again until the node shows its indicators (the latched count is the
    # baseline the node counts parts from).
    wait_for(lambda: (cell.part_done(0), cell.last(DRIFT))[1], WAIT_S, 'the drift indicator on /diagnostics',
             poll_s=0.5)
    sent = first_reading_recorded(cell)   # the reading of part 0: the estimate falls 0.01 per part from there
    levels = {}                           # part -> level; the limit -0.25 is crossed at part 25
    for part in range(int(cell.value(DRIFT, 'last_seq')) + 1, 40):
        cell.drift_pub.publish(Float64(data=-0.01 * part))
        cell.part_done(sent + part)
        wait_for(lambda: cell.value(DRIFT, 'last_seq') == str(part), WAIT_S, f'part {part} recorded')
        levels[part] = cell.last(DRIFT).level
        if levels[part] == DiagnosticStatus.ERROR:
            break
    first_warn = min(p for p, level in levels.items() if level == DiagnosticStatus.WARN)
    assert 5 <= first_warn < 25 - 5, levels   # warned at least 5 parts before the crossing
    assert max(levels) >= 25 and levels[max(levels)] == DiagnosticStatus.ERROR, levels
    assert 'limit crossed' in cell.last(DRIFT).message
    warnings = [s.message for s in cell.statuses[DRIFT] if s.level == DiagnosticStatus.WARN]
    assert warnings and 'parts /' in warnings[0] and 'hours' in warnings[0]

    late = Latest(probe, String, '/maintenance/state', LATCHED)   # a late joiner gets the node's latest state

    def drift_state():
        entries = json.loads(late.msg.data) if late.msg else []
        return next((e for e in entries if e['prediction']['key'] == 'weld_power/drift_estimate'
                     and e['prediction']['level'] == 'ERROR'), None)
    entry = wait_for(drift_state, WAIT_S, 'the ERROR on the latched /maintenance/state')
    assert entry['indicator']['min_samples'] == 5 and entry['indicator']['window'] == 20   # the node's parameters
    assert entry['prediction']['message'] == cell.last(DRIFT).message

    client = wait_for_service(probe.node, '/maintenance/reset/weld_power', Trigger, WAIT_S)
    response = call_service(client, Trigger.Request(), WAIT_S)
    assert response.success and 'drift_estimate' in response.message
    wait_for(lambda: cell.last(DRIFT).level == DiagnosticStatus.OK and '0 of 5 samples' in cell.last(DRIFT).message,
             WAIT_S, 'the indicator OK again after the reset')


def test_end_to_end_the_drive_current_over_modbus_becomes_a_part_reading_and_energy(node_processes, probe,
                                                                                    tmp_path):
    node_processes.start_node('conveyor_driver', 'emulate:=true', 'emulator_acceleration_m_s2:=2.0')
    node_processes.start_node('maintenance', f'store_path:={tmp_path / "condition.sqlite"}')
    cell = MaintenanceProbe(probe)
    wait_for(lambda: cell.speed_pub.get_subscription_count() >= 1 and cell.state_pub.get_subscription_count() >= 1,
             WAIT_S, 'the driver and the maintenance node subscribed')
    cell.part_done(0)
    currents: list[float] = []
    probe.node.create_subscription(Float64, '/conveyor/motor_current', lambda m: currents.append(m.data),
                                   QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    cell.speed_pub.publish(Float64(data=0.3))
    # Two seconds of running belt (20 Hz): a node just started may sit out seconds on a loaded machine, and its
    # energy meter counts no interval longer than ENERGY_GAP_S between two readings it takes.
    wait_for(lambda: sum(a > 1.0 for a in list(currents)) >= 40, WAIT_S, 'the belt running: its current read')
    cell.part_done(1)
    wait_for(lambda: cell.value(CURRENT, 'samples') == '1', WAIT_S, 'one conveyor reading')
    assert float(cell.value(CURRENT, 'value')) == pytest.approx(running_current_a(0.0), abs=0.01)
    wait_for(lambda: len(cell.energy.get('parts', [])) == 1, WAIT_S, 'the part on /cell/energy')
    part = cell.energy['parts'][0]
    assert part['part'] == 'P-1' and part['by_source_wh']['conveyor'] > 0.0   # the one that left, not P-2 now there
    assert part['by_state_wh']['moving'] > 0.0 and part['by_state_wh']['welding'] == 0.0
