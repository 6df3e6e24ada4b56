"""The weld station's arc and laser seam sensor, stepped 1 ms at a time from the TCP: the same for both simulators.

MuJoCo's `CellSimulation` steps it after each physics step with its TCP; in the Gazebo route, where no stock
sensor can model a weld, the `cell_sensors` node steps it from `/joint_states` (forward kinematics through
`virtual_sensors.ToolChain`) and the parts' poses on `/sim/poses`. So both routes stream the same samples for
the same motion (docs/simulation_contract.md §4). No MuJoCo, no ROS.

Each step: while the arc is commanded on, the arc strikes on the first seam whose start the TCP is at
(`WeldArc.strike`) and the weld process then runs at the TCP's own travel along that seam; the sensor gives
the process's sample, or between welds its preview of the seam ahead (`SeamSensor`). Each strike's time goes to
`strikes`: the power source's "arc established" output, which ends the adjuster's lead-in. A weld that reaches its
seam's end switches the arc off; a weld whose arc goes off, or whose part leaves, ends interrupted. Each weld's
score (the process model's metrics, which no real cell can measure) goes to `results`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from cell_control.cell.energy import arc_energy_j
from cell_control.sim.virtual_sensors import (Pose, SeamPlacement, SeamSensor, ToolChain, WeldArc, planar,
                                              seam_across_mm, seam_coordinates, seam_in_world, sensor_view)
from cell_control.sim.weld_process import (NOMINAL_CORRECTION_MM, NOMINAL_FORCE_N, NOMINAL_SPEED_MM_S, STEP_S,
                                           WeldProcess)
from cell_control.weld.seam_measurement import SeamMeasurement


@dataclass
class WeldControls:
    """The adjuster's latest setpoints as the tool's drives take them."""

    speed_mm_s: float = NOMINAL_SPEED_MM_S
    force_n: float = NOMINAL_FORCE_N
    correction_mm: float = NOMINAL_CORRECTION_MM


class SeamStation:
    """Arc, weld process and seam sensor of the station; the caller steps it once per 1 ms of simulated time."""

    def __init__(self, seed: int = 0) -> None:
        self.placements: list[SeamPlacement] = []   # every seam of the part type, in the part frame
        self.controls = WeldControls()
        self.arc_on = False                         # the arc command
        self.cross_slide_target_m = 0.0             # where the weld's lateral correction wants the cross-slide
        self.results: list[dict] = []               # one score per weld, in order
        self.samples: list[SeamMeasurement] = []    # the sensor's stream since the caller last took it
        self.strikes: list[float] = []              # times the arc struck since the caller last took them
        self._arc = WeldArc()
        self._sensor = SeamSensor(seed)
        self._weld_pose: Pose | None = None   # the welded part's world pose at the weld's last step

    @property
    def weld(self) -> WeldProcess | None:
        """The weld process while the arc burns on a seam, else None."""
        return self._arc.process

    @property
    def weld_part(self) -> Hashable | None:
        """The part welded last, as the caller names it."""
        return None if self._arc.part is None else self._arc.part[0]

    @property
    def weld_seam(self) -> int | None:
        """The number of the seam welded last, in the part type's order."""
        return None if self._arc.part is None else self._arc.part[1]

    def wear_contact_tip(self, drift_per_weld: float) -> None:
        """Let the arc's power drift move by `drift_per_weld` with every weld (a wearing contact tip)."""
        self._arc.drift_per_weld = drift_per_weld

    def step(self, time_s: float, tcp_m: np.ndarray, cross_slide_m: float, parts: Callable[[], Iterable[Hashable]],
             pose_of: Callable[[Hashable], Pose], tool_x: np.ndarray | None = None) -> None:
        """Run the 1 ms step ending at `time_s`.

        tcp_m: the TCP's world position during the step, the cross-slide's travel included; cross_slide_m: the
        cross-slide's position in `tcp_m` (it carries tool and sensor: without it, `tcp_m` is the arm's path);
        parts: names the parts in the cell (asked only when needed); pose_of: the world pose of one of them;
        tool_x: the tool's x axis in the world (its travel direction, where the sensor looks), None for straight
        along the seam.
        """
        arc = self._arc

        def seams() -> Iterator[tuple[tuple[Hashable, int], SeamPlacement, np.ndarray, np.ndarray]]:
            """Each seam on each part in the cell: (part, seam number), placement, start and direction."""
            for part in parts():
                pose = pose_of(part)
                for seam, placement in enumerate(self.placements):
                    yield (part, seam), placement, *seam_in_world(placement, pose)

        sample = None
        if not self.placements or not self.arc_on:
            arc.travelled()
            if arc.process is not None:
                self._finish_weld(time_s, 'arc off before the seam end')
        elif arc.process is not None or self._strike(
                time_s, ((key, placement, seam_coordinates(tcp_m, start, direction))
                         for key, placement, start, direction in seams())):
            assert arc.part is not None and arc.process is not None
            part, seam = arc.part
            if part not in parts():
                self._finish_weld(time_s, 'the part left the station during the weld')
            else:
                self._weld_pose = pose_of(part)
                start, direction = seam_in_world(self.placements[seam], self._weld_pose)
                s_mm = seam_coordinates(tcp_m, start, direction)[0]
                slide_mm = 1000.0 * cross_slide_m   # the offsets are the seam line's from the arm's own path
                controls = self.controls
                sample = arc.advance(s_mm, controls.force_n, controls.correction_mm,
                                     seam_across_mm(tcp_m, start, direction) + slide_mm,
                                     sensor_view(tcp_m, tool_x, start, direction).across_mm + slide_mm)
                last = arc.process.last
                self.cross_slide_target_m = (last.correction_mm if last else 0.0) / 1000.0
        if arc.process is None:   # between welds the slide's drive follows its set-point (the adjuster centres it)
            self.cross_slide_target_m = self.controls.correction_mm / 1000.0
        reading = self._sensor.tick(time_s, sample, lambda: (
            (placement, sensor_view(tcp_m, tool_x, start, direction)) for _, placement, start, direction in seams()))
        if reading is not None:
            self.samples.append(reading)
        if arc.process is not None and arc.process.done:
            self.arc_on = False
            self._finish_weld(time_s, '')

    def _strike(self, time_s: float, views: Iterable[tuple[Hashable, SeamPlacement, tuple[float, float]]]) -> bool:
        """Strike the arc if the TCP is at a seam start; a strike is the power source's "arc established"."""
        struck = self._arc.strike(time_s, views)
        if struck:
            self.strikes.append(time_s)
        return struck

    def _finish_weld(self, time_s: float, interrupted: str) -> None:
        """Keep the process model's true score of the weld (for evaluation: no real cell can measure it)."""
        part, seam = self._arc.part if self._arc.part is not None else (None, None)
        weld = self._arc.finish()
        metrics = weld.metrics()
        pose = planar(*self._weld_pose) if self._weld_pose is not None else None
        self._weld_pose = None
        self.results.append({
            'part': str(part), 'seam': weld.seam.name, 'seam_index': seam, 'end_time_s': round(time_s, 3),
            'seam_length_mm': weld.seam.length_mm, 'welded_mm': round(weld.s_mm, 2),
            'arc_time_s': round(weld.t_s, 3), 'arc_energy_j': round(arc_energy_j(weld.t_s, weld.power_drift), 1),
            'interrupted': interrupted, **{k: _json_number(v) for k, v in vars(metrics).items()},
            # where the part lay (ground truth: what the seam search found is judged against it)
            'part_pose': None if pose is None else {'x_m': round(pose.x, 6), 'y_m': round(pose.y, 6),
                                                    'yaw_rad': round(pose.yaw, 7)}})


