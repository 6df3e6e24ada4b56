"""UR5e kinematics: forward, analytic inverse (all eight branches), joint limits and singularities.

Frames: `base_link` is the DH base frame (z up along the shoulder pan axis) and `tool0` the DH end frame
(z out of the flange), as in the URDF built from `config/ur5e/kinematics.yaml`. A tool transform (the
TCP in `tool0`) may be given to FK and IK. Everything is plain math on floats: the weld path calls the IK
for every sample and the seam tracking calls it in the loop, so it stays in the tens of microseconds.

The inverse follows K. Hawkins, "Analytic Inverse Kinematics for the Universal Robots UR-5/UR-10 Arms"
(2013): the wrist centre fixes the shoulder pan (2 branches), the flange position along the pan's normal
fixes wrist 2 (2 branches), and a planar two-link problem fixes shoulder lift and elbow (2 branches).

Public API:
    load_kinematics(config_dir=None) -> UrKinematics             cached per directory
    UrKinematics.forward(q, tool=None) -> 4x4 pose of tool0 (or the TCP) in base_link
    UrKinematics.inverse(pose, tool=None) -> list of solutions within the joint limits
    UrKinematics.nearest_solution(pose, q_current, tool=None, reject_singular=True) -> joints
    UrKinematics.singularities(q) -> list of (name, margin) within tolerance
    UnreachablePose, SingularityError
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from cell_control.cell.description import share_dir

TWO_PI = 2.0 * math.pi
# Margins under which a configuration counts as singular: |sin(elbow)|, |sin(wrist 2)|, and the distance in
# m of the wrist from the plane of the shoulder pan axis (the shoulder singularity).
ELBOW_SINGULARITY_SIN = 0.05
WRIST_SINGULARITY_SIN = 0.05
SHOULDER_SINGULARITY_M = 0.03
# Rounding slack for a pose exactly at the edge of the workspace (acos argument a hair beyond ±1).
_EDGE_SLACK = 1e-9
# Below this |sin(q5)| the wrist 1 and wrist 3 axes are numerically parallel and only their sum is defined.
_WRIST_ALIGNED = 1e-10
# The analytic inverse holds for the UR link twists only.
_UR_ALPHA = (math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0)


class UnreachablePose(ValueError):
    """No joint configuration within the limits reaches the pose; the message says why."""


class SingularityError(ValueError):
    """The configuration is at or near a singularity; `kind` is 'shoulder', 'elbow' or 'wrist'."""

    def __init__(self, kind: str, margin: float, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.margin = margin


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits in joint order: positions rad, velocities rad/s, accelerations rad/s²."""

    lower_rad: tuple[float, ...]
    upper_rad: tuple[float, ...]
    max_velocity_rad_s: tuple[float, ...]
    max_acceleration_rad_s2: tuple[float, ...]


# UR5e datasheet values, used when config/ur5e/joint_limits.yaml is absent: every joint ±2π except the
# elbow (±π), 180 °/s, and 180 °/s² as ur_description uses for trajectory generation.
_DEFAULT_LOWER = (-TWO_PI, -TWO_PI, -math.pi, -TWO_PI, -TWO_PI, -TWO_PI)
_DEFAULT_VELOCITY = math.pi
_DEFAULT_ACCELERATION = math.pi


def default_config_dir() -> Path:
    """config/ of the installed package (share/cell_control), or of the repository when run from source."""
    return share_dir() / 'config'


class _LimitsLoader(yaml.SafeLoader):
    """Reads ur_description's `!degrees` tag as radians."""


_LimitsLoader.add_constructor(
    '!degrees', lambda loader, node: math.radians(float(loader.construct_scalar(node))))


def _load_joint_limits(path: Path, joint_names: Sequence[str]) -> JointLimits:
    if not path.exists():
        return JointLimits(_DEFAULT_LOWER, tuple(-x for x in _DEFAULT_LOWER),
                           (_DEFAULT_VELOCITY,) * 6, (_DEFAULT_ACCELERATION,) * 6)
    with open(path) as stream:
        table = (yaml.load(stream, Loader=_LimitsLoader) or {}).get('joint_limits', {})
    rows = []
    for name in joint_names:
        entry = table.get(name)
        if entry is None:
            raise ValueError(f'{path}: joint_limits.{name} is missing')
        try:
            row = (float(entry['min_position']), float(entry['max_position']),
                   float(entry.get('max_velocity', _DEFAULT_VELOCITY)),
                   float(entry.get('max_acceleration', _DEFAULT_ACCELERATION)))
        except KeyError as missing:
            raise ValueError(f'{path}: joint_limits.{name}.{missing.args[0]} is missing') from None
        if not row[0] < row[1] or row[2] <= 0 or row[3] <= 0:
            raise ValueError(f'{path}: joint_limits.{name} is inconsistent: {entry}')
        rows.append(row)
    lower, upper, velocity, acceleration = zip(*rows)
    return JointLimits(lower, upper, velocity, acceleration)


