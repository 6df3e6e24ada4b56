"""Drive a differential-drive AGV along waypoints to a dock pose: turn toward the next point, then go.

Docking wants the AGV to arrive square to the dock, so a route ends with a straight approach along the
dock's axis from a pre-dock point. The controller is a pure function of the odometry: the fleet node calls it
on every odometry message and publishes the twist it returns.

A final goal counts as reached only with the AGV standing still inside the tolerance: a stop command that
arrives late (a starved fleet process, a slow network) lets the AGV coast past the goal, and the next
odometry brings it back instead of leaving it short of or beyond the dock for good. The last few centimetres
are crept at `final_creep_m_s` so that such a coast stays small.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

STILL_SPEED = 0.01   # |v| + |ω| below this counts as standing still


@dataclass(frozen=True)
class Pose2D:
    x: float
    y: float
    yaw: float


@dataclass(frozen=True)
class DriveLimits:
    max_linear_m_s: float = 0.8
    max_angular_rad_s: float = 1.0
    position_tolerance_m: float = 0.01
    yaw_tolerance_rad: float = 0.01
    heading_gain: float = 2.5
    slow_down_distance_m: float = 0.6
    min_linear_m_s: float = 0.05        # below this the wheels barely move the AGV
    final_creep_m_s: float = 0.02       # the least speed within `final_approach_m` of the final goal
    final_approach_m: float = 0.05


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Yaw (rotation about z) of a unit quaternion; the one formula the cell uses for planar headings."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def wrap_angle(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))


def home_pose(layout: dict, agv: str) -> Pose2D:
    """Return an AGV's home pose (`agv.home.<agv>` of the layout): where it is spawned and its odometry starts."""
    homes = layout['agv']['home']
    if agv not in homes:
        raise ValueError(f'AGV {agv!r} has no home pose in the layout (known: {", ".join(homes)})')
    home = homes[agv]
    return Pose2D(float(home['x']), float(home['y']), float(home['yaw']))


def odom_to_world(home: Pose2D, odom: Pose2D) -> Pose2D:
    """Return the world pose of an AGV whose `<agv>/odom` pose is `odom` (the frame starts at its home pose).

    The one conversion every consumer of `/<agv>/odom` uses (gz DiffDrive's odometry starts at 0, 0, 0 at the
    spawn pose, docs/simulation_contract.md §2.1).
    """
    c, s = math.cos(home.yaw), math.sin(home.yaw)
    return Pose2D(home.x + c * odom.x - s * odom.y, home.y + s * odom.x + c * odom.y, wrap_angle(home.yaw + odom.yaw))


def world_to_odom(home: Pose2D, world: Pose2D) -> Pose2D:
    """Return the `<agv>/odom` pose of an AGV at world pose `world`: the inverse of `odom_to_world`."""
    dx, dy = world.x - home.x, world.y - home.y
    c, s = math.cos(home.yaw), math.sin(home.yaw)
    return Pose2D(c * dx + s * dy, -s * dx + c * dy, wrap_angle(world.yaw - home.yaw))


def docking_route(current: Pose2D, dock: Pose2D, approach_m: float = 1.2) -> list[Pose2D]:
    """Waypoints from anywhere to a dock: a pre-dock point behind it on its axis, then the dock itself.

    The AGV faces the dock's yaw on arrival; it approaches the dock from the side its deck points away from.
    """
    pre = Pose2D(dock.x - approach_m * math.cos(dock.yaw) * _side(current, dock),
                 dock.y - approach_m * math.sin(dock.yaw) * _side(current, dock), dock.yaw)
    return [pre, dock]


def _side(current: Pose2D, dock: Pose2D) -> float:
    """+1 when the AGV comes from behind the dock along its axis, −1 from in front."""
    along = (current.x - dock.x) * math.cos(dock.yaw) + (current.y - dock.y) * math.sin(dock.yaw)
    return 1.0 if along <= 0.0 else -1.0


def drive_command(pose: Pose2D, speed: float, goal: Pose2D, final: bool, limits: DriveLimits = DriveLimits()
                  ) -> tuple[float, float, bool]:
    """Linear and angular velocity toward `goal`, and whether the goal is reached.

    `speed` is the odometry's |v| + |ω|. Intermediate goals are reached on position; the final goal also on
    yaw, and at rest. The AGV may back up when the goal lies behind it (a dock is left in reverse), so it never
    turns around in the narrow dock.
    """
    dx, dy = goal.x - pose.x, goal.y - pose.y
    distance = math.hypot(dx, dy)
    if distance <= limits.position_tolerance_m:
        yaw_error = wrap_angle(goal.yaw - pose.yaw)
        if not final:
            return 0.0, 0.0, True
        if abs(yaw_error) <= limits.yaw_tolerance_rad:
            return 0.0, 0.0, speed < STILL_SPEED
        return 0.0, _clamp(limits.heading_gain * yaw_error, limits.max_angular_rad_s), False
    bearing = math.atan2(dy, dx)
    heading_error = wrap_angle(bearing - pose.yaw)
    direction = 1.0
    if abs(heading_error) > math.pi / 2:
        direction, heading_error = -1.0, wrap_angle(heading_error + math.pi)
    angular = _clamp(limits.heading_gain * heading_error, limits.max_angular_rad_s)
    if abs(heading_error) > 0.3:
        return 0.0, angular, False
    linear = limits.max_linear_m_s * min(1.0, distance / limits.slow_down_distance_m) * math.cos(heading_error)
    least = limits.final_creep_m_s if final and distance <= limits.final_approach_m else limits.min_linear_m_s
    return direction * max(linear, least), angular, False


def _clamp(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))
