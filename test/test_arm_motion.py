"""Arm moves for the part cycle: planned from the measured joints, judged against their goal."""
import math

import pytest

from cell_control.motion.arm_motion import AIR_CLEARANCE_M, PLANNED_WELD_SPEED_MM_S, ArmMotion, ArmMotionError
from cell_control.cell.description import load_layout, rest_positions
from cell_control.cell.recipe import load_recipe, recipes_dir
from cell_control.motion.kinematics import load_kinematics
from cell_control.motion.weld_path import base_pose_from_layout

HOME = [0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0]


@pytest.fixture
def motion() -> ArmMotion:
    return ArmMotion(load_kinematics(), load_layout(), load_recipe(recipes_dir() / 'bracket.yaml').seams, HOME)


def test_seam_start_then_weld_path_then_home_each_start_where_the_arm_is(motion):
    approach = motion.plan('seam_start', HOME)
    assert motion.target == 'seam_start' and motion.goal == list(approach.points[-1].positions)
    assert approach.points[0].time_from_start_s > 0.0          # the current state is the implicit first point
    at_seam = list(approach.points[-1].positions)
    weld = motion.plan('weld_path', at_seam)
    # 500 mm at the planned top speed plus descent-free retract: the weld itself takes length / 25 mm/s.
    assert weld.duration_s > 500.0 / PLANNED_WELD_SPEED_MM_S
    home = motion.plan('home', list(weld.points[-1].positions))
    assert home.points[-1].positions == pytest.approx(HOME)
    # Re-planned from somewhere else, the same target starts from there: nothing of an old plan is replayed.
    elsewhere = [q + 0.2 for q in HOME]
    replanned = motion.plan('home', elsewhere)
    assert replanned.duration_s != pytest.approx(home.duration_s)


def test_reached_needs_the_goal_within_tolerance_and_the_arm_still(motion):
    assert not motion.reached(HOME, [0.0] * 6)                  # no goal yet
    trajectory = motion.plan('home', [q + 0.1 for q in HOME])
    goal = list(trajectory.points[-1].positions)
    assert motion.reached(goal, [0.0] * 6)
    assert not motion.reached([goal[0] + 0.01, *goal[1:]], [0.0] * 6)
    assert not motion.reached(goal, [0.1] + [0.0] * 5)
    motion.discard()
    assert motion.goal is None and not motion.reached(goal, [0.0] * 6)


def test_speed_scaling_follows_the_adjuster_and_is_bounded(motion):
    assert motion.speed_scaling(16.0) == pytest.approx(16.0 / PLANNED_WELD_SPEED_MM_S)
    assert motion.speed_scaling(40.0) == 1.0 and motion.speed_scaling(-3.0) == 0.0
    with pytest.raises(ArmMotionError, match='not finite'):
        motion.speed_scaling(math.nan)


def test_bad_targets_and_homes_are_refused(motion):
    with pytest.raises(ArmMotionError, match="unknown arm target 'bin'"):
        motion.plan('bin', HOME)
    with pytest.raises(ArmMotionError, match='home must be 6 finite joint positions'):
        ArmMotion(motion.arm, load_layout(), list(motion.seams.values()), [0.0, math.nan, 0, 0, 0, 0])
    with pytest.raises(ArmMotionError, match="unknown seam 'seam_z'"):
        motion.plan('seam_start', HOME, 'seam_z')
    with pytest.raises(ArmMotionError, match='at least one seam'):
        ArmMotion(motion.arm, load_layout(), [], HOME)
    with pytest.raises(ArmMotionError, match='rest must be 6 finite joint positions'):
        ArmMotion(motion.arm, load_layout(), list(motion.seams.values()), HOME, [0.0] * 5)


def test_the_idle_policy_parks_the_arm_at_the_layouts_rest_pose_clear_above_the_belt_and_back_home(motion):
    rest = motion.plan('rest', HOME)
    assert motion.target == 'rest' and rest.points[-1].positions == pytest.approx(rest_positions())
    assert rest_positions() != pytest.approx(HOME)
    assert min(_tcp_heights_above_top(motion, rest)) > 0.1   # nowhere near a part on the belt
    back = motion.plan('home', list(rest.points[-1].positions))
    assert back.points[-1].positions == pytest.approx(HOME)
    assert all(motion.arm.within_limits(p.positions) for p in rest.points + back.points)


def _tcp_heights_above_top(motion: ArmMotion, trajectory) -> list[float]:
    """TCP height above the part's top face (m) at every point and halfway between points (joint interpolation)."""
    layout = load_layout()
    base = base_pose_from_layout(layout)
    top = layout['conveyor']['belt_top_z'] + layout['part']['height']
    points = [p.positions for p in trajectory.points]
    halfway = [tuple((a + b) / 2 for a, b in zip(p, q)) for p, q in zip(points, points[1:])]
    return [float((base @ motion.arm.forward(q, motion.settings.tool()))[2, 3]) - top for q in points + halfway]


def test_between_two_seams_the_arm_moves_through_the_air_within_its_limits():
    recipe = load_recipe(recipes_dir() / 'frame_rail.yaml')
    motion = ArmMotion(load_kinematics(), load_layout(), recipe.seams, HOME)
    first = motion.plan('seam_start', HOME, 'seam_a')
    weld_a = motion.plan('weld_path', list(first.points[-1].positions), 'seam_a')
    after_a = list(weld_a.points[-1].positions)
    air = motion.plan('seam_start', after_a, 'seam_b')
    heights = _tcp_heights_above_top(motion, air)
    approach_height = motion.settings.approach_height_m
    # never lower than the weld path's own approach height, except the final descent onto seam_b's line
    descent_starts = next(i for i, p in enumerate(air.points) if _tcp_heights_above_top(
        motion, type(air)(air.joint_names, (p,)))[0] < approach_height - 1e-3)
    assert min(heights[:descent_starts]) >= approach_height - 1e-3
    assert AIR_CLEARANCE_M - 2e-3 <= max(heights) <= AIR_CLEARANCE_M + 0.05   # up to the air height, no swing
    assert all(motion.arm.within_limits(p.positions) for p in air.points)
    assert all(b.time_from_start_s > a.time_from_start_s for a, b in zip(air.points, air.points[1:]))
    speeds = [[abs(b - a) / (q.time_from_start_s - p.time_from_start_s) for a, b in zip(p.positions, q.positions)]
              for p, q in zip(air.points, air.points[1:])]
    limits = motion.arm.limits.max_velocity_rad_s   # continuous within the joints' speed: no IK branch jump
    assert all(v <= 1.01 * limit for row in speeds for v, limit in zip(row, limits))
    # the same arm configuration for both seams (a turn of wrist 3 for the reversed seam, no elbow flip)
    assert max(abs(a - b) for a, b in zip(after_a[:5], air.points[-1].positions[:5])) < 0.5


def test_the_first_seams_approach_from_home_is_the_one_seam_approach():
    """Home is beside the part and above it: the first approach is a plain joint move, as for one seam."""
    recipe = load_recipe(recipes_dir() / 'frame_rail.yaml')
    several = ArmMotion(load_kinematics(), load_layout(), recipe.seams, HOME).plan('seam_start', HOME, 'seam_a')
    single = ArmMotion(load_kinematics(), load_layout(), recipe.seams[:1], HOME).plan('seam_start', HOME)
    assert several == single
