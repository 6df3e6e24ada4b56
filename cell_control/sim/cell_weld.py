"""Weld seams in the MuJoCo cell with the adjuster in the loop, the way the ROS nodes do, without ROS.

Public API:
    CellWeldRig()   the cell model, built once; each weld clamps a part at the station of a fresh simulation
    CellWeldRig.weld(seam, power_drift=0.0, seed=0) -> dict   the process model's score of the weld (the
        keys of `CellSimulation.weld_results`)
    CellWeldRig.search(recipe, placement) -> SeamFix   the coordinator's seam search alone, on a placed part
    CellWeldRig.weld_recipe(recipe, power_drift=0.0, seed=0) -> list[dict]   every seam of a part, in order,
        with the arm's air moves between them; seam k welded with process seed `seed + k`
    Both take `placement` (where the clamp locates the part off the datum) and `search` (find the seam first,
    as the coordinator does: `fix` is what the search found)

The loop is the coordinator's and the adjuster node's: the arm moves to the seam start, then follows the weld
path with the arc on; the adjuster's travel speed becomes the arm's speed scaling (`ArmMotion.speed_scaling`),
its force and lateral correction go to the tool. The process model measures the travel speed from the
physics, so what it scores is what the arm really did. For a fair comparison with `run_weld_eval` on the same
seam, drift and seed, the adjuster starts at the arc strike and is given the same approach-pass readings
(`approach_samples`); the weld's sensor noise is the process model's, drawn in the same order as in weld-eval.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cell_control.cell.description import expand_xacro, load_layout
from cell_control.cell.recipe import Recipe, SeamRecipe
from cell_control.motion.arm_motion import ArmMotion
from cell_control.motion.kinematics import load_kinematics
from cell_control.motion.weld_path import SeamProgram
from cell_control.sim.cell_scene import build_cell_model
from cell_control.motion.seam_search import SeamFix, SensorReading
from cell_control.sim.mujoco_cell import CellSimulation, SeamPlacement
from cell_control.sim.virtual_sensors import SEAM_CAPTURE_MM, FixtureScatter, Planar
from cell_control.sim.weld_loop import approach_samples
from cell_control.sim.weld_process import NOMINAL_SPEED_MM_S, STEP_S
from cell_control.weld.adjuster import WeldAdjuster
from cell_control.weld.process_model import LIMITS
from cell_control.weld.seam_measurement import LOOKAHEAD_VALID
from cell_control.weld.seam_profile import SeamProfile, load_seam_csv

HOME = (0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0)
TRAVEL_ANGLE_RAD = 0.1745      # 10° push, as the recipes weld
CLAMP_TIMEOUT_S = 5.0
MOVE_TIMEOUT_S = 30.0          # simulated seconds to reach the seam start
ON_DATUM = Planar(0.0, 0.0, 0.0)
WELD_TIMEOUT_FACTOR = 3.0      # simulated time allowed for the weld: this many times its duration at 5 mm/s


class CellWeldRig:
    """The cell with one part clamped at the station; each `weld` starts from a fresh simulation at home."""

    def __init__(self) -> None:
        self.layout = load_layout()
        self.kinematics = load_kinematics()
        self.fix: SeamFix | None = None   # where the last weld_part's search found the part
        self.model = build_cell_model(expand_xacro('cell', sim_backend='mujoco'),
                                      {agv: expand_xacro('agv', name=agv) for agv in ('agv_1', 'agv_2')},
                                      expand_xacro('part'), self.layout, list(self.kinematics.joint_names), 1)

    def _clamped_part_cell(self, placement: Planar) -> CellSimulation:
        sim = CellSimulation(self.model, self.layout, list(HOME))
        sim.fixture = FixtureScatter(placements=[placement])
        index = 0
        sim.load_part(index)
        q = self.model.part_qpos[index]
        sim.data.qpos[q:q + 3] = [self.layout['station']['x'], 0.0, self.layout['conveyor']['belt_top_z'] + 0.001]
        sim.set_clamp(True)
        _run_until(sim, lambda: sim.clamp_closed, CLAMP_TIMEOUT_S, 'the clamp to close')
        return sim

    def weld(self, seam: SeamProfile, power_drift: float = 0.0, seed: int = 0, placement: Planar = ON_DATUM,
             search: bool = False) -> dict:
        """Weld `seam` along the part's centre line and return the process model's score of it (`weld_part`)."""
        half_m = seam.length_mm / 2000.0
        z = self.layout['part']['seam_z']
        program = SeamProgram(((-half_m, 0.0, z), (half_m, 0.0, z)), TRAVEL_ANGLE_RAD)
        return self.weld_part([SeamRecipe(seam.name, Path(seam.name), program, seam.length_mm)], [seam],
                              power_drift, seed, placement, search)[0]

    def weld_recipe(self, recipe: Recipe, power_drift: float = 0.0, seed: int = 0, placement: Planar = ON_DATUM,
                    search: bool = False) -> list[dict]:
        """Weld every seam of `recipe` in its order on one part; return each seam's score (`weld_part`)."""
        return self.weld_part(recipe.seams, [load_seam_csv(seam.seam_file) for seam in recipe.seams], power_drift,
                              seed, placement, search)

    def search(self, recipe: Recipe, placement: Planar) -> SeamFix:
        """Search the first seam of a part of `recipe` clamped at `placement` off the datum; SeamNotFound if not."""
        sim = self._clamped_part_cell(placement)
        sim.seam_placements = [SeamPlacement(load_seam_csv(seam.seam_file), seam.program.points_m[0],
                                             seam.program.points_m[-1]) for seam in recipe.seams]
        return self._search(sim, ArmMotion(self.kinematics, self.layout, recipe.seams, HOME), recipe.seams[0].id)

    def weld_part(self, seams: Sequence[SeamRecipe], profiles: Sequence[SeamProfile], power_drift: float,
                  seed: int, placement: Planar = ON_DATUM, search: bool = False) -> list[dict]:
        """Weld the seams in order, through the air from one to the next; seam k's process seed is seed + k.

        placement: where the clamp locates the part off the fixture datum; search: find the first seam before
        welding (`motion.seam_search`), as the coordinator does, and weld where it was found (`self.fix`).
        """
        sim = self._clamped_part_cell(placement)
        sim.seam_placements = [SeamPlacement(profile, seam.program.points_m[0], seam.program.points_m[-1],
                                             power_drift, seed=seed + k)
                               for k, (seam, profile) in enumerate(zip(seams, profiles))]
        motion = ArmMotion(self.kinematics, self.layout, seams, HOME)

        def move(target: str, seam_id: str, timeout_s: float) -> None:
            sim.start_trajectory(motion.plan(target, sim.arm_state()[0], seam_id))
            _run_until(sim, lambda: motion.reached(*sim.arm_state()[:2]), timeout_s, f'the arm to reach {target}')

        self.fix = self._search(sim, motion, seams[0].id) if search else None
        for k, (seam, profile) in enumerate(zip(seams, profiles)):
            move('seam_start', seam.id, MOVE_TIMEOUT_S)
            sim.speed_scaling = motion.speed_scaling(NOMINAL_SPEED_MM_S)   # the coordinator's, for the weld path
            sim.start_trajectory(motion.plan('weld_path', sim.arm_state()[0], seam.id))
            sim.arc_on = True
            self._weld_loop(sim, motion, profile, seed + k, len(sim.weld_results) + 1)
            _run_until(sim, lambda: motion.reached(*sim.arm_state()[:2]), MOVE_TIMEOUT_S, 'the end of the weld path')
            sim.weld_controls.correction_mm = 0.0   # the adjuster centres the slide as it stops the weld
        return sim.weld_results

    @staticmethod
    def _search(sim: CellSimulation, motion: ArmMotion, seam_id: str) -> SeamFix:
        """Run the seam search with the sensor's readings and the joints recorded, and locate the seam."""
        sim.seam_samples = []
        sim.start_trajectory(motion.plan('seam_search', sim.arm_state()[0], seam_id))
        joints = []
        limit_s = sim.time_s + MOVE_TIMEOUT_S
        while not motion.reached(*sim.arm_state()[:2]):
            if sim.time_s > limit_s:
                raise TimeoutError(f'the seam search did not end within {MOVE_TIMEOUT_S:g} s of sim time')
            sim.step(2)
            joints.append((sim.time_s, list(sim.arm_state()[0]), sim.cross_slide_position_m()))
        readings = [SensorReading(m.stamp_s, bool(m.flags & LOOKAHEAD_VALID), m.lateral_mm) for m in sim.seam_samples]
        return motion.locate(readings, joints)

    @staticmethod
    def _weld_loop(sim: CellSimulation, motion: ArmMotion, seam: SeamProfile, seed: int, results: int) -> None:
        """Run the adjuster on the sensor's samples until the weld is scored (`results` scores in all)."""
        limit_s = sim.time_s + WELD_TIMEOUT_FACTOR * seam.length_mm / LIMITS['speed_mm_s'].low
        adjuster: WeldAdjuster | None = None
        while len(sim.weld_results) < results:
            if sim.time_s > limit_s:
                raise TimeoutError(f'seam {seam.name}: the weld did not end within {limit_s:.0f} s of sim time')
            if motion.reached(*sim.arm_state()[:2]):   # the path's end: the coordinator turns the arc off
                if adjuster is None:
                    raise RuntimeError(f'seam {seam.name}: the weld path ended and the arc never struck (the TCP '
                                       f'never came within {SEAM_CAPTURE_MM:g} mm of the seam start)')
                sim.arc_on = False
            samples = len(sim.seam_samples)
            sim.step()
            if sim.weld is not None and adjuster is None:   # the arc struck: the adjuster starts, as in weld-eval
                adjuster = WeldAdjuster('closed', start_stamp_s=sim.time_s - STEP_S, seam_length_mm=seam.length_mm)
                for sensor_s_mm, sample in approach_samples(seam, 0.0, 0.0, seed):
                    adjuster.approach(sensor_s_mm, sample)
            if adjuster is not None and len(sim.seam_samples) > samples:
                setpoint = adjuster.update(sim.seam_samples[-1])
                controls = sim.weld_controls
                controls.speed_mm_s, controls.force_n = setpoint.speed_mm_s, setpoint.force_n
                controls.correction_mm = setpoint.correction_mm
                sim.speed_scaling = motion.speed_scaling(setpoint.speed_mm_s)


def _run_until(sim: CellSimulation, condition, timeout_s: float, what: str) -> None:
    limit_s = sim.time_s + timeout_s
    while not condition():
        if sim.time_s > limit_s:
            raise TimeoutError(f'{what} did not happen within {timeout_s:g} s of sim time')
        sim.step(10)
