"""Seam finding: the arm scans both ends of the programmed seam with the laser and the weld program follows.

A part lies on the fixture within its tolerance (a few mm, about a degree), so the seam is not where the program
says. Before the first weld of a part the arm runs `plan_search`: down near the seam's end, a slow pass of the
sensor's look point over the end (the laser stops seeing the joint where it ends), a fast move along the seam
line, a slow pass over the start, and back up. `SeamSearch` takes the sensor's readings with the look point's
world position at each (`look_points`, from the joint states) and finds where each end lies: along the seam from
the edge where readings turn valid or invalid, across it from the lateral readings next to the edge, fitted
with a line and extrapolated to the edge (the seam's own deviation may slope there). The found start and end
give `SeamFix`: the planar correction of the part's pose that moves the programmed seam onto them, which shifts
every seam's program of the part (`ArmMotion.locate`).

What this assumes: the seam file's lateral deviation is 0 at the seam's two ends (the program's points are
taught on the joint's ends, as in every seam of config/recipes), so a seam whose true ends lie off its program
turns the correction by their difference over the seam's length. A search that sees no edge, too few readings,
or a seam too far from the program (more than a fixture can misplace a part) is `SeamNotFound` with the reason.

Public API:
    SearchSettings, SeamFix, SeamNotFound, SensorReading, LookPoint
    plan_search(program, part_in_world, base_in_world, q_seed, arm, settings, motion) -> JointTrajectory
    look_points(readings, joint_states, arm, base_in_world, motion) -> list[LookPoint]
    SeamSearch(program, part_in_world, settings).locate(points) -> SeamFix
    SearchLog: .begin(), .reading(r), .joints(stamp, arm, slide), .take() -> (readings, joint_states)
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cell_control.motion.kinematics import UrKinematics
from cell_control.motion.trajectory import JointTrajectory
from cell_control.motion.weld_path import SeamProgram, WeldMotionSettings, joint_path, lift_samples, line_samples
from cell_control.weld.process_model import LOOKAHEAD_MM

EDGE_RUN = 5                   # valid readings in a row that mark the joint's edge
PASS_TOLERANCE_M = 0.001       # a look point this close to the programmed line at the search height is on a pass
_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class SearchSettings:
    window_mm: float = 6.0             # each pass runs ± this around the programmed end (fixture: ±3 mm)
    scan_speed_mm_s: float = 25.0      # peak speed of the look point over an end: 0.05 mm between readings
    traverse_speed_mm_s: float = 400.0  # peak speed along the seam between the two passes
    lift_mm: float = 2.0               # the TCP this high above the seam line while searching
    fit_mm: float = 5.0                # lateral readings this close to an end fix where the seam meets it
    min_readings: int = 20             # fewer valid readings beside an end: not found
    max_shift_mm: float = 10.0         # a seam end found further from its program is not this part's seam
    max_turn_deg: float = 3.0          # nor a seam turned more than this
    length_tolerance_mm: float = 2.0   # the ends found must be the programmed length apart within this

    def __post_init__(self) -> None:
        for name in ('window_mm', 'scan_speed_mm_s', 'traverse_speed_mm_s', 'fit_mm', 'max_shift_mm',
                     'max_turn_deg', 'length_tolerance_mm'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be a positive number, got {value!r}')
        if not 0.0 <= self.lift_mm <= 5.0:
            raise ValueError(f'lift_mm must be within 0..5 mm (the laser reads 5 mm deep), got {self.lift_mm!r}')
        if self.min_readings < 3:
            raise ValueError(f'min_readings must be at least 3 to fit a line, got {self.min_readings!r}')


class SeamNotFound(ValueError):
    """The search did not find the seam; the message says what the laser saw (or did not)."""


@dataclass(frozen=True)
class SensorReading:
    """One seam sensor sample as the search uses it."""

    stamp_s: float
    valid: bool            # the look-ahead reading is valid: the laser sees the joint
    lateral_mm: float      # where the joint lies across the look point, along the tool's y


@dataclass(frozen=True)
class LookPoint:
    """A reading placed in the world: the laser's look point (m) and the tool's right (unit, horizontal)."""

    x_m: float
    y_m: float
    z_m: float
    right: tuple[float, float]
    reading: SensorReading

    @property
    def seam_point(self) -> np.ndarray:
        """Where this reading puts the joint (world x, y in m); meaningful only for a valid reading."""
        lateral_m = self.reading.lateral_mm / 1000.0
        return np.array([self.x_m + lateral_m * self.right[0], self.y_m + lateral_m * self.right[1]])


@dataclass(frozen=True)
class SeamFix:
    """The part's pose as the search found it: the correction to apply and what it amounts to."""

    correction: np.ndarray         # 4x4, world: found part pose = correction @ programmed part pose
    x_mm: float                    # the part frame's origin moved this far in the world (x, y) ...
    y_mm: float
    yaw_deg: float                 # ... and turned this much about the vertical
    start_shift_mm: tuple[float, float]   # the seam start found against its program: along, across
    end_shift_mm: tuple[float, float]
    readings: int                  # valid readings the two ends were fitted from

    def as_dict(self) -> dict:
        return {'x_mm': round(self.x_mm, 3), 'y_mm': round(self.y_mm, 3), 'yaw_deg': round(self.yaw_deg, 4),
                'start_shift_mm': [round(v, 3) for v in self.start_shift_mm],
                'end_shift_mm': [round(v, 3) for v in self.end_shift_mm], 'readings': self.readings}