class JointStream:
    """Steps a station from a stream of joint states, as the Gazebo route's sensor node gets them.

    gz publishes /joint_states every physics step (1 ms); each message is one step ending at its stamp, the TCP
    from the arm's forward kinematics (`ToolChain`). A gap of a few steps (a message lost or late) is stepped
    through with the joints interpolated linearly, so the weld process sees the travel it would have; a stamp
    not after the last one is ignored; after a gap longer than `max_gap_steps` (a paused or restarted world)
    the stream starts afresh without stepping.
    """

    def __init__(self, station: SeamStation, chain: ToolChain, max_gap_steps: int) -> None:
        if max_gap_steps < 1:
            raise ValueError(f'max_gap_steps must be at least 1, got {max_gap_steps!r}')
        self.station = station
        self.chain = chain
        self.max_gap_steps = max_gap_steps
        self.steps = 0                 # steps run
        self.bridged = 0               # of those, steps run for a missing message
        self.ignored = 0               # messages not after the last one
        self.restarts = 0              # gaps too long to step through
        self._last: tuple[int, np.ndarray, float] | None = None   # step number, arm positions, slide

    def take(self, stamp_s: float, arm_positions: Sequence[float], cross_slide_m: float,
             parts: Callable[[], Iterable[Hashable]], pose_of: Callable[[Hashable], Pose]) -> int:
        """Take one joint state; return how many 1 ms steps it ran."""
        index = round(stamp_s / STEP_S)
        arm = np.asarray(arm_positions, dtype=float)
        last = self._last
        if last is not None and index <= last[0]:
            self.ignored += 1
            return 0
        self._last = (index, arm, cross_slide_m)
        if last is None or index - last[0] > self.max_gap_steps:
            self.restarts += last is not None
            return 0
        count = index - last[0]
        for k in range(1, count + 1):
            fraction = k / count
            q = last[1] + (arm - last[1]) * fraction
            slide = last[2] + (cross_slide_m - last[2]) * fraction
            tcp, rotation = self.chain.tcp_in_world(q, slide)
            self.station.step(stamp_s if k == count else (last[0] + k) * STEP_S, tcp, slide, parts, pose_of,
                              rotation[:, 0])
        self.steps += count
        self.bridged += count - 1
        return count


def _json_number(value: float | int) -> float | int | None:
    """JSON has no NaN: an undefined metric (no samples) is null; floats to 4 decimals."""
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    return value
