"""Bring-up: the one node description, the pip-environment runner, and the launch file that maps it."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cell_control.bringup import (ARC_STRIKE_TIMEOUT_S, EMULATED_VFD_TIMEOUT_S, WELD_PROCESS_PARAMETERS, BringupError,
                                  describe_cell, enclave, in_lockstep, load_node_parameters)
from cell_control.runner import find_executable
from conftest import REPO

SETUP_SCRIPTS = set(re.findall(r"'(\w+)': 'cell_control\.nodes\.", (REPO / 'setup.py').read_text()))


def test_mujoco_bringup_in_a_pip_environment_runs_the_whole_cell_on_sim_time():
    nodes = {n.name: n for n in describe_cell('mujoco', ros_tools=False, recipe='bracket', parts=5)}
    assert list(nodes) == ['cell_sim', 'cell_sensors', 'conveyor_driver', 'weld_adjuster', 'coordinator',
                           'maintenance', 'fleet_sim']
    sim = nodes.pop('cell_sim')
    assert all(n.parameters['use_sim_time'] is True for n in nodes.values())
    assert sim.parameters['use_sim_time'] is False   # it publishes /clock
    assert sim.parameters['publish_robot_description'] is True   # nobody else publishes it here
    assert sim.parameters['parts_in_pool'] == 4                       # from config/cell_params.yaml
    # The recipe's seams are the simulated part's seams; its seam's length the adjuster's.
    assert sim.parameters['recipe'] == 'bracket' and sim.parameters['seam_file'] == ''
    assert nodes['weld_adjuster'].parameters['seam_length_mm'] == pytest.approx(500.0)
    assert nodes['conveyor_driver'].parameters['emulate'] is True   # the VFD emulator on a pty
    assert nodes['conveyor_driver'].parameters['timeout_s'] == EMULATED_VFD_TIMEOUT_S   # a pty under load is slow
    assert nodes['fleet_sim'].parameters['parts'] == 5
    # The simulation holds at the start until each of them reports the time it has reached.
    assert sim.parameters['cell_lockstep_nodes'] == [f'/{name}' for name in nodes]


def test_the_simulation_waits_at_the_start_only_for_the_nodes_started_that_report():
    tools = {n.name: n for n in describe_cell('mujoco', rviz=True, ros_tools=True, opcua=True)}
    waits_for = tools['cell_sim'].parameters['cell_lockstep_nodes']
    assert '/plant_gateway' in waits_for and '/coordinator' in waits_for
    assert '/robot_state_publisher' not in waits_for and '/rviz2' not in waits_for, 'they do not report'
    cut = in_lockstep([n for n in tools.values() if n.name in ('cell_sim', 'cell_sensors')])
    assert cut[0].parameters['cell_lockstep_nodes'] == ['/cell_sensors']
    alone = in_lockstep([tools['cell_sim']])
    assert alone[0].parameters['cell_lockstep_nodes'] == [''], 'nobody to wait for (the empty-list placeholder)'
    assert tools['cell_sim'].parameters['cell_lockstep_nodes'] == waits_for, 'the given specs are not changed'


def test_with_ros_tools_robot_state_publisher_owns_the_description_and_rviz_gets_the_config():
    nodes = {n.name: n for n in describe_cell('mujoco', rviz=True, ros_tools=True)}
    assert '<robot name="cell"' in nodes['robot_state_publisher'].parameters['robot_description']
    assert nodes['cell_sim'].parameters['publish_robot_description'] is False
    assert nodes['rviz2'].arguments[1].endswith('config/cell.rviz')
    assert Path(nodes['rviz2'].arguments[1]).is_file()


def test_hardware_and_gazebo_bringups():
    hardware = describe_cell('none', ros_tools=True)
    names = [n.name for n in hardware]
    assert 'cell_sim' not in names and 'fleet_sim' not in names and 'seam_sensor' in names
    assert 'maintenance' in names and 'maintenance' in [n.name for n in describe_cell('gazebo', ros_tools=True)]
    assert 'cell_sensors' not in names   # the real photo-eyes, clamp switch and deck sensors report themselves
    assert all(n.parameters['use_sim_time'] is False for n in hardware)
    driver = {n.name: n for n in hardware}['conveyor_driver'].parameters
    assert driver['emulate'] is False and driver['timeout_s'] == 0.5, 'a real drive: the parameter file\'s timeout'
    gazebo = describe_cell('gazebo', ros_tools=True)
    assert [n.name for n in gazebo if n.package == 'robot_state_publisher'] == []   # gazebo.launch.py has one
    # Gazebo has no stock sensor for the switches: the same sensor node as with MuJoCo, on sim time.
    assert [n.name for n in gazebo] == ['cell_sensors', 'conveyor_driver', 'weld_adjuster', 'coordinator',
                                        'maintenance', 'fleet_sim']
    assert all(n.parameters['use_sim_time'] is True for n in gazebo)
    # No gz sensor models a weld: the sensor node runs the seam sensor and weld process with cell_sim's settings.
    sensors = {n.name: n for n in gazebo}['cell_sensors'].parameters
    assert sensors['seam_sensor'] is True and sensors['recipe'] == 'bracket' and sensors['seam_file'] == ''
    # Both simulations report the arc's strike, which ends the adjuster's lead-in; real devices may not.
    strike = {sim: {n.name: n for n in describe_cell(sim, ros_tools=True)}['weld_adjuster']
              .parameters['arc_strike_timeout_s'] for sim in ('mujoco', 'gazebo', 'none')}
    assert strike == {'mujoco': ARC_STRIKE_TIMEOUT_S, 'gazebo': ARC_STRIKE_TIMEOUT_S, 'none': 0.0}
    assert ARC_STRIKE_TIMEOUT_S > 0.0
    mujoco = {n.name: n for n in describe_cell('mujoco', ros_tools=False, overrides={'cell_sim': {'seed': 7}})}
    gz_seeded = {n.name: n for n in describe_cell('gazebo', overrides={'cell_sim': {'seed': 7}})}['cell_sensors']
    assert all(gz_seeded.parameters[k] == mujoco['cell_sim'].parameters[k]
               for k in WELD_PROCESS_PARAMETERS if k in mujoco['cell_sim'].parameters)
    assert gz_seeded.parameters['seed'] == 7 and 'seam_sensor' not in mujoco['cell_sensors'].parameters


def test_every_package_node_in_the_description_is_a_console_script():
    for sim in ('mujoco', 'gazebo', 'none'):
        for node in describe_cell(sim, ros_tools=True):
            if node.package == 'cell_control':
                assert node.executable in SETUP_SCRIPTS


def test_overrides_win_over_the_parameter_file():
    nodes = describe_cell('mujoco', ros_tools=False, overrides={'cell_sim': {'real_time_factor': 0.0}})
    assert {n.name: n for n in nodes}['cell_sim'].parameters['real_time_factor'] == 0.0


@pytest.mark.parametrize('kwargs, message', [
    ({'sim': 'webots'}, "sim: 'webots' is not one of mujoco, gazebo, none"),
    ({'sim': 'mujoco', 'rviz': True, 'ros_tools': False}, 'rviz: needs rviz2'),
    ({'sim': 'mujoco', 'recipe': 'no_such_part'}, 'recipe: '),
    ({'sim': 'mujoco', 'parts': -1}, 'parts: -1 is not a whole number'),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(BringupError, match=re.escape(message)):
        describe_cell(**kwargs)


def test_a_binary_parameter_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / 'params.yaml'
    path.write_bytes(b'cell_sim:\xff\xfe\x00\x01')
    with pytest.raises(BringupError, match=r'parameter file .*params.yaml: not a text file'):
        load_node_parameters(path)


def test_recipe_ids_are_names_not_paths():
    with pytest.raises(BringupError, match=r"recipe id '../recipes/bracket' is not a recipe name"):
        describe_cell('mujoco', recipe='../recipes/bracket')


@pytest.mark.parametrize('text, message', [
    ('cell_sim: [1, 2', 'not valid YAML'),
    ('- just a list', 'expected a mapping of node names'),
    ('cell_sim:\n  parameters: {}', 'cell_sim has no ros__parameters mapping'),
    ('cell_sim:\n  ros__parameters: {real_time_factor: .nan}',
     'cell_sim.ros__parameters.real_time_factor: not a finite number'),
    ('coordinator:\n  ros__parameters: {timeouts: [1.0, -.inf]}',
     'coordinator.ros__parameters.timeouts[1]: not a finite number'),
])
def test_malformed_parameter_files_are_refused(tmp_path, text, message):
    path = tmp_path / 'params.yaml'
    path.write_text(text)
    with pytest.raises(BringupError, match=re.escape(message)):
        load_node_parameters(path)
    with pytest.raises(BringupError, match='missing.yaml'):
        load_node_parameters(tmp_path / 'missing.yaml')


@pytest.mark.integration
def test_cell_control_sim_runs_from_a_plain_shell_and_reports_json(tmp_path, ros_domain):
    home = tmp_path / 'home'
    home.mkdir()
    result = subprocess.run([find_executable('cell-control'), 'sim', '--headless', '--duration', '2', '--rtf', 'max',
                             '--json', '--domain-id', str(ros_domain)], capture_output=True, text=True, timeout=180,
                            env={'PATH': os.environ['PATH'], 'HOME': str(home)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report['sim_time_s'] == pytest.approx(2.0, abs=0.01)
    assert report['real_time_factor'] == pytest.approx(report['sim_time_s'] / report['wall_time_s'], rel=0.05)


def test_a_seam_file_replaces_the_recipes_seam_in_the_sim_and_the_adjuster(tmp_path):
    seam = tmp_path / 'wide_gap.csv'
    seam.write_text('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,1.2,0,0\n250,1.5,0.2,0.4\n500.5,1.2,0,0\n')
    nodes = {n.name: n for n in describe_cell('mujoco', ros_tools=False, seam_file=seam)}
    assert nodes['cell_sim'].parameters['seam_file'] == str(seam.resolve())
    assert nodes['weld_adjuster'].parameters['seam_length_mm'] == pytest.approx(500.5)


@pytest.mark.parametrize('text, message', [
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n400,0,0,0\n',
     "is 400 mm long but the recipe's seam program is 500.0"),
    ('s_mm,gap_mm,mismatch_mm,lateral_mm\n5,0,0,0\n505,0,0,0\n', 'starts at s_mm = 5, not 0'),
    ('s_mm,gap_mm\n0,0\n', 'missing column(s)'),
])
def test_a_seam_file_the_recipe_cannot_weld_is_refused(tmp_path, text, message):
    seam = tmp_path / 'seam.csv'
    seam.write_text(text)
    with pytest.raises(BringupError, match=re.escape(message)):
        describe_cell('mujoco', ros_tools=False, seam_file=seam)


def test_a_recipe_with_several_seams_puts_them_all_on_the_simulated_part(tmp_path):
    nodes = {n.name: n for n in describe_cell('mujoco', ros_tools=False, recipe='frame_rail')}
    assert nodes['cell_sim'].parameters['recipe'] == 'frame_rail'
    assert nodes['coordinator'].parameters['recipe'] == 'frame_rail'
    seam = tmp_path / 'seam.csv'
    seam.write_text('s_mm,gap_mm,mismatch_mm,lateral_mm\n0,0,0,0\n560,0,0,0\n')
    with pytest.raises(BringupError, match='a seam file replaces the seam of a one-seam recipe; frame_rail has 2'):
        describe_cell('mujoco', ros_tools=False, recipe='frame_rail', seam_file=seam)


def test_launch_file_maps_the_description():
    pytest.importorskip('launch_ros')
    from launch import LaunchContext
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.actions import DeclareLaunchArgument
    source = PythonLaunchDescriptionSource(str(REPO / 'launch' / 'cell.launch.py'))
    description = source.get_launch_description(LaunchContext())
    arguments = {a.name: a for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert set(arguments) == {'sim', 'rviz', 'params_file', 'opcua', 'security', 'keystore'}
    assert arguments['sim'].choices == ['mujoco', 'gazebo', 'none']
    assert all(a.description.endswith('.') for a in arguments.values())


def test_launch_file_runs_every_node_in_its_enclave_with_security():
    pytest.importorskip('launch_ros')
    from launch import LaunchContext
    from launch.actions import OpaqueFunction, SetEnvironmentVariable
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch_ros.actions import Node
    description = PythonLaunchDescriptionSource(str(REPO / 'launch' / 'cell.launch.py')).get_launch_description(
        LaunchContext())
    context = LaunchContext()
    context.launch_configurations.update({'sim': 'mujoco', 'rviz': 'false', 'params_file': '', 'opcua': 'true',
                                          'security': 'true', 'keystore': '/keys'})
    opaque = next(e for e in description.entities if isinstance(e, OpaqueFunction))
    actions = opaque.execute(context)
    nodes = [a for a in actions if isinstance(a, Node)]
    assert 'plant_gateway' in [n.node_executable for n in nodes]
    assert {a.name.perform(context) if hasattr(a.name, 'perform') else a.name for a in actions
            if isinstance(a, SetEnvironmentVariable)} >= {'ROS_SECURITY_KEYSTORE', 'ROS_SECURITY_ENABLE'}
    for node in nodes:
        assert '--enclave' in [str(x) for x in node._Node__ros_arguments or []]


def test_the_plant_gateway_reads_the_coordinators_stores_and_each_node_has_an_enclave():
    nodes = describe_cell('mujoco', ros_tools=False, opcua=True,
                          overrides={'coordinator': {'ledger_path': '/x/l.sqlite', 'records_path': '/x/r.sqlite'}})
    gateway = next(n for n in nodes if n.name == 'plant_gateway')
    assert (gateway.parameters['ledger_path'], gateway.parameters['records_path']) == ('/x/l.sqlite', '/x/r.sqlite')
    assert 'plant_gateway' not in [n.name for n in describe_cell('mujoco', ros_tools=False)]
    assert {enclave(n) for n in nodes} == {f'/cell_control/{n.name}' for n in nodes}


def test_python_m_runs_the_cli(node_processes):
    result = node_processes.run('python-m-cli', [sys.executable, '-m', 'cell_control.cli', '--help'], timeout_s=60)
    assert result.returncode == 0 and 'weld-eval' in result.stdout
