"""Every node drops a message with a NaN or infinity in a value it uses (issue 8), over real DDS.

Each node keeps running, does not act on the message (nothing stored, nothing commanded), and reports it on
`/diagnostics` as `<node>: inputs` (WARN, with the count per topic and field). One process per node for the
module: the simulation on a domain of its own (the emulated VFD would drive its belt), the others together.
"""
from __future__ import annotations

import json
import math
import struct
import threading
from typing import Callable

import pytest

rclpy = pytest.importorskip('rclpy')

from builtin_interfaces.msg import Duration, Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import TwistStamped, Vector3Stamped, WrenchStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState, PointCloud2  # noqa: E402
from std_msgs.msg import Float64, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from cell_control.cell.description import load_layout  # noqa: E402
from cell_control.logistics.agv_navigation import Pose2D, home_pose, odom_to_world  # noqa: E402
from cell_control.motion.kinematics import load_kinematics  # noqa: E402
from cell_control.nodes.common import SPEED_SCALING_TOPIC, SPEED_SCALING_TYPE  # noqa: E402
from cell_control.nodes.seam_cloud import seam_to_cloud  # noqa: E402
from cell_control.testing import (NodeProcesses, RosDomain, RosProbe, call_service, wait_for,  # noqa: E402
                                  wait_for_service)
from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement  # noqa: E402

pytestmark = pytest.mark.integration
WAIT_S = 30.0
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
ARM_JOINTS = list(load_kinematics().joint_names)
AGV = 'agv_1'


class Graph:
    """The probe's view of one domain: the latest status of each name on /diagnostics, and chosen topics."""

    def __init__(self, probe: RosProbe) -> None:
        self.node = probe.node
        self.lock = threading.Lock()
        self.statuses: dict[str, dict[str, str]] = {}
        self.messages: dict[str, list] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, RELIABLE)
        self._publishers: dict[str, object] = {}

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.lock:
            for status in msg.status:
                self.statuses[status.name] = {'level': status.level,
                                              'message': status.message,
                                              **{kv.key: kv.value for kv in status.values}}

    def record(self, msg_type, topic: str, qos=RELIABLE) -> None:
        self.messages[topic] = []
        self.node.create_subscription(msg_type, topic, lambda msg: self._keep(topic, msg), qos)

    def _keep(self, topic: str, msg) -> None:
        with self.lock:
            self.messages[topic].append(msg)

    def received(self, topic: str) -> list:
        with self.lock:
            return list(self.messages[topic])

    def publish(self, topic: str, msg, qos=RELIABLE) -> None:
        if topic not in self._publishers:
            self._publishers[topic] = self.node.create_publisher(type(msg), topic, qos)
        self._publishers[topic].publish(msg)

    def status(self, name: str, condition: Callable[[dict[str, str]], bool], what: str) -> dict[str, str]:
        """Wait for the status `name` to satisfy `condition`; return its values (with 'level' and 'message')."""
        def check() -> dict[str, str] | None:
            with self.lock:
                values = self.statuses.get(name)
            return values if values is not None and condition(values) else None
        return wait_for(check, WAIT_S, what)

    def until(self, publish: Callable[[], None], condition: Callable[[], object], what: str) -> None:
        """Publish again and again until `condition` holds: the first messages may go out before discovery."""
        wait_for(lambda: (publish(), condition())[1], WAIT_S, what, poll_s=0.1)

    def now(self) -> Time:
        return self.node.get_clock().now().to_msg()


def warns(*inputs: str, count: int | None = None) -> Callable[[dict[str, str]], bool]:
    """Condition: an inputs status at WARN that counts each of `inputs` ('<topic> <field>'), `count` times if given."""
    def check(values: dict[str, str]) -> bool:
        return values['level'] == DiagnosticStatus.WARN and all(
            key in values and (count is None or values[key] == str(count)) for key in inputs)
    return check


@pytest.fixture(scope='module')
def sim(tmp_path_factory):
    """cell_sim alone on its domain, and a probe there."""
    directory = tmp_path_factory.mktemp('non_finite_sim')
    with RosDomain() as domain, NodeProcesses(domain.id, directory / 'logs') as processes:
        processes.start_node('cell_sim', 'real_time_factor:=1.0')
        with RosProbe(domain.id) as probe:
            graph = Graph(probe)
            graph.record(JointState, '/joint_states')
            yield processes, graph
        print(processes.tail('cell_sim'))


