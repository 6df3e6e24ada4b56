"""The cell's devices that no stock simulator sensor provides, computed from world poses and joint states.

Photo-eyes, the AGV decks' load sensors, the fixture clamp's end switch and the laser seam sensor are computed
here from what every simulator gives (docs/simulation_contract.md §4): world poses of parts and AGVs, the
arm's joint positions and the cross-slide position, plus config/cell_layout.yaml and the cell URDF. MuJoCo's
CellSimulation calls these same functions on its own poses, so both simulators give the same signals.

Poses are (position (3,), rotation matrix (3, 3)) in the world frame; a part's frame is its bottom centre
(urdf/part.urdf.xacro). Parts are passed as a mapping key → pose (or position); the first match in its
order wins where one part is picked.

Public API:
    PhotoEyes(layout).read(part_poses) -> {eye: blocked}
    DeckLoad(layout).part_on_deck(agv, part_positions) -> key | None; .load_present(agv, part_positions)
    planar(position, rotation) -> Planar(x, y, yaw); pose_from_tf(translation, quaternion) -> Pose
    CellSwitches(layout).read(now_s, named_poses) -> {'eye/<eye>' | 'clamp' | 'load/<agv>': state}; .settled()
    part_at_station(part_positions, layout) -> key | None
    ClampSwitch(clamp_time_s): .command(closed, now_s); .update(now_s, part_at_station) -> closed
    FixtureScatter(position_m, yaw_rad, seed).draw() -> Planar   each gripped part's placement off the datum
    SeamPlacement, seam_in_world(placement, part_pose), seam_coordinates(point, start, direction)
    seam_across_mm(point, start, direction), sensor_view(tcp_m, heading, start, direction) -> SensorView
    SeamSensor(seed).tick(time_s, process_sample, views) -> SeamMeasurement | None
    WeldArc: .strike(time_s, views) -> struck; .advance(tcp_s_mm, force_n, correction_mm, offsets) -> sample
        | None; .travelled(), .finish() -> WeldProcess; .process, .part    (the bead width's process state)
    ToolChain.from_urdf(urdf_xml, layout, kinematics): .tcp_in_world(arm_positions, cross_slide_m)
"""
from __future__ import annotations

import functools
import math
import random
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from cell_control.cell.recipe import Recipe
from cell_control.motion.kinematics import UrKinematics
from cell_control.weld.process_model import LIMITS
from cell_control.weld.seam_measurement import LOOKAHEAD_VALID, SeamMeasurement
from cell_control.weld.seam_profile import SeamProfile, load_seam_csv
from cell_control.sim.weld_process import (GAP_NOISE_MM, LATERAL_NOISE_MM, LOOKAHEAD_MM, NOMINAL_CORRECTION_MM,
                                           NOMINAL_FORCE_N, SAMPLE_STEPS, STEP_S, WeldProcess)

PHOTO_EYE_HEIGHT = 0.03        # m above the carrying surface
PHOTO_EYE_OVERHANG_M = 0.05    # the beam runs this far past each belt edge (emitter and reflector posts)
DECK_HEIGHT_TOLERANCE_M = 0.02  # a part's frame this close to the deck top lies on the deck
DECK_CENTRED_M = 0.15          # the deck's load sensor sees a part this close to the deck centre
CLAMP_REACH_M = 0.06           # a part this close to the station position is gripped by the clamp
SEAM_CAPTURE_MM = 3.0          # the arc strikes only with the TCP this close to the seam line
SENSOR_FIELD_MM = 15.0         # the laser stripe's half-width across the seam at the look point
SENSOR_DEPTH_MM = 5.0          # the laser reads a seam line this far above or below its look point

Pose = tuple[np.ndarray, np.ndarray]


class Planar(NamedTuple):
    """An AGV's pose on the floor: world x, y (m) and yaw (rad)."""

    x: float
    y: float
    yaw: float


def planar(position: Sequence[float], rotation: np.ndarray) -> Planar:
    """Return the floor pose of a body from its world pose (yaw of its x axis about world z)."""
    return Planar(float(position[0]), float(position[1]), math.atan2(rotation[1][0], rotation[0][0]))


