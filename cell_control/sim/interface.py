"""The simulation contract: what a simulator of the cell publishes and consumes on ROS, as data.

Both simulators hold it: the MuJoCo node and Gazebo (gz-sim 8 stock systems, ros_gz_bridge and
gz_ros2_control of ROS 2 Jazzy). It is limited to what Gazebo can offer, so a test that passes against the
MuJoCo node exercises only what Gazebo has too. docs/simulation_contract.md explains every row with its source.
Direction is seen from the simulator: `out` it publishes, `in` it consumes.

Signals the cell needs but no stock gz system produces (photo-eyes, clamp end switch, deck load, laser seam
sensor) are not simulator topics: a sim-agnostic sensor node computes them from the contract's poses and joint
states (`sensor_topics()`). `config/gz_bridge.yaml` holds exactly `bridge_entries()`; test/test_gazebo_route.py
checks that, and that every bridged gz topic has a producer or consumer in the gz description and world.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from cell_control.cell.description import WORLD_FRAME, agv_names, load_layout

AGV_NAMES = agv_names()   # from config/cell_layout.yaml
SOURCE_AGV = AGV_NAMES[0]  # parts are loaded onto the deck of the AGV parked at this AGV's home pose
PHOTO_EYES = ('infeed', 'station', 'outfeed')

GZ_WORLD = 'cell'          # <world name> of config/gazebo_world.sdf: SDFormat reserves the name `world`
DEFAULT_PARTS_IN_POOL = 4  # parts that can be in the system at once: one per AGV deck, two on the belt
POSE_RATE_HZ = 50.0        # /sim/poses, per model
PHYSICS_RATE_HZ = 1000.0   # 1 ms step in both simulators

# Parking slots of the part pool: slot i (1-based) on the floor at x = (i - 1) * PARKING_PITCH_M, y = PARKING_Y_M,
# outside the cell, yaw 0 (part frame at its bottom centre). The MuJoCo scene keeps its pool on the same row.
PARKING_Y_M = 6.0
PARKING_PITCH_M = 1.0
DECK_DROP_M = 0.002        # a loaded part is put this far above the deck top and settles onto it

RELIABLE, BEST_EFFORT = 'reliable', 'best_effort'
VOLATILE, TRANSIENT_LOCAL = 'volatile', 'transient_local'


@dataclass(frozen=True)
class Qos:
    """The QoS of the simulator's side of a topic: its publisher (out) or its subscription (in)."""

    reliability: str = RELIABLE
    durability: str = VOLATILE
    depth: int = 10


BRIDGE_QOS = Qos()   # what ros_gz_bridge (jazzy) gives every bridged publisher and subscription


@dataclass(frozen=True)
class SimTopic:
    """One topic of the contract: its ROS side and what carries it in Gazebo."""

    name: str
    ros_type: str
    direction: str            # 'out' (the simulator publishes) or 'in' (it consumes)
    gz: str                   # the gz-sim system (or gz_ros2_control controller) producing or consuming it
    gz_topic: str | None      # the gz transport topic bridged to `name`; None: no bridge (gz_ros2_control)
    gz_type: str | None
    qos: Qos = BRIDGE_QOS
    frame_id: str = ''        # header.frame_id of the messages ('' where none)
    child_frame_id: str = ''
    rate_hz: float | None = None  # sim time; None: event driven (in) or on change

    @property
    def bridged(self) -> bool:
        return self.gz_topic is not None


@dataclass(frozen=True)
class SensorTopic:
    """A signal computed from the contract by the sim-agnostic sensor node (real drivers without simulation)."""

    name: str
    ros_type: str
    qos: Qos