@pytest.fixture(scope='module')
def devices(tmp_path_factory):
    """The conveyor driver (emulated VFD), the coordinator, the fleet and the weld adjuster on one domain."""
    directory = tmp_path_factory.mktemp('non_finite_devices')
    with RosDomain() as domain, NodeProcesses(domain.id, directory / 'logs') as processes:
        processes.start_node('conveyor_driver', 'emulate:=true', 'emulator_acceleration_m_s2:=2.0')
        processes.start_node('coordinator', f'ledger_path:={directory / "ledger.sqlite"}',
                             f'records_path:={directory / "records.sqlite"}')
        processes.start_node('fleet_sim', 'parts:=0', 'run_id:=T')
        processes.start_node('weld_adjuster', 'max_sample_age_s:=1.0')   # a loaded machine delays samples
        with RosProbe(domain.id) as probe:
            graph = Graph(probe)
            for msg_type, topic in ((Float64, '/conveyor/belt_speed'), (String, '/conveyor/fault'),
                                    (SPEED_SCALING_TYPE, SPEED_SCALING_TOPIC), (Float64, '/weld_tool/cross_slide'),
                                    (JointTrajectory, '/arm_controller/joint_trajectory'),
                                    (TwistStamped, '/weld/travel_speed'), (WrenchStamped, '/weld/contact_force'),
                                    (Vector3Stamped, '/weld/lateral_correction')):
                graph.record(msg_type, topic, LATCHED if topic == '/conveyor/fault' else RELIABLE)
            graph.record(String, '/cell/state', LATCHED)
            yield processes, graph
        for name in processes.processes:
            print(processes.tail(name))


def belt_velocity(state: JointState) -> float:
    return state.velocity[list(state.name).index('conveyor_belt_joint')]


def test_cell_sim_drops_non_finite_commands(sim) -> None:
    processes, graph = sim
    graph.until(lambda: graph.publish('/conveyor/belt_speed', Float64(data=0.1)),
                lambda: [s for s in graph.received('/joint_states') if belt_velocity(s) == 0.1],
                'the simulated belt to run at the commanded 0.1 m/s')
    graph.publish('/conveyor/belt_speed', Float64(data=math.nan))
    graph.publish('/conveyor/belt_speed', Float64(data=-math.inf))
    point = JointTrajectoryPoint(positions=[0.0, math.nan, 0.0, 0.0, 0.0, 0.0], time_from_start=Duration(sec=1))
    graph.publish('/arm_controller/joint_trajectory', JointTrajectory(joint_names=ARM_JOINTS, points=[point]))
    graph.status('cell_sim: inputs', warns('/conveyor/belt_speed data', count=2),
                 'cell_sim to report the two non-finite belt speeds')
    values = graph.status('cell_sim: inputs', warns('/arm_controller/joint_trajectory points[0].positions[1]'),
                          'cell_sim to report the non-finite trajectory')
    assert values['dropped_non_finite'] == '3'
    seen = len(graph.received('/joint_states'))
    wait_for(lambda: len(graph.received('/joint_states')) > seen + 10, WAIT_S, 'joint states after the drops')
    states = graph.received('/joint_states')[seen:]
    assert {belt_velocity(s) for s in states} == {0.1}, 'the belt kept its last finite command'
    assert all(math.isfinite(v) for s in states for v in s.position)
    assert graph.status('cell_sim: simulation', lambda v: True, 'the simulation status')['rejected_commands'] == '0'
    processes.check_running('after non-finite commands')


def test_conveyor_driver_never_writes_a_non_finite_speed_to_the_drive(devices) -> None:
    processes, graph = devices
    graph.until(lambda: graph.publish('/conveyor/speed_command', Float64(data=0.2)),
                lambda: [m for m in graph.received('/conveyor/belt_speed') if abs(m.data - 0.2) < 1e-3],
                'the emulated belt to reach 0.2 m/s')
    for bad in (math.nan, math.inf):
        graph.publish('/conveyor/speed_command', Float64(data=bad))
    graph.status('conveyor_driver: inputs', warns('/conveyor/speed_command data', count=2),
                 'the conveyor driver to report both non-finite speed commands')
    conveyor = graph.status('conveyor_driver: conveyor', lambda v: v['commanded_speed_m_s'] == '0.200',
                            'the conveyor status after the drops')
    assert conveyor['level'] == DiagnosticStatus.OK, conveyor['message']
    assert abs(graph.received('/conveyor/belt_speed')[-1].data - 0.2) < 1e-3
    assert graph.received('/conveyor/fault')[-1].data == ''
    graph.publish('/conveyor/speed_command', Float64(data=0.0))
    processes.check_running('after non-finite speed commands')


def feature(graph: Graph, sequence: int, readings: tuple[float, float, float, float] | None = None,
            flags: int = LOOKAHEAD_VALID | BEAD_VALID) -> PointCloud2:
    """A seam sample stamped now; `readings` (lateral m, gap, mismatch, bead mm) are written raw, NaN included."""
    stamp = graph.now()
    msg = seam_to_cloud(SeamMeasurement(stamp.sec + stamp.nanosec * 1e-9, sequence, flags, 0.5, 0.1, 0.0, 6.0))
    if readings is not None:
        y, gap, mismatch, bead = readings
        msg.data = struct.pack('<7fI', 0.0, y, 0.0, gap, mismatch, bead, float(flags), sequence)
    return msg


