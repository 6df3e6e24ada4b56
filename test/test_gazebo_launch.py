"""The Gazebo route running: `gazebo.launch.py` serves the simulation contract, and `cell.launch.py sim:=gazebo`
runs the production cycle.

Needs ROS 2 Jazzy with Gazebo Harmonic, ros_gz and gz_ros2_control installed, and this package built in the
ament index; skipped elsewhere (this repository's CI machine has none of them).
"""
from __future__ import annotations

import math
import shutil

import pytest

from cell_control.cell.description import home_positions, load_layout
from cell_control.sim.interface import (AGV_NAMES, DEFAULT_PARTS_IN_POOL, WORLD_FRAME, load_pose, parking_pose,
                                        part_name)
from cell_control.testing import Latest, wait_for

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 180.0   # gz-sim, the spawns and the controllers on a loaded machine
MOVE_TIMEOUT_S = 30.0
POSE_TOLERANCE_M = 0.02
GZ_PACKAGES = ('ros_gz_sim', 'ros_gz_bridge', 'gz_ros2_control', 'joint_trajectory_controller', 'cell_control')


def gazebo_installed(node_processes, ros_domain) -> None:
    """Skip unless the Gazebo route can run; give the test's launches their own gz transport partition."""
    pytest.importorskip('launch_ros')
    packages = pytest.importorskip('ament_index_python.packages')
    for package in GZ_PACKAGES:
        try:
            packages.get_package_share_directory(package)
        except packages.PackageNotFoundError:
            pytest.skip(f'{package} is not installed: the Gazebo route needs ROS 2 Jazzy with Gazebo Harmonic')
    if shutil.which('ros2') is None:
        pytest.skip('no ros2 command on PATH')
    node_processes.env['GZ_PARTITION'] = f'cell_control_{ros_domain}'   # never meet another test's gz-sim


@pytest.fixture
def gazebo(node_processes, ros_domain):
    """Start the Gazebo route headless on the test's ROS domain and its own gz transport partition."""
    gazebo_installed(node_processes, ros_domain)
    node_processes.start('gazebo', ['ros2', 'launch', 'cell_control', 'gazebo.launch.py', 'gui:=false'])
    return node_processes


class Poses:
    """The latest /sim/poses world pose of every model, by child frame."""

    def __init__(self, probe) -> None:
        from nav_msgs.msg import Odometry
        self.by_model: dict = {}
        probe.node.create_subscription(Odometry, '/sim/poses', self._on, 10)

    def _on(self, msg) -> None:
        self.by_model[msg.child_frame_id] = msg

    def near(self, model: str, x: float, y: float, z: float) -> bool:
        odometry = self.by_model.get(model)
        if odometry is None:
            return False
        t = odometry.pose.pose.position
        return math.dist((t.x, t.y, t.z), (x, y, z)) < POSE_TOLERANCE_M


def test_gazebo_publishes_clock_joint_states_and_the_world_poses_of_the_pool_and_agvs(gazebo, probe):
    from rclpy.qos import DurabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState
    poses = Poses(probe)
    clock = Latest(probe, Clock, '/clock', 10)
    joints = Latest(probe, JointState, '/joint_states', 10)
    wait_for(lambda: clock.msg is not None, START_TIMEOUT_S, '/clock from gz-sim through the bridge')
    models = {part_name(i) for i in range(1, DEFAULT_PARTS_IN_POOL + 1)} | set(AGV_NAMES)
    wait_for(lambda: models <= set(poses.by_model), START_TIMEOUT_S, f'/sim/poses of {sorted(models)}')
    assert {poses.by_model[m].header.frame_id for m in models} == {WORLD_FRAME}
    for index in range(1, DEFAULT_PARTS_IN_POOL + 1):
        slot = parking_pose(index)
        assert poses.near(part_name(index), slot.x, slot.y, slot.z), poses.by_model[part_name(index)]
    for agv, home in load_layout()['agv']['home'].items():
        assert poses.near(agv, home['x'], home['y'], 0.0), poses.by_model[agv]
    wait_for(lambda: joints.msg is not None, START_TIMEOUT_S, '/joint_states from gz-sim')
    arm = dict(zip(joints.msg.name, joints.msg.position))
    assert set(arm) == {'shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint', 'wrist_1_joint',
                        'wrist_2_joint', 'wrist_3_joint', 'tool_cross_slide_joint'}
    home = dict(zip(['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint', 'wrist_1_joint',
                     'wrist_2_joint', 'wrist_3_joint'], home_positions()))
    assert all(abs(arm[name] - q) < 0.05 for name, q in home.items()), arm
    # the arm controller (JTC >= 4.39) reads the speed scaling factor, latched
    readers = wait_for(lambda: probe.node.get_subscriptions_info_by_topic('/arm_controller/speed_scaling_input'),
                       START_TIMEOUT_S, 'the arm controller subscribing to speed_scaling_input')
    assert readers[0].qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL


