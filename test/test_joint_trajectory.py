"""The arm's trajectory follower: what JTC accepts, refuses and how it interpolates."""
import math

import pytest

from cell_control.motion.trajectory import (
    TrajectoryError, TrajectoryFollower, TrajectoryPoint, validate_trajectory)

JOINTS = ['a', 'b']


def test_reorders_points_to_controller_joint_order():
    trajectory = validate_trajectory(['b', 'a'], [TrajectoryPoint(1.0, (2.0, 1.0))], JOINTS)
    assert trajectory.points[0].positions == (1.0, 2.0)
    assert trajectory.duration_s == 1.0


@pytest.mark.parametrize('names, points, message', [
    (['a', 'x'], [TrajectoryPoint(1.0, (0.0, 0.0))], "unknown ['x'], missing ['b']"),
    (['a'], [TrajectoryPoint(1.0, (0.0,))], "missing ['b']"),
    (['a', 'a'], [TrajectoryPoint(1.0, (0.0, 0.0))], 'duplicate joint names'),
    (JOINTS, [], 'no points'),
    (JOINTS, [TrajectoryPoint(1.0, (0.0, math.nan))], 'non-finite'),
    (JOINTS, [TrajectoryPoint(1.0, (0.0, 0.0), (math.inf, 0.0))], 'non-finite'),
    (JOINTS, [TrajectoryPoint(1.0, (0.0,))], '1 positions for 2 joints'),
    (JOINTS, [TrajectoryPoint(1.0, (0.0, 0.0)), TrajectoryPoint(1.0, (1.0, 0.0))], 'does not increase'),
])
def test_refuses_bad_trajectories_with_a_reason(names, points, message):
    with pytest.raises(TrajectoryError, match=message.replace('[', r'\[').replace(']', r'\]')):
        validate_trajectory(names, points, JOINTS)


def test_refuses_positions_outside_limits():
    with pytest.raises(TrajectoryError, match='b = 4.0000 rad is outside'):
        validate_trajectory(JOINTS, [TrajectoryPoint(1.0, (0.0, 4.0))], JOINTS, [(-3, 3), (-3, 3)])


def test_linear_interpolation_from_current_state_then_holds_goal():
    follower = TrajectoryFollower(2)
    follower.start(validate_trajectory(JOINTS, [TrajectoryPoint(2.0, (2.0, -2.0))], JOINTS), [0, 0], [0, 0])
    follower.advance(1.0, 1.0)
    positions, velocities = follower.reference()
    assert positions == pytest.approx([1.0, -1.0])
    assert velocities == pytest.approx([1.0, -1.0])
    follower.advance(5.0, 1.0)
    assert follower.finished
    assert follower.reference() == ([2.0, -2.0], [0.0, 0.0])


def test_cubic_interpolation_meets_point_velocities_and_speed_scaling_slows_the_clock():
    follower = TrajectoryFollower(2)
    points = [TrajectoryPoint(1.0, (1.0, 1.0), (1.0, 0.0)), TrajectoryPoint(2.0, (2.0, 1.0), (0.0, 0.0))]
    follower.start(validate_trajectory(JOINTS, points, JOINTS), [0, 0], [0, 0])
    follower.advance(2.0, 0.5)   # 2 s of wall time at half speed is 1 s along the trajectory
    positions, velocities = follower.reference()
    assert follower.elapsed_s == pytest.approx(1.0)
    assert positions == pytest.approx([1.0, 1.0])
    assert velocities == pytest.approx([1.0, 0.0])
    follower.advance(0.5, 1.0)
    positions, _ = follower.reference()
    assert 1.0 < positions[0] < 2.0