def plan_search(program: SeamProgram, part_in_world: np.ndarray, base_in_world: np.ndarray,
                q_seed: Sequence[float], arm: UrKinematics, settings: SearchSettings = SearchSettings(),
                motion: WeldMotionSettings = WeldMotionSettings()) -> JointTrajectory:
    """Plan the search of `program`'s seam on the part at `part_in_world`, from rest at its first point.

    Descend above the end pass's start, pass the look point over the seam end, move along to the start pass,
    pass over the seam start, lift: every leg rest to rest on the seam line `lift_mm` above it, the torch as it
    welds. Reach the first point with a joint move. PathError names a leg the arm cannot follow.
    """
    length = program.length_mm
    w = settings.window_mm
    part_in_base = np.linalg.inv(np.asarray(base_in_world, float)) @ np.asarray(part_in_world, float)
    beyond_mm = LOOKAHEAD_MM + 2 * w + 1.0

    def pose_at(p_mm: float, lift_mm: float) -> np.ndarray:
        return part_in_base @ program.tcp_pose(p_mm, 0.0, lift_mm / 1000.0, beyond_mm)

    legs = ((length - LOOKAHEAD_MM + w, length - LOOKAHEAD_MM - w, settings.scan_speed_mm_s, 'end pass'),
            (length - LOOKAHEAD_MM - w, -LOOKAHEAD_MM + w, settings.traverse_speed_mm_s, 'move to the start'),
            (-LOOKAHEAD_MM + w, -LOOKAHEAD_MM - w, settings.scan_speed_mm_s, 'start pass'))
    first = legs[0][0]
    samples = lift_samples(motion, lambda lift_mm: pose_at(first, lift_mm), motion.approach_height_m * 1000.0,
                           settings.lift_mm, 0.0, 'search descent', 'above the seam line')
    time_s = samples[-1].time_s
    for start_mm, end_mm, peak_mm_s, where in legs:
        leg = line_samples(motion, lambda p_mm: pose_at(p_mm, settings.lift_mm), start_mm, end_mm, peak_mm_s,
                           time_s, where)
        samples += leg
        time_s = leg[-1].time_s
    last = legs[-1][1]
    samples += lift_samples(motion, lambda lift_mm: pose_at(last, lift_mm), settings.lift_mm,
                            motion.approach_height_m * 1000.0, time_s, 'search lift', 'above the seam line',
                            first=False)
    points = joint_path(arm, samples, motion, q_seed)
    return JointTrajectory(arm.joint_names, tuple(points))