def pose_from_tf(translation: Sequence[float], quaternion: Sequence[float]) -> Pose:
    """Return the pose of a transform: translation (x, y, z) and quaternion (x, y, z, w), normalised here."""
    norm = float(np.linalg.norm(quaternion))
    if not norm > 0.0:
        raise ValueError(f'quaternion {tuple(quaternion)} has no length: it is no rotation')
    x, y, z, w = np.asarray(quaternion, dtype=float) / norm
    rotation = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    return np.asarray(translation, dtype=float), rotation


# ----- photo-eyes -------------------------------------------------------------------------------------------
def segment_hits_box(start: np.ndarray, end: np.ndarray, pose: Pose, centre: np.ndarray,
                     half_extents: np.ndarray) -> bool:
    """Tell whether the segment start → end touches a box (centre and half extents in the body's frame)."""
    position, rotation = pose
    a = rotation.T @ (start - position) - centre
    d = rotation.T @ (end - position) - centre - a
    t_in, t_out = 0.0, 1.0
    for k in range(3):   # slab method: clip the segment's parameter range to each pair of faces
        if d[k] == 0.0:
            if abs(a[k]) > half_extents[k]:
                return False
            continue
        t_a, t_b = (-half_extents[k] - a[k]) / d[k], (half_extents[k] - a[k]) / d[k]
        t_in, t_out = max(t_in, min(t_a, t_b)), min(t_out, max(t_a, t_b))
        if t_in > t_out:
            return False
    return True


class PhotoEyes:
    """Light barriers across the belt: a beam at each eye's x, PHOTO_EYE_HEIGHT above the belt.

    A beam is blocked while it crosses a part's box (layout `part` size; the part frame is its bottom centre).
    Only parts interrupt it, as in MuJoCo, whose ray sees only the parts' geom group.
    """

    def __init__(self, layout: dict) -> None:
        conveyor, part = layout['conveyor'], layout['part']
        z = conveyor['belt_top_z'] + PHOTO_EYE_HEIGHT
        reach = conveyor['width'] / 2 + PHOTO_EYE_OVERHANG_M
        self.beams = {eye: (np.array([x, -reach, z]), np.array([x, reach, z]))
                      for eye, x in layout['photo_eyes'].items()}
        self._half = np.array([part['length'], part['width'], part['height']]) / 2
        self._centre = np.array([0.0, 0.0, part['height'] / 2])
        # A part whose frame lies farther than this from a beam cannot touch it: the box test only near a beam.
        self._reach_m = float(np.linalg.norm(self._half) + np.linalg.norm(self._centre))

    def read(self, part_poses: Iterable[Pose]) -> dict[str, bool]:
        """Return each eye's state (True: blocked) for parts at these world poses."""
        poses = list(part_poses)
        return {eye: any(self._near(start, end, pose[0])
                         and segment_hits_box(start, end, pose, self._centre, self._half) for pose in poses)
                for eye, (start, end) in self.beams.items()}

    def _near(self, start: np.ndarray, end: np.ndarray, position: np.ndarray) -> bool:
        """Whether `position` lies within the part's reach of the beam start → end (in floats: this runs often)."""
        (sx, sy, sz), (ex, ey, ez), (px, py, pz) = start.tolist(), end.tolist(), np.asarray(position).tolist()
        bx, by, bz, wx, wy, wz = ex - sx, ey - sy, ez - sz, px - sx, py - sy, pz - sz
        t = min(1.0, max(0.0, (wx * bx + wy * by + wz * bz) / (bx * bx + by * by + bz * bz)))
        return (wx - t * bx) ** 2 + (wy - t * by) ** 2 + (wz - t * bz) ** 2 <= self._reach_m ** 2


# ----- AGV deck load sensor ---------------------------------------------------------------------------------
class DeckLoad:
    """An AGV deck's load sensor: it sees a part lying on the deck near the deck centre."""

    def __init__(self, layout: dict) -> None:
        agv = layout['agv']
        self._deck_z = agv['deck_top_z']
        self._half_length, self._half_width = agv['length'] / 2, agv['width'] / 2

    def _in_agv_frame(self, agv: Planar, position: Sequence[float]) -> tuple[float, float]:
        dx, dy = position[0] - agv.x, position[1] - agv.y
        c, s = math.cos(agv.yaw), math.sin(agv.yaw)
        return dx * c + dy * s, -dx * s + dy * c

    def part_on_deck(self, agv: Planar, part_positions: Mapping[Hashable, Sequence[float]]) -> Hashable | None:
        """Return the first part lying on the deck (at deck height, within its outline), or None."""
        for key, position in part_positions.items():
            along, across = self._in_agv_frame(agv, position)
            if (abs(position[2] - self._deck_z) < DECK_HEIGHT_TOLERANCE_M and abs(along) < self._half_length
                    and abs(across) < self._half_width):
                return key
        return None

    def load_present(self, agv: Planar, part_positions: Mapping[Hashable, Sequence[float]]) -> bool:
        """Read the load sensor: whether the part on the deck lies within DECK_CENTRED_M of its centre."""
        key = self.part_on_deck(agv, part_positions)
        if key is None:
            return False
        # A plain bool: a numpy bool would serialise as False in std_msgs/Bool.
        return bool(abs(self._in_agv_frame(agv, part_positions[key])[0]) <= DECK_CENTRED_M)