class UrKinematics:
    """A six-axis UR arm from its standard DH parameters."""

    def __init__(self, d1: float, a2: float, a3: float, d4: float, d5: float, d6: float,
                 joint_names: Sequence[str], limits: JointLimits) -> None:
        self.d1, self.a2, self.a3, self.d4, self.d5, self.d6 = d1, a2, a3, d4, d5, d6
        self.joint_names = tuple(joint_names)
        self.limits = limits
        if len(self.joint_names) != 6:
            raise ValueError(f'a UR arm has 6 joints, got {len(self.joint_names)}: {self.joint_names}')

    # ---------------------------------------------------------------- forward
    def forward(self, q: Sequence[float], tool: np.ndarray | None = None) -> np.ndarray:
        """Pose of tool0 (or of the TCP when `tool` is given) in base_link, as a 4x4 matrix."""
        q1, q2, q3, q4, q5, q6 = (float(x) for x in q)
        s1, c1 = math.sin(q1), math.cos(q1)
        s5, c5 = math.sin(q5), math.cos(q5)
        s6, c6 = math.sin(q6), math.cos(q6)
        q23, q234 = q2 + q3, q2 + q3 + q4
        s234, c234 = math.sin(q234), math.cos(q234)
        d1, a2, a3, d4, d5, d6 = self.d1, self.a2, self.a3, self.d4, self.d5, self.d6
        # Tool axes and position in frame 1 (x1 = (c1, s1, 0), y1 = base z, z1 = (s1, -c1, 0)).
        x_in_1 = (c234 * c5 * c6 - s234 * s6, s234 * c5 * c6 + c234 * s6, s5 * c6)
        y_in_1 = (-c234 * c5 * s6 - s234 * c6, -s234 * c5 * s6 + c234 * c6, -s5 * s6)
        z_in_1 = (-c234 * s5, -s234 * s5, c5)
        p_in_1 = (a2 * math.cos(q2) + a3 * math.cos(q23) - c234 * s5 * d6 + s234 * d5,
                  a2 * math.sin(q2) + a3 * math.sin(q23) - s234 * s5 * d6 - c234 * d5,
                  d4 + c5 * d6)

        def to_base(v: tuple[float, float, float]) -> tuple[float, float, float]:
            return (c1 * v[0] + s1 * v[2], s1 * v[0] - c1 * v[2], v[1])

        x, y, z, p = to_base(x_in_1), to_base(y_in_1), to_base(z_in_1), to_base(p_in_1)
        pose = np.array([[x[0], y[0], z[0], p[0]],
                         [x[1], y[1], z[1], p[1]],
                         [x[2], y[2], z[2], p[2] + d1],
                         [0.0, 0.0, 0.0, 1.0]])
        return pose if tool is None else pose @ tool

    # ---------------------------------------------------------------- inverse
    def inverse(self, pose: np.ndarray, tool: np.ndarray | None = None,
                wrist_3_hint: float = 0.0, reference: Sequence[float] | None = None) -> list[np.ndarray]:
        """All joint solutions (up to 8) reaching `pose`, each within the joint limits.

        Angles are the representatives nearest `reference` (zero when None) that lie within the limits: joints
        turn more than once, and the branch an arm at `reference` reaches best may be a turn away. At a wrist
        singularity wrist 1 and wrist 3 are not separable; wrist 3 is then set to `wrist_3_hint`. Raises
        `UnreachablePose` naming the reason when no solution exists.
        """
        solutions, reason = self._solve(self._flange_pose(pose, tool), wrist_3_hint)
        within = [q for q in (self._wrap_into_limits(q, reference) for q in solutions) if q is not None]
        if not within:
            raise UnreachablePose(reason or 'every solution lies outside the joint limits')
        return [np.array(q) for q in within]

    def nearest_solution(self, pose: np.ndarray, q_current: Sequence[float] | np.ndarray,
                         tool: np.ndarray | None = None, reject_singular: bool = True) -> np.ndarray:
        """Return the solution closest to `q_current`, each joint wrapped by 2π to its nearest representative.

        Raises `UnreachablePose`, and `SingularityError` when the chosen solution is within tolerance of a
        singularity (unless `reject_singular` is False).
        """
        current = [float(x) for x in q_current]
        if len(current) != 6 or not all(math.isfinite(x) for x in current):
            raise ValueError(f'q_current must be 6 finite joint angles, got {list(q_current)}')
        solutions, reason = self._solve(self._flange_pose(pose, tool), current[5])
        best, best_distance = None, math.inf
        for q in solutions:
            wrapped = self._wrap_into_limits(q, current)
            if wrapped is None:
                continue
            distance = sum((a - b) ** 2 for a, b in zip(wrapped, current))
            if distance < best_distance:
                best, best_distance = wrapped, distance
        if best is None:
            raise UnreachablePose(reason or 'every solution lies outside the joint limits')
        if reject_singular:
            self.check_singularity(best)
        return np.array(best)

    # ---------------------------------------------------------------- singularities
    def singularity_margins(self, q: Sequence[float] | np.ndarray) -> dict[str, float]:
        """Signed distance to each singularity: zero at it, sign flips when a path crosses it.

        The Jacobian determinant of a UR arm factors as a2·a3·sin(q3)·sin(q5)·shoulder, so these three
        are exactly where it loses rank.
        """
        q2, q3, q4, q5 = float(q[1]), float(q[2]), float(q[3]), float(q[4])
        shoulder = (self.a2 * math.cos(q2) + self.a3 * math.cos(q2 + q3)
                    + self.d5 * math.sin(q2 + q3 + q4))
        return {'shoulder': shoulder, 'elbow': math.sin(q3), 'wrist': math.sin(q5)}

    def singularities(self, q: Sequence[float]) -> list[tuple[str, float]]:
        """Return the singularities that `q` is within tolerance of, as (name, margin)."""
        tolerance = {'shoulder': SHOULDER_SINGULARITY_M, 'elbow': ELBOW_SINGULARITY_SIN,
                     'wrist': WRIST_SINGULARITY_SIN}
        return [(name, margin) for name, margin in self.singularity_margins(q).items()
                if abs(margin) < tolerance[name]]

    def check_singularity(self, q: Sequence[float]) -> None:
        """Raise `SingularityError` if `q` is within tolerance of a singularity."""
        near = self.singularities(q)
        if near:
            kind, margin = near[0]
            what = {'shoulder': 'wrist centre within {:.3f} m of the shoulder pan axis plane',
                    'elbow': 'elbow stretched or folded (|sin(elbow)| = {:.3f})',
                    'wrist': 'wrist 1 and wrist 3 axes aligned (|sin(wrist_2)| = {:.3f})'}[kind]
            raise SingularityError(kind, margin, f'{kind} singularity: {what.format(abs(margin))}')

    def within_limits(self, q: Sequence[float]) -> bool:
        return all(lo <= float(x) <= hi for x, lo, hi in zip(q, self.limits.lower_rad, self.limits.upper_rad))

    # ---------------------------------------------------------------- internals
    @staticmethod
    def _flange_pose(pose: np.ndarray, tool: np.ndarray | None) -> list[list[float]]:
        matrix = np.asarray(pose, dtype=float)
        if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
            raise ValueError(f'pose must be a finite 4x4 matrix, got shape {matrix.shape}')
        if tool is not None:
            matrix = matrix @ np.linalg.inv(tool)
        return matrix.tolist()

    def _wrap_into_limits(self, q: Sequence[float], reference: Sequence[float] | None) -> list[float] | None:
        """Each angle ±2πk inside its limits, nearest the reference (or zero); None if impossible."""
        wrapped = []
        lower, upper = self.limits.lower_rad, self.limits.upper_rad
        for i, angle in enumerate(q):
            target = 0.0 if reference is None else reference[i]
            # The representative nearest the target; if it is outside, the next one toward the range.
            candidate = angle + TWO_PI * round((target - angle) / TWO_PI)
            if candidate > upper[i]:
                candidate -= TWO_PI
            elif candidate < lower[i]:
                candidate += TWO_PI
            if not lower[i] <= candidate <= upper[i]:
                return None
            wrapped.append(candidate)
        return wrapped

    def _solve(self, m: list[list[float]], wrist_3_hint: float) -> tuple[list[list[float]], str]:
        """Raw solutions in (-π, π], and the reason when there are none."""
        d1, a2, a3, d4, d5, d6 = self.d1, self.a2, self.a3, self.d4, self.d5, self.d6
        px, py, pz = m[0][3], m[1][3], m[2][3]
        zx, zy, zz = m[0][2], m[1][2], m[2][2]
        # Wrist centre: the flange pulled back along tool z by d6.
        wx, wy = px - d6 * zx, py - d6 * zy
        radius = math.hypot(wx, wy)
        if radius < abs(d4) - _EDGE_SLACK:
            return [], (f'wrist centre {radius:.4f} m from the shoulder pan axis, closer than the shoulder '
                        f'offset d4 = {abs(d4):.4f} m')
        psi = math.atan2(wy, wx)
        phi = math.acos(min(1.0, d4 / radius)) if radius > 0 else 0.0
        solutions: list[list[float]] = []
        reason = ''
        for q1 in (psi + phi + math.pi / 2, psi - phi + math.pi / 2):
            s1, c1 = math.sin(q1), math.cos(q1)
            # Tool z and x axes in frame 1; wrist 2 from z (well conditioned near sin(q5) = 0, unlike acos).
            z1x, z1y, z1z = c1 * zx + s1 * zy, zz, s1 * zx - c1 * zy
            x1x, x1y = c1 * m[0][0] + s1 * m[1][0], m[2][0]
            sin5 = math.hypot(z1x, z1y)
            q5_base = math.atan2(sin5, z1z)
            for q5 in ((q5_base, -q5_base) if sin5 > _WRIST_ALIGNED else (q5_base,)):
                s5 = math.sin(q5)
                # The angle q2 + q3 + q4 of the last planar link, and wrist 3.
                if sin5 > _WRIST_ALIGNED:
                    q6 = math.atan2((m[1][1] * c1 - m[0][1] * s1) / s5, (m[0][0] * s1 - m[1][0] * c1) / s5)
                    q234 = math.atan2(-z1y / s5, -z1x / s5)
                else:
                    q6 = wrist_3_hint
                    if z1z > 0:
                        q234 = math.atan2(x1y, x1x) - q6
                    else:
                        q234 = math.atan2(-x1y, -x1x) + q6
                p1x = c1 * px + s1 * py
                p1y = pz - d1
                s234, c234 = math.sin(q234), math.cos(q234)
                # Planar two-link problem for the origin of frame 4.
                bx = p1x + c234 * s5 * d6 - s234 * d5
                by = p1y + s234 * s5 * d6 + c234 * d5
                cos3 = (bx * bx + by * by - a2 * a2 - a3 * a3) / (2.0 * a2 * a3)
                if abs(cos3) > 1.0 + 1e-9:
                    reason = (f'wrist {math.hypot(bx, by):.4f} m from the shoulder, outside the arm\'s '
                              f'reach {abs(a2) - abs(a3):.4f}..{abs(a2) + abs(a3):.4f} m')
                    continue
                q3_base = math.acos(max(-1.0, min(1.0, cos3)))
                for q3 in (q3_base, -q3_base):
                    q2 = math.atan2(by, bx) - math.atan2(a3 * math.sin(q3), a2 + a3 * math.cos(q3))
                    q4 = q234 - q2 - q3
                    solutions.append([_wrap_pi(q1), _wrap_pi(q2), q3, _wrap_pi(q4), q5, _wrap_pi(q6)])
        return solutions, reason


def _wrap_pi(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))


@lru_cache(maxsize=4)
def load_kinematics(config_dir: Path | None = None) -> UrKinematics:
    """Load the UR5e from config/ur5e/kinematics.yaml (and joint_limits.yaml when present)."""
    directory = Path(config_dir) if config_dir is not None else default_config_dir()
    path = directory / 'ur5e' / 'kinematics.yaml'
    with open(path) as stream:
        table = yaml.safe_load(stream)
    try:
        dh = table['dh']
        if any(abs(float(a) - b) > 1e-6 for a, b in zip(dh['alpha'], _UR_ALPHA)) or len(dh['alpha']) != 6:
            raise ValueError(f'{path}: dh.alpha {dh["alpha"]} is not the UR pattern {_UR_ALPHA}')
        names = table['joint_names']
        arm = UrKinematics(float(dh['d1']), float(dh['a2']), float(dh['a3']), float(dh['d4']),
                           float(dh['d5']), float(dh['d6']), names,
                           _load_joint_limits(directory / 'ur5e' / 'joint_limits.yaml', names))
    except (KeyError, TypeError) as error:
        raise ValueError(f'{path}: missing or malformed entry {error}') from None
    return arm