def look_points(readings: Sequence[SensorReading], joint_states: Sequence[tuple[float, Sequence[float], float]],
                arm: UrKinematics, base_in_world: np.ndarray,
                motion: WeldMotionSettings = WeldMotionSettings()) -> list[LookPoint]:
    """Place each reading at the laser's look point when it was taken.

    joint_states: (stamp, the six arm joints, the cross-slide in m), in time order; a reading's joints are
    interpolated between the two states around its stamp, and readings outside the states' span are left out.
    """
    stamps = [state[0] for state in joint_states]
    base = np.asarray(base_in_world, float)
    tool = motion.tool()
    out = []
    for reading in readings:
        i = bisect_left(stamps, reading.stamp_s)
        if i >= len(stamps) or (i == 0 and stamps[0] > reading.stamp_s):
            continue
        if stamps[i] == reading.stamp_s:
            q, slide = np.asarray(joint_states[i][1], float), joint_states[i][2]
        else:
            (t0, q0, s0), (t1, q1, s1) = joint_states[i - 1], joint_states[i]
            f = (reading.stamp_s - t0) / (t1 - t0)
            q = np.asarray(q0, float) + (np.asarray(q1, float) - np.asarray(q0, float)) * f
            slide = s0 + (s1 - s0) * f
        tcp = base @ arm.forward(q.tolist(), tool)
        heading = tcp[:3, 0] - (tcp[:3, 0] @ _UP) * _UP
        heading /= np.linalg.norm(heading)
        right = np.cross(heading, _UP)
        look = tcp[:3, 3] + tcp[:3, 1] * slide + heading * (LOOKAHEAD_MM / 1000.0)
        out.append(LookPoint(float(look[0]), float(look[1]), float(look[2]), (float(right[0]), float(right[1])),
                             reading))
    return out


