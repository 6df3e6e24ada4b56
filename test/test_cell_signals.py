"""Raw device signals the coordinator filters before they become cycle events, without ROS."""
from __future__ import annotations

import math

import pytest

from cell_control.cell.signals import SwitchEdges, parse_part_id, rollers_running


def test_part_ids() -> None:
    assert parse_part_id('  P-1_a \n') == 'P-1_a'
    assert parse_part_id('x' * 64) == 'x' * 64
    for bad in ('', '   ', 'x' * 65, 'P 1', 'P/1', 'P;drop'):
        with pytest.raises(ValueError, match='is not 1-64 letters, digits, - or _'):
            parse_part_id(bad)


def test_rollers_running() -> None:
    assert rollers_running(0.3) and rollers_running(-0.3)
    assert not rollers_running(0.05) and not rollers_running(0.0)
    assert not rollers_running(math.nan) and not rollers_running(math.inf)


def test_switch_edges() -> None:
    edges = SwitchEdges()
    assert edges.changed('infeed', False)            # the first reading is an edge
    assert not edges.changed('infeed', False)        # a heartbeat is not
    assert edges.changed('infeed', True)
    assert edges.changed('station', True)            # switches are independent
    assert not edges.changed('infeed', True)
