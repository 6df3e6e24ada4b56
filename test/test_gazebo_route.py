"""The Gazebo route without Gazebo: SDFormat accepts the world and the models, the bridge holds the contract.

Gazebo itself cannot run here; these tests read what it would load (the expanded descriptions converted by
SDFormat's own `ign sdf -p`, the world, the bridge and controller files) against the simulation contract
(cell_control.sim.interface) and the message pairs ros_gz_bridge (jazzy) supports.
"""
import importlib.util
import math
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml
from conftest import REPO

from cell_control.cell.description import expand_xacro, home_positions, load_layout, share_dir
from cell_control.sim.gz_models import agv_urdf, pool_part_urdf
from cell_control.sim.interface import (AGV_NAMES, BRIDGE_QOS, DEFAULT_PARTS_IN_POOL, GZ_WORLD, SOURCE_AGV,
                                        TRANSIENT_LOCAL, WORLD_FRAME, bridge_entries, load_pose, parking_pose,
                                        part_name, sim_topics)

LAUNCH_ARGUMENTS = {'world', 'gui', 'parts_in_pool'}
ARM_JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint', 'wrist_1_joint', 'wrist_2_joint',
              'wrist_3_joint']
PAIRS_FILE = REPO / 'test' / 'data' / 'ros_gz_bridge_jazzy_pairs.txt'


def ign_sdf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['ign', 'sdf', *args], capture_output=True, text=True, timeout=60)


def to_sdf(urdf: str, tmp_path_factory, name: str) -> ET.Element:
    """Return the <model> SDFormat makes of a URDF, as Gazebo's spawner would."""
    path = tmp_path_factory.mktemp('urdf') / f'{name}.urdf'
    path.write_text(urdf)
    result = ign_sdf('-p', str(path))
    assert result.returncode == 0, result.stderr
    return ET.fromstring(result.stdout).find('model')


@pytest.fixture(scope='module')
def bridge() -> list[dict]:
    with open(share_dir() / 'config' / 'gz_bridge.yaml', encoding='utf-8') as stream:
        return yaml.safe_load(stream)


@pytest.fixture(scope='module')
def gz_models(tmp_path_factory) -> dict[str, ET.Element]:
    """Every model Gazebo spawns, by model name: the cell, the AGVs and the part pool."""
    models = {'cell': to_sdf(expand_xacro('cell', sim_backend='gazebo'), tmp_path_factory, 'cell')}
    models.update({agv: to_sdf(agv_urdf(agv), tmp_path_factory, agv) for agv in AGV_NAMES})
    models.update({part_name(i): to_sdf(pool_part_urdf(i), tmp_path_factory, part_name(i))
                   for i in range(1, DEFAULT_PARTS_IN_POOL + 1)})
    return models


def world_root() -> ET.Element:
    return ET.parse(share_dir() / 'config' / 'gazebo_world.sdf').getroot().find('world')


def plugins(model: ET.Element, filename: str) -> list[ET.Element]:
    return [p for p in model.findall('plugin') if p.get('filename') == filename]


def gz_endpoints(name: str, model: ET.Element) -> tuple[set, set]:
    """Return the (gz topic, gz type) pairs the stock systems of a model publish and subscribe.

    Topics as the systems of gz-sim 8.10.0 name them, with their defaults where the element is absent.
    """
    produced, consumed = set(), set()

    def text(plugin: ET.Element, element: str, default: str) -> str:
        return plugin.findtext(element) or default

    for plugin in model.findall('plugin'):
        kind = plugin.get('filename')
        if kind == 'gz-sim-joint-state-publisher-system':
            produced.add((text(plugin, 'topic', f'/world/{GZ_WORLD}/model/{name}/joint_state'), 'gz.msgs.Model'))
        elif kind == 'gz-sim-diff-drive-system':
            consumed.add((text(plugin, 'topic', f'/model/{name}/cmd_vel'), 'gz.msgs.Twist'))
            produced.add((text(plugin, 'odom_topic', f'/model/{name}/odometry'), 'gz.msgs.Odometry'))
            produced.add((text(plugin, 'tf_topic', f'/model/{name}/tf'), 'gz.msgs.Pose_V'))
        elif kind == 'gz-sim-odometry-publisher-system':
            produced.add((text(plugin, 'odom_topic', f'/model/{name}/odometry'), 'gz.msgs.Odometry'))
            produced.add((text(plugin, 'tf_topic', f'/model/{name}/pose'), 'gz.msgs.Pose_V'))
        elif kind == 'gz-sim-track-controller-system':
            default = f'/model/{name}/link/{plugin.findtext("link")}/track_cmd_vel'
            consumed.add((text(plugin, 'velocity_topic', default), 'gz.msgs.Double'))
        elif kind == 'gz-sim-joint-position-controller-system':
            default = f'/model/{name}/joint/{plugin.findtext("joint_name")}/0/cmd_pos'
            consumed.add((text(plugin, 'topic', default), 'gz.msgs.Double'))
        elif kind == 'gz-sim-triggered-publisher-system':
            trigger = plugin.find('input')
            consumed.add((trigger.get('topic'), trigger.get('type')))
            produced.update((output.get('topic'), output.get('type')) for output in plugin.findall('output'))
    for sensor in model.iter('sensor'):
        if sensor.get('type') == 'force_torque':
            produced.add((sensor.findtext('topic'), 'gz.msgs.Wrench'))
    return produced, consumed