class SeamSearch:
    """Find the seam's ends in a search's look points and the part pose correction they give.

    Only look points on the search's passes count (on the programmed seam line at the search height, within
    PASS_TOLERANCE_M), not those of the moves to and from them.
    """

    def __init__(self, program: SeamProgram, part_in_world: np.ndarray,
                 settings: SearchSettings = SearchSettings()) -> None:
        self.settings = settings
        part = np.asarray(part_in_world, float)
        start = part @ np.append(np.asarray(program.points_m[0]), 1.0)
        end = part @ np.append(np.asarray(program.points_m[-1]), 1.0)
        self._start, self._end = start[:2], end[:2]
        self._length_m = float(np.linalg.norm(self._end - self._start))
        self._along = (self._end - self._start) / self._length_m
        self._across = np.array([self._along[1], -self._along[0]])   # the seam's right
        self._origin = part[:2, 3]
        self._pass_z_m = float(start[2]) + settings.lift_mm / 1000.0

    def locate(self, points: Sequence[LookPoint]) -> SeamFix:
        """Return the part's found pose correction; SeamNotFound says why there is none."""
        s = self.settings
        on_pass = [p for p in points if abs(p.z_m - self._pass_z_m) <= PASS_TOLERANCE_M]
        coordinates = [c for c in ((self._in_program(np.array([p.x_m, p.y_m])), p) for p in on_pass)
                       if abs(c[0][1]) <= PASS_TOLERANCE_M * 1000.0]
        length_mm = self._length_m * 1000.0
        ends = [self._end_point(coordinates, 0.0, 'start', +1), self._end_point(coordinates, length_mm, 'end', -1)]
        # Each end lies on its fitted line where the edge's look point is square to the seam's chord (the laser
        # stops seeing the joint there); the chord joins the two ends: a few rounds settle both.
        chord = np.array([1.0, 0.0])
        for _ in range(3):
            found_ends = [self._on_line(edge, line, chord) for edge, line, _ in ends]
            chord = (found_ends[1] - found_ends[0]) / np.linalg.norm(found_ends[1] - found_ends[0])
        for end_mm, name, point in zip((0.0, length_mm), ('start', 'end'), found_ends):
            if max(abs(point[0] - end_mm), abs(point[1])) > s.max_shift_mm:
                raise SeamNotFound(f'seam {name} found {point[0] - end_mm:+.1f} mm along and {point[1]:+.1f} mm '
                                   f'across its program, more than the {s.max_shift_mm:g} mm a part can lie off')
        start, end = (self._start + (self._along * p[0] + self._across * p[1]) / 1000.0 for p in found_ends)
        n_start, n_end = ends[0][2], ends[1][2]
        found = end - start
        found_mm = float(np.linalg.norm(found)) * 1000.0
        if abs(found_mm - length_mm) > s.length_tolerance_mm:
            raise SeamNotFound(f'the seam ends found are {found_mm:.1f} mm apart, the program\'s '
                               f'{length_mm:.1f} mm (tolerance {s.length_tolerance_mm:g} mm): not this seam')
        turn = math.atan2(found[1], found[0]) - math.atan2(self._along[1], self._along[0])
        turn = math.atan2(math.sin(turn), math.cos(turn))
        if abs(math.degrees(turn)) > s.max_turn_deg:
            raise SeamNotFound(f'the seam found runs {math.degrees(turn):+.2f}° from its program, more than the '
                               f'{s.max_turn_deg:g}° a part can turn on the fixture')
        c, sn = math.cos(turn), math.sin(turn)
        rotation = np.array([[c, -sn], [sn, c]])
        translation = start - rotation @ self._start   # the programmed start goes onto the found one
        correction = np.eye(4)
        correction[:2, :2] = rotation
        correction[:2, 3] = translation
        moved = (rotation @ self._origin + translation - self._origin) * 1000.0
        (start_along, start_across), (end_along, end_across) = found_ends   # in the program's frame already
        return SeamFix(correction, float(moved[0]), float(moved[1]), math.degrees(turn),
                       (float(start_along), float(start_across)), (float(end_along - length_mm), float(end_across)),
                       n_start + n_end)

    @staticmethod
    def _on_line(edge: np.ndarray, line: tuple[float, float], chord: np.ndarray) -> np.ndarray:
        """Return the point of `line` (across = offset + slope·along) square to `chord` from `edge`."""
        offset, slope = line
        along = (edge[0] * chord[0] + (edge[1] - offset) * chord[1]) / (chord[0] + slope * chord[1])
        return np.array([along, offset + slope * along])

    def _in_program(self, point: np.ndarray) -> tuple[float, float]:
        """Return a world point (x, y) in the programmed seam's frame: mm along it from its start, mm across."""
        delta = (point - self._start) * 1000.0
        return float(delta @ self._along), float(delta @ self._across)

    def _end_point(self, coordinates: list[tuple[tuple[float, float], LookPoint]], end_mm: float, name: str,
                   inward: int) -> tuple[np.ndarray, tuple[float, float], int]:
        """Find one end's edge (program frame, mm), the joint's line next to it and the readings on that line.

        Going `inward` (+1 from the start, -1 from the end), the edge lies between the last look point outside the
        joint and the first inside it (the first of EDGE_RUN valid readings in a row: a stray reading beyond the
        end is not an edge). The line (across = offset + slope·along) is fitted through the valid readings' seam
        points next to the edge: the seam's own deviation may slope there.
        """
        s = self.settings
        near = sorted((c for c in coordinates if abs(c[0][0] - end_mm) <= s.window_mm + 1.0),
                      key=lambda c: c[0][0] * inward)
        valid = [c for c in near if c[1].reading.valid]
        if not valid:
            raise SeamNotFound(f'seam {name} not found: the laser saw no joint within ±{s.window_mm:g} mm of '
                               f'its programmed place ({len(near)} readings there)')
        flags = [c[1].reading.valid for c in near]
        first = next((i for i in range(1, len(near)) if all(flags[i:i + EDGE_RUN]) and not flags[i - 1]), None)
        if first is None or all(flags[:EDGE_RUN]):
            raise SeamNotFound(f'seam {name} not found: the joint runs on past the search window '
                               f'(±{s.window_mm:g} mm of its programmed place); no {name} edge')
        (along_out, across_out), (along_in, across_in) = near[first - 1][0], near[first][0]
        edge = np.array([(along_out + along_in) / 2.0, (across_out + across_in) / 2.0])
        inside = [c for c in valid if 0.0 <= (c[0][0] - edge[0]) * inward <= s.fit_mm]
        if len(inside) < s.min_readings:
            raise SeamNotFound(f'seam {name} not found: {len(inside)} valid readings within {s.fit_mm:g} mm of '
                               f'its edge, {s.min_readings} needed')
        seam_points = np.array([self._in_program(c[1].seam_point) for c in inside])
        slope, offset = np.polyfit(seam_points[:, 0], seam_points[:, 1], 1)
        return edge, (float(offset), float(slope)), len(inside)


