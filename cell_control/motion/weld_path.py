"""From a seam program in the part frame to timed joint trajectories of the arm.

A seam program is a polyline on the part (straight segments between points, metres in the part frame). The
torch points down into the seam: tool z = −part z, tool x along the travel direction, tool y to the right
of travel (the weld tool's cross-slide axis); then tilted by the travel angle about tool y (positive =
push: the tip leads) and the work angle about tool x. The seam coordinate s (mm) runs from the first point
along the polyline, as in the seam files.

A weld trajectory is: approach point above the run-up start → descend → run up along the seam line to the
travel speed → weld at that constant speed → run out beyond the seam end → retract. The process model
(DESIGN §6) has the tool at speed from s = 0 to L, so the arm crosses the seam start and end at speed; the run-up
and run-out (`WeldMotionSettings.run_up_mm`) accelerate and brake with zero acceleration at both ends. Each
point carries the joint velocities of the path there (the IK's derivative along the path: the inverse Jacobian
applied to the TCP velocity), so JTC's cubic interpolation between points keeps the TCP speed smooth. Every
sample's IK solution is the one nearest the previous sample, and a path whose joints jump or that meets or
crosses a singularity is refused with the seam position. The weld adjuster's speed
corrections are a time scaling of this trajectory (`time_at_seam_position`) and its lateral corrections a
shift of the TCP along tool y, as the tool's cross-slide does (`WeldTrajectory.joints_at`: with the arm).

Public API:
    SeamProgram, WeldMotionSettings, TrajectoryPoint, JointTrajectory, WeldTrajectory, PathError
    plan_weld(program, part_in_world, base_in_world, travel_speed_mm_s, q_seed, arm=None, settings=...)
    joint_move(q_start, q_target, limits, sample_period_s=0.05) -> JointTrajectory
    air_move(arm, q_start, q_goal, air_z_m, settings=...) -> JointTrajectory   up, across, down between seams
    joint_move_duration_s(q_start, q_target, limits) -> float
    time_at_seam_position(weld, s_mm) -> float
    pose_from_xyz_rpy(xyz, rpy), base_pose_from_layout(layout), part_pose_at_station(layout)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from cell_control.motion.trajectory import JointTrajectory, TrajectoryPoint
from cell_control.motion.kinematics import (
    JointLimits, SingularityError, UnreachablePose, UrKinematics, load_kinematics)


class PathError(ValueError):
    """A path the arm cannot follow; `where` names the seam position (or phase) of the first bad sample."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f'{where}: {reason}')
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class SeamProgram:
    """The programmed seam: polyline points in the part frame (m) and torch angles (rad)."""

    points_m: tuple[tuple[float, float, float], ...]
    travel_angle_rad: float = 0.0
    work_angle_rad: float = 0.0

    def __post_init__(self) -> None:
        if len(self.points_m) < 2:
            raise ValueError(f'a seam program needs at least 2 points, got {len(self.points_m)}')
        for i, point in enumerate(self.points_m):
            if len(point) != 3 or not all(math.isfinite(c) for c in point):
                raise ValueError(f'seam point {i} must be 3 finite coordinates, got {point}')
        for i, (a, b) in enumerate(zip(self.points_m, self.points_m[1:])):
            if math.hypot(b[0] - a[0], b[1] - a[1]) < 1e-4:
                raise ValueError(f'seam segment {i} runs less than 0.1 mm across the part: {a} → {b}')
        for name in ('travel_angle_rad', 'work_angle_rad'):
            if not abs(getattr(self, name)) < math.pi / 3:
                raise ValueError(f'{name} must be within ±60°, got {getattr(self, name)}')

    @property
    def length_mm(self) -> float:
        return 1000.0 * sum(math.dist(a, b) for a, b in zip(self.points_m, self.points_m[1:]))

    def tcp_pose(self, s_mm: float, lateral_mm: float = 0.0, lift_m: float = 0.0,
                 beyond_ends_mm: float = 0.0) -> np.ndarray:
        """TCP pose in the part frame at seam position s, `lateral_mm` along tool y, `lift_m` up.

        Positions up to `beyond_ends_mm` before the start or after the end lie on the first or last segment's
        line, extended (the run-up and run-out).
        """
        if not -beyond_ends_mm - 1e-6 <= s_mm <= self.length_mm + beyond_ends_mm + 1e-6:
            raise ValueError(f'seam position {s_mm:.2f} mm is outside the seam 0..{self.length_mm:.2f} mm')
        remaining = s_mm / 1000.0
        last = len(self.points_m) - 2
        for i in range(last + 1):
            start, end = np.array(self.points_m[i]), np.array(self.points_m[i + 1])
            segment = float(np.linalg.norm(end - start))
            if remaining <= segment or i == last:
                break
            remaining -= segment
        up = np.array([0.0, 0.0, 1.0])
        travel = end - start
        travel[2] = 0.0  # the torch axis stays vertical-based even on a sloped segment
        travel /= np.linalg.norm(travel)
        right = np.cross(travel, up)
        pose = np.eye(4)
        pose[:3, :3] = (np.column_stack([travel, right, -up]) @ _rot_y(self.travel_angle_rad)
                        @ _rot_x(self.work_angle_rad))
        pose[:3, 3] = start + (end - start) * (remaining / segment) + up * lift_m
        pose[:3, 3] += pose[:3, 1] * (lateral_mm / 1000.0)
        return pose


