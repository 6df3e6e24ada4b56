"""The simulated cell: MuJoCo physics plus the devices' own behaviour, stepped in fixed 1 ms steps.

Commands go in through plain setters (the ROS node converts messages once); readouts come out as plain
values. Devices behave as their real counterparts do toward ROS: the arm follows joint trajectories like
joint_trajectory_controller, the belt and the AGV roller decks carry parts by friction, AGVs drive as
differential-drive bases, photo-eyes are light barriers (rays) that only parts interrupt.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from cell_control.motion.weld_path import PLANNED_WELD_SPEED_MM_S
from cell_control.motion.trajectory import JointTrajectory, TrajectoryFollower
from cell_control.weld.process_model import LIMITS
from cell_control.weld.seam_measurement import SeamMeasurement
from cell_control.sim.cell_scene import CellModel
from cell_control.sim.interface import Pose2D, load_pose, parking_pose, part_name
from cell_control.sim.seam_station import SeamStation, WeldControls
from cell_control.sim.virtual_sensors import (ClampSwitch, DeckLoad, FixtureScatter, PhotoEyes, Planar, SeamPlacement,
                                              part_at_station, planar, seam_coordinates, seam_in_world, slew)
from cell_control.sim.weld_process import SAMPLE_STEPS, WeldProcess

COMMAND_TIMEOUT_S = 0.5        # an AGV or deck command older than this is treated as zero (safe value)
AGV_LINEAR_ACCEL = 1.0         # m/s²
AGV_ANGULAR_ACCEL = 2.0        # rad/s²
GATE_SPEED = 0.2               # m/s the stop gate moves
GATE_THICKNESS_M = 0.03        # the stop gate's extent along the belt past its face
CLEARED_GAP_M = 0.3            # the gap an operator clearing a jam leaves between parts that piled up
CONTACT_TOLERANCE_M = 0.003    # TCP this close to the part surface: the force-controlled axis is in contact
# Speed-scaling changes are ramped in at the §6 travel-speed rate spread over the adjuster's 2 ms sample (1/s at
# the planned 25 mm/s): its changes (≤ rate × 1 ms per sample) and bunched or late commands reach the TCP as a
# ramp of at most rate × 1 ms / 2 per step, never as a step.
SCALING_RATE_PER_S = LIMITS['speed_mm_s'].rate_per_s / SAMPLE_STEPS / PLANNED_WELD_SPEED_MM_S


@dataclass
class AgvCommand:
    linear_m_s: float = 0.0
    angular_rad_s: float = 0.0
    deck_m_s: float = 0.0
    twist_time_s: float = -math.inf
    deck_time_s: float = -math.inf


@dataclass(frozen=True)
class AgvState:
    x: float
    y: float
    yaw: float
    linear_m_s: float
    angular_rad_s: float


class CellSimulation:
    def __init__(self, cell: CellModel, layout: dict, initial_arm_positions: list[float]) -> None:
        self.cell = cell
        self.model = cell.model
        self.data = mujoco.MjData(self.model)
        self.layout = layout
        self.timestep_s = float(self.model.opt.timestep)
        self.follower = TrajectoryFollower(len(cell.arm_joints))
        self.speed_scaling = 1.0          # as commanded (UR driver convention) ...
        self._applied_scaling = 1.0       # ... and as applied: ramped in while a trajectory runs
        self.belt_speed_m_s = 0.0
        self.gate_raised = False
        self._agv_commands = {name: AgvCommand() for name in cell.agv_names}
        self._agv_velocity = {name: [0.0, 0.0] for name in cell.agv_names}
        self._hold_positions = np.array(initial_arm_positions, dtype=float)
        self.data.qpos[cell.arm_qpos] = self._hold_positions
        for agv in cell.agv_names:   # the planar joints are world x, y and yaw of the AGV
            home = layout['agv']['home'][agv]
            self.data.qpos[cell.agv_qpos[agv]] = [home['x'], home['y'], home['yaw']]
        self._agv_bodies = {agv: self.model.body(f'{agv}/base_footprint').id for agv in cell.agv_names}
        self._parked = [True] * len(cell.part_bodies)   # at its parking slot, outside the cell
        self._load_pose = load_pose(layout)
        for index in range(len(cell.part_bodies)):
            self.park_part(index)
        self.jammed_part: int | None = None   # fault injection: a part snagged on the belt
        self._clamp = ClampSwitch(layout['station']['clamp_time'])
        self.clamp_reports: list[str] = []    # what each closing clamp gripped, for the node's log
        self.fixture = FixtureScatter()       # where the clamp locates each gripped part (default: on the datum)
        self.fixture_placements: dict[str, Planar] = {}   # ground truth: each part's last placement off the datum
        self._placement = Planar(0.0, 0.0, 0.0)
        self._photo_eyes = PhotoEyes(layout)
        self._deck_load = DeckLoad(layout)
        self.station = SeamStation()   # arc, weld process and seam sensor: the same code as the Gazebo route's
        self._part_names = [part_name(i + 1) for i in range(len(cell.part_bodies))]
        self._part_index = {name: i for i, name in enumerate(self._part_names)}
        mujoco.mj_forward(self.model, self.data)

    # ----- time -----------------------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        return float(self.data.time)

    def step(self, steps: int = 1) -> None:
        for _ in range(steps):
            self._apply_devices()
            slide_m = self.cross_slide_position_m()   # the TCP's xpos after the step is at this slide (its start)
            mujoco.mj_step(self.model, self.data)
            self._step_weld(slide_m)

    # ----- arm ------------------------------------------------------------------------------------------
    def start_trajectory(self, trajectory: JointTrajectory) -> None:
        """Replace whatever the arm is doing with `trajectory`, starting from the current state.

        It starts with the speed scaling commanded now; later changes are ramped in while it runs.
        """
        positions, velocities = self.arm_state()[:2]
        self.follower.start(trajectory, positions, velocities)
        self._applied_scaling = self.speed_scaling

    def stop_arm(self) -> None:
        """Hold the current position (what JTC does when its goal is cancelled)."""
        self._hold_positions = self.data.qpos[self.cell.arm_qpos].copy()
        self.follower.cancel()

    def arm_state(self) -> tuple[list[float], list[float], list[float]]:
        c, d = self.cell, self.data
        efforts = d.actuator_force[c.arm_position_actuators] + d.actuator_force[c.arm_velocity_actuators]
        return (d.qpos[c.arm_qpos].tolist(), d.qvel[c.arm_dof].tolist(), efforts.tolist())

    def arm_reference(self) -> tuple[list[float], list[float]]:
        reference = self.follower.reference()
        if reference is None:
            return self._hold_positions.tolist(), [0.0] * len(self.cell.arm_joints)
        return reference

    # ----- conveyor and AGVs -----------------------------------------------------------------------------
    def set_agv_twist(self, agv: str, linear_m_s: float, angular_rad_s: float) -> None:
        limits = self.layout['agv']
        command = self._agv_commands[agv]
        command.linear_m_s = float(np.clip(linear_m_s, -limits['max_linear_speed'], limits['max_linear_speed']))
        command.angular_rad_s = float(np.clip(angular_rad_s, -limits['max_angular_speed'],
                                              limits['max_angular_speed']))
        command.twist_time_s = self.time_s

    def set_deck_speed(self, agv: str, speed_m_s: float) -> None:
        command = self._agv_commands[agv]
        command.deck_m_s = float(speed_m_s)
        command.deck_time_s = self.time_s

    def agv_state(self, agv: str) -> AgvState:
        x, y, yaw = self.data.qpos[self.cell.agv_qpos[agv]]
        linear, angular = self._agv_velocity[agv]
        return AgvState(float(x), float(y), float(yaw), linear, angular)

    def photo_eyes(self) -> dict[str, bool]:
        return self._photo_eyes.read(self.part_pose(i) for i in self.parts_in_cell())

    # ----- parts ----------------------------------------------------------------------------------------
    def part_pose(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation matrix of a part's frame (bottom centre)."""
        body = self.cell.part_bodies[index]
        return self.data.xpos[body].copy(), self.data.xmat[body].reshape(3, 3).copy()

    def parts_in_cell(self) -> list[int]:
        """Return the pool parts not at their parking slots (loaded since they were last parked)."""
        return [i for i, parked in enumerate(self._parked) if not parked]

    def load_part(self, index: int) -> None:
        """Put pool part `index` (0-based: model part_<index + 1>) on the deck of an AGV at the source home pose.

        As /world/load_part in Gazebo: a fixed pose (`interface.load_pose`), whether or not an AGV stands there.
        """
        self._set_part_pose(index, self._load_pose)
        self._parked[index] = False

    def park_part(self, index: int) -> None:
        """Put pool part `index` back at its parking slot, resting on the floor (/world/park_part)."""
        self._set_part_pose(index, parking_pose(index + 1))
        self._parked[index] = True

    def _set_part_pose(self, index: int, pose: Pose2D) -> None:
        q, v = self.cell.part_qpos[index], self.cell.part_dof[index]
        x, y, z, w = pose.quaternion()
        self.data.qpos[q:q + 7] = [pose.x, pose.y, pose.z, w, x, y, z]
        self.data.qvel[v:v + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def world_poses(self) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
        """Return what /sim/poses carries: model name -> world position and quaternion (x, y, z, w).

        One entry per pool part and AGV, the pose of its model frame (a part's bottom centre, an AGV's
        base_footprint).
        """
        bodies = {part_name(i + 1): body for i, body in enumerate(self.cell.part_bodies)}
        bodies.update(self._agv_bodies)
        poses: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        for name, body in bodies.items():
            w, x, y, z = (float(v) for v in self.data.xquat[body])
            poses[name] = tuple(float(v) for v in self.data.xpos[body]), (x, y, z, w)
        return poses

    def load_present(self, agv: str) -> bool:
        """Read the deck's load sensor: whether a part lies on the deck, near its centre."""
        return self._deck_load.load_present(self._agv_planar(agv), self._part_positions())

    def _agv_planar(self, agv: str) -> Planar:
        state = self.agv_state(agv)
        return Planar(state.x, state.y, state.yaw)

    def _part_positions(self) -> dict[int, np.ndarray]:
        return {i: self.data.xpos[self.cell.part_bodies[i]] for i in self.parts_in_cell()}

    def jam_belt(self) -> int:
        """Fault injection: the part furthest along the belt snags and stays put while the belt slides under it.

        A part clamped on the fixture does not ride the belt, so it cannot snag.
        """
        clamped = part_at_station(self._part_positions(), self.layout) if self.clamp_command else None
        on_belt = [i for i in self._parts_on_belt() if i != clamped]
        if not on_belt:
            raise RuntimeError('no part riding the belt to jam')
        self.jammed_part = max(on_belt, key=lambda i: self.part_pose(i)[0][0])
        return self.jammed_part

    def clear_jam(self) -> list[int]:
        """Clear an injected jam as an operator does by hand: free the snag, pull back the parts piled up behind.

        Each part that ran into the one in front is pulled back until a gap of `CLEARED_GAP_M` separates them,
        and set down square in the middle of the belt, as is the part that snagged: pushed parts slew across
        the belt (no side guides), a part more than the clamp's reach off the centre line would be clamped on
        air. Parts that touch cannot be told apart by the photo-eyes nor separated by the stop gate; on a real
        belt the operator clearing the jam undoes the pile-up too. Returns the parts that were moved.
        """
        snagged, self.jammed_part = self.jammed_part, None
        length = self.layout['part']['length']
        start = self.layout['conveyor']['x_start'] + length / 2
        moved = []
        front = None
        for index in sorted(self._parts_on_belt(), key=lambda i: -self.part_pose(i)[0][0]):
            x = float(self.part_pose(index)[0][0])
            if front is not None and x > front - length - CLEARED_GAP_M:
                x = max(start, front - length - CLEARED_GAP_M)
                moved.append(index)
            if index in moved or index == snagged:
                q = self.cell.part_qpos[index]
                self.data.qpos[q:q + 2] = (x, 0.0)
                self.data.qpos[q + 3:q + 7] = (1.0, 0.0, 0.0, 0.0)
                self.data.qvel[self.cell.part_dof[index]:self.cell.part_dof[index] + 6] = 0.0
            front = x
        if moved or snagged is not None:
            mujoco.mj_forward(self.model, self.data)
        return moved

    def _parts_on_belt(self) -> list[int]:
        conveyor = self.layout['conveyor']
        return [i for i in self.parts_in_cell()
                if conveyor['x_start'] <= self.part_pose(i)[0][0] <= conveyor['x_end']
                and abs(self.part_pose(i)[0][2] - conveyor['belt_top_z']) < 0.05]

    def set_clamp(self, closed: bool) -> None:
        self._clamp.command(closed, self.time_s)

    @property
    def clamp_command(self) -> bool:
        return self._clamp.commanded

    @property
    def clamp_closed(self) -> bool:
        """Read the clamp's end switch."""
        return self._clamp.closed

    # ----- weld tool ------------------------------------------------------------------------------------
    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        body = self.cell.tcp_body
        return self.data.xpos[body].copy(), self.data.xmat[body].reshape(3, 3).copy()

    def cross_slide_position_m(self) -> float:
        return float(self.data.qpos[self.cell.cross_slide_qpos])

    # The station's arc, weld process and seam sensor (sim.seam_station), as this simulation's own attributes.
    @property
    def seam_placements(self) -> list[SeamPlacement]:
        """Every seam of the part type, in the part frame."""
        return self.station.placements

    @seam_placements.setter
    def seam_placements(self, placements: list[SeamPlacement]) -> None:
        self.station.placements = list(placements)

    @property
    def seam_placement(self) -> SeamPlacement | None:
        """The part type's first seam (all of them: `seam_placements`)."""
        return self.seam_placements[0] if self.seam_placements else None

    @seam_placement.setter
    def seam_placement(self, placement: SeamPlacement | None) -> None:
        self.seam_placements = [] if placement is None else [placement]

    @property
    def arc_on(self) -> bool:
        return self.station.arc_on

    @arc_on.setter
    def arc_on(self, on: bool) -> None:
        self.station.arc_on = on

    @property
    def weld_controls(self) -> WeldControls:
        return self.station.controls

    @property
    def cross_slide_target_m(self) -> float:
        return self.station.cross_slide_target_m

    @cross_slide_target_m.setter
    def cross_slide_target_m(self, target_m: float) -> None:
        self.station.cross_slide_target_m = target_m

    @property
    def weld_results(self) -> list[dict]:
        return self.station.results

    @property
    def seam_samples(self) -> list[SeamMeasurement]:
        return self.station.samples

    @seam_samples.setter
    def seam_samples(self, samples: list[SeamMeasurement]) -> None:
        self.station.samples = samples

    @property
    def weld(self) -> WeldProcess | None:
        """The weld process while the arc burns on a seam, else None."""
        return self.station.weld

    def wear_contact_tip(self, drift_per_weld: float) -> None:
        """Let the arc's power drift move by `drift_per_weld` with every weld (a wearing contact tip)."""
        self.station.wear_contact_tip(drift_per_weld)

    def seam_in_world(self, part: int, seam: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Start point and unit direction of seam number `seam` on `part`, in the world frame."""
        return seam_in_world(self.seam_placements[seam], self.part_pose(part))

    def seam_coordinates(self, part: int, seam: int = 0) -> tuple[float, float]:
        """TCP position along a seam (mm from its start) and its distance from the seam line (m)."""
        return seam_coordinates(self.tcp_pose()[0], *self.seam_in_world(part, seam))

    def tool_force_n(self) -> float:
        """Contact force along the tool axis: the force-controlled axis presses while touching a part."""
        tcp = self.tcp_pose()[0]
        half_length, half_width = self.layout['part']['length'] / 2, self.layout['part']['width'] / 2
        for index in self.parts_in_cell():
            position, rotation = self.part_pose(index)
            local = rotation.T @ (tcp - position)
            on_top = abs(local[2] - self.layout['part']['height']) <= CONTACT_TOLERANCE_M
            if on_top and abs(local[0]) <= half_length and abs(local[1]) <= half_width:
                return self.weld_controls.force_n
        return 0.0

    def _step_weld(self, slide_m: float) -> None:
        """Step the station with this step's TCP and the slide it carries; parts go by their model names."""
        body = self.cell.tcp_body
        self.station.step(self.time_s, self.data.xpos[body], slide_m,
                          lambda: [self._part_names[i] for i in self.parts_in_cell()],
                          lambda name: self.part_pose(self._part_index[name]), self.data.xmat[body][0::3])

    # ----- rendering ------------------------------------------------------------------------------------
    def render_png(self, path: str, width: int = 1280, height: int = 720) -> None:
        import matplotlib.image
        with mujoco.Renderer(self.model, height=height, width=width) as renderer:
            renderer.update_scene(self.data, camera=self.cell.camera)
            matplotlib.image.imsave(path, renderer.render())

    # ----- per-step device behaviour ---------------------------------------------------------------------
    def _apply_clamp(self, now: float) -> None:
        """Run the fixture clamp: a self-centring clamp that locates the part on the fixture datum as it closes.

        The belt has no side guides, so a part arrives a few centimetres off centre and slightly turned; the
        closing jaws push it onto the datum (station x, y = 0, square to the belt), or as far off it as the
        fixture's tolerance draws for this grip (`fixture`), and then hold it still.
        """
        clamp = self._clamp
        gripped, closed = clamp.part, clamp.closed
        clamp.update(now, lambda: part_at_station(self._part_positions(), self.layout))
        part = clamp.part
        if part is not None and gripped is None:
            self._placement = self.fixture.draw()
            self.fixture_placements[self._part_names[part]] = self._placement
            self.clamp_reports.append(self._grip_report(part))
        if part is None:
            if clamp.closed and not closed:
                self.clamp_reports.append('clamp closed with no part within its reach of the datum')
            return
        q, dof = self.cell.part_qpos[part], self.cell.part_dof[part]
        qpos, qvel = self.data.qpos, self.data.qvel
        remaining = max(clamp.clamp_time_s - (now - clamp.changed_s), self.timestep_s)
        fraction = min(1.0, self.timestep_s / remaining) if clamp.commanded else 0.0
        placement = self._placement
        qpos[q] += (self.layout['station']['x'] + placement.x - qpos[q]) * fraction
        qpos[q + 1] += (placement.y - qpos[q + 1]) * fraction
        w, z = float(qpos[q + 3]), float(qpos[q + 6])   # the part lies flat: rotation about z only
        yaw = 2.0 * math.atan2(z, w)
        yaw += (placement.yaw - yaw) * fraction
        qpos[q + 3:q + 7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        qvel[dof:dof + 6] = 0.0

    def _grip_report(self, part: int) -> str:
        """Say where the clamp found `part`: a weld that misses its seam starts here."""
        pose = planar(*self.part_pose(part))
        placed = self._placement
        report = (f'clamp closing on {self._part_names[part]}: {1000 * (pose.x - self.layout["station"]["x"]):+.1f} '
                  f'mm along the belt, {1000 * pose.y:+.1f} mm across, {math.degrees(pose.yaw):+.2f} deg from the '
                  f'datum')
        if placed == (0.0, 0.0, 0.0):
            return report
        return (f'{report}; the fixture locates it {1000 * placed.x:+.3f} mm along, {1000 * placed.y:+.3f} mm '
                f'across, {math.degrees(placed.yaw):+.4f} deg off the datum (its tolerance; ground truth)')

    def _part_over_gate(self) -> bool:
        """Tell whether a part lies over the pop-up stop: it is force-limited, so it waits until the part passed."""
        gate_x = self.layout['station']['stop_gate_x']
        half_length = self.layout['part']['length'] / 2
        belt_z = self.layout['conveyor']['belt_top_z']
        xpos, bodies = self.data.xpos, self.cell.part_bodies
        for index in self.parts_in_cell():
            x, y, z = xpos[bodies[index]].tolist()   # floats, no copied pose: this runs every step
            over = x + half_length > gate_x + 0.005 and x - half_length < gate_x + GATE_THICKNESS_M
            if over and abs(z - belt_z) < 0.05 and abs(y) < 0.3:
                return True
        return False

    def _apply_devices(self) -> None:
        """Device behaviour of one step, in plain floats: this runs a thousand times per simulated second."""
        c, d = self.cell, self.data
        dt = self.timestep_s
        follower = self.follower
        if follower.active and not follower.finished:   # moving: the controller ramps a new scaling in
            self._applied_scaling += slew(self.speed_scaling - self._applied_scaling, SCALING_RATE_PER_S * dt)
        else:                                           # holding still: it applies at once
            self._applied_scaling = self.speed_scaling
        scaling = self._applied_scaling
        follower.advance(dt, scaling)
        positions, velocities = self.arm_reference()
        joints = len(positions)
        d.ctrl[:joints] = positions
        d.ctrl[joints:2 * joints] = [v * scaling for v in velocities]
        d.ctrl[c.cross_slide_actuator] = self.cross_slide_target_m

        # Moving-track surfaces: the joint stays in place while its velocity drags what lies on it.
        d.qpos[c.belt_qpos] = 0.0
        d.qvel[c.belt_dof] = self.belt_speed_m_s
        gate = float(d.qpos[c.gate_qpos])
        gate_target = 0.0 if not self.gate_raised else gate if self._part_over_gate() else c.gate_travel_m
        d.qpos[c.gate_qpos] = gate + slew(gate_target - gate, GATE_SPEED * dt)
        d.qvel[c.gate_dof] = 0.0

        now = float(d.time)
        self._apply_clamp(now)
        if self.jammed_part is not None:
            dof = c.part_dof[self.jammed_part]
            d.qvel[dof:dof + 6] = 0.0
        for agv, command in self._agv_commands.items():
            fresh_twist = now - command.twist_time_s <= COMMAND_TIMEOUT_S
            target_linear = command.linear_m_s if fresh_twist else 0.0
            target_angular = command.angular_rad_s if fresh_twist else 0.0
            velocity = self._agv_velocity[agv]
            x_dof = c.agv_dof[agv][0]
            if not (target_linear or target_angular or velocity[0] or velocity[1] or command.deck_m_s):
                d.qvel[x_dof:x_dof + 3] = 0.0   # parked: held in place (a part on its deck must not push it)
                continue
            velocity[0] += slew(target_linear - velocity[0], AGV_LINEAR_ACCEL * dt)
            velocity[1] += slew(target_angular - velocity[1], AGV_ANGULAR_ACCEL * dt)
            yaw = float(d.qpos[c.agv_qpos[agv][2]])
            d.qvel[x_dof:x_dof + 3] = (velocity[0] * math.cos(yaw), velocity[0] * math.sin(yaw), velocity[1])
            d.qpos[c.deck_qpos[agv]] = 0.0
            deck_fresh = now - command.deck_time_s <= COMMAND_TIMEOUT_S
            d.qvel[c.deck_dof[agv]] = command.deck_m_s if deck_fresh else 0.0
