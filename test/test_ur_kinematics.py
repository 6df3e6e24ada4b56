"""UR5e FK against the DH product, IK round trips, limits, nearest solution and singularities."""
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from cell_control.motion.kinematics import (
    SingularityError, UnreachablePose, default_config_dir, load_kinematics)

ARM = load_kinematics()
DH = yaml.safe_load((default_config_dir() / 'ur5e' / 'kinematics.yaml').read_text())['dh']


def dh_product(q):
    """FK the textbook way: the product of the six standard DH link transforms."""
    d = [DH['d1'], 0.0, 0.0, DH['d4'], DH['d5'], DH['d6']]
    a = [0.0, DH['a2'], DH['a3'], 0.0, 0.0, 0.0]
    pose = np.eye(4)
    for i in range(6):
        ct, st_, ca, sa = math.cos(q[i]), math.sin(q[i]), math.cos(DH['alpha'][i]), math.sin(DH['alpha'][i])
        pose = pose @ np.array([[ct, -st_ * ca, st_ * sa, a[i] * ct],
                                [st_, ct * ca, -ct * sa, a[i] * st_],
                                [0.0, sa, ca, d[i]],
                                [0.0, 0.0, 0.0, 1.0]])
    return pose


def tcp(offset_m=0.2):
    tool = np.eye(4)
    tool[2, 3] = offset_m
    return tool


joint_angles = st.lists(st.floats(-math.pi, math.pi), min_size=6, max_size=6)


def test_limits_and_names_come_from_config():
    assert ARM.joint_names[0] == 'shoulder_pan_joint' and ARM.joint_names[5] == 'wrist_3_joint'
    assert ARM.limits.upper_rad[2] == pytest.approx(math.pi)
    assert ARM.limits.upper_rad[0] == pytest.approx(2 * math.pi)


@settings(max_examples=200, deadline=None)
@given(joint_angles)
def test_forward_matches_dh_product(q):
    assert np.allclose(ARM.forward(q), dh_product(q), atol=1e-9)


@settings(max_examples=300, deadline=None)
@given(joint_angles)
def test_every_ik_solution_reproduces_the_pose_and_respects_limits(q):
    pose = ARM.forward(q, tcp())
    if ARM.singularities(q):
        return  # a singular pose has a continuum of solutions; covered by the singularity tests
    solutions = ARM.inverse(pose, tcp())
    assert 1 <= len(solutions) <= 8
    for solution in solutions:
        assert ARM.within_limits(solution)
        assert np.allclose(ARM.forward(solution, tcp()), pose, atol=1e-8)
    # The generating configuration is among them (modulo 2π).
    assert any(np.allclose(np.angle(np.exp(1j * (s - np.array(q)))), 0.0, atol=1e-6) for s in solutions)


@settings(max_examples=200, deadline=None)
@given(joint_angles)
def test_nearest_solution_returns_the_current_configuration_for_its_own_pose(q):
    if ARM.singularities(q):
        return
    nearest = ARM.nearest_solution(ARM.forward(q), q)
    assert np.allclose(nearest, q, atol=1e-6)


def test_nearest_solution_wraps_by_two_pi_toward_the_current_configuration():
    q = [-0.3, -1.2, 1.5, -1.9, -1.5, 0.4]
    current = list(q)
    current[0] += 2 * math.pi
    current[5] -= 2 * math.pi
    nearest = ARM.nearest_solution(ARM.forward(q), current)
    assert nearest[0] == pytest.approx(q[0] + 2 * math.pi)
    assert nearest[5] == pytest.approx(q[5] - 2 * math.pi)


def test_nearest_solution_picks_the_branch_of_the_current_configuration():
    elbow_up = [0.3, -1.2, 1.5, -1.9, -1.5, 0.4]
    pose = ARM.forward(elbow_up)
    others = [s for s in ARM.inverse(pose) if not np.allclose(s, elbow_up, atol=1e-6)]
    assert len(others) == 7
    for other in others:
        assert np.allclose(ARM.nearest_solution(pose, other + 0.01), other, atol=1e-6)


def test_elbow_limit_excludes_solutions(tmp_path: Path):
    config = tmp_path / 'ur5e'
    config.mkdir()
    (config / 'kinematics.yaml').write_text((default_config_dir() / 'ur5e' / 'kinematics.yaml').read_text())
    limits = {'joint_limits': {name: {'min_position': -6.28, 'max_position': 6.28}
                               for name in ARM.joint_names}}
    limits['joint_limits']['elbow_joint'] = {'min_position': 0.0, 'max_position': math.pi}
    (config / 'joint_limits.yaml').write_text(yaml.safe_dump(limits))
    arm = load_kinematics(tmp_path)
    pose = ARM.forward([0.3, -1.2, 1.5, -1.9, -1.5, 0.4])
    assert all(s[2] >= 0 for s in arm.inverse(pose))
    assert len(arm.inverse(pose)) == len(ARM.inverse(pose)) // 2