@dataclass(frozen=True)
class WeldMotionSettings:
    tcp_offset_m: float = 0.20            # TCP along tool0 z from the flange
    sample_step_mm: float = 5.0           # distance between trajectory samples along the seam
    approach_height_m: float = 0.05       # approach point above the seam start, retract above the end
    approach_speed_mm_s: float = 50.0     # peak TCP speed while descending and retracting
    max_joint_step_rad: float = 0.1       # larger change of any joint between samples is a jump
    run_up_mm: float = 1.0                # on the seam line, accelerating to the travel speed (braking after the
    #                                       end): the arc strikes at speed
    settle_mm: float = 3.0                # then at the travel speed before the seam start: the servos settle
    run_up_points: int = 8                # trajectory points over the acceleration and over the braking

    def __post_init__(self) -> None:
        if not (self.run_up_mm > 0.0 and self.settle_mm >= 0.0 and self.run_up_points >= 1):
            raise ValueError(f'run_up_mm must be positive, settle_mm not negative and run_up_points at least 1, '
                             f'got {self.run_up_mm}, {self.settle_mm} and {self.run_up_points}')

    @property
    def lead_in_mm(self) -> float:
        """Distance on the seam line before the seam start where the weld path starts from rest."""
        return self.run_up_mm + self.settle_mm

    @property
    def lead_in_at_speed_mm(self) -> float:
        """How far the tool would go at the travel speed in the time the lead-in takes from rest.

        The run-up's speed rises as a smoothstep (half the speed on average), so the lead-in takes
        (2·run_up + settle) / v: the weld adjuster, started with the weld path, counts the seam start from it.
        """
        return 2.0 * self.run_up_mm + self.settle_mm

    def tool(self) -> np.ndarray:
        tool = np.eye(4)
        tool[2, 3] = self.tcp_offset_m
        return tool


@dataclass(frozen=True, eq=False)
class WeldTrajectory:
    """The whole weld motion; the weld itself runs from `weld_start_s` to `weld_end_s` (trajectory time)."""

    trajectory: JointTrajectory
    seam_s_mm: tuple[float, ...]        # seam positions of the weld samples
    seam_times_s: tuple[float, ...]     # their trajectory times
    run_up_start_s: float               # trajectory time at the end of the descent, at rest: the run-up begins
    tcp_poses_in_base: tuple[np.ndarray, ...]  # every trajectory point's TCP in base_link
    program: SeamProgram
    part_in_base: np.ndarray
    arm: UrKinematics
    settings: WeldMotionSettings = field(default_factory=WeldMotionSettings)

    @property
    def weld_start_s(self) -> float:
        return self.seam_times_s[0]

    @property
    def weld_end_s(self) -> float:
        return self.seam_times_s[-1]

    def joints_at(self, s_mm: float, lateral_mm: float, q_previous: Sequence[float]) -> np.ndarray:
        """Joints putting the TCP at seam position s shifted by a lateral correction, nearest q_previous."""
        pose = self.part_in_base @ self.program.tcp_pose(s_mm, lateral_mm)
        return self.arm.nearest_solution(pose, q_previous, self.settings.tool())