# ----- fixture clamp ----------------------------------------------------------------------------------------
def part_at_station(part_positions: Mapping[Hashable, Sequence[float]], layout: dict) -> Hashable | None:
    """Return the first part within the clamp's reach of the station position (x, y = 0), or None."""
    station_x = layout['station']['x']
    for key, position in part_positions.items():
        if abs(position[0] - station_x) <= CLAMP_REACH_M and abs(position[1]) <= CLAMP_REACH_M:
            return key
    return None


class ClampSwitch:
    """The fixture clamp's end switch as a timed device model: closed `clamp_time_s` after the close command.

    A time model rather than a joint reading: the clamp's travel is not simulated as a joint in either
    simulator (MuJoCo moves the part onto the datum; gz has no clamp drive), and the real clamp's switch
    answers the command after its closing time. It also keeps which part the clamp grips: the part at the
    station while the clamp closes, released once the clamp is open again.
    """

    def __init__(self, clamp_time_s: float) -> None:
        if not (math.isfinite(clamp_time_s) and clamp_time_s >= 0.0):
            raise ValueError(f'clamp_time_s must be a finite time ≥ 0 s, got {clamp_time_s}')
        self.clamp_time_s = clamp_time_s
        self.commanded = False
        self.closed = False
        self.changed_s = 0.0
        self.part: Hashable | None = None

    def command(self, closed: bool, now_s: float) -> None:
        """Take the clamp command; a change restarts the switch delay."""
        if closed != self.commanded:
            self.commanded = closed
            self.changed_s = now_s

    def update(self, now_s: float, part_at_station: Callable[[], Hashable | None]) -> bool:
        """Advance to `now_s` and return the switch state; `part_at_station` is asked while closing on no part."""
        if self.commanded and self.part is None:
            self.part = part_at_station()
        if self.closed != self.commanded and now_s - self.changed_s >= self.clamp_time_s:
            self.closed = self.commanded
        if not self.commanded and not self.closed:
            self.part = None
        return self.closed


class FixtureScatter:
    """Where the clamp locates each part it grips, off the fixture datum: the tolerance of a real fixture.

    Each grip draws x, y (uniform within ±`position_m`) and yaw (within ±`yaw_rad`) from one seeded stream, so a
    run gives the same placements in the same order; all zero (the default) locates every part on the datum.
    `placements` are given ones, used first in their order (a logged run's, replayed).
    """

    MAX_POSITION_M = 0.01
    MAX_YAW_RAD = math.radians(5.0)

    def __init__(self, position_m: float = 0.0, yaw_rad: float = 0.0, seed: int = 0,
                 placements: Sequence[Planar] = ()) -> None:
        if not 0.0 <= position_m <= self.MAX_POSITION_M:
            raise ValueError(f'fixture position tolerance {1000 * position_m!r} mm is outside 0..'
                             f'{1000 * self.MAX_POSITION_M:g} mm')
        if not 0.0 <= yaw_rad <= self.MAX_YAW_RAD:
            raise ValueError(f'fixture yaw tolerance {math.degrees(yaw_rad)!r}° is outside 0..'
                             f'{math.degrees(self.MAX_YAW_RAD):g}°')
        self.position_m = position_m
        self.yaw_rad = yaw_rad
        self._draws = random.Random(seed)
        self._given = list(placements)

    def draw(self) -> Planar:
        """Return the next grip's placement against the datum (x along the belt, y across, yaw)."""
        if self._given:
            return self._given.pop(0)
        uniform = self._draws.uniform
        return Planar(uniform(-self.position_m, self.position_m), uniform(-self.position_m, self.position_m),
                      uniform(-self.yaw_rad, self.yaw_rad))