def test_load_part_puts_a_pool_part_on_the_source_deck_and_park_part_returns_it(gazebo, probe):
    from std_msgs.msg import UInt32
    poses = Poses(probe)
    load = probe.node.create_publisher(UInt32, '/world/load_part', 10)
    park = probe.node.create_publisher(UInt32, '/world/park_part', 10)
    wait_for(lambda: load.get_subscription_count() and park.get_subscription_count(), START_TIMEOUT_S,
             'the bridge subscribing to /world/load_part and /world/park_part')
    slot, deck = parking_pose(2), load_pose()
    wait_for(lambda: poses.near('part_2', slot.x, slot.y, slot.z), START_TIMEOUT_S, 'part_2 at its parking slot')
    load.publish(UInt32(data=2))
    # it lands on the deck (DECK_DROP_M above it) and settles
    wait_for(lambda: poses.near('part_2', deck.x, deck.y, deck.z), MOVE_TIMEOUT_S, 'part_2 on the source deck')
    other = parking_pose(1)
    assert poses.near('part_1', other.x, other.y, other.z), 'another pool part moved'
    park.publish(UInt32(data=2))
    wait_for(lambda: poses.near('part_2', slot.x, slot.y, slot.z), MOVE_TIMEOUT_S, 'part_2 back at its slot')


def test_cell_launch_with_gazebo_runs_the_production_cycle(node_processes, ros_domain, probe, tmp_path):
    """`ros2 launch cell_control cell.launch.py sim:=gazebo`: the parts brought, welded (seam sensor and weld
    process in the sensor node) and taken away; the ledger delivers each, the process model scores each weld."""
    import json

    import yaml
    from std_msgs.msg import String

    from cell_control.bringup import default_params_file, describe_cell
    from cell_control.cell.ledger import PartLedger, PartState
    from cell_control.nodes.common import LATCHED
    from cell_control.testing import CellView

    gazebo_installed(node_processes, ros_domain)
    ledger_path = tmp_path / 'ledger.sqlite'
    parameters = yaml.safe_load(default_params_file().read_text())
    for node, values in {'fleet_sim': {'run_id': 'G'},
                         'coordinator': {'ledger_path': str(ledger_path), 'records_path': str(tmp_path / 'rec.sqlite')},
                         'maintenance': {'store_path': str(tmp_path / 'condition.sqlite')}}.items():
        parameters.setdefault(node, {}).setdefault('ros__parameters', {}).update(values)
    params_file = tmp_path / 'params.yaml'
    params_file.write_text(yaml.safe_dump(parameters))
    parts = {s.name: s for s in describe_cell('gazebo', params_file=params_file)}['fleet_sim'].parameters['parts']
    node_processes.start('cell', ['ros2', 'launch', 'cell_control', 'cell.launch.py', 'sim:=gazebo', 'gui:=false',
                                  f'params_file:={params_file}'])
    cell = CellView(probe)
    scores = Latest(probe, String, '/sim/weld_result', LATCHED, keep=True)
    wait_for(lambda: 'state' in cell.state(), START_TIMEOUT_S, 'the coordinator on /cell/state')
    ok, message = cell.trigger('/cell/start', MOVE_TIMEOUT_S)
    assert ok, message
    wait_for(lambda: int(cell.state().get('delivered', 0)) + int(cell.state().get('rejected', 0)) == parts,
             parts * 300.0, f'the {parts} parts to leave the cell (Gazebo runs at about real time)', poll_s=0.5)
    assert cell.state()['delivered'] == parts, cell.state()
    with PartLedger(ledger_path) as ledger:
        states = {p.part_id: p.state for p in ledger.parts()}
    assert states == {f'P-G-{i}': PartState.DELIVERED for i in range(1, parts + 1)}
    welds = [json.loads(m.data) for m in scores.all]
    assert len(welds) == parts and all(w['interrupted'] == '' and w['quality_pct'] >= 95.0 for w in welds), welds
    node_processes.check_running('the production cycle')
