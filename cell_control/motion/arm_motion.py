"""The arm's moves for the part cycle, planned from the current joints and judged from the joint states.

The coordinator asks for a target ('seam_search', 'seam_start', 'weld_path', 'home', 'rest') of one of the recipe's
seams ('home' and 'rest', where the idle policy parks the arm, are joint moves of no seam);
every plan starts from the joint state measured now, so after any stop the old trajectory is simply never sent
again. 'seam_search' scans the seam's ends with the laser (`motion.seam_search`) on the part as programmed;
`locate` then finds the part in what the laser saw, and every later plan of the part's seams is on the part where
it was found (the next search starts from the program again).
'seam_start' ends at rest at the run-up start, a few mm before the seam start on its line, so that the weld path
crosses the seam start at the travel speed (the process model starts at speed). Between two seams of a part the
torch is just above the part: 'seam_start' then goes through the air, straight up to `AIR_CLEARANCE_M` above the
part's top face, across at that height and straight down, so no part of the move comes nearer the part than the
weld path's own approach height. The weld path is planned at the
adjuster's top travel speed and slowed by speed scaling (the UR driver's convention): the adjuster's travel
speed becomes `speed_scaling = v / v_planned` while the arm moves along the seam. A move is done when the
joints are within tolerance of its last point and nearly still; how long that may take is the coordinator's
timeout, not ours.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from cell_control.motion.trajectory import JointTrajectory, TrajectoryPoint
from cell_control.cell.description import rest_positions
from cell_control.cell.recipe import SeamRecipe
from cell_control.motion.kinematics import UrKinematics
from cell_control.motion.seam_search import (SearchSettings, SeamFix, SeamNotFound, SeamSearch, SensorReading,
                                             look_points, plan_search)
from cell_control.motion.weld_path import (PLANNED_WELD_SPEED_MM_S, PathError, WeldMotionSettings, WeldTrajectory,
                                           air_move, base_pose_from_layout, joint_move, part_pose_at_station,
                                           plan_weld)

SEARCH_TARGET = 'seam_search'
REST_TARGET = 'rest'
TARGETS = (SEARCH_TARGET, 'seam_start', 'weld_path', 'home', REST_TARGET)
AIR_CLEARANCE_M = 0.15           # height above the part's top face of the cross move between two seams
NEAR_PART_M = 0.10               # a TCP this close above the part (and over it) starts a seam move in the air ...
SHORT_MOVE_M = 0.05              # ... unless the TCP moves less than this: a joint move that short stays straight


class ArmMotionError(ValueError):
    """A move that cannot be planned; the message names the target and why."""


@dataclass(frozen=True)
class ArmTolerances:
    position_rad: float = 0.002        # every joint this close to the goal
    velocity_rad_s: float = 0.01       # and this still


def _shifted(points: Sequence[TrajectoryPoint], offset_s: float) -> list[TrajectoryPoint]:
    return [replace(p, time_from_start_s=p.time_from_start_s + offset_s) for p in points]


def _segment(weld: WeldTrajectory, start_s: float, end_s: float) -> list[TrajectoryPoint]:
    """Return the weld trajectory's points strictly after start_s up to end_s, re-timed to start at start_s."""
    return _shifted([p for p in weld.trajectory.points if start_s + 1e-9 < p.time_from_start_s <= end_s + 1e-9],
                    -start_s)