def test_world_sdf_is_valid_and_has_the_systems():
    path = share_dir() / 'config' / 'gazebo_world.sdf'
    result = ign_sdf('-k', str(path))
    assert result.returncode == 0 and 'Valid' in result.stdout, result.stdout + result.stderr
    world = world_root()
    assert world.get('name') == GZ_WORLD
    assert {'gz-sim-physics-system', 'gz-sim-user-commands-system', 'gz-sim-scene-broadcaster-system',
            'gz-sim-forcetorque-system'} <= {p.get('filename') for p in world.findall('plugin')}


def test_a_broken_world_is_refused_by_the_checker(tmp_path):
    broken = tmp_path / 'broken.sdf'
    broken.write_text('<sdf version="1.9"><world name="w"><model name="m"><link name="l"/>'
                      '<joint name="j" type="revolute"><parent>l</parent><child>nope</child></joint>'
                      '</model></world></sdf>')
    assert ign_sdf('-k', str(broken)).returncode != 0


def test_sdformat_reserves_the_world_name_world(tmp_path):
    """Why GZ_WORLD is not `world`: the /sim/poses frame comes from the publishers' odom_frame instead."""
    world = tmp_path / 'world.sdf'
    world.write_text('<sdf version="1.9"><world name="world"><model name="m"><link name="l"/></model></world></sdf>')
    result = ign_sdf('-k', str(world))
    assert result.returncode != 0 and 'reserved' in result.stdout + result.stderr


@pytest.mark.parametrize('backend', ['gazebo', 'mujoco'])
def test_sdformat_converts_the_cell(backend, tmp_path_factory):
    model = to_sdf(expand_xacro('cell', sim_backend=backend), tmp_path_factory, f'cell_{backend}')
    links = {link.get('name') for link in model.findall('link')}
    joints = {joint.get('name'): joint for joint in model.findall('joint')}
    # SDFormat drops massless links with their children: the conveyor and the tool must survive.
    assert {'conveyor_belt', 'station_stop', 'torch_nozzle', 'wrist_3_link'} <= links
    assert {'conveyor_belt_joint', 'station_stop_joint', 'tool_cross_slide_joint'} <= set(joints)
    clamp_jaws = {'station_clamp_left_joint', 'station_clamp_right_joint'}
    if backend == 'mujoco':
        assert not clamp_jaws & set(joints) and not model.findall('plugin')
        return
    assert clamp_jaws <= set(joints)
    sensor = joints['force_sensor_joint'].find('sensor')
    assert sensor.get('type') == 'force_torque' and sensor.findtext('topic') == '/weld_tool/wrench'
    assert sensor.findtext('gz_frame_id') == 'force_sensor'
    assert {'gz_ros2_control-system', 'gz-sim-track-controller-system',
            'gz-sim-joint-state-publisher-system'} <= {p.get('filename') for p in model.findall('plugin')}