def test_degrees_tag_in_joint_limits_is_read_as_radians(tmp_path: Path):
    config = tmp_path / 'ur5e'
    config.mkdir()
    (config / 'kinematics.yaml').write_text((default_config_dir() / 'ur5e' / 'kinematics.yaml').read_text())
    text = 'joint_limits:\n' + ''.join(
        f'  {name}:\n    min_position: !degrees -90.0\n    max_position: !degrees 90.0\n'
        f'    max_velocity: !degrees 60.0\n' for name in ARM.joint_names)
    (config / 'joint_limits.yaml').write_text(text)
    arm = load_kinematics(tmp_path)
    assert arm.limits.upper_rad == pytest.approx([math.pi / 2] * 6)
    assert arm.limits.max_velocity_rad_s == pytest.approx([math.pi / 3] * 6)


def test_missing_joint_in_limits_file_is_refused(tmp_path: Path):
    config = tmp_path / 'ur5e'
    config.mkdir()
    (config / 'kinematics.yaml').write_text((default_config_dir() / 'ur5e' / 'kinematics.yaml').read_text())
    (config / 'joint_limits.yaml').write_text('joint_limits:\n  shoulder_pan_joint: {min_position: -1}\n')
    with pytest.raises(ValueError, match='joint_limits.shoulder_pan_joint.max_position is missing'):
        load_kinematics(tmp_path)


def test_pose_beyond_reach_is_unreachable_with_reason():
    pose = np.eye(4)
    pose[:3, 3] = [1.5, 0.0, 0.3]
    with pytest.raises(UnreachablePose, match='outside the arm\'s reach'):
        ARM.inverse(pose)


def test_wrist_centre_inside_shoulder_offset_is_unreachable():
    pose = np.eye(4)
    pose[:3, 3] = [0.0, 0.0, 0.3 + DH['d6']]  # tool z up: wrist centre on the pan axis
    with pytest.raises(UnreachablePose, match='closer than the shoulder offset'):
        ARM.inverse(pose)


def test_bad_pose_and_current_configuration_are_refused():
    with pytest.raises(ValueError, match='finite 4x4'):
        ARM.inverse(np.eye(3))
    with pytest.raises(ValueError, match='finite 4x4'):
        ARM.inverse(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match='q_current must be 6 finite'):
        ARM.nearest_solution(np.eye(4), [0.0] * 5)


@pytest.mark.parametrize('kind, q', [
    ('wrist', [0.3, -1.2, 1.5, -1.9, 0.0, 0.4]),
    ('elbow', [0.3, -1.2, 0.0, -1.9, -1.5, 0.4]),
])
def test_singular_configuration_is_reported_by_name(kind, q):
    assert kind in [name for name, _ in ARM.singularities(q)]
    with pytest.raises(SingularityError, match=f'{kind} singularity') as error:
        ARM.check_singularity(q)
    assert error.value.kind == kind


def test_shoulder_singularity_when_wrist_above_the_base():
    # Choose q2 so that a2·cos(q2) + a3·cos(q2+q3) + d5·sin(q234) = 0.
    q3, q4 = 1.2, -1.0
    q2 = min((ARM.singularity_margins([0, x, q3, q4, 1.0, 0])['shoulder'] ** 2, x)
             for x in np.linspace(-math.pi, 0, 20001))[1]
    q = [0.5, q2, q3, q4, 1.0, 0.0]
    with pytest.raises(SingularityError, match='shoulder singularity'):
        ARM.nearest_solution(ARM.forward(q), q)
    assert np.allclose(ARM.nearest_solution(ARM.forward(q), q, reject_singular=False), q, atol=1e-4)


def test_singularity_margins_vanish_exactly_where_the_jacobian_loses_rank():
    rng = np.random.default_rng(7)
    for _ in range(50):
        q = rng.uniform(-math.pi, math.pi, 6)
        jacobian = np.zeros((6, 6))
        for i in range(6):
            step = np.zeros(6)
            step[i] = 1e-6
            plus, minus = ARM.forward(q + step), ARM.forward(q - step)
            jacobian[:3, i] = (plus[:3, 3] - minus[:3, 3]) / 2e-6
            rotation_rate = (plus[:3, :3] - minus[:3, :3]) / 2e-6 @ ARM.forward(q)[:3, :3].T
            jacobian[3:, i] = [rotation_rate[2, 1], rotation_rate[0, 2], rotation_rate[1, 0]]
        margins = ARM.singularity_margins(q)
        expected = DH['a2'] * DH['a3'] * margins['elbow'] * margins['wrist'] * margins['shoulder']
        assert abs(np.linalg.det(jacobian)) == pytest.approx(abs(expected), rel=1e-4, abs=1e-9)


def test_wrist_singular_pose_still_solves_with_hint():
    q = [0.3, -1.2, 1.5, -1.9, 0.0, 0.4]
    for solution in ARM.inverse(ARM.forward(q), wrist_3_hint=0.4):
        assert np.allclose(ARM.forward(solution), ARM.forward(q), atol=1e-8)
