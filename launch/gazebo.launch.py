"""The welding cell in Gazebo (gz-sim) with gz_ros2_control, on the same ROS interface as the MuJoCo simulation.

Starts gz-sim with config/gazebo_world.sdf, publishes the cell description (sim_backend:=gazebo) latched
on /robot_description, spawns the cell, the AGVs and parts from their xacros, bridges every topic of the
simulation interface with config/gz_bridge.yaml, and starts the arm's controllers once the cell exists.
Needs a full ROS 2 Jazzy install with ros_gz and gz_ros2_control.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, RegisterEventHandler
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from cell_control.cell.description import expand_xacro, load_layout, share_dir
from cell_control.sim.interface import AGV_NAMES

WORLD_NAME = 'cell'   # <world name> in config/gazebo_world.sdf


def _spawn(name: str, urdf: str, x: float, y: float, z: float, yaw: float, **kwargs) -> Node:
    return Node(package='ros_gz_sim', executable='create', name=f'spawn_{name}', output='screen',
                arguments=['-world', WORLD_NAME, '-name', name, '-string', urdf,
                           '-x', str(x), '-y', str(y), '-z', str(z), '-Y', str(yaw)], **kwargs)


def generate_launch_description() -> LaunchDescription:
    config = share_dir() / 'config'
    layout = load_layout()
    gui = LaunchConfiguration('gui')
    world = LaunchConfiguration('world')
    parts = LaunchConfiguration('parts')

    arguments = [
        DeclareLaunchArgument(
            'world', default_value=str(config / 'gazebo_world.sdf'),
            description='Path of the Gazebo world SDF to load; the default is the cell world of this package.'),
        DeclareLaunchArgument(
            'gui', default_value='false', choices=['true', 'false'],
            # Safe default: headless server, works on CI machines without a display.
            description='Whether to open the Gazebo GUI; false runs the simulation server headless.'),
        DeclareLaunchArgument(
            'parts', default_value='1', choices=['0', '1', '2'],
            description='How many parts to spawn, one on the deck of each AGV in turn (agv_1 first).'),
    ]

    gazebo = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare('ros_gz_sim'), 'launch',
                                                            'gz_sim.launch.py'])),
        launch_arguments={'gz_args': [world, ' -r', PythonExpression(["'' if '", gui, "' == 'true' else ' -s'"])],
                          'on_exit_shutdown': 'true'}.items())

    robot_state_publisher = Node(
        package='robot_state_publisher', executable='robot_state_publisher', output='screen',
        parameters=[{'robot_description': expand_xacro('cell', sim_backend='gazebo'), 'use_sim_time': True}])

    spawn_cell = Node(package='ros_gz_sim', executable='create', name='spawn_cell', output='screen',
                      arguments=['-world', WORLD_NAME, '-name', 'cell', '-topic', 'robot_description'])

    agvs = []
    deck_z = layout['agv']['deck_top_z']
    for index, agv in enumerate(AGV_NAMES):
        home = layout['agv']['home'][agv]
        agvs.append(_spawn(agv, expand_xacro('agv', name=agv), home['x'], home['y'], 0.0, home['yaw']))
        agvs.append(_spawn(f'part_{index + 1}', expand_xacro('part'), home['x'], home['y'], deck_z + 0.001,
                           home['yaw'], condition=IfCondition(PythonExpression([parts, f' > {index}']))))

    bridge = Node(package='ros_gz_bridge', executable='parameter_bridge', name='gz_bridge', output='screen',
                  parameters=[{'config_file': str(config / 'gz_bridge.yaml'), 'use_sim_time': True}])

    def spawner(controller: str) -> Node:
        return Node(package='controller_manager', executable='spawner', output='screen',
                    arguments=[controller, '--controller-manager', '/controller_manager'])

    # Controllers need the controller manager that gz_ros2_control starts when the cell is spawned.
    controllers = RegisterEventHandler(OnProcessExit(
        target_action=spawn_cell,
        on_exit=[spawner('joint_state_broadcaster'), spawner('arm_controller')]))

    return LaunchDescription(arguments + [gazebo, robot_state_publisher, spawn_cell, *agvs, bridge,
                                          controllers])
