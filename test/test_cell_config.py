"""Numbers that describe the cell come from config/cell_layout.yaml, through one function each."""
from __future__ import annotations

import copy
import math

import pytest
import yaml

from cell_control.cell.description import DescriptionError, agv_names, home_positions, load_layout, rest_positions
from cell_control.logistics.agv_navigation import yaw_from_quaternion
from cell_control.weld.process_model import reference_weld_time_s
from cell_control.weld.seam_profile import load_seam_csv
from conftest import REPO, SEAMS


def test_home_and_agvs_come_from_the_layout_file() -> None:
    raw = yaml.safe_load((REPO / 'config' / 'cell_layout.yaml').read_text(encoding='utf-8'))
    assert home_positions() == raw['arm']['home_joint_positions'] and len(home_positions()) == 6
    assert rest_positions() == raw['arm']['rest_joint_positions'] and len(rest_positions()) == 6
    assert agv_names() == tuple(raw['agv']['home']) == ('agv_1', 'agv_2')


@pytest.mark.parametrize('bad', [[0.0] * 5, [0.0] * 5 + [math.nan], [0.0] * 5 + ['x']])
@pytest.mark.parametrize('key, read', [('home_joint_positions', home_positions),
                                       ('rest_joint_positions', rest_positions)])
def test_a_bad_home_or_rest_pose_is_refused_by_name(bad: list, key: str, read) -> None:
    layout = copy.deepcopy(load_layout())
    layout['arm'][key] = bad
    with pytest.raises(DescriptionError, match=f'arm.{key}'):
        read(layout)


def test_yaw_from_quaternion() -> None:
    for yaw in (0.0, 0.5, -2.0, math.pi - 1e-9):
        assert yaw_from_quaternion(0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)) == pytest.approx(yaw)
    # a planar rotation stored with the negative scalar part is the same heading
    assert yaw_from_quaternion(0.0, 0.0, -math.sin(0.25), -math.cos(0.25)) == pytest.approx(0.5)


def test_reference_weld_time_of_a_uniform_gap() -> None:
    seam = load_seam_csv(sorted(SEAMS.glob('*.csv'))[0])
    time_s = reference_weld_time_s(seam, 0.0)
    length = seam.s_mm[-1] - seam.s_mm[0]
    assert length / 25.0 <= time_s <= length / 5.0
    assert reference_weld_time_s(seam, 0.2) < time_s     # more power: faster at the same heat