def _rot_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def pose_from_xyz_rpy(xyz: Sequence[float], rpy: Sequence[float]) -> np.ndarray:
    """Return a 4x4 pose from a position and URDF roll-pitch-yaw (fixed axes x, y, z)."""
    roll, pitch, yaw = (float(a) for a in rpy)
    cz, sz = math.cos(yaw), math.sin(yaw)
    rot_z = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    pose = np.eye(4)
    pose[:3, :3] = rot_z @ _rot_y(pitch) @ _rot_x(roll)
    pose[:3, 3] = [float(c) for c in xyz]
    return pose


def base_pose_from_layout(layout: dict) -> np.ndarray:
    """Pose of the arm's base_link in the world, from cell_layout.yaml."""
    return pose_from_xyz_rpy(layout['arm']['base_xyz'], layout['arm']['base_rpy'])


def part_pose_at_station(layout: dict) -> np.ndarray:
    """Pose of the part frame (bottom centre) when the part rests at the weld station on the belt."""
    return pose_from_xyz_rpy([layout['station']['x'], 0.0, layout['conveyor']['belt_top_z']], [0, 0, 0])


# ------------------------------------------------------------------ joint-space moves
def _check_joints(name: str, q: Sequence[float], limits: JointLimits) -> list[float]:
    values = [float(x) for x in q]
    if len(values) != len(limits.lower_rad) or not all(math.isfinite(x) for x in values):
        raise ValueError(f'{name} must be {len(limits.lower_rad)} finite joint angles, got {list(q)}')
    for i, x in enumerate(values):
        if not limits.lower_rad[i] <= x <= limits.upper_rad[i]:
            raise ValueError(f'{name}[{i}] = {x:.4f} rad is outside the joint limits '
                             f'{limits.lower_rad[i]:.4f}..{limits.upper_rad[i]:.4f}')
    return values


def _synchronised_profile(distances: Sequence[float], limits: JointLimits) -> tuple[float, float]:
    """Duration and acceleration time of the fastest trapezoid shared by all joints (scaled per joint).

    With one normalised profile, joint i peaks at D_i/(T−Ta) and accelerates at D_i/(Ta·(T−Ta)); the
    smallest T meeting every joint's limits is T = V + A/V (Ta = A/V) or, when that has no cruise,
    T = 2·√A, with V = max D_i/v_i and A = max D_i/a_i.
    """
    v_need = max(abs(d) / v for d, v in zip(distances, limits.max_velocity_rad_s))
    a_need = max(abs(d) / a for d, a in zip(distances, limits.max_acceleration_rad_s2))
    if v_need == 0.0:
        return 0.0, 0.0
    if a_need <= v_need * v_need:
        return v_need + a_need / v_need, a_need / v_need
    return 2.0 * math.sqrt(a_need), math.sqrt(a_need)


def joint_move_duration_s(q_start: Sequence[float], q_target: Sequence[float], limits: JointLimits) -> float:
    """How long `joint_move` takes between two configurations (the motion lower bound for KPIs)."""
    start = _check_joints('q_start', q_start, limits)
    target = _check_joints('q_target', q_target, limits)
    return _synchronised_profile([b - a for a, b in zip(start, target)], limits)[0]