def test_clamp_jaws_close_onto_the_part_from_both_sides(gz_models):
    layout = load_layout()
    joints = {j.get('name'): j for j in gz_models['cell'].findall('joint')}
    faces = []
    for side in ('left', 'right'):
        joint = joints[f'station_clamp_{side}_joint']
        y = float(joint.findtext('pose').split()[1])
        direction = float(joint.find('axis').findtext('xyz').split()[1])
        travel = float(joint.find('axis').find('limit').findtext('upper'))
        assert abs(y) > layout['conveyor']['width'] / 2                  # open: clear of the belt
        faces.append(y + direction * travel)                               # closed face
    assert faces[0] == pytest.approx(-faces[1])                             # self-centring
    assert 0 < faces[0] < layout['part']['width'] / 2                       # closed: squeezing the part


def test_the_arm_starts_at_the_home_pose_and_joint_states_carry_the_contract_joints(gz_models):
    urdf = ET.fromstring(expand_xacro('cell', sim_backend='gazebo'))
    initial = {j.get('name'): float(j.find("state_interface[@name='position']/param").text)
               for j in urdf.findall('ros2_control/joint')}
    assert initial == dict(zip(ARM_JOINTS, home_positions()))
    (publisher,) = plugins(gz_models['cell'], 'gz-sim-joint-state-publisher-system')
    assert [j.text for j in publisher.findall('joint_name')] == ARM_JOINTS + ['tool_cross_slide_joint']


def test_track_joints_are_held_still(gz_models):
    """TrackController moves the contact surface only: the belt's and decks' joints are held at 0."""
    for name, joint in [('cell', 'conveyor_belt_joint')] + [(agv, 'deck_joint') for agv in AGV_NAMES]:
        held = [p for p in plugins(gz_models[name], 'gz-sim-joint-position-controller-system')
                if p.findtext('joint_name') == joint]
        assert len(held) == 1 and held[0].findtext('use_velocity_commands') == 'true', (name, joint)
        assert float(held[0].findtext('initial_position')) == 0.0


def test_bridge_file_is_the_contract(bridge):
    assert bridge == bridge_entries()
    assert len({e['ros_topic_name'] for e in bridge}) == len(bridge), 'a topic is bridged twice'


def test_every_bridge_entry_is_a_pair_ros_gz_bridge_supports(bridge):
    pairs = {tuple(line.split()) for line in PAIRS_FILE.read_text().splitlines()
             if line.strip() and not line.startswith('#')}
    assert len(pairs) > 60   # the whole mappings.py list, not a fragment
    unsupported = [(e['ros_type_name'], e['gz_type_name']) for e in bridge
                   if (e['ros_type_name'], e['gz_type_name']) not in pairs]
    assert unsupported == []


def test_every_bridge_entry_has_a_gz_producer_or_consumer(bridge, gz_models):
    produced, consumed = {('/clock', 'gz.msgs.Clock')}, set()   # gz-sim's SimulationRunner publishes /clock
    for name, model in gz_models.items():
        model_produced, model_consumed = gz_endpoints(name, model)
        produced |= model_produced
        consumed |= model_consumed
    for entry in bridge:
        endpoint = (entry['gz_topic_name'], entry['gz_type_name'])
        if entry['direction'] == 'GZ_TO_ROS':
            assert endpoint in produced, f'nothing in gz publishes {endpoint}'
        else:
            assert entry['direction'] == 'ROS_TO_GZ'
            assert endpoint in consumed, f'nothing in gz subscribes to {endpoint}'
    # every set-point a TriggeredPublisher sends reaches a controller
    assert {t for t in produced if t[0].endswith('/position')} <= consumed


def test_contract_topics_are_bridged_with_the_bridge_qos_or_served_by_gz_ros2_control():
    for topic in sim_topics():
        if topic.bridged:
            assert topic.qos == BRIDGE_QOS, topic.name
        else:
            assert topic.direction == 'in' and topic.name.startswith('/arm_controller/'), topic.name
    scaling = next(t for t in sim_topics() if t.name == '/arm_controller/speed_scaling_input')
    assert scaling.qos.durability == TRANSIENT_LOCAL and scaling.ros_type == 'control_msgs/msg/SpeedScalingFactor'


