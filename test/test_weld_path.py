"""Seam program → TCP poses → timed joint trajectory; joint-space moves; seam position ↔ time."""
import math

import numpy as np
import pytest
import yaml

from cell_control.motion.kinematics import default_config_dir, load_kinematics
from cell_control.motion.weld_path import (
    PathError, SeamProgram, WeldMotionSettings, base_pose_from_layout, joint_move, joint_move_duration_s,
    part_pose_at_station, plan_weld, pose_from_xyz_rpy, time_at_seam_position)

ARM = load_kinematics()
LAYOUT = yaml.safe_load((default_config_dir() / 'cell_layout.yaml').read_text())
PART = part_pose_at_station(LAYOUT)
BASE = base_pose_from_layout(LAYOUT)
HOME = [math.pi, -1.57, 1.57, -1.57, -1.57, 0.0]
PROGRAM = SeamProgram(((-0.25, -0.05, 0.08), (0.25, -0.05, 0.08)), math.radians(10), 0.0)


@pytest.fixture(scope='module')
def weld():
    return plan_weld(PROGRAM, PART, BASE, 16.0, HOME)


def tcp_in_world(q):
    return BASE @ ARM.forward(q, WeldMotionSettings().tool())


def test_tcp_pose_points_down_along_travel_with_push_angle():
    pose = PROGRAM.tcp_pose(100.0)
    assert pose[:3, 3] == pytest.approx([-0.15, -0.05, 0.08])
    assert pose[:3, 0] @ np.array([1.0, 0, 0]) == pytest.approx(math.cos(math.radians(10)))
    assert pose[:3, 2] == pytest.approx([math.sin(math.radians(10)), 0.0, -math.cos(math.radians(10))])
    assert pose[:3, 1] == pytest.approx([0.0, -1.0, 0.0])  # right of travel along +x is −y
    shifted = PROGRAM.tcp_pose(100.0, lateral_mm=2.0, lift_m=0.01)
    assert shifted[:3, 3] == pytest.approx([-0.15, -0.052, 0.09])


def test_polyline_seam_positions_follow_the_segments():
    program = SeamProgram(((0.0, 0.0, 0.08), (0.1, 0.0, 0.08), (0.1, 0.1, 0.08)))
    assert program.length_mm == pytest.approx(200.0)
    assert program.tcp_pose(150.0)[:3, 3] == pytest.approx([0.1, 0.05, 0.08])
    assert program.tcp_pose(150.0)[:3, 0] == pytest.approx([0.0, 1.0, 0.0])


@pytest.mark.parametrize('points, angle, match', [
    (((0.0, 0.0, 0.0),), 0.0, 'at least 2 points'),
    (((0.0, 0.0, 0.0), (0.0, 0.0, 0.1)), 0.0, 'less than 0.1 mm across'),
    (((0.0, 0.0, 0.0), (math.nan, 0.0, 0.0)), 0.0, 'finite'),
    (((0.0, 0.0, 0.0), (0.1, 0.0, 0.0)), 1.2, 'travel_angle_rad must be within'),
])
def test_bad_seam_program_is_refused(points, angle, match):
    with pytest.raises(ValueError, match=match):
        SeamProgram(points, angle)


def test_position_outside_the_seam_is_refused():
    with pytest.raises(ValueError, match='outside the seam'):
        PROGRAM.tcp_pose(501.0)


def test_weld_trajectory_puts_the_tcp_on_the_seam_at_the_nominal_speed(weld):
    points = weld.trajectory.points
    assert weld.trajectory.joint_names == ARM.joint_names
    assert weld.weld_end_s - weld.weld_start_s == pytest.approx(500.0 / 16.0)
    assert max(np.diff(weld.seam_s_mm)) <= 5.0 + 1e-9
    for s_mm in (0.0, 250.0, 500.0):
        t = time_at_seam_position(weld, s_mm)
        index = [p.time_from_start_s for p in points].index(pytest.approx(t))
        expected = PART @ PROGRAM.tcp_pose(s_mm)
        assert np.allclose(tcp_in_world(points[index].positions), expected, atol=1e-9)
    # Approach above the run-up start before the seam, retract above the run-out end after it, at rest at both.
    settings = WeldMotionSettings()
    assert tcp_in_world(points[0].positions)[:3, 3] == pytest.approx(
        (PART @ PROGRAM.tcp_pose(-settings.lead_in_mm, lift_m=0.05, beyond_ends_mm=10.0))[:3, 3])
    assert tcp_in_world(points[-1].positions)[:3, 3] == pytest.approx(
        (PART @ PROGRAM.tcp_pose(500.0 + settings.run_up_mm, lift_m=0.05, beyond_ends_mm=10.0))[:3, 3])
    assert points[0].velocities == (0.0,) * 6 and points[-1].velocities == (0.0,) * 6
    # The run-up starts at rest on the seam line: that is where the move to the seam start ends.
    start = [p.time_from_start_s for p in points].index(pytest.approx(weld.run_up_start_s))
    assert points[start].velocities == (0.0,) * 6
    assert tcp_in_world(points[start].positions)[:3, 3] == pytest.approx(
        (PART @ PROGRAM.tcp_pose(-settings.lead_in_mm, beyond_ends_mm=10.0))[:3, 3])