class CellSwitches:
    """The cell's switch signals from the named world poses of /sim/poses (`part_<i>`, `<agv>`): one reading.

    Keys: `eye/<eye>` for each photo-eye of the layout, `clamp` for the clamp's end switch (command it through
    `.clamp`), `load/<agv>` for each AGV of the layout whose pose is among the poses (an AGV without a pose
    gives no reading rather than a guessed one).
    """

    PART_PREFIX = 'part_'

    def __init__(self, layout: dict) -> None:
        self.eyes, self.decks = PhotoEyes(layout), DeckLoad(layout)
        self.clamp = ClampSwitch(layout['station']['clamp_time'])
        self.agvs = tuple(layout['agv']['home'])
        self._layout = layout

    def settled(self) -> bool:
        """Whether a reading on unchanged poses gives what the last one gave: no switch waits on a timer."""
        return self.clamp.closed == self.clamp.commanded

    def read(self, now_s: float, poses: Mapping[str, Pose]) -> dict[str, bool]:
        """Return every switch state at `now_s` for the bodies at these world poses."""
        parts = {name: pose for name, pose in poses.items() if name.startswith(self.PART_PREFIX)}
        positions = {name: pose[0] for name, pose in parts.items()}
        switches = {f'eye/{eye}': state for eye, state in self.eyes.read(parts.values()).items()}
        switches['clamp'] = self.clamp.update(now_s, lambda: part_at_station(positions, self._layout))
        switches.update({f'load/{agv}': self.decks.load_present(planar(*poses[agv]), positions)
                         for agv in self.agvs if agv in poses})
        return switches


# ----- laser seam sensor ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeamPlacement:
    """Where a seam lies on the part (part frame, metres) and the process it is welded with."""

    seam: SeamProfile
    start_in_part: tuple[float, float, float]
    end_in_part: tuple[float, float, float]
    power_drift: float = 0.0
    dropout_rate: float = 0.0
    outlier_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        length_mm = 1000.0 * float(np.linalg.norm(np.subtract(self.end_in_part, self.start_in_part)))
        if abs(length_mm - self.seam.length_mm) > 1.0:
            raise ValueError(f'seam {self.seam.name} is {self.seam.length_mm:g} mm long but its start and end '
                             f'points on the part are {length_mm:.1f} mm apart')

    @functools.cached_property
    def line_in_part(self) -> tuple[np.ndarray, np.ndarray]:
        """The seam's start and unit direction in the part frame, worked out once: seams are placed every 1 ms."""
        start, end = np.asarray(self.start_in_part, dtype=float), np.asarray(self.end_in_part, dtype=float)
        return start, (end - start) / np.linalg.norm(end - start)


def recipe_placements(recipe: Recipe, seam_file: Path | None = None, power_drift: float = 0.0,
                      dropout_rate: float = 0.0, outlier_rate: float = 0.0, seed: int = 0) -> list[SeamPlacement]:
    """Place every seam of a recipe on the part, in the recipe's order; seam k's process is seeded `seed + k`.

    `seam_file` welds another seam file instead of the seam of a one-seam recipe (another part's gaps and
    deviations). The simulated seam runs straight from the program's first point to its last, so a polyline
    program is refused; ValueError names the seam.
    """
    if seam_file is not None and len(recipe.seams) != 1:
        raise ValueError(f'a seam file replaces the seam of a one-seam recipe; {recipe.id} has {len(recipe.seams)}')
    placements = []
    for k, seam in enumerate(recipe.seams):
        if len(seam.program.points_m) != 2:
            raise ValueError(f'seam {seam.id} of {recipe.id}: the simulation places straight seams, its program '
                             f'has {len(seam.program.points_m)} points')
        profile = load_seam_csv(seam_file if seam_file is not None else seam.seam_file)
        placements.append(SeamPlacement(profile, seam.program.points_m[0], seam.program.points_m[-1], power_drift,
                                        dropout_rate, outlier_rate, seed + k))
    return placements


