"""`cell-control demo --supply-gap-s/--supply-gap-after/--idle-after-s`: checked before anything starts."""
from __future__ import annotations

import pytest

from cell_control.cli.demo import build_parser, main, supply_problem


def test_a_gap_with_a_part_after_it_and_an_idle_time_in_range_are_taken():
    args = build_parser().parse_args(['--parts', '2', '--supply-gap-s', '120', '--idle-after-s', '20'])
    assert (args.supply_gap_s, args.supply_gap_after, args.idle_after_s) == (120.0, 1, 20.0)
    assert supply_problem(args) == ''
    assert supply_problem(build_parser().parse_args([])) == ''   # no gap, the coordinator's idle time


@pytest.mark.parametrize('argv, words', [
    (['--supply-gap-s', '-1'], '--supply-gap-s must be within 0..3600 s, got -1'),
    (['--supply-gap-s', 'nan'], '--supply-gap-s must be within 0..3600 s, got nan'),
    (['--parts', '1', '--supply-gap-s', '30'], '--supply-gap-s needs --parts 2 or more'),
    (['--parts', '3', '--supply-gap-s', '30', '--supply-gap-after', '3'],
     '--supply-gap-after must be 1..2 so that a part comes after the gap (--parts 3), got 3'),
    (['--idle-after-s', '-5'], '--idle-after-s must be within 0..86400 s, got -5'),
])
def test_bad_supply_options_are_refused_before_the_cell_comes_up(argv, words, capsys):
    assert words in supply_problem(build_parser().parse_args(argv))
    assert main(argv) == 2   # no domain claimed, no node started: the check comes first
    assert words in capsys.readouterr().err
