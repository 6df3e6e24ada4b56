"""The ROS interface of the simulated cell, as data.

The MuJoCo simulation node offers exactly these topics, and `config/gz_bridge.yaml` must map every one of
them to Gazebo with the same ROS type (a test checks both), so the same nodes run against either.
Direction is seen from ROS: `out` is published by the simulation, `in` is consumed by it.
Besides these device topics the MuJoCo simulation publishes `/sim/weld_result` (the process model's true
score of each weld, for evaluation only: no real cell can measure it, so nothing in the cell consumes it), and
offers the world's part loader and unloader as `/<agv>/load_part` and `/<agv>/unload_part` services.
"""
from dataclasses import dataclass

from cell_control.cell.description import agv_names

AGV_NAMES = agv_names()   # from config/cell_layout.yaml
PHOTO_EYES = ('infeed', 'station', 'outfeed')


@dataclass(frozen=True)
class SimTopic:
    name: str
    ros_type: str
    direction: str  # 'out' (sim → ROS) or 'in' (ROS → sim)


def sim_topics() -> list[SimTopic]:
    topics = [
        SimTopic('/clock', 'rosgraph_msgs/msg/Clock', 'out'),
        SimTopic('/joint_states', 'sensor_msgs/msg/JointState', 'out'),
        SimTopic('/arm_controller/joint_trajectory', 'trajectory_msgs/msg/JointTrajectory', 'in'),
        SimTopic('/arm_controller/speed_scaling', 'std_msgs/msg/Float64', 'in'),
        SimTopic('/conveyor/belt_speed', 'std_msgs/msg/Float64', 'in'),
        SimTopic('/conveyor/station_stop', 'std_msgs/msg/Bool', 'in'),
        SimTopic('/station/clamp', 'std_msgs/msg/Bool', 'in'),
        SimTopic('/station/clamp_closed', 'std_msgs/msg/Bool', 'out'),
        SimTopic('/cell/markers', 'visualization_msgs/msg/MarkerArray', 'out'),
        SimTopic('/weld_tool/wrench', 'geometry_msgs/msg/WrenchStamped', 'out'),
        SimTopic('/weld_tool/arc_on', 'std_msgs/msg/Bool', 'in'),
        SimTopic('/weld/travel_speed', 'geometry_msgs/msg/TwistStamped', 'in'),
        SimTopic('/weld/contact_force', 'geometry_msgs/msg/WrenchStamped', 'in'),
        SimTopic('/weld/lateral_correction', 'geometry_msgs/msg/Vector3Stamped', 'in'),
        SimTopic('/seam/features', 'sensor_msgs/msg/PointCloud2', 'out'),
    ]
    topics += [SimTopic(f'/conveyor/photo_eye/{eye}', 'std_msgs/msg/Bool', 'out') for eye in PHOTO_EYES]
    for agv in AGV_NAMES:
        topics += [
            SimTopic(f'/{agv}/cmd_vel', 'geometry_msgs/msg/Twist', 'in'),
            SimTopic(f'/{agv}/odom', 'nav_msgs/msg/Odometry', 'out'),
            SimTopic(f'/{agv}/deck_speed', 'std_msgs/msg/Float64', 'in'),
            SimTopic(f'/{agv}/load_present', 'std_msgs/msg/Bool', 'out'),
        ]
    return topics