def test_sim_poses_are_published_in_the_world_frame_for_every_agv_and_pool_part(gz_models):
    for name, model in gz_models.items():
        if name == 'cell':
            continue
        (publisher,) = plugins(model, 'gz-sim-odometry-publisher-system')
        assert publisher.findtext('odom_frame') == WORLD_FRAME
        assert publisher.findtext('robot_base_frame') == name
        assert publisher.findtext('dimensions') == '3' and publisher.findtext('odom_topic') == '/sim/poses'


def set_pose_requests(name: str, model: ET.Element) -> dict[str, tuple[int, dict[str, float]]]:
    """Return, per trigger topic, the matched pool index and the requested position and orientation."""
    requests = {}
    for plugin in plugins(model, 'gz-sim-triggered-publisher-system'):
        service = plugin.find('service')
        assert service.get('name') == f'/world/{GZ_WORLD}/set_pose' and service.get('reqType') == 'gz.msgs.Pose'
        index = int(plugin.find('input').findtext('match').split(':')[1])
        values = {f'{block}.{key}': float(value) for block, body in
                  re.findall(r'(position|orientation) \{([^}]*)\}', service.get('reqMsg'))
                  for key, value in re.findall(r'(\w+): (\S+)', body)}
        assert service.get('reqMsg').startswith(f'name: "{name}" ')   # the name Gazebo spawns it under
        requests[plugin.find('input').get('topic')] = (index, values)
    return requests


@pytest.mark.parametrize('index', [1, DEFAULT_PARTS_IN_POOL])
def test_pool_part_is_loaded_on_the_source_deck_and_parked_at_its_slot(index, gz_models):
    layout = load_layout()
    requests = set_pose_requests(part_name(index), gz_models[part_name(index)])
    assert set(requests) == {'/world/load_part', '/world/park_part'}
    home = layout['agv']['home'][SOURCE_AGV]
    for topic, pose in (('/world/load_part', load_pose()), ('/world/park_part', parking_pose(index))):
        matched, values = requests[topic]
        assert matched == index
        assert (values['position.x'], values['position.y'], values['position.z']) == pytest.approx(
            (pose.x, pose.y, pose.z))
        assert 2 * math.atan2(values['orientation.z'], values['orientation.w']) == pytest.approx(pose.yaw)
    assert (load_pose().x, load_pose().y) == (home['x'], home['y'])
    assert layout['agv']['deck_top_z'] < load_pose().z < layout['agv']['deck_top_z'] + 0.01
    assert parking_pose(index).z == 0.0   # resting on the floor


def test_pool_indices_are_one_based():
    with pytest.raises(ValueError, match='1-based'):
        pool_part_urdf(0)


def test_parking_slots_are_apart_and_outside_the_cell():
    layout = load_layout()
    slots = [parking_pose(i) for i in range(1, DEFAULT_PARTS_IN_POOL + 1)]
    assert min(b.x - a.x for a, b in zip(slots, slots[1:])) > layout['part']['length']
    homes_y = [home['y'] for home in layout['agv']['home'].values()]
    assert all(slot.y > max(homes_y) + layout['agv']['width'] for slot in slots)


def test_controllers_yaml_drives_the_six_arm_joints_with_speed_scaling():
    with open(share_dir() / 'config' / 'ros2_controllers.yaml', encoding='utf-8') as stream:
        controllers = yaml.safe_load(stream)
    manager = controllers['controller_manager']['ros__parameters']
    assert manager['arm_controller']['type'] == 'joint_trajectory_controller/JointTrajectoryController'
    assert manager['joint_state_broadcaster']['type'] == 'joint_state_broadcaster/JointStateBroadcaster'
    arm = controllers['arm_controller']['ros__parameters']
    urdf = ET.fromstring(expand_xacro('cell', sim_backend='gazebo'))
    assert arm['joints'] == [j.get('name') for j in urdf.findall('ros2_control/joint')] == ARM_JOINTS
    # position only: the JTC (>= 4.39) then reads ~/speed_scaling_input
    assert arm['command_interfaces'] == ['position']
    assert arm['state_interfaces'] == ['position', 'velocity']
    assert arm['speed_scaling'] == {'initial_scaling_factor': 1.0}
    assert not {'state_publish_rate', 'open_loop_control'} & set(arm)   # gone / deprecated in Jazzy's JTC
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
    assert declared['parts_in_pool'].default_value[0].text == str(DEFAULT_PARTS_IN_POOL)