def seam_in_world(placement: SeamPlacement, part_pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Return the start point and unit direction of the seam on a part at `part_pose`, in the world frame."""
    position, rotation = part_pose
    start_in_part, direction_in_part = placement.line_in_part
    return position + rotation @ start_in_part, rotation @ direction_in_part


# Scalar arithmetic on the 3-vectors here and below: these run every simulated millisecond of a weld, where
# numpy's per-call overhead on 3 elements (np.cross alone about 25 µs) was most of the seam station's time.
def _on_seam_line(x: float, y: float, z: float, start: np.ndarray,
                  direction: np.ndarray) -> tuple[float, float, float, float]:
    """Return a point's distance along the seam line from its start (m) and its offset from the line (x, y, z)."""
    dx, dy, dz = float(direction[0]), float(direction[1]), float(direction[2])
    ox, oy, oz = x - float(start[0]), y - float(start[1]), z - float(start[2])
    along = ox * dx + oy * dy + oz * dz
    return along, ox - along * dx, oy - along * dy, oz - along * dz


def seam_coordinates(point: np.ndarray, start: np.ndarray, direction: np.ndarray) -> tuple[float, float]:
    """Return a point's position along the seam (mm from its start) and its distance from the seam line (m)."""
    along, rest_x, rest_y, rest_z = _on_seam_line(float(point[0]), float(point[1]), float(point[2]), start,
                                                  direction)
    return 1000.0 * along, math.sqrt(rest_x ** 2 + rest_y ** 2 + rest_z ** 2)


class SensorView(NamedTuple):
    """What the laser's look point sees of one seam line (mm)."""

    ahead_mm: float     # the look point's position along the seam
    across_mm: float    # where the seam line lies across the look point, along the seam's right (the tool's y)
    depth_mm: float     # the look point's height above the seam line


def _right(direction: np.ndarray) -> tuple[float, float]:
    """Return the seam's right in the floor plane (x, y): direction × up, normalised; its z is 0."""
    dx, dy = float(direction[0]), float(direction[1])
    length = math.hypot(dx, dy)
    return dy / length, -dx / length


def seam_across_mm(point: np.ndarray, start: np.ndarray, direction: np.ndarray) -> float:
    """Return where the seam line lies across `point` (mm along the seam's right: + is to the tool's right)."""
    rx, ry = _right(direction)
    return 1000.0 * float((start[0] - point[0]) * rx + (start[1] - point[1]) * ry)


def sensor_view(tcp_m: np.ndarray, heading: np.ndarray | None, start: np.ndarray,
                direction: np.ndarray) -> SensorView:
    """Return the seam line as the sensor sees it, LOOKAHEAD_MM ahead of the TCP along `heading`.

    heading: the tool's travel direction (its x axis) in the world; None looks straight along the seam.
    """
    if heading is None:
        hx, hy, hz = float(direction[0]), float(direction[1]), float(direction[2])
    else:   # level: the look point is ahead in the floor plane
        hx, hy, hz = float(heading[0]), float(heading[1]), 0.0
        length = math.hypot(hx, hy)
        hx, hy = hx / length, hy / length
    reach = LOOKAHEAD_MM / 1000.0
    along, rest_x, rest_y, rest_z = _on_seam_line(float(tcp_m[0]) + hx * reach, float(tcp_m[1]) + hy * reach,
                                                  float(tcp_m[2]) + hz * reach, start, direction)
    rx, ry = _right(direction)
    return SensorView(1000.0 * along, -1000.0 * (rest_x * rx + rest_y * ry), 1000.0 * rest_z)


class SeamSensor:
    """The laser seam sensor's 500 Hz stream (DESIGN §6), whether or not a seam is in view.

    While the weld process runs it gives the samples (noise, dropouts, outliers, bead width behind the torch:
    sim/weld_process.py); otherwise the sensor previews the seam at its look point with the look-ahead noise:
    the seam file's deviation plus where the seam line lies across the look point (a part off its programmed
    place shows here), and reads nothing (flags 0) where no seam lies within its stripe (SENSOR_FIELD_MM across,
    SENSOR_DEPTH_MM deep) or the look point is off the seam's ends: the search for a seam start sees that edge.
    Seeded: deterministic.
    """

    def __init__(self, seed: int = 0) -> None:
        self.sequence = 0
        self._noise = random.Random(seed)

    def tick(self, time_s: float, process_sample: SeamMeasurement | None,
             views: Callable[[], Iterable[tuple[SeamPlacement, SensorView]]]) -> SeamMeasurement | None:
        """Return the sample of the 1 ms step ending at `time_s`, or None between the sensor's ticks.

        `process_sample` is the weld process's sample of this step (None while no weld runs); `views` gives each
        seam on each part in the cell as the look point sees it (`sensor_view`, the cross-slide's position
        included), asked only on a preview tick: the sensor reads the first seam in its stripe.
        """
        if process_sample is None and round(time_s / STEP_S) % SAMPLE_STEPS:
            return None
        self.sequence += 1
        if process_sample is not None:
            s = process_sample
            return SeamMeasurement(time_s, self.sequence, s.flags, s.gap_mm, s.mismatch_mm, s.lateral_mm,
                                   s.bead_width_mm)
        for placement, view in views():
            if (abs(view.across_mm) <= SENSOR_FIELD_MM and abs(view.depth_mm) <= SENSOR_DEPTH_MM
                    and 0.0 <= view.ahead_mm <= placement.seam.length_mm):
                gap, mismatch, lateral = placement.seam.at(view.ahead_mm)
                noise = self._noise.gauss
                return SeamMeasurement(time_s, self.sequence, LOOKAHEAD_VALID,
                                       gap + noise(0.0, GAP_NOISE_MM), mismatch + noise(0.0, GAP_NOISE_MM),
                                       lateral + view.across_mm + noise(0.0, LATERAL_NOISE_MM), 0.0)
        return SeamMeasurement(time_s, self.sequence, 0, 0.0, 0.0, 0.0, 0.0)


def slew(value: float, limit: float) -> float:
    """Return `value` limited to ±`limit`: the step a rate-limited drive makes toward its target."""
    return -limit if value < -limit else limit if value > limit else value


class WeldArc:
    """The weld process (sim/weld_process.py) run by the TCP's own travel along the seam while the arc burns.

    It gives the seam sensor's samples during the weld, bead width included. The arc strikes as the TCP
    crosses the seam start, only on a step after which the process's sensor ticks fall on the stream's 500 Hz
    ticks; the process starts where the TCP was one step before, so its first step is that step's travel, at
    speed. Force and cross-slide follow their commands at their drives' slew rate (the §6 rate limits), as a
    real tool's drives do between setpoints that come every 2 ms over DDS and may arrive bunched.
    """

    def __init__(self) -> None:
        self.process: WeldProcess | None = None
        self.part: Hashable | None = None       # the part welded last
        self._origin_mm = 0.0
        self._force_n, self._correction_mm = NOMINAL_FORCE_N, NOMINAL_CORRECTION_MM
        self._s_before: dict[Hashable, float] = {}   # TCP seam position per part, one step ago (arc on, no weld)
        self.drift_per_weld = 0.0   # contact-tip wear (issue 13): each weld's power drift moves by this much
        self.welds = 0

    def travelled(self) -> None:
        """Forget where the TCP was: the arc is off, so the next strike measures travel afresh."""
        self._s_before = {}

    def strike(self, time_s: float, views: Iterable[tuple[Hashable, SeamPlacement, tuple[float, float]]]) -> bool:
        """Strike on the first seam whose start the TCP is at.

        views: a key naming the seam on its part, its placement, and the TCP's seam_coordinates on it.
        """
        previous, self._s_before = self._s_before, {}
        on_tick = round(time_s / STEP_S) % SAMPLE_STEPS == 1
        for part, placement, (s_mm, distance_m) in views:
            self._s_before[part] = s_mm
            if on_tick and 0.0 <= s_mm <= SEAM_CAPTURE_MM and distance_m * 1000.0 <= SEAM_CAPTURE_MM:
                drift = max(-0.9, placement.power_drift + self.drift_per_weld * self.welds)
                self.process = WeldProcess(placement.seam, drift, placement.dropout_rate, placement.outlier_rate,
                                           placement.seed)
                self.welds += 1
                self._origin_mm = previous.get(part, s_mm)
                self._force_n, self._correction_mm = NOMINAL_FORCE_N, NOMINAL_CORRECTION_MM
                self.part = part
                return True
        return False

    def advance(self, tcp_s_mm: float, force_n: float, correction_mm: float, path_offset_mm: float = 0.0,
                lookahead_offset_mm: float = 0.0) -> SeamMeasurement | None:
        """Run one 1 ms step to the TCP's seam position with the commanded controls; return its sensor sample.

        The offsets: where the seam line lies across the arm's path, at the tool and at the sensor's look point
        (`WeldProcess.step`).
        """
        process = self.process
        assert process is not None, 'advance() before the arc struck'
        speed_mm_s = max(0.0, (tcp_s_mm - self._origin_mm - process.s_mm) / STEP_S)
        self._force_n += slew(force_n - self._force_n, LIMITS['force_n'].rate_per_s * STEP_S)
        self._correction_mm += slew(correction_mm - self._correction_mm, LIMITS['correction_mm'].rate_per_s * STEP_S)
        return process.step(speed_mm_s, self._force_n, self._correction_mm, path_offset_mm, lookahead_offset_mm)

    def finish(self) -> WeldProcess:
        """End the weld and return its process (its metrics are the weld's true score)."""
        process = self.process
        assert process is not None, 'finish() without a weld'
        self.process = None
        return process


# ----- the TCP from joint states ----------------------------------------------------------------------------
def _origin(element: ElementTree.Element | None) -> np.ndarray:
    """Return a URDF <origin> as a 4x4 transform (xyz, then fixed-axis roll, pitch, yaw)."""
    transform = np.eye(4)
    if element is None:
        return transform
    transform[:3, 3] = [float(v) for v in element.get('xyz', '0 0 0').split()]
    return _with_rpy(transform, [float(v) for v in element.get('rpy', '0 0 0').split()])


def _with_rpy(transform: np.ndarray, rpy: Sequence[float]) -> np.ndarray:
    (cr, sr), (cp, sp), (cy, sy) = ((math.cos(a), math.sin(a)) for a in rpy)
    transform[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                         [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                         [-sp, cp * sr, cp * cr]]
    return transform


class ToolChain:
    """World pose of a tool frame from the arm's joints and the cross-slide, as robot_state_publisher gives it.

    The arm's forward kinematics (motion/kinematics.py, base_link → tool0), the base_link pose in the world
    from the layout, and the fixed and prismatic joints from tool0 down to the frame, read from the cell URDF.
    """

    def __init__(self, kinematics: UrKinematics, base_in_world: np.ndarray,
                 chain: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> None:
        self.kinematics = kinematics
        self.base_in_world = base_in_world
        self.chain = tuple(chain)   # per joint: origin transform, and the axis of a prismatic joint

    @classmethod
    def from_urdf(cls, urdf_xml: str, layout: dict, kinematics: UrKinematics, frame: str = 'weld_tcp',
                  flange: str = 'tool0') -> ToolChain:
        """Read the joints from `flange` down to `frame` in the URDF; raise ValueError naming a missing link."""
        # The robot's own joints: <ros2_control> (the Gazebo description) has <joint> elements of its own.
        joints = {j.find('child').get('link'): j for j in ElementTree.fromstring(urdf_xml).findall('joint')}
        chain: list[tuple[np.ndarray, np.ndarray | None]] = []
        link = frame
        while link != flange:
            joint = joints.get(link)
            if joint is None:
                raise ValueError(f'the URDF has no joint chain from {flange!r} down to {frame!r} ({link!r} has '
                                 'no parent joint)')
            kind = joint.get('type')
            if kind not in ('fixed', 'prismatic'):
                raise ValueError(f'joint {joint.get("name")!r} between {flange!r} and {frame!r} is {kind}; '
                                 'only fixed and prismatic joints are expected on the tool')
            axis = None
            if kind == 'prismatic':
                axis_element = joint.find('axis')
                axis = np.array([float(v) for v in (axis_element.get('xyz') if axis_element is not None
                                                    else '1 0 0').split()])
            chain.append((_origin(joint.find('origin')), axis))
            link = joint.find('parent').get('link')
        base = _with_rpy(np.eye(4), layout['arm']['base_rpy'])
        base[:3, 3] = layout['arm']['base_xyz']
        return cls(kinematics, base, chain[::-1])

    def tcp_in_world(self, arm_positions: Sequence[float], cross_slide_m: float) -> Pose:
        """Return the frame's world position and rotation for these joint positions (rad) and slide (m)."""
        pose = self.base_in_world @ self.kinematics.forward(arm_positions)
        for origin, axis in self.chain:
            pose = pose @ origin
            if axis is not None:
                pose[:3, 3] += pose[:3, :3] @ (axis * cross_slide_m)
        return pose[:3, 3].copy(), pose[:3, :3].copy()
