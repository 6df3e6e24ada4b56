"""The welding cell in Gazebo (gz-sim 8) with gz_ros2_control, holding the simulation contract.

Starts gz-sim with config/gazebo_world.sdf (world `cell`), publishes the cell description (sim_backend:=gazebo)
latched on /robot_description, spawns the cell, the AGVs at their home poses and the pool of `parts_in_pool`
parts at their parking slots (cell_control/sim/gz_models.py adds their gz systems), bridges the contract's
topics with config/gz_bridge.yaml, and starts the arm's controllers once the cell exists.
Contract: cell_control.sim.interface, docs/simulation_contract.md. Needs ROS 2 Jazzy with ros_gz and
gz_ros2_control.
"""
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction,
                            RegisterEventHandler)
from launch.event_handlers import OnProcessExit
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from cell_control.cell.description import expand_xacro, load_layout, share_dir
from cell_control.sim.gz_models import agv_urdf, pool_part_urdf
from cell_control.sim.interface import (AGV_NAMES, DEFAULT_PARTS_IN_POOL, GZ_WORLD, Pose2D, parking_pose,
                                        part_name)


def _spawn(name: str, urdf: str, pose: Pose2D) -> Node:
    return Node(package='ros_gz_sim', executable='create', name=f'spawn_{name}', output='screen',
                arguments=['-world', GZ_WORLD, '-name', name, '-string', urdf,
                           '-x', str(pose.x), '-y', str(pose.y), '-z', str(pose.z), '-Y', str(pose.yaw)])


def _pool(context) -> list[Node]:
    """Spawn the part pool: parts_in_pool parts, part i resting on the floor at parking slot i."""
    text = LaunchConfiguration('parts_in_pool').perform(context)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f'parts_in_pool must be a whole number of 1 or more, got {text!r}')
    layout = load_layout()
    return [_spawn(part_name(i), pool_part_urdf(i, layout), parking_pose(i)) for i in range(1, int(text) + 1)]


def generate_launch_description() -> LaunchDescription:
    config = share_dir() / 'config'
    layout = load_layout()
    gui = LaunchConfiguration('gui')
    world = LaunchConfiguration('world')

    arguments = [
        DeclareLaunchArgument(
            'world', default_value=str(config / 'gazebo_world.sdf'),
            description='Path of the Gazebo world SDF to load; the default is the cell world of this package.'),
        DeclareLaunchArgument(
            'gui', default_value='false', choices=['true', 'false'],
            # Safe default: headless server, works on CI machines without a display.
            description='Whether to open the Gazebo GUI; false runs the simulation server headless.'),
        DeclareLaunchArgument(
            'parts_in_pool', default_value=str(DEFAULT_PARTS_IN_POOL),
            description='How many parts the pool holds: spawned at parking slots, moved by /world/load_part '
                        'and /world/park_part.'),
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
                      arguments=['-world', GZ_WORLD, '-name', 'cell', '-topic', 'robot_description'])

    agvs = [_spawn(agv, agv_urdf(agv), Pose2D(home['x'], home['y'], 0.0, home['yaw']))
            for agv, home in ((agv, layout['agv']['home'][agv]) for agv in AGV_NAMES)]

    bridge = Node(package='ros_gz_bridge', executable='parameter_bridge', name='gz_bridge', output='screen',
                  parameters=[{'config_file': str(config / 'gz_bridge.yaml'), 'use_sim_time': True}])

    def spawner(controller: str) -> Node:
        return Node(package='controller_manager', executable='spawner', output='screen',
                    arguments=[controller, '--controller-manager', '/controller_manager'])

    # Controllers need the controller manager that gz_ros2_control starts when the cell is spawned.
    controllers = RegisterEventHandler(OnProcessExit(
        target_action=spawn_cell,
        on_exit=[spawner('joint_state_broadcaster'), spawner('arm_controller')]))

    return LaunchDescription(arguments + [gazebo, robot_state_publisher, spawn_cell, *agvs,
                                          OpaqueFunction(function=_pool), bridge, controllers])
