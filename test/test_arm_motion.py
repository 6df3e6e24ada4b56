"""Arm moves for the part cycle: planned from the measured joints, judged against their goal."""
import math

import pytest

from cell_control.motion.arm_motion import PLANNED_WELD_SPEED_MM_S, ArmMotion, ArmMotionError
from cell_control.cell.description import load_layout
from cell_control.cell.recipe import load_recipe, recipes_dir
from cell_control.motion.kinematics import load_kinematics

HOME = [0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0]


@pytest.fixture
def motion() -> ArmMotion:
    return ArmMotion(load_kinematics(), load_layout(), load_recipe(recipes_dir() / 'bracket.yaml').seams[0], HOME)


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
        ArmMotion(motion.arm, load_layout(), motion.seam, [0.0, math.nan, 0, 0, 0, 0])