class ArmMotion:
    def __init__(self, arm: UrKinematics, layout: dict, seams: Sequence[SeamRecipe], home: Sequence[float],
                 rest: Sequence[float] | None = None, tolerances: ArmTolerances = ArmTolerances(),
                 settings: WeldMotionSettings = WeldMotionSettings(),
                 search: SearchSettings = SearchSettings()) -> None:
        rest = rest_positions(layout) if rest is None else rest
        for name, pose in (('home', home), ('rest', rest)):
            if len(pose) != 6 or not all(math.isfinite(v) for v in pose):
                raise ArmMotionError(f'{name} must be 6 finite joint positions, got {list(pose)}')
        if not seams:
            raise ArmMotionError('a part needs at least one seam to weld')
        self.arm = arm
        self.seams = {seam.id: seam for seam in seams}
        self.first_seam = seams[0].id
        self.home = [float(v) for v in home]
        self.rest = [float(v) for v in rest]
        self.tolerances = tolerances
        self.settings = settings
        self.search = search
        self._programmed_part = part_pose_at_station(layout)   # the part on the fixture datum
        self._base_in_world = base_pose_from_layout(layout)
        self._half_size = (layout['part']['length'] / 2, layout['part']['width'] / 2, layout['part']['height'])
        self._place_part(self._programmed_part)
        self._weld: WeldTrajectory | None = None
        self._weld_seam = ''
        self.goal: list[float] | None = None
        self.target = ''

    def plan(self, target: str, q_now: Sequence[float], seam: str = '') -> JointTrajectory:
        """Plan a trajectory from the measured joints `q_now` to `target` of `seam` (default: the first seam).

        The plan becomes the goal to supervise.
        """
        if target not in TARGETS:
            raise ArmMotionError(f'unknown arm target {target!r}; one of {", ".join(TARGETS)}')
        seam = seam or self.first_seam
        if seam not in self.seams:
            raise ArmMotionError(f'unknown seam {seam!r}; the recipe has {", ".join(self.seams)}')
        names = self.arm.joint_names
        limits = self.arm.limits
        if target in ('home', REST_TARGET):
            points = list(joint_move(q_now, self.home if target == 'home' else self.rest, limits, names).points[1:])
        elif target == SEARCH_TARGET:
            self._place_part(self._programmed_part)   # a new part: the search starts from the program
            try:
                search = plan_search(self.seams[seam].program, self._programmed_part, self._base_in_world, q_now,
                                     self.arm, self.search, self.settings)
            except PathError as error:
                raise ArmMotionError(f'seam search of {seam}: {error}') from None
            points = list(joint_move(q_now, search.points[0].positions, limits, names).points[1:])
            start_s = points[-1].time_from_start_s if points else 0.0
            points += _shifted(list(search.points[1:]), start_s)
            self._searched = seam
        else:
            if target == 'seam_start' or self._weld is None or self._weld_seam != seam:
                self._weld = plan_weld(self.seams[seam].program, self._part_in_world, self._base_in_world,
                                       PLANNED_WELD_SPEED_MM_S, q_now, self.arm, self.settings)
                self._weld_seam = seam
            weld = self._weld
            if target == 'seam_start':
                approach = weld.trajectory.points[0].positions
                move = self._air_move(q_now, approach) if self._near_part(q_now) and \
                    not self._short(q_now, approach) else joint_move(q_now, approach, limits, names)
                points = list(move.points[1:]) + _shifted(_segment(weld, 0.0, weld.run_up_start_s), move.duration_s)
            else:
                points = _segment(weld, weld.run_up_start_s, weld.trajectory.duration_s)
        if not points:   # already there: one point at the goal keeps JTC semantics (hold it)
            points = [TrajectoryPoint(0.1, tuple(float(v) for v in q_now), (0.0,) * 6)]
        self.goal = [float(v) for v in points[-1].positions]
        self.target = target
        return JointTrajectory(tuple(names), tuple(points))

    def locate(self, readings: Sequence[SensorReading],
               joint_states: Sequence[tuple[float, Sequence[float], float]]) -> SeamFix:
        """Find the searched seam in the search's readings and weld every seam of the part where it was found.

        joint_states: (stamp, arm joints, cross-slide m) over the search, in time order. SeamNotFound says why the
        seam was not found; the part's programmed pose then stands.
        """
        if not self._searched:
            raise SeamNotFound('no search was run for this part')
        points = look_points(readings, joint_states, self.arm, self._base_in_world, self.settings)
        fix = SeamSearch(self.seams[self._searched].program, self._programmed_part, self.search).locate(points)
        self.place(fix)
        return fix

    def place(self, fix: SeamFix) -> None:
        """Weld every seam of the part where `fix` puts it (what a search found, or another locating device)."""
        self._place_part(fix.correction @ self._programmed_part)

    def seam_lines(self) -> dict[str, list[tuple[tuple[float, ...], tuple[float, ...]]]]:
        """Each seam of the part as a line in the world (start, end), as programmed and where it is welded.

        'programmed': on the part at the fixture datum; 'welded': on the part where the last search found it (the
        same as programmed before any search). For RViz, so the search can be seen.
        """
        def at(part: np.ndarray, point: Sequence[float]) -> tuple[float, ...]:
            return tuple(float(v) for v in (part @ np.append(point, 1.0))[:3])

        def lines(part: np.ndarray) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
            return [(at(part, seam.program.points_m[0]), at(part, seam.program.points_m[-1]))
                    for seam in self.seams.values()]
        return {'programmed': lines(self._programmed_part), 'welded': lines(self._part_in_world)}

    def _place_part(self, part_in_world: np.ndarray) -> None:
        """Weld the part where it lies (the programmed pose, or where the search found it)."""
        self._part_in_world = part_in_world
        part_in_base = np.linalg.inv(self._base_in_world) @ part_in_world
        half_length, half_width, height = self._half_size
        self._top_in_base_z = float(part_in_base[2, 3] + height)
        self._footprint = (part_in_base, half_length, half_width)
        self._weld = None
        self._searched = ''

    def _short(self, q_now: Sequence[float], q_goal: Sequence[float]) -> bool:
        tool = self.settings.tool()
        distance = self.arm.forward(q_now, tool)[:3, 3] - self.arm.forward(q_goal, tool)[:3, 3]
        return float(np.linalg.norm(distance)) < SHORT_MOVE_M

    def _near_part(self, q: Sequence[float]) -> bool:
        """Tell whether the TCP is over the part and less than NEAR_PART_M above its top (just after a seam)."""
        tcp = self.arm.forward(q, self.settings.tool())[:3, 3]
        part_in_base, half_length, half_width = self._footprint
        local = np.linalg.inv(part_in_base) @ np.append(tcp, 1.0)
        over = abs(local[0]) <= half_length + NEAR_PART_M and abs(local[1]) <= half_width + NEAR_PART_M
        return bool(over and tcp[2] < self._top_in_base_z + NEAR_PART_M)

    def _air_move(self, q_now: Sequence[float], q_goal: Sequence[float]) -> JointTrajectory:
        """Up to the air height, across, and down to `q_goal`, each leg from rest to rest."""
        air_z = self._top_in_base_z + AIR_CLEARANCE_M
        try:
            return air_move(self.arm, q_now, q_goal, air_z, self.settings)
        except PathError as error:
            raise ArmMotionError(f'air move to the next seam: {error}') from None

    def discard(self) -> None:
        """Forget the goal (after a stop); the next move is planned from the joints measured then."""
        self.goal = None
        self.target = ''

    def reached(self, q: Sequence[float], qd: Sequence[float]) -> bool:
        if self.goal is None:
            return False
        tol = self.tolerances
        return (max(abs(a - b) for a, b in zip(q, self.goal)) <= tol.position_rad
                and max(abs(v) for v in qd) <= tol.velocity_rad_s)

    def speed_scaling(self, travel_speed_mm_s: float) -> float:
        """Scaling of the weld trajectory that makes the TCP travel at the adjuster's speed."""
        if not math.isfinite(travel_speed_mm_s):
            raise ArmMotionError(f'travel speed {travel_speed_mm_s!r} is not finite')
        return float(np.clip(travel_speed_mm_s / PLANNED_WELD_SPEED_MM_S, 0.0, 1.0))
