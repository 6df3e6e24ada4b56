"""The one rule for non-finite numbers (issue 8): which field is named, and what a node's diagnostics say."""
import math
from array import array

import pytest

from cell_control.cell.finite import NonFiniteDrops, field_path, non_finite_field
from cell_control.logistics.agv_navigation import Pose2D
from cell_control.motion.trajectory import TrajectoryPoint
from cell_control.weld.seam_measurement import SeamMeasurement


@pytest.mark.parametrize('values, field', [
    ({'data': math.nan}, 'data'),
    ({'linear.x': 0.2, 'angular.z': -math.inf}, 'angular.z'),
    ({'position': {'shoulder_pan_joint': 0.0, 'elbow_joint': math.inf}}, 'position.elbow_joint'),
    ({'points': [TrajectoryPoint(0.5, (0.0, 1.0)), TrajectoryPoint(1.0, (0.0, math.nan))]}, 'points[1].positions[1]'),
    ({'points': [TrajectoryPoint(math.inf, (0.0,))]}, 'points[0].time_from_start_s'),
    ({'pose.pose': Pose2D(1.0, 2.0, math.nan)}, 'pose.pose.yaw'),
    (SeamMeasurement(1.0, 7, 3, 1.0, 0.0, math.nan, 6.0), 'lateral_mm'),
    ({'velocity': array('d', [0.0, math.nan])}, 'velocity[1]'),
    ({'a': [{'b': (1.0, -math.inf)}]}, 'a[0].b[1]'),
    (math.nan, '(value)'),
])
def test_the_first_non_finite_value_is_named_by_its_field_path(values, field: str) -> None:
    assert non_finite_field(values) == field


@pytest.mark.parametrize('values', [
    {'data': 0.0}, {'data': 1e308, 'n': 3, 'flag': True, 'name': 'nan', 'none': None},
    {'points': [TrajectoryPoint(0.5, (0.0, 1.0), None)]}, Pose2D(1.0, 2.0, 3.0), [], {},
    SeamMeasurement(1.0, 7, 0, 0.0, 0.0, 0.0, 0.0),
])
def test_finite_values_pass(values) -> None:
    assert non_finite_field(values) is None


def test_the_first_in_order_is_named_when_several_are_non_finite() -> None:
    assert non_finite_field({'x': 1.0, 'y': math.nan, 'z': math.inf}) == 'y'


def test_field_path_is_written_as_it_is_looked_up() -> None:
    assert field_path(('seams', 1, 'program', 'end')) == 'seams[1].program.end'
    assert field_path(()) == ''


def test_nothing_is_reported_before_the_first_drop() -> None:
    assert NonFiniteDrops().report() is None


def test_report_warns_while_drops_arrive_with_the_counts_then_returns_to_ok() -> None:
    drops = NonFiniteDrops()
    drops.drop('/joint_states', 'position.elbow_joint')
    drops.drop('/joint_states', 'position.elbow_joint')
    drops.drop('/agv_1/odom', 'pose.pose.yaw')
    level, message, values = drops.report()
    assert level == 'WARN'
    assert 'dropped 3 message(s)' in message and '/agv_1/odom pose.pose.yaw' in message
    assert values['dropped_non_finite'] == 3 and values['dropped_in_period'] == 3
    assert values['/joint_states position.elbow_joint'] == 2 and values['/agv_1/odom pose.pose.yaw'] == 1

    level, message, values = drops.report()   # a period without any
    assert level == 'OK' and '3 dropped in all' in message
    assert values['dropped_non_finite'] == 3 and values['dropped_in_period'] == 0

    drops.drop('/conveyor/speed_command', 'data')
    level, _, values = drops.report()
    assert level == 'WARN' and values['dropped_in_period'] == 1 and values['dropped_non_finite'] == 4
    assert drops.total == 4
