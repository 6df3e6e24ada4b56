"""Bring up the welding cell: `ros2 launch cell_control cell.launch.py sim:=mujoco rviz:=true`.

The node list comes from `cell_control.bringup.describe_cell`, the same description that `cell-control sim`
runs in a plain pip environment; this file only maps it onto launch_ros actions.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from cell_control.bringup import SIM_CHOICES, describe_cell
from cell_control.cell.description import share_dir


def _nodes(context, *args, **kwargs):
    sim = LaunchConfiguration('sim').perform(context)
    rviz = LaunchConfiguration('rviz').perform(context) == 'true'
    params_file = LaunchConfiguration('params_file').perform(context) or None
    actions = [Node(package=spec.package, executable=spec.executable, name=spec.name, output='screen',
                    parameters=[spec.parameters], remappings=list(spec.remappings), arguments=list(spec.arguments))
               for spec in describe_cell(sim=sim, rviz=rviz, ros_tools=True, params_file=params_file)]
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
        OpaqueFunction(function=_nodes),
    ])