def joint_move(q_start: Sequence[float], q_target: Sequence[float], limits: JointLimits,
               joint_names: Sequence[str] = (), sample_period_s: float = 0.05) -> JointTrajectory:
    """Plan a synchronised trapezoidal move within each joint's velocity and acceleration limit.

    This is how motion is re-planned from the current joint state: it starts and ends at rest.
    """
    if not sample_period_s > 0:
        raise ValueError(f'sample_period_s must be positive, got {sample_period_s}')
    start = _check_joints('q_start', q_start, limits)
    target = _check_joints('q_target', q_target, limits)
    distances = [b - a for a, b in zip(start, target)]
    duration, accel_time = _synchronised_profile(distances, limits)
    names = tuple(joint_names) or tuple(f'joint_{i + 1}' for i in range(len(start)))
    if duration == 0.0:
        return JointTrajectory(names, (TrajectoryPoint(0.0, tuple(target), (0.0,) * len(target)),))
    peak = 1.0 / (duration - accel_time)  # normalised speed, fraction of the move per second
    accel = peak / accel_time

    def progress(t: float) -> tuple[float, float]:
        if t < accel_time:
            return 0.5 * accel * t * t, accel * t
        if t <= duration - accel_time:
            return 0.5 * accel * accel_time ** 2 + peak * (t - accel_time), peak
        left = duration - t
        return 1.0 - 0.5 * accel * left * left, accel * left

    count = max(1, math.ceil(duration / sample_period_s))
    points = []
    for k in range(1, count + 1):
        t = duration * k / count
        fraction, rate = progress(t)
        if k == count:
            fraction, rate = 1.0, 0.0
        points.append(TrajectoryPoint(t, tuple(a + d * fraction for a, d in zip(start, distances)),
                                      tuple(d * rate for d in distances)))
    return JointTrajectory(names, (TrajectoryPoint(0.0, tuple(start), (0.0,) * len(start)), *points))


# ------------------------------------------------------------------ weld trajectory
PLANNED_WELD_SPEED_MM_S = 25.0   # DESIGN §6 top travel speed: speed scaling can only slow a trajectory down
DERIVATIVE_STEP_MM = 0.001   # path step of the joint velocities' difference quotient


@dataclass
class _Sample:
    time_s: float
    path: Callable[[float], np.ndarray]   # TCP pose along this phase's path parameter (mm)
    p_mm: float
    rate_mm_s: float                      # d(path parameter)/dt
    where: str
    seam_s_mm: float | None = None

    @property
    def pose(self) -> np.ndarray:
        return self.path(self.p_mm)


def _cartesian_samples(settings: WeldMotionSettings, travel_speed_mm_s: float,
                       pose_at: Callable[[float, float], np.ndarray], length_mm: float) -> list[_Sample]:
    """Descent (cosine profile, rest to rest), run-up, weld at constant speed, run-out, retraction.

    `pose_at(s_mm, lift_mm)`. The run-up's speed rises as 3τ² − 2τ³ over 2·run_up / v (the run-out's falls so):
    zero acceleration where it meets rest and where it meets the constant speed, `settle_mm` before the seam.
    """
    height_mm = settings.approach_height_m * 1000.0
    v, run_mm, run_steps = travel_speed_mm_s, settings.run_up_mm, settings.run_up_points
    run_duration = 2.0 * run_mm / v
    lead_in_mm = settings.lead_in_mm
    weld_steps = max(1, math.ceil(length_mm / settings.sample_step_mm))
    weld_duration = length_mm / v

    def above_start(lift_mm: float) -> np.ndarray:
        return pose_at(-lead_in_mm, lift_mm)

    def above_end(lift_mm: float) -> np.ndarray:
        return pose_at(length_mm + run_mm, lift_mm)

    def along(s_mm: float) -> np.ndarray:
        return pose_at(s_mm, 0.0)

    samples = lift_samples(settings, above_start, height_mm, 0.0, 0.0, 'descent', 'above the run-up start')
    start = samples[-1].time_s
    for k in range(1, run_steps + 1):   # run-up: from rest to v, then at v up to the seam start
        tau = k / run_steps
        s_mm = -lead_in_mm + v * run_duration * (tau ** 3 - tau ** 4 / 2)
        samples.append(_Sample(start + run_duration * tau, along, s_mm, v * (3 * tau ** 2 - 2 * tau ** 3),
                               f'run-up, seam position {s_mm:.1f} mm'))
    samples[-1].p_mm = -settings.settle_mm
    start += run_duration + settings.settle_mm / v
    samples.append(_Sample(start, along, 0.0, v, 'seam position 0.0 mm', 0.0))
    for k in range(1, weld_steps + 1):
        s_mm = length_mm * k / weld_steps
        samples.append(_Sample(start + weld_duration * k / weld_steps, along, s_mm, v,
                               f'seam position {s_mm:.1f} mm', s_mm))
    start += weld_duration
    for k in range(1, run_steps + 1):   # run-out: from v to rest beyond the seam end
        tau = k / run_steps
        s_mm = length_mm + v * run_duration * (tau - tau ** 3 + tau ** 4 / 2)
        samples.append(_Sample(start + run_duration * tau, along, s_mm, v * (1 - 3 * tau ** 2 + 2 * tau ** 3),
                               f'run-out, seam position {s_mm:.1f} mm'))
    samples[-1].p_mm, samples[-1].rate_mm_s = length_mm + run_mm, 0.0
    start += run_duration
    samples += lift_samples(settings, above_end, 0.0, height_mm, start, 'retraction', 'above the run-out end',
                            first=False)
    return samples