class SearchLog:
    """What a running search saw: the sensor's readings and the joint states, kept for `ArmMotion.locate`.

    Kept only between `begin` and `take` (a search's move), and bounded: a search longer than `max_entries`
    readings keeps its first ones, which hold both ends. The move ends on a joint state, and the 500 Hz readings
    of its last moments can still be queued behind it (a consumer running behind the simulation at full speed
    took 150-240 readings where it took 240 at 1x): `finish` stops the joint states there, and the log is `ready`
    once a reading has reached that joint state's time, or `wait_s` (of the caller's clock) later.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self.active = False
        self.readings: list[SensorReading] = []
        self.joint_states: list[tuple[float, list[float], float]] = []
        self._end: tuple[float, float] | None = None   # (the last joint state's stamp, the caller's deadline)

    def begin(self) -> None:
        """Start a new search's log (what an interrupted one saw is dropped)."""
        self.active = True
        self.readings, self.joint_states = [], []
        self._end = None

    def finish(self, now_s: float, wait_s: float) -> None:
        """End the move: no more joint states; readings up to the last one's time are still taken."""
        self._end = (self.joint_states[-1][0] if self.joint_states else -math.inf, now_s + wait_s)

    def ready(self, now_s: float) -> bool:
        """Tell whether a finished search has its readings up to the move's end (or has waited long enough)."""
        if self._end is None:
            return False
        end_s, deadline_s = self._end
        return (bool(self.readings) and self.readings[-1].stamp_s >= end_s) or now_s >= deadline_s

    def reading(self, reading: SensorReading) -> None:
        if self.active and len(self.readings) < self.max_entries and math.isfinite(reading.stamp_s) and (
                not reading.valid or math.isfinite(reading.lateral_mm)):
            self.readings.append(reading)

    def joints(self, stamp_s: float, arm: Sequence[float], cross_slide_m: float) -> None:
        """Keep a joint state; one not after the last, or not finite, is dropped (`look_points` needs them in order)."""
        values = [stamp_s, cross_slide_m, *arm]
        if self.active and self._end is None and len(self.joint_states) < self.max_entries and all(
                math.isfinite(v) for v in values) and (not self.joint_states or stamp_s > self.joint_states[-1][0]):
            self.joint_states.append((stamp_s, [float(q) for q in arm], float(cross_slide_m)))

    def take(self) -> tuple[list[SensorReading], list[tuple[float, list[float], float]]]:
        """End the log and return the readings and joint states."""
        self.active = False
        self._end = None
        readings, joint_states = self.readings, self.joint_states
        self.readings, self.joint_states = [], []
        return readings, joint_states