def test_weld_trajectory_is_continuous_and_times_increase(weld):
    points = weld.trajectory.points
    positions = np.array([p.positions for p in points])
    assert np.max(np.abs(np.diff(positions, axis=0))) < WeldMotionSettings().max_joint_step_rad
    assert np.all(np.diff([p.time_from_start_s for p in points]) > 0)
    assert all(ARM.within_limits(q) and not ARM.singularities(q) for q in positions)
    # The joint velocities move the TCP along the seam at the travel speed, from the seam start to its end.
    for s_mm in (0.0, 250.0, 500.0):
        point = points[[p.time_from_start_s for p in points].index(pytest.approx(time_at_seam_position(weld, s_mm)))]
        dt = 1e-4
        ahead = tcp_in_world(np.add(point.positions, np.multiply(point.velocities, dt)))
        travelled_mm = 1000.0 * (ahead[:3, 3] - tcp_in_world(point.positions)[:3, 3])
        assert travelled_mm == pytest.approx([16.0 * dt, 0.0, 0.0], abs=1e-6)


def test_time_at_seam_position_is_linear_in_s_and_refuses_outside(weld):
    assert time_at_seam_position(weld, 160.0) - time_at_seam_position(weld, 0.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match='outside the weld'):
        time_at_seam_position(weld, -1.0)


def test_lateral_correction_moves_the_tcp_along_tool_y(weld):
    q = weld.trajectory.points[len(weld.trajectory.points) // 2].positions
    corrected = weld.joints_at(250.0, 3.0, q)
    delta = tcp_in_world(corrected)[:3, 3] - (PART @ PROGRAM.tcp_pose(250.0))[:3, 3]
    assert delta == pytest.approx([0.0, -0.003, 0.0], abs=1e-9)
    assert np.max(np.abs(corrected - np.array(q))) < 0.05


def test_seam_out_of_reach_is_refused_naming_the_seam_position():
    far = SeamProgram(((-0.25, 0.2, 0.08), (0.9, 0.2, 0.08)))
    with pytest.raises(PathError, match=r'seam position \d+\.\d mm: .*reach') as error:
        plan_weld(far, PART, BASE, 16.0, HOME)
    assert error.value.where.startswith('seam position')


def test_seam_through_the_shoulder_singularity_is_refused():
    # A seam passing right over the arm base: the wrist centre crosses the shoulder pan axis plane.
    part_over_base = pose_from_xyz_rpy([0.0, -0.5, 0.75 - 0.3], [0, 0, 0])
    seam = SeamProgram(((-0.3, 0.0, 0.08), (0.3, 0.0, 0.08)))
    with pytest.raises(PathError, match='seam position .*(singularity|jumps|shoulder)'):
        plan_weld(seam, part_over_base, BASE, 16.0, HOME)


def test_bad_travel_speed_is_refused():
    with pytest.raises(ValueError, match='travel_speed_mm_s must be positive'):
        plan_weld(PROGRAM, PART, BASE, 0.0, HOME)


LIMITS = ARM.limits


def test_joint_move_respects_velocity_and_acceleration_limits():
    start = [0.0, -1.57, 1.57, -1.57, -1.57, 0.0]
    target = [2.0, -1.0, 1.0, -2.0, -1.57, 5.0]
    move = joint_move(start, target, LIMITS, ARM.joint_names, sample_period_s=0.01)
    assert move.points[0].positions == tuple(start) and move.points[-1].positions == pytest.approx(target)
    assert move.points[-1].velocities == (0.0,) * 6
    times = np.array([p.time_from_start_s for p in move.points])
    velocities = np.array([p.velocities for p in move.points])
    assert np.all(np.abs(velocities) <= np.array(LIMITS.max_velocity_rad_s) + 1e-9)
    accelerations = np.diff(velocities, axis=0) / np.diff(times)[:, None]
    assert np.all(np.abs(accelerations) <= np.array(LIMITS.max_acceleration_rad_s2) + 1e-6)
    # Time-optimal for the slowest joint: wrist 3 moves 5 rad at π rad/s and π rad/s² → 5/π + 1 s.
    assert move.duration_s == pytest.approx(5.0 / math.pi + 1.0)
    assert joint_move_duration_s(start, target, LIMITS) == pytest.approx(move.duration_s)
    # All joints arrive together and positions integrate the velocities.
    positions = np.array([p.positions for p in move.points])
    integrated = positions[0] + np.concatenate([[np.zeros(6)], np.cumsum(
        (velocities[1:] + velocities[:-1]) / 2 * np.diff(times)[:, None], axis=0)])
    assert np.allclose(integrated, positions, atol=2e-3)


def test_short_joint_move_has_no_cruise_and_stays_within_acceleration():
    start = [0.0] * 6
    target = [0.1, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert joint_move_duration_s(start, target, LIMITS) == pytest.approx(2 * math.sqrt(0.1 / math.pi))


def test_joint_move_to_where_the_arm_is_is_a_single_point():
    move = joint_move(HOME, HOME, LIMITS)
    assert len(move.points) == 1 and move.duration_s == 0.0


@pytest.mark.parametrize('start, target, period, match', [
    ([0.0] * 5, [0.0] * 6, 0.05, 'q_start must be 6 finite'),
    ([0.0] * 6, [0.0, 0.0, 4.0, 0.0, 0.0, 0.0], 0.05, r'q_target\[2\] = 4.0000 rad is outside'),
    ([0.0] * 6, [math.inf] + [0.0] * 5, 0.05, 'q_target must be 6 finite'),
    ([0.0] * 6, [0.0] * 6, 0.0, 'sample_period_s must be positive'),
])
def test_bad_joint_move_is_refused(start, target, period, match):
    with pytest.raises(ValueError, match=match):
        joint_move(start, target, LIMITS, sample_period_s=period)
