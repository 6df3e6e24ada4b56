"""The cell description: expands, parses, matches the DH kinematics and the layout, loads in MuJoCo."""
import math
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest
import xacro
import yaml

from cell_control.cell import description
from cell_control.cell.description import DescriptionError, expand_xacro, load_layout, share_dir

ARM_JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint',
              'wrist_1_joint', 'wrist_2_joint', 'wrist_3_joint']
ARM_LINKS = ['base_link', 'shoulder_link', 'upper_arm_link', 'forearm_link',
             'wrist_1_link', 'wrist_2_link', 'wrist_3_link', 'flange', 'tool0']
CELL_LINKS = ARM_LINKS + ['world', 'pedestal', 'force_sensor', 'torch_body', 'torch_nozzle', 'weld_tcp',
                          'seam_sensor', 'conveyor_frame', 'conveyor_belt', 'photo_eye_infeed',
                          'photo_eye_station', 'photo_eye_outfeed', 'weld_station', 'station_fixture',
                          'station_stop', 'dock_inbound', 'dock_outbound']
CELL_JOINTS = ARM_JOINTS + ['force_sensor_joint', 'tool_cross_slide_joint', 'conveyor_belt_joint',
                            'station_stop_joint']
VARIANTS = [('cell', {}), ('cell', {'sim_backend': 'gazebo'}), ('cell', {'sim_backend': 'none'}),
            ('agv', {'name': 'agv_1'}), ('part', {})]


class Urdf:
    """Links, joints and forward kinematics read straight from URDF text."""

    def __init__(self, text: str) -> None:
        self.root = ET.fromstring(text)
        self.links = {link.get('name'): link for link in self.root.findall('link')}
        self.joints = {joint.get('name'): joint for joint in self.root.findall('joint')}
        self.parent_joint = {joint.find('child').get('link'): joint for joint in self.joints.values()}

    def mass(self, link: str) -> float:
        mass = self.links[link].find('inertial/mass')
        return 0.0 if mass is None else float(mass.get('value'))

    def pose(self, link: str, q: dict[str, float] | None = None, relative_to: str | None = None) -> np.ndarray:
        """4x4 pose of `link` in `relative_to` (default: the root), composing joint origins and motions."""
        q = q or {}
        pose = np.eye(4)
        while link in self.parent_joint and link != relative_to:
            joint = self.parent_joint[link]
            pose = joint_transform(joint, q.get(joint.get('name'), 0.0)) @ pose
            link = joint.find('parent').get('link')
        assert relative_to is None or link == relative_to, f'{relative_to} is not an ancestor'
        return pose


def _vector(element: ET.Element | None, attribute: str, default: str) -> np.ndarray:
    return np.array([float(v) for v in (default if element is None else element.get(attribute, default)).split()])


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch),
                              math.cos(yaw), math.sin(yaw))
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    x, y, z = axis / np.linalg.norm(axis)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def joint_transform(joint: ET.Element, value: float) -> np.ndarray:
    origin = joint.find('origin')
    transform = np.eye(4)
    transform[:3, :3] = rpy_matrix(*_vector(origin, 'rpy', '0 0 0'))
    transform[:3, 3] = _vector(origin, 'xyz', '0 0 0')
    axis = _vector(joint.find('axis'), 'xyz', '1 0 0')
    motion = np.eye(4)
    if joint.get('type') in ('revolute', 'continuous'):
        motion[:3, :3] = axis_angle(axis, value)
    elif joint.get('type') == 'prismatic':
        motion[:3, 3] = axis * value
    return transform @ motion


def dh_forward(dh: dict, q: list[float]) -> np.ndarray:
    """Standard DH: T = prod Rz(theta_i) Tz(d_i) Tx(a_i) Rx(alpha_i), as UR publishes it."""
    d = [dh['d1'], 0.0, 0.0, dh['d4'], dh['d5'], dh['d6']]
    a = [0.0, dh['a2'], dh['a3'], 0.0, 0.0, 0.0]
    pose = np.eye(4)
    for theta, d_i, a_i, alpha in zip(q, d, a, dh['alpha']):
        ct, st, ca, sa = math.cos(theta), math.sin(theta), math.cos(alpha), math.sin(alpha)
        pose = pose @ np.array([[ct, -st * ca, st * sa, a_i * ct],
                                [st, ct * ca, -ct * sa, a_i * st],
                                [0, sa, ca, d_i],
                                [0, 0, 0, 1]])
    return pose


