"""The Gazebo route without Gazebo: SDFormat accepts the world and the cell, the bridge covers the interface."""
import importlib.util
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

from cell_control.cell.description import expand_xacro, share_dir
from cell_control.sim.interface import sim_topics

# The Gazebo transport type that ros_gz_bridge pairs with each ROS type of the interface.
GZ_TYPES = {
    'rosgraph_msgs/msg/Clock': 'gz.msgs.Clock',
    'sensor_msgs/msg/JointState': 'gz.msgs.Model',
    'trajectory_msgs/msg/JointTrajectory': 'gz.msgs.JointTrajectory',
    'std_msgs/msg/Float64': 'gz.msgs.Double',
    'std_msgs/msg/Bool': 'gz.msgs.Boolean',
    'visualization_msgs/msg/MarkerArray': 'gz.msgs.Marker_V',
    'geometry_msgs/msg/WrenchStamped': 'gz.msgs.Wrench',
    'geometry_msgs/msg/TwistStamped': 'gz.msgs.Twist',
    'geometry_msgs/msg/Vector3Stamped': 'gz.msgs.Vector3d',
    'sensor_msgs/msg/PointCloud2': 'gz.msgs.PointCloudPacked',
    'geometry_msgs/msg/Twist': 'gz.msgs.Twist',
    'nav_msgs/msg/Odometry': 'gz.msgs.Odometry',
}
DIRECTIONS = {'out': 'GZ_TO_ROS', 'in': 'ROS_TO_GZ'}
LAUNCH_ARGUMENTS = {'world', 'gui', 'parts'}


def ign_sdf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['ign', 'sdf', *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope='module')
def bridge() -> list[dict]:
    with open(share_dir() / 'config' / 'gz_bridge.yaml', encoding='utf-8') as stream:
        return yaml.safe_load(stream)


def test_world_sdf_is_valid_and_has_the_systems():
    path = share_dir() / 'config' / 'gazebo_world.sdf'
    result = ign_sdf('-k', str(path))
    assert result.returncode == 0 and 'Valid' in result.stdout, result.stdout + result.stderr
    plugins = {p.get('filename') for p in ET.parse(path).getroot().findall('world/plugin')}
    assert {'gz-sim-physics-system', 'gz-sim-user-commands-system', 'gz-sim-scene-broadcaster-system',
            'gz-sim-sensors-system', 'gz-sim-forcetorque-system', 'gz-sim-contact-system'} <= plugins


def test_a_broken_world_is_refused_by_the_checker(tmp_path):
    broken = tmp_path / 'broken.sdf'
    broken.write_text('<sdf version="1.9"><world name="w"><model name="m"><link name="l"/>'
                      '<joint name="j" type="revolute"><parent>l</parent><child>nope</child></joint>'
                      '</model></world></sdf>')
    assert ign_sdf('-k', str(broken)).returncode != 0


@pytest.mark.parametrize('name,args', [('cell', {'sim_backend': 'gazebo'}), ('cell', {'sim_backend': 'mujoco'}),
                                       ('agv', {'name': 'agv_1'}), ('part', {})])
def test_sdformat_converts_the_urdf(name, args, tmp_path):
    path = tmp_path / f'{name}.urdf'
    path.write_text(expand_xacro(name, **args))
    result = ign_sdf('-p', str(path))
    assert result.returncode == 0, result.stderr
    model = ET.fromstring(result.stdout).find('model')
    links = {link.get('name') for link in model.findall('link')}
    joints = {joint.get('name'): joint for joint in model.findall('joint')}
    if name == 'cell':
        # SDFormat drops massless links with their children: the conveyor and the tool must survive.
        assert {'conveyor_belt', 'station_stop', 'torch_nozzle', 'wrist_3_link'} <= links
        assert {'conveyor_belt_joint', 'station_stop_joint', 'tool_cross_slide_joint'} <= set(joints)
    if args.get('sim_backend') == 'gazebo':
        sensor = joints['force_sensor_joint'].find('sensor')
        assert sensor.get('type') == 'force_torque' and sensor.findtext('topic') == '/weld_tool/wrench'
        plugins = {p.get('filename') for p in model.findall('plugin')}
        assert {'gz_ros2_control-system', 'gz-sim-track-controller-system',
                'gz-sim-joint-state-publisher-system'} <= plugins
    if name == 'agv':
        plugins = {p.get('filename'): p for p in model.findall('plugin')}
        assert plugins['gz-sim-diff-drive-system'].findtext('topic') == '/agv_1/cmd_vel'
        assert plugins['gz-sim-track-controller-system'].findtext('velocity_topic') == '/agv_1/deck_speed'