def lift_samples(settings: WeldMotionSettings, pose_at_lift: Callable[[float], np.ndarray], from_mm: float,
                 to_mm: float, start_s: float, where: str, place: str, first: bool = True) -> list[_Sample]:
    """Move straight up or down from lift `from_mm` to `to_mm` (`pose_at_lift(lift_mm)`), rest to rest.

    A cosine profile at the approach speed; the samples from `start_s` on (the first one, at rest where the
    move starts, only if `first`).
    """
    distance = to_mm - from_mm
    steps = max(2, math.ceil(abs(distance) / settings.sample_step_mm))
    duration = math.pi / 2 * abs(distance) / settings.approach_speed_mm_s
    samples = []
    for k in range(0 if first else 1, steps + 1):
        lift_mm = from_mm + distance * (1 - math.cos(math.pi * k / steps)) / 2
        rate = 0.0 if k % steps == 0 else distance * math.pi / (2.0 * duration) * math.sin(math.pi * k / steps)
        samples.append(_Sample(start_s + duration * k / steps, pose_at_lift, lift_mm, rate,
                               f'{where}, {lift_mm:.1f} mm {place}'))
    return samples


def line_samples(settings: WeldMotionSettings, pose_at: Callable[[float], np.ndarray], from_mm: float,
                 to_mm: float, peak_mm_s: float, start_s: float, where: str) -> list[_Sample]:
    """Move along a path (`pose_at(p_mm)`) from `from_mm` to `to_mm`, rest to rest, peaking at `peak_mm_s`.

    A quintic profile (zero acceleration at both ends); the samples after the start, from `start_s` on.
    """
    distance = to_mm - from_mm
    steps = max(4, math.ceil(abs(distance) / settings.sample_step_mm))
    duration = 1.875 * abs(distance) / peak_mm_s     # the quintic's peak rate is 1.875 × its mean
    samples = []
    for k in range(1, steps + 1):
        tau = k / steps
        p_mm = from_mm + distance * (10 * tau ** 3 - 15 * tau ** 4 + 6 * tau ** 5)
        rate = 0.0 if k == steps else distance / duration * (30 * tau ** 2 - 60 * tau ** 3 + 30 * tau ** 4)
        samples.append(_Sample(start_s + duration * tau, pose_at, p_mm, rate, f'{where}, {p_mm:.1f} mm'))
    return samples


