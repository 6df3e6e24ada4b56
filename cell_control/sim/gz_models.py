"""The models Gazebo spawns besides the cell: AGVs and the part pool, with the gz systems of the contract.

The AGV and part descriptions (urdf/agv.urdf.xacro, urdf/part.urdf.xacro) are shared with MuJoCo; the gz
systems that depend on the model's name are added here, from the contract (cell_control.sim.interface) and the
layout, so that no number is written twice:
  - an OdometryPublisher on every AGV and pool part: its world pose on the gz topic /sim/poses
    (frame `world`, child = model name, POSE_RATE_HZ), bridged to the ROS topic /sim/poses;
  - on pool part i, two TriggeredPublishers calling the stock UserCommands service /world/<GZ_WORLD>/set_pose:
    `data: i` on /world/load_part puts the part on the deck at the source home pose, on /world/park_part back
    to its parking slot.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from cell_control.cell.description import expand_xacro, load_layout
from cell_control.sim.interface import (GZ_WORLD, POSE_RATE_HZ, WORLD_FRAME, Pose2D, load_pose, parking_pose,
                                        part_name)

POSES_GZ_TOPIC = '/sim/poses'
SET_POSE_TIMEOUT_MS = 1000


def _plugin(parent: ET.Element, filename: str, name: str, params: dict[str, str]) -> ET.Element:
    plugin = ET.SubElement(parent, 'plugin', filename=filename, name=name)
    for key, value in params.items():
        ET.SubElement(plugin, key).text = value
    return plugin


def _with_gazebo(urdf: str, model: str) -> tuple[ET.Element, ET.Element]:
    """Return the parsed description and a new <gazebo> block in it with the model's pose publisher."""
    robot = ET.fromstring(urdf)
    gazebo = ET.SubElement(robot, 'gazebo')
    _plugin(gazebo, 'gz-sim-odometry-publisher-system', 'gz::sim::systems::OdometryPublisher', {
        'odom_frame': WORLD_FRAME, 'robot_base_frame': model, 'dimensions': '3',
        'odom_publish_frequency': f'{POSE_RATE_HZ:g}', 'odom_topic': POSES_GZ_TOPIC,
        'tf_topic': f'/model/{model}/world_pose'})
    return robot, gazebo


def set_pose_request(model: str, pose: Pose2D) -> str:
    """Return the gz.msgs.Pose text that /world/<w>/set_pose takes to move `model` to `pose`."""
    qx, qy, qz, qw = pose.quaternion()
    return (f'name: "{model}" position {{ x: {pose.x:g} y: {pose.y:g} z: {pose.z:g} }} '
            f'orientation {{ x: {qx:g} y: {qy:g} z: {qz:g} w: {qw:g} }}')


def _mover(gazebo: ET.Element, topic: str, index: int, model: str, pose: Pose2D) -> None:
    plugin = ET.SubElement(gazebo, 'plugin', filename='gz-sim-triggered-publisher-system',
                           name='gz::sim::systems::TriggeredPublisher')
    ET.SubElement(ET.SubElement(plugin, 'input', type='gz.msgs.UInt32', topic=topic), 'match').text = f'data: {index}'
    ET.SubElement(plugin, 'service', name=f'/world/{GZ_WORLD}/set_pose', timeout=str(SET_POSE_TIMEOUT_MS),
                  reqType='gz.msgs.Pose', repType='gz.msgs.Boolean', reqMsg=set_pose_request(model, pose))


def agv_urdf(name: str) -> str:
    """Return the URDF Gazebo spawns for AGV `name`: its description plus its pose publisher."""
    robot, _ = _with_gazebo(expand_xacro('agv', name=name), name)
    return ET.tostring(robot, encoding='unicode')


def pool_part_urdf(index: int, layout: dict | None = None) -> str:
    """Return the URDF Gazebo spawns for pool part `index` (1-based): pose publisher, loader and parker."""
    if index < 1:
        raise ValueError(f'pool part index must be 1 or more (1-based), got {index}')
    model = part_name(index)
    robot, gazebo = _with_gazebo(expand_xacro('part'), model)
    _mover(gazebo, '/world/load_part', index, model, load_pose(layout or load_layout()))
    _mover(gazebo, '/world/park_part', index, model, parking_pose(index))
    return ET.tostring(robot, encoding='unicode')