def test_bridge_maps_every_simulation_topic_and_nothing_else(bridge):
    mapped = [entry['ros_topic_name'] for entry in bridge]
    assert len(mapped) == len(set(mapped)), 'a topic is bridged twice'
    assert set(mapped) == {topic.name for topic in sim_topics()}


@pytest.mark.parametrize('topic', sim_topics(), ids=lambda topic: topic.name)
def test_bridge_entry_has_the_same_ros_type_and_direction(bridge, topic):
    entry = next(e for e in bridge if e['ros_topic_name'] == topic.name)
    assert entry['ros_type_name'] == topic.ros_type
    assert entry['gz_type_name'] == GZ_TYPES[topic.ros_type]
    assert entry['direction'] == DIRECTIONS[topic.direction]
    assert entry['gz_topic_name'].startswith('/')


def test_bridge_topics_meet_the_gazebo_systems_of_the_description(bridge):
    """The gz side of the bridge uses the topics the plugins in the xacros listen or publish on."""
    gz_topic = {e['ros_topic_name']: e['gz_topic_name'] for e in bridge}
    cell = expand_xacro('cell', sim_backend='gazebo')
    for ros_topic in ('/conveyor/belt_speed', '/conveyor/station_stop', '/weld_tool/wrench', '/joint_states'):
        assert f'>{gz_topic[ros_topic]}<' in cell or f'"{gz_topic[ros_topic]}"' in cell, ros_topic
    agv = expand_xacro('agv', name='agv_2')
    for ros_topic in ('/agv_2/cmd_vel', '/agv_2/odom', '/agv_2/deck_speed'):
        assert f'>{gz_topic[ros_topic]}<' in agv, ros_topic


def test_controllers_yaml_drives_the_six_arm_joints():
    with open(share_dir() / 'config' / 'ros2_controllers.yaml', encoding='utf-8') as stream:
        controllers = yaml.safe_load(stream)
    manager = controllers['controller_manager']['ros__parameters']
    assert manager['arm_controller']['type'] == 'joint_trajectory_controller/JointTrajectoryController'
    assert manager['joint_state_broadcaster']['type'] == 'joint_state_broadcaster/JointStateBroadcaster'
    arm = controllers['arm_controller']['ros__parameters']
    urdf = ET.fromstring(expand_xacro('cell', sim_backend='gazebo'))
    assert arm['joints'] == [j.get('name') for j in urdf.findall('ros2_control/joint')]
    assert arm['command_interfaces'] == ['position']
    assert arm['state_interfaces'] == ['position', 'velocity']
    assert all(arm['constraints'][joint]['goal'] > 0 for joint in arm['joints'])


def test_gazebo_launch_declares_its_arguments():
    launch = pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    spec = importlib.util.spec_from_file_location('gazebo_launch', share_dir() / 'launch' / 'gazebo.launch.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, launch.LaunchDescription)
    declared = {arg.name: arg for arg in description.get_launch_arguments()}
    assert set(declared) == LAUNCH_ARGUMENTS
    for argument in declared.values():
        assert argument.description.endswith('.') and len(argument.description.split()) >= 6
    assert declared['gui'].choices == ['true', 'false'] and declared['gui'].default_value[0].text == 'false'
