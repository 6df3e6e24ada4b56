"""Bring up the welding cell: `ros2 launch cell_control cell.launch.py sim:=mujoco rviz:=true`.

The node list comes from `cell_control.bringup.describe_cell`, the same description that `cell-control sim`
runs in a plain pip environment; this file only maps it onto launch_ros actions.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from cell_control.bringup import SIM_CHOICES, describe_cell, enclave
from cell_control.cell.description import share_dir


def _nodes(context, *args, **kwargs):
    sim = LaunchConfiguration('sim').perform(context)
    rviz = LaunchConfiguration('rviz').perform(context) == 'true'
    params_file = LaunchConfiguration('params_file').perform(context) or None
    opcua = LaunchConfiguration('opcua').perform(context) == 'true'
    secure = LaunchConfiguration('security').perform(context) == 'true'
    keystore = LaunchConfiguration('keystore').perform(context)
    actions = []
    if secure:
        if not keystore:
            raise RuntimeError('security:=true needs keystore:=<SROS2 keystore path> (see docs/opcua.md)')
        actions += [SetEnvironmentVariable('ROS_SECURITY_KEYSTORE', keystore),
                    SetEnvironmentVariable('ROS_SECURITY_ENABLE', 'true'),
                    SetEnvironmentVariable('ROS_SECURITY_STRATEGY', 'Enforce')]
    actions += [Node(package=spec.package, executable=spec.executable, name=spec.name, output='screen',
                     parameters=[spec.parameters], remappings=list(spec.remappings), arguments=list(spec.arguments),
                     ros_arguments=['--enclave', enclave(spec)] if secure else None)
                for spec in describe_cell(sim=sim, rviz=rviz, ros_tools=True, params_file=params_file, opcua=opcua)]
    if sim == 'gazebo':
        actions.append(IncludeLaunchDescription(
            PythonLaunchDescriptionSource(str(share_dir() / 'launch' / 'gazebo.launch.py'))))
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument(
            'sim', default_value='mujoco', choices=list(SIM_CHOICES),
            # Safe default: the embedded simulation, never real hardware by accident.
            description='Which world the nodes talk to: the embedded MuJoCo simulation, Gazebo, or none '
                        '(real hardware drivers).'),
        DeclareLaunchArgument(
            'rviz', default_value='false', choices=['true', 'false'],
            description='Whether to open RViz with the cell view (robot model, markers, seam features).'),
        DeclareLaunchArgument(
            'params_file', default_value='',
            description='ROS 2 parameter file for the cell nodes; empty uses config/cell_params.yaml.'),
        DeclareLaunchArgument(
            'opcua', default_value='false', choices=['true', 'false'],
            description='Whether to run the plant gateway, the OPC UA server that MES and SCADA connect to.'),
        DeclareLaunchArgument(
            'security', default_value='false', choices=['true', 'false'],
            # Off by default: it needs a keystore made with `ros2 security` first (docs/opcua.md).
            description='Whether every node runs in its SROS2 enclave with DDS security enforced.'),
        DeclareLaunchArgument(
            'keystore', default_value='',
            description='Path of the SROS2 keystore that holds the enclaves /cell_control/<node>; needed with '
                        'security:=true.'),
        OpaqueFunction(function=_nodes),
    ])
