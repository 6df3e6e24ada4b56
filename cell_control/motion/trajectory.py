"""Following a joint trajectory the way ros2_control's joint_trajectory_controller does.

Validation refuses a trajectory before any of it runs (wrong joint names, non-finite values, times that do
not increase). Interpolation follows JTC: positions only → linear, positions + velocities → cubic Hermite.
The current state is the implicit first point at time 0, and `speed_scaling` (the UR driver's convention)
slows the trajectory's clock without changing its path.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Sequence


class TrajectoryError(ValueError):
    """A trajectory that must not be executed; the message says what is wrong with it."""


@dataclass(frozen=True)
class TrajectoryPoint:
    time_from_start_s: float
    positions: tuple[float, ...]
    velocities: tuple[float, ...] | None = None


@dataclass(frozen=True)
class JointTrajectory:
    joint_names: tuple[str, ...]
    points: tuple[TrajectoryPoint, ...]

    @property
    def duration_s(self) -> float:
        return self.points[-1].time_from_start_s


def validate_trajectory(
    joint_names: Sequence[str],
    points: Sequence[TrajectoryPoint],
    controlled_joints: Sequence[str],
    position_limits: Sequence[tuple[float, float]] | None = None,
) -> JointTrajectory:
    """Check a trajectory against the controlled joints and reorder it to their order."""
    names = list(joint_names)
    if len(set(names)) != len(names):
        raise TrajectoryError(f'duplicate joint names in trajectory: {names}')
    unknown = sorted(set(names) - set(controlled_joints))
    missing = sorted(set(controlled_joints) - set(names))
    if unknown or missing:
        raise TrajectoryError(
            f'trajectory joints do not match the controller: unknown {unknown}, missing {missing}')
    if not points:
        raise TrajectoryError('trajectory has no points')
    order = [names.index(joint) for joint in controlled_joints]
    previous_time = -math.inf
    reordered = []
    for index, point in enumerate(points):
        if len(point.positions) != len(names):
            raise TrajectoryError(
                f'point {index}: {len(point.positions)} positions for {len(names)} joints')
        if point.velocities is not None and len(point.velocities) not in (0, len(names)):
            raise TrajectoryError(
                f'point {index}: {len(point.velocities)} velocities for {len(names)} joints')
        values = list(point.positions) + list(point.velocities or ()) + [point.time_from_start_s]
        if not all(math.isfinite(v) for v in values):
            raise TrajectoryError(f'point {index}: non-finite value in {values}')
        if point.time_from_start_s <= previous_time or point.time_from_start_s < 0.0:
            raise TrajectoryError(
                f'point {index}: time_from_start {point.time_from_start_s} s does not increase')
        previous_time = point.time_from_start_s
        positions = tuple(point.positions[i] for i in order)
        if position_limits is not None:
            for joint, value, (low, high) in zip(controlled_joints, positions, position_limits):
                if not low <= value <= high:
                    raise TrajectoryError(
                        f'point {index}: {joint} = {value:.4f} rad is outside [{low:.4f}, {high:.4f}]')
        velocities = tuple(point.velocities[i] for i in order) if point.velocities else None
        reordered.append(TrajectoryPoint(point.time_from_start_s, positions, velocities))
    return JointTrajectory(tuple(controlled_joints), tuple(reordered))


def _hermite(p0: float, v0: float, p1: float, v1: float, duration: float, t: float) -> tuple[float, float]:
    u = t / duration
    u2, u3 = u * u, u * u * u
    h00, h10, h01, h11 = 2 * u3 - 3 * u2 + 1, u3 - 2 * u2 + u, -2 * u3 + 3 * u2, u3 - u2
    position = h00 * p0 + h10 * duration * v0 + h01 * p1 + h11 * duration * v1
    dh00, dh10, dh01, dh11 = 6 * u2 - 6 * u, 3 * u2 - 4 * u + 1, -6 * u2 + 6 * u, 3 * u2 - 2 * u
    velocity = (dh00 * p0 + dh10 * duration * v0 + dh01 * p1 + dh11 * duration * v1) / duration
    return position, velocity


class TrajectoryFollower:
    """Reference generator for one active trajectory at a time; a new one replaces the old at once."""

    def __init__(self, joint_count: int) -> None:
        self._joint_count = joint_count
        self._trajectory: JointTrajectory | None = None
        self._start_point: TrajectoryPoint | None = None
        self._times: list[float] = []
        self._elapsed_s = 0.0

    @property
    def active(self) -> bool:
        return self._trajectory is not None

    @property
    def elapsed_s(self) -> float:
        return self._elapsed_s

    def start(self, trajectory: JointTrajectory, current_positions: Sequence[float],
              current_velocities: Sequence[float]) -> None:
        self._trajectory = trajectory
        self._start_point = TrajectoryPoint(0.0, tuple(current_positions), tuple(current_velocities))
        self._times = [p.time_from_start_s for p in trajectory.points]
        self._elapsed_s = 0.0

    def cancel(self) -> None:
        self._trajectory = None

    def advance(self, dt_s: float, speed_scaling: float) -> None:
        if self._trajectory is not None:
            self._elapsed_s += dt_s * speed_scaling

    def reference(self) -> tuple[list[float], list[float]] | None:
        """Desired positions and velocities now, or None when no trajectory is active.

        After the last point the reference holds the final positions with zero velocity; the trajectory stays
        active until `cancel` so the goal keeps being held, as JTC does.
        """
        trajectory = self._trajectory
        if trajectory is None or self._start_point is None:
            return None
        t = self._elapsed_s
        if t >= self._times[-1]:
            return list(trajectory.points[-1].positions), [0.0] * self._joint_count
        index = bisect.bisect_right(self._times, t)
        before = self._start_point if index == 0 else trajectory.points[index - 1]
        after = trajectory.points[index]
        duration = after.time_from_start_s - before.time_from_start_s
        local = t - before.time_from_start_s
        if after.velocities is None:
            fraction = local / duration
            positions = [a + (b - a) * fraction for a, b in zip(before.positions, after.positions)]
            velocities = [(b - a) / duration for a, b in zip(before.positions, after.positions)]
            return positions, velocities
        v_before = before.velocities or (0.0,) * self._joint_count
        pairs = [_hermite(p0, v0, p1, v1, duration, local) for p0, v0, p1, v1 in
                 zip(before.positions, v_before, after.positions, after.velocities)]
        return [p for p, _ in pairs], [v for _, v in pairs]

    @property
    def finished(self) -> bool:
        return self._trajectory is not None and self._elapsed_s >= self._times[-1]
