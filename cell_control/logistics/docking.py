"""Which AGV stands docked at which dock, judged from odometry: at the dock pose, aligned and still.

Odometry is in `<agv>/odom` (it starts at the AGV's home pose, as gz DiffDrive gives it); the watch takes it to
the world frame of the docks with `agv_navigation.odom_to_world` and the home poses of the layout.

A docked AGV whose odometry stops arriving is no longer trusted to be docked: the interlock that lets the
belt push a part toward it must fail safe.
"""
from __future__ import annotations

import math

from cell_control.logistics.agv_navigation import STILL_SPEED, Pose2D, home_pose, odom_to_world


class DockWatch:
    def __init__(self, layout: dict, position_tolerance_m: float, yaw_tolerance_rad: float) -> None:
        self._docks = {name: (d['x'], d['y'], d['yaw']) for name, d in layout['docks'].items()}
        self._homes = {agv: home_pose(layout, agv) for agv in layout['agv']['home']}
        self._position_tolerance_m = position_tolerance_m
        self._yaw_tolerance_rad = yaw_tolerance_rad
        self._docked: dict[str, str] = {}        # agv -> dock
        self._last_seen: dict[str, float] = {}   # agv -> odometry receipt time

    def dock_of(self, agv: str) -> str:
        return self._docked.get(agv, '')

    def update(self, agv: str, x: float, y: float, yaw: float, speed: float, now_s: float
               ) -> list[tuple[str, bool]]:
        """Return the changes (dock, docked) caused by this odometry reading of `agv` (pose in `<agv>/odom`)."""
        self._last_seen[agv] = now_s
        here = ''
        if all(math.isfinite(v) for v in (x, y, yaw, speed)) and speed < STILL_SPEED and agv in self._homes:
            world = odom_to_world(self._homes[agv], Pose2D(x, y, yaw))
            x, y, yaw = world.x, world.y, world.yaw
            for name, (dock_x, dock_y, dock_yaw) in self._docks.items():
                yaw_error = abs(math.atan2(math.sin(yaw - dock_yaw), math.cos(yaw - dock_yaw)))
                if math.hypot(x - dock_x, y - dock_y) <= self._position_tolerance_m \
                        and yaw_error <= self._yaw_tolerance_rad:
                    here = name
        return self._set(agv, here)

    def clock_restarted(self, now_s: float) -> None:
        """Count every AGV's odometry age from `now_s` (the clock went back): a full timeout, then expire."""
        for agv in self._last_seen:
            self._last_seen[agv] = now_s

    def expire(self, now_s: float, timeout_s: float) -> list[tuple[str, str]]:
        """(dock, agv) of docked AGVs whose odometry is older than `timeout_s`: they count as gone."""
        gone = [(dock, agv) for agv, dock in self._docked.items() if now_s - self._last_seen[agv] > timeout_s]
        for _, agv in gone:
            del self._docked[agv]
        return gone

    def _set(self, agv: str, dock: str) -> list[tuple[str, bool]]:
        before = self._docked.get(agv, '')
        if before == dock:
            return []
        changes = [(before, False)] if before else []
        if dock:
            self._docked[agv] = dock
            changes.append((dock, True))
        else:
            del self._docked[agv]
        return changes