def _follow(arm: UrKinematics, samples: list[_Sample], tool: np.ndarray, q_first: Sequence[float] | np.ndarray,
            max_step_rad: float) -> list[np.ndarray]:
    """Joint positions along the samples, each nearest the previous; PathError at the first bad one."""
    joints = []
    previous = np.asarray(q_first, dtype=float)
    previous_margins = arm.singularity_margins(previous)
    for sample in samples:
        try:
            q = arm.nearest_solution(sample.pose, previous, tool)
        except (UnreachablePose, SingularityError) as error:
            raise PathError(sample.where, str(error)) from None
        step = np.abs(q - previous)
        worst = int(np.argmax(step))
        if step[worst] > max_step_rad:
            raise PathError(sample.where, f'{arm.joint_names[worst]} jumps {step[worst]:.3f} rad between '
                                          f'samples (limit {max_step_rad:.3f} rad)')
        margins = arm.singularity_margins(q)
        for kind, margin in margins.items():
            if margin * previous_margins[kind] < 0:
                raise PathError(sample.where, f'path crosses the {kind} singularity')
        joints.append(q)
        previous, previous_margins = q, margins
    return joints


def _joint_velocity(arm: UrKinematics, sample: _Sample, q: np.ndarray, tool: np.ndarray) -> np.ndarray:
    """Joint velocities moving the TCP along the sample's path at its rate (dq/dp · dp/dt).

    The difference quotient looks back along the path, so at a polyline vertex it takes the incoming segment.
    """
    if sample.rate_mm_s == 0.0:
        return np.zeros(len(q))
    try:
        behind = arm.nearest_solution(sample.path(sample.p_mm - DERIVATIVE_STEP_MM), q, tool)
    except (UnreachablePose, SingularityError) as error:
        raise PathError(sample.where, str(error)) from None
    return (q - behind) / DERIVATIVE_STEP_MM * sample.rate_mm_s


def joint_path(arm: UrKinematics, samples: list[_Sample], settings: WeldMotionSettings,
               q_seed: Sequence[float]) -> list[TrajectoryPoint]:
    """Return the trajectory points of a Cartesian path, in the IK branch nearest `q_seed` that can follow it.

    PathError names the first sample no branch could pass.
    """
    tool = settings.tool()
    seed = np.asarray(q_seed, dtype=float)
    try:
        branches = arm.inverse(samples[0].pose, tool, reference=seed.tolist())
    except UnreachablePose as error:
        raise PathError(samples[0].where, str(error)) from None
    branches.sort(key=lambda q: float(np.sum((q - seed) ** 2)))
    first_error: PathError | None = None
    for branch in branches:
        try:
            joints = _follow(arm, samples, tool, branch, settings.max_joint_step_rad)
            break
        except PathError as error:
            first_error = first_error or error
    else:
        assert first_error is not None   # arm.inverse raises rather than return no branch
        raise PathError(first_error.where, f'{first_error.reason} (the same or worse in all '
                                           f'{len(branches)} IK branches)')
    return [TrajectoryPoint(sample.time_s, tuple(q.tolist()), tuple(_joint_velocity(arm, sample, q, tool)))
            for sample, q in zip(samples, joints)]


def plan_weld(program: SeamProgram, part_in_world: np.ndarray, base_in_world: np.ndarray,
              travel_speed_mm_s: float, q_seed: Sequence[float], arm: UrKinematics | None = None,
              settings: WeldMotionSettings = WeldMotionSettings()) -> WeldTrajectory:
    """Plan the timed joint trajectory of one seam, starting at rest at the approach point (time 0).

    The IK branch is the one nearest `q_seed` (normally the current joint state) that keeps the whole path
    continuous and clear of singularities. Reach the first point with `joint_move`.
    """
    arm = arm or load_kinematics()
    if not travel_speed_mm_s > 0:
        raise ValueError(f'travel_speed_mm_s must be positive, got {travel_speed_mm_s}')
    part_in_base = np.linalg.inv(np.asarray(base_in_world, dtype=float)) @ np.asarray(part_in_world, float)
    beyond_mm = settings.lead_in_mm + 2 * DERIVATIVE_STEP_MM
    samples = _cartesian_samples(
        settings, travel_speed_mm_s,
        lambda s_mm, lift_mm: part_in_base @ program.tcp_pose(s_mm, 0.0, lift_mm / 1000.0, beyond_mm),
        program.length_mm)
    points = joint_path(arm, samples, settings, q_seed)
    weld = [(s.seam_s_mm, s.time_s) for s in samples if s.seam_s_mm is not None]
    run_up_start_s = weld[0][1] - (2.0 * settings.run_up_mm + settings.settle_mm) / travel_speed_mm_s
    return WeldTrajectory(JointTrajectory(arm.joint_names, tuple(points)),
                          tuple(s for s, _ in weld), tuple(t for _, t in weld), run_up_start_s,
                          tuple(s.pose for s in samples), program, part_in_base, arm, settings)