def sim_topics() -> list[SimTopic]:
    """Return every topic of the contract."""
    topics = [
        SimTopic('/clock', 'rosgraph_msgs/msg/Clock', 'out', 'gz-sim SimulationRunner', '/clock',
                 'gz.msgs.Clock', rate_hz=PHYSICS_RATE_HZ),
        # gz-sim 8.10.0's JointStatePublisher has no update rate: every physics step
        SimTopic('/joint_states', 'sensor_msgs/msg/JointState', 'out', 'JointStatePublisher', '/joint_states',
                 'gz.msgs.Model', rate_hz=PHYSICS_RATE_HZ),
        SimTopic('/weld_tool/wrench', 'geometry_msgs/msg/WrenchStamped', 'out', 'ForceTorque sensor',
                 '/weld_tool/wrench', 'gz.msgs.Wrench', frame_id='force_sensor', rate_hz=500.0),
        SimTopic('/sim/poses', 'nav_msgs/msg/Odometry', 'out', 'OdometryPublisher of every pool part and AGV',
                 '/sim/poses', 'gz.msgs.Odometry', frame_id=WORLD_FRAME, child_frame_id='<model>',
                 rate_hz=POSE_RATE_HZ),
        SimTopic('/arm_controller/joint_trajectory', 'trajectory_msgs/msg/JointTrajectory', 'in',
                 'gz_ros2_control: joint_trajectory_controller', None, None),
        # JTC >= 4.39.0 subscribes ~/speed_scaling_input TRANSIENT_LOCAL: a latched publisher is needed
        SimTopic('/arm_controller/speed_scaling_input', 'control_msgs/msg/SpeedScalingFactor', 'in',
                 'gz_ros2_control: joint_trajectory_controller', None, None,
                 qos=Qos(durability=TRANSIENT_LOCAL)),
        SimTopic('/conveyor/belt_speed', 'std_msgs/msg/Float64', 'in', 'TrackController on conveyor_belt',
                 '/conveyor/belt_speed', 'gz.msgs.Double'),
        SimTopic('/conveyor/station_stop', 'std_msgs/msg/Bool', 'in',
                 'TriggeredPublisher -> JointPositionController station_stop_joint',
                 '/conveyor/station_stop', 'gz.msgs.Boolean'),
        SimTopic('/station/clamp', 'std_msgs/msg/Bool', 'in',
                 'TriggeredPublisher -> JointPositionController station_clamp_{left,right}_joint',
                 '/station/clamp', 'gz.msgs.Boolean'),
        SimTopic('/weld_tool/cross_slide', 'std_msgs/msg/Float64', 'in',
                 'JointPositionController tool_cross_slide_joint (m)', '/weld_tool/cross_slide', 'gz.msgs.Double'),
        SimTopic('/world/load_part', 'std_msgs/msg/UInt32', 'in',
                 'TriggeredPublisher -> /world/cell/set_pose (part i onto the source deck)',
                 '/world/load_part', 'gz.msgs.UInt32'),
        SimTopic('/world/park_part', 'std_msgs/msg/UInt32', 'in',
                 'TriggeredPublisher -> /world/cell/set_pose (part i to its parking slot)',
                 '/world/park_part', 'gz.msgs.UInt32'),
    ]
    for agv in AGV_NAMES:
        topics += [
            SimTopic(f'/{agv}/odom', 'nav_msgs/msg/Odometry', 'out', 'DiffDrive', f'/{agv}/odom',
                     'gz.msgs.Odometry', frame_id=f'{agv}/odom', child_frame_id=f'{agv}/base_footprint',
                     rate_hz=50.0),
            SimTopic(f'/{agv}/cmd_vel', 'geometry_msgs/msg/Twist', 'in', 'DiffDrive', f'/{agv}/cmd_vel',
                     'gz.msgs.Twist'),
            SimTopic(f'/{agv}/deck_speed', 'std_msgs/msg/Float64', 'in', 'TrackController on deck',
                     f'/{agv}/deck_speed', 'gz.msgs.Double'),
        ]
    return topics


def sensor_topics() -> list[SensorTopic]:
    """Return the device signals the sensor node computes from the contract (not simulator topics)."""
    latched = Qos(durability=TRANSIENT_LOCAL)
    topics = [SensorTopic(f'/conveyor/photo_eye/{eye}', 'std_msgs/msg/Bool', latched) for eye in PHOTO_EYES]
    topics.append(SensorTopic('/station/clamp_closed', 'std_msgs/msg/Bool', latched))
    topics += [SensorTopic(f'/{agv}/load_present', 'std_msgs/msg/Bool', latched) for agv in AGV_NAMES]
    topics.append(SensorTopic('/seam/features', 'sensor_msgs/msg/PointCloud2', Qos(reliability=BEST_EFFORT, depth=5)))
    # The power source's "arc established", stamped with the strike: an event, not latched (see nodes.common).
    topics.append(SensorTopic('/weld_tool/arc_struck', 'std_msgs/msg/Header', Qos()))
    topics.append(SensorTopic('/sim/weld_result', 'std_msgs/msg/String', latched))   # each weld's score (JSON)
    return topics


def bridge_entries() -> list[dict]:
    """Return the ros_gz_bridge configuration the contract needs: one entry per bridged topic."""
    directions = {'out': 'GZ_TO_ROS', 'in': 'ROS_TO_GZ'}
    return [{'ros_topic_name': t.name, 'gz_topic_name': t.gz_topic, 'ros_type_name': t.ros_type,
             'gz_type_name': t.gz_type, 'direction': directions[t.direction]}
            for t in sim_topics() if t.bridged]


def part_name(index: int) -> str:
    """Return the model name of pool part `index` (1-based, as on /world/load_part and /world/park_part)."""
    return f'part_{index}'


@dataclass(frozen=True)
class Pose2D:
    """A pose on a horizontal plane at height z: metres and radians in the world frame."""

    x: float
    y: float
    z: float
    yaw: float

    def quaternion(self) -> tuple[float, float, float, float]:
        """Return (x, y, z, w) of the rotation about z."""
        return 0.0, 0.0, math.sin(self.yaw / 2), math.cos(self.yaw / 2)


def parking_pose(index: int) -> Pose2D:
    """Return the parking slot of pool part `index` (1-based): on the floor outside the cell."""
    return Pose2D((index - 1) * PARKING_PITCH_M, PARKING_Y_M, 0.0, 0.0)


def load_pose(layout: dict | None = None) -> Pose2D:
    """Return where /world/load_part puts a part: centred on the deck of an AGV at the source AGV's home pose."""
    layout = layout or load_layout()
    home = layout['agv']['home'][SOURCE_AGV]
    return Pose2D(home['x'], home['y'], layout['agv']['deck_top_z'] + DECK_DROP_M, home['yaw'])
