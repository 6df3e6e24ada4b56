"""The conveyor driver's speed-command, standby and link decisions, without ROS or a serial port."""
from __future__ import annotations

import math

import pytest

from cell_control.logistics.conveyor_supervision import LinkWatch, speed_command_problem, standby_write


@pytest.mark.parametrize('speed, fault, words', [
    (math.nan, '', 'not a finite number'), (math.inf, '', 'not a finite number'),
    (-0.1, '', 'forward only'), (0.51, '', 'outside 0 … 0.5 m/s'), (0.3, 'jam', 'fault latched (jam)')])
def test_refused_speed_commands(speed: float, fault: str, words: str) -> None:
    assert words in speed_command_problem(speed, 0.5, fault)


def test_accepted_speed_commands() -> None:
    for speed in (0.0, 0.3, 0.5):
        assert speed_command_problem(speed, 0.5, '') is None


def test_standby_is_written_only_while_the_belt_is_commanded_stopped() -> None:
    assert standby_write(True, 0.0) == (True, None)
    assert standby_write(False, 0.0) == (True, None)
    write, warning = standby_write(True, 0.3)
    assert not write and 'ignored standby request' in warning and '0.3 m/s' in warning
    assert standby_write(False, 0.3) == (False, None), 'a running drive is awake; writing 0 would stop the belt'


def test_link_is_lost_after_consecutive_failures_only() -> None:
    link = LinkWatch(3)
    assert not link.failed() and not link.failed()
    link.answered()
    assert not link.failed() and not link.failed()
    assert link.failed()
    assert link.failed_in_row == 3 and link.failed_total == 5