def vertical_move(arm: UrKinematics, q_start: Sequence[float], to_z_m: float, settings: WeldMotionSettings,
                  where: str) -> list[TrajectoryPoint]:
    """Move the TCP straight up or down to height `to_z_m` (base frame) with its orientation kept, rest to rest.

    A cosine profile at the approach speed, as the weld path's own descent and retraction; the points after the
    start (time 0 = at `q_start`).
    """
    tool = settings.tool()
    start = arm.forward(q_start, tool)
    distance_mm = (to_z_m - start[2, 3]) * 1000.0
    if abs(distance_mm) < 1e-6:
        return []

    def at(p_mm: float) -> np.ndarray:
        pose = start.copy()
        pose[2, 3] += p_mm / 1000.0
        return pose

    samples = lift_samples(settings, at, 0.0, distance_mm, 0.0, where, 'from its start', first=False)
    joints = _follow(arm, samples, tool, q_start, settings.max_joint_step_rad)
    return [TrajectoryPoint(sample.time_s, tuple(q.tolist()), tuple(_joint_velocity(arm, sample, q, tool)))
            for sample, q in zip(samples, joints)]


def air_move(arm: UrKinematics, q_start: Sequence[float], q_goal: Sequence[float], air_z_m: float,
             settings: WeldMotionSettings = WeldMotionSettings()) -> JointTrajectory:
    """Move between two poses near a part through the air: straight up to `air_z_m`, across, straight down.

    The cross move is a joint move between the two poses lifted to `air_z_m` (the goal's lifted joints are the
    IK solution nearest `q_goal`), so the whole move stays within the joint limits; PathError names a leg that
    cannot be followed.
    """
    tool = settings.tool()
    up = vertical_move(arm, q_start, air_z_m, settings, 'lift to the air height')
    q_up = up[-1].positions if up else tuple(q_start)
    above_goal = arm.forward(q_goal, tool)
    above_goal[2, 3] = air_z_m
    try:
        q_above = arm.nearest_solution(above_goal, q_goal, tool).tolist()
    except (UnreachablePose, SingularityError) as error:
        raise PathError('above the next approach point', str(error)) from None
    down = vertical_move(arm, q_above, float(arm.forward(q_goal, tool)[2, 3]), settings, 'descent to the approach')
    across = joint_move(q_up, q_above, arm.limits, arm.joint_names)
    t_up = up[-1].time_from_start_s if up else 0.0
    t_down = t_up + across.duration_s
    points = [TrajectoryPoint(0.0, tuple(float(v) for v in q_start), (0.0,) * len(q_start))] + up
    points += [replace(p, time_from_start_s=p.time_from_start_s + t_up) for p in across.points[1:]]
    points += [replace(p, time_from_start_s=p.time_from_start_s + t_down) for p in down]
    return JointTrajectory(arm.joint_names, tuple(points))


def time_at_seam_position(weld: WeldTrajectory, s_mm: float) -> float:
    """Trajectory time (s) at which the nominal weld reaches seam position s (linear between samples)."""
    s, t = weld.seam_s_mm, weld.seam_times_s
    if not s[0] <= s_mm <= s[-1]:
        raise ValueError(f'seam position {s_mm:.2f} mm is outside the weld {s[0]:.2f}..{s[-1]:.2f} mm')
    return float(np.interp(s_mm, s, t))
