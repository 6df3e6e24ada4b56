"""A differential-drive AGV as a unicycle that follows the last twist: the fleet's plant without physics.

One copy for everything that drives `logistics.fleet` on simulated time without MuJoCo: the fleet's unit
tests and the discrete-event cell (`sim.event_cell`) of the crash-point test and the soak benchmark.
"""
from __future__ import annotations

import math

from cell_control.logistics.agv_navigation import Pose2D


def integrate(pose: Pose2D, linear: float, angular: float, dt_s: float) -> Pose2D:
    """Advance a pose by one step of `dt_s` at the given twist (explicit Euler, as odometry would report)."""
    return Pose2D(pose.x + linear * math.cos(pose.yaw) * dt_s, pose.y + linear * math.sin(pose.yaw) * dt_s,
                  pose.yaw + angular * dt_s)