@pytest.fixture(scope='module')
def cell() -> Urdf:
    return Urdf(expand_xacro('cell'))


@pytest.fixture(scope='module')
def layout() -> dict:
    return load_layout()


def test_share_dir_holds_the_descriptions_and_layout(layout):
    assert (share_dir() / 'urdf' / 'cell.urdf.xacro').is_file()
    assert layout['conveyor']['belt_top_z'] > 0


@pytest.mark.parametrize('name,args', VARIANTS)
def test_each_description_passes_check_urdf(name, args, tmp_path):
    path = tmp_path / f'{name}.urdf'
    path.write_text(expand_xacro(name, **args))
    result = subprocess.run(['check_urdf', str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Successfully Parsed XML' in result.stdout


def test_cell_has_the_documented_links_and_joints(cell):
    assert set(CELL_LINKS) <= set(cell.links)
    assert set(CELL_JOINTS) <= set(cell.joints)
    assert [cell.joints[j].get('type') for j in ARM_JOINTS] == ['revolute'] * 6
    assert cell.joints['tool_cross_slide_joint'].get('type') == 'prismatic'
    assert cell.joints['force_sensor_joint'].get('type') == 'fixed'


def test_agv_and_part_have_their_links_and_joints():
    agv = Urdf(expand_xacro('agv', name='agv_2'))
    assert {'base_footprint', 'base_link', 'deck', 'left_wheel', 'right_wheel'} <= set(agv.links)
    assert agv.joints['left_wheel_joint'].get('type') == 'continuous'
    assert agv.joints['deck_joint'].get('type') == 'prismatic'
    assert '/agv_2/cmd_vel' in expand_xacro('agv', name='agv_2')
    part = Urdf(expand_xacro('part'))
    assert set(part.links) == {'part', 'seam_start'}


def test_arm_limits_come_from_the_published_ur5e_values(cell):
    limits = cell.joints['elbow_joint'].find('limit')
    assert float(limits.get('upper')) == pytest.approx(math.pi)
    assert float(limits.get('velocity')) == pytest.approx(math.pi)
    assert float(cell.joints['shoulder_pan_joint'].find('limit').get('upper')) == pytest.approx(2 * math.pi)
    assert float(cell.joints['wrist_3_joint'].find('limit').get('effort')) == pytest.approx(28.0)
    assert cell.mass('upper_arm_link') == pytest.approx(8.058)


@pytest.mark.parametrize('q', [[0, 0, 0, 0, 0, 0],
                               [0.3, -1.2, 1.5, -1.9, -1.57, 0.4],
                               [-2.0, -0.5, -2.1, 0.7, 1.1, -3.0]])
def test_urdf_kinematics_match_the_dh_parameters(cell, q):
    with open(share_dir() / 'config' / 'ur5e' / 'kinematics.yaml', encoding='utf-8') as stream:
        dh = yaml.safe_load(stream)['dh']
    urdf_pose = cell.pose('tool0', dict(zip(ARM_JOINTS, q)), relative_to='base_link')
    np.testing.assert_allclose(urdf_pose, dh_forward(dh, q), atol=1e-6)


def test_mujoco_kinematics_agree_with_the_urdf(cell):
    model = mujoco.MjModel.from_xml_string(expand_xacro('cell'))
    data = mujoco.MjData(model)
    q = [0.5, -1.0, 1.2, -1.7, -1.57, 0.2]
    for joint, value in zip(ARM_JOINTS, q):
        data.qpos[model.joint(joint).qposadr[0]] = value
    mujoco.mj_kinematics(model, data)
    expected = cell.pose('weld_tcp', dict(zip(ARM_JOINTS, q)))
    np.testing.assert_allclose(data.body('weld_tcp').xpos, expected[:3, 3], atol=1e-6)
    np.testing.assert_allclose(data.body('weld_tcp').xmat.reshape(3, 3), expected[:3, :3], atol=1e-6)


def test_weld_tool_frames(cell):
    tcp = cell.pose('weld_tcp', relative_to='tool0')
    np.testing.assert_allclose(tcp[:3, 3], [0, 0, 0.20], atol=1e-9)     # torch tip 0.20 m out of the flange
    np.testing.assert_allclose(tcp[:3, :3], np.eye(3), atol=1e-9)
    sensor = np.linalg.inv(cell.pose('weld_tcp')) @ cell.pose('seam_sensor')
    assert sensor[0, 3] == pytest.approx(0.030)                          # 30 mm ahead along travel (x)
    assert sensor[1, 3] == pytest.approx(0.0)
    assert sensor[2, 3] < 0                                              # above the tip (toward the flange)
    slide = cell.joints['tool_cross_slide_joint']
    np.testing.assert_allclose(_vector(slide.find('axis'), 'xyz', ''), [0, 1, 0])
    limit = slide.find('limit')
    assert (float(limit.get('lower')), float(limit.get('upper'))) == (pytest.approx(-0.005), pytest.approx(0.005))
    moved = cell.pose('weld_tcp', {'tool_cross_slide_joint': 0.004}, relative_to='tool0')
    assert moved[1, 3] == pytest.approx(0.004)


def test_cell_stands_where_the_layout_says(cell, layout):
    base = cell.pose('base_link')
    np.testing.assert_allclose(base[:3, 3], layout['arm']['base_xyz'], atol=1e-9)
    np.testing.assert_allclose(base[:3, :3], rpy_matrix(*layout['arm']['base_rpy']), atol=1e-9)
    assert cell.pose('conveyor_belt')[2, 3] == pytest.approx(layout['conveyor']['belt_top_z'])
    assert cell.pose('station_stop')[0, 3] == pytest.approx(layout['station']['stop_gate_x'])
    assert cell.pose('weld_station')[0, 3] == pytest.approx(layout['station']['x'])
    for eye, x in layout['photo_eyes'].items():
        assert cell.pose(f'photo_eye_{eye}')[0, 3] == pytest.approx(x)
    for dock, pose in layout['docks'].items():
        np.testing.assert_allclose(cell.pose(f'dock_{dock}')[:2, 3], [pose['x'], pose['y']], atol=1e-9)
    gate = cell.joints['station_stop_joint'].find('limit')
    assert float(gate.get('upper')) == pytest.approx(layout['station']['stop_gate_travel'])
    belt = cell.joints['conveyor_belt_joint']
    np.testing.assert_allclose(_vector(belt.find('axis'), 'xyz', ''), [1, 0, 0])
    assert float(belt.find('limit').get('upper')) <= 0.05


def test_agv_and_part_follow_the_layout(layout):
    agv = Urdf(expand_xacro('agv'))
    assert agv.pose('deck')[2, 3] == pytest.approx(layout['agv']['deck_top_z'])
    part = Urdf(expand_xacro('part'))
    seam = part.pose('seam_start')
    assert seam[2, 3] == pytest.approx(layout['part']['seam_z'])
    assert abs(seam[0, 3]) < layout['part']['length'] / 2
    assert part.mass('part') == pytest.approx(layout['part']['mass'])


@pytest.mark.parametrize('name,args', VARIANTS)
def test_moving_links_have_mass(name, args):
    urdf = Urdf(expand_xacro(name, **args))
    moving = {j.find('child').get('link') for j in urdf.joints.values() if j.get('type') != 'fixed'}
    moving |= {'cell': set(), 'agv': {'base_link'}, 'part': {'part'}}[name]   # AGVs and parts float
    assert moving
    for link in moving:
        assert urdf.mass(link) > 0, f'{link} moves but has no mass'


@pytest.mark.parametrize('name,args', VARIANTS)
def test_mujoco_loads_each_description_and_keeps_fixed_frames(name, args):
    text = expand_xacro(name, **args)
    compiler = ET.fromstring(text).find('mujoco/compiler')
    assert compiler.get('discardvisual') == 'false' and compiler.get('fusestatic') == 'false'
    model = mujoco.MjModel.from_xml_string(text)
    bodies = {model.body(i).name for i in range(model.nbody)}
    expected = {'cell': {'tool0', 'weld_tcp', 'seam_sensor', 'photo_eye_station', 'dock_inbound'},
                'agv': {'base_footprint', 'deck'}, 'part': {'part', 'seam_start'}}[name]
    assert expected <= bodies
    for body in range(1, model.nbody):
        if model.body_jntnum[body] > 0:
            assert model.body_mass[body] > 0, model.body(body).name
    if name == 'cell':
        assert {model.joint(i).name for i in range(model.njnt)} >= set(CELL_JOINTS) - {'force_sensor_joint'}


def test_gazebo_backend_adds_ros2_control_only_when_asked():
    gazebo = ET.fromstring(expand_xacro('cell', sim_backend='gazebo'))
    joints = [j.get('name') for j in gazebo.findall('ros2_control/joint')]
    assert joints == ARM_JOINTS
    for joint in gazebo.findall('ros2_control/joint'):
        assert [c.get('name') for c in joint.findall('command_interface')] == ['position', 'velocity']
        assert [s.get('name') for s in joint.findall('state_interface')] == ['position', 'velocity']
    plugin = gazebo.find("gazebo/plugin[@name='gz_ros2_control::GazeboSimROS2ControlPlugin']/parameters")
    assert plugin.text.endswith('config/ros2_controllers.yaml') and os.path.isfile(plugin.text)
    assert gazebo.find("gazebo[@reference='force_sensor_joint']/sensor").get('type') == 'force_torque'
    for backend in ('mujoco', 'none'):
        other = ET.fromstring(expand_xacro('cell', sim_backend=backend))
        assert other.find('ros2_control') is None and other.find('gazebo/plugin') is None


def test_prefix_prefixes_arm_tool_and_conveyor_names():
    urdf = Urdf(expand_xacro('cell', prefix='left_'))
    assert {'left_base_link', 'left_tool0', 'left_weld_tcp', 'left_conveyor_belt', 'world'} <= set(urdf.links)
    assert 'base_link' not in urdf.links
    assert {f'left_{j}' for j in CELL_JOINTS} <= set(urdf.joints)


@pytest.mark.parametrize('name,args,named', [
    ('cell', {'sim_backend': 'gazbeo'}, 'sim_backend'),
    ('cell', {'sim_backend': 'Gazebo'}, 'sim_backend'),
    ('cell', {'simbackend': 'gazebo'}, 'simbackend'),
    ('cell', {'prefix': 'arm 1/'}, 'prefix'),
    ('cell', {'prefix': 3}, 'prefix'),
    ('agv', {'name': ''}, 'name'),
    ('agv', {'name': '1agv'}, 'name'),
    ('agv', {'sim_backend': 'gazebo'}, 'sim_backend'),
    ('part', {'name': 'part_1'}, 'name'),
    ('robot', {}, 'robot'),
])
def test_invalid_arguments_are_refused_with_their_name(name, args, named):
    with pytest.raises(DescriptionError, match=f"'{named}'"):
        expand_xacro(name, **args)


def test_xacro_itself_refuses_an_unknown_backend():
    path = str(share_dir() / 'urdf' / 'cell.urdf.xacro')
    with pytest.raises(xacro.XacroException, match='sim_backend'):
        xacro.process_file(path, mappings={'sim_backend': 'gz'})


def test_missing_description_files_are_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(description, 'share_dir', lambda: tmp_path)
    (tmp_path / 'urdf').mkdir()
    with pytest.raises(DescriptionError, match='cell.urdf.xacro'):
        expand_xacro('cell')


def test_check_urdf_is_installed():
    assert shutil.which('check_urdf'), 'liburdfdom-tools is missing: run make setup'


def test_urdf_agrees_with_the_arm_kinematics_used_for_ik(cell):
    from cell_control.motion.kinematics import load_kinematics
    q = [0.3, -1.2, 1.5, -1.9, -1.57, 0.4]
    np.testing.assert_allclose(np.asarray(load_kinematics().forward(q)),
                               cell.pose('tool0', dict(zip(ARM_JOINTS, q)), relative_to='base_link'), atol=1e-6)