def stamp_key(msg) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def test_weld_adjuster_drops_a_non_finite_reading_and_takes_a_dropout(devices) -> None:
    processes, graph = devices
    client = wait_for_service(graph.node, '/weld_adjuster/start', Trigger, WAIT_S)
    assert call_service(client, Trigger.Request(), WAIT_S).success

    def answered(msg: PointCloud2) -> bool:
        return stamp_key(msg) in {stamp_key(m) for m in graph.received('/weld/travel_speed')}
    sequence = iter(range(1, 10_000))
    graph.until(lambda: graph.publish('/seam/features', feature(graph, next(sequence)), qos_profile_sensor_data),
                lambda: graph.received('/weld/travel_speed'), 'a setpoint answering a valid sample')
    bad = feature(graph, next(sequence), readings=(0.0, math.nan, 0.1, 6.0))
    graph.publish('/seam/features', bad, qos_profile_sensor_data)
    dropout = feature(graph, next(sequence), readings=(math.nan, math.nan, math.inf, math.nan), flags=0)
    graph.until(lambda: graph.publish('/seam/features', dropout, qos_profile_sensor_data), lambda: answered(dropout),
                'the setpoint answering the dropout (not an error)')
    values = graph.status('weld_adjuster: inputs', warns('/seam/features gap_mm', count=1),
                          'the adjuster to report the non-finite gap')
    assert values['dropped_non_finite'] == '1', 'the dropout was not counted as non-finite'
    assert not answered(bad), 'a setpoint answered the sample with a NaN gap'
    published = [graph.received(topic) for topic in ('/weld/travel_speed', '/weld/contact_force',
                                                     '/weld/lateral_correction', '/weld_tool/cross_slide')]
    assert all(math.isfinite(v) for v in [m.twist.linear.x for m in published[0]] +
               [m.wrench.force.z for m in published[1]] + [m.vector.y for m in published[2]] +
               [m.data for m in published[3]])
    client = wait_for_service(graph.node, '/weld_adjuster/stop', Trigger, WAIT_S)
    assert call_service(client, Trigger.Request(), WAIT_S).success
    processes.check_running('after a non-finite seam sample')


def odometry(x: float, yaw_z: float = 0.0) -> Odometry:
    msg = Odometry()
    msg.header.frame_id, msg.child_frame_id = f'{AGV}/odom', f'{AGV}/base_footprint'
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, 0.5
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = yaw_z, 1.0
    return msg


def test_coordinator_and_fleet_drop_non_finite_odometry_joints_and_speed(devices) -> None:
    processes, graph = devices
    # odometry is in <agv>/odom, which starts at the AGV's home pose; the fleet reports the world pose
    in_world = odom_to_world(home_pose(load_layout(), AGV), Pose2D(1.234, 0.5, 0.0))
    graph.until(lambda: graph.publish(f'/{AGV}/odom', odometry(1.234)),
                lambda: graph.statuses.get(f'fleet_sim: {AGV}', {}).get('x') == f'{in_world.x:.3f}',
                'the fleet to take a finite odometry')
    state_before = wait_for(lambda: graph.received('/cell/state'), WAIT_S, 'the cell state')[-1].data
    commands_before = {topic: len(graph.received(topic)) for topic in (
        SPEED_SCALING_TOPIC, '/arm_controller/joint_trajectory')}

    graph.publish(f'/{AGV}/odom', odometry(math.nan))
    graph.publish(f'/{AGV}/odom', odometry(1.0, yaw_z=math.inf))
    joints = JointState(name=ARM_JOINTS, position=[0.0] * 6)   # no velocities: allowed by the type, not usable
    joints.header.stamp = graph.now()
    graph.publish('/joint_states', joints)
    joints = JointState(name=ARM_JOINTS, position=[0.0, 0.0, math.nan, 0.0, 0.0, 0.0], velocity=[0.0] * 6)
    joints.header.stamp = graph.now()
    graph.publish('/joint_states', joints)
    speed = TwistStamped()
    speed.header.stamp, speed.twist.linear.x = graph.now(), math.inf
    graph.publish('/weld/travel_speed', speed)

    graph.status('fleet_sim: inputs', warns(f'/{AGV}/odom pose.pose.position.x',
                                            f'/{AGV}/odom pose.pose.orientation.z', count=1),
                 'the fleet to report both non-finite odometry messages')
    graph.status('coordinator: inputs', warns(
        f'/{AGV}/odom pose.pose.position.x', f'/{AGV}/odom pose.pose.orientation.z',
        f'/joint_states position.{ARM_JOINTS[2]}', '/weld/travel_speed twist.linear.x', count=1),
        'the coordinator to report the non-finite odometry, joint state and travel speed')
    assert graph.statuses[f'fleet_sim: {AGV}']['x'] == f'{in_world.x:.3f}', 'the fleet kept the last finite pose'
    assert json.loads(graph.received('/cell/state')[-1].data) == json.loads(state_before)
    assert {topic: len(graph.received(topic)) for topic in commands_before} == commands_before
    processes.check_running('after non-finite odometry, joint states and travel speed')
