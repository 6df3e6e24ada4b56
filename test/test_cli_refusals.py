"""Every `cell-control` subcommand from a plain shell: bad input is refused in one line, never a traceback."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cell_control.runner import find_executable
from conftest import SEAMS


def plain_shell(home: Path) -> dict[str, str]:
    """The environment of `env -i PATH=… HOME=…`: no ROS variables at all."""
    home.mkdir(exist_ok=True)
    return {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'HOME': str(home)}


def run_plain(tmp_path: Path, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([find_executable('cell-control'), *args], capture_output=True, text=True,
                          env=plain_shell(tmp_path / 'home'), cwd=tmp_path, timeout=timeout_s)


@pytest.mark.parametrize('args, message', [
    (['sim', '--rtf', 'fast'], "argument --rtf: 'fast' is not a real-time factor in (0, 1000] or 'max'"),
    (['sim', '--duration', 'nan'], "argument --duration: 'nan' is not a number of seconds"),
    (['sim', '--domain-id', '233'], "argument --domain-id: '233' is not a ROS domain id in 0..232"),
    (['sim', '--seam', '/nonexistent/seam.csv'], 'seam: /nonexistent/seam.csv: cannot read seam file'),
    (['sim', '--seam', str(SEAMS / 'gap_ramp.csv')], "is 400 mm long but the recipe's seam program is 500.0 mm"),
    (['sim', '--parts', '-1'], 'parts: -1 is not a whole number'),
    (['sim', '--start', '--sim-only'], '--start needs the coordinator'),
    (['demo', '--rtf', '0'], "argument --rtf: '0' is not a real-time factor in (0, 1000] or 'max'"),
    (['demo', '--rtf', 'inf'], "argument --rtf: 'inf' is not a real-time factor in (0, 1000] or 'max'"),
    (['demo', '--domain-id', '-5'], "argument --domain-id: '-5' is not a ROS domain id"),
    (['demo', '--domain-id', '999'], "argument --domain-id: '999' is not a ROS domain id"),
    (['demo', '--recipe', 'no_such_part'], 'recipe: '),
    (['demo', '--out', '/proc/no/such/folder'], '--out /proc/no/such/folder: '),
    (['demo', '--degrade', 'arm'], "--degrade: 'arm' is not one of contact_tip, conveyor_bearing, agv_charger"),
    (['demo', '--degrade', 'contact_tip=0.5'], "--degrade: contact_tip: rate '0.5' is not a number in -0.05..0.05"),
    (['demo', '--degrade', 'agv_charger=nan'], "argument --degrade: agv_charger: rate 'nan' is not a number in 0..1"),
    (['weld-eval', 'missing.csv'], 'missing.csv: cannot read seam file'),
    (['weld-eval', str(SEAMS / 'gap_ramp.csv'), '--plot', '/nonexistent/dir/x.png'],
     '--plot /nonexistent/dir/x.png: folder /nonexistent/dir does not exist'),
    (['weld-eval', str(SEAMS / 'gap_ramp.csv'), '--plot', 'x.nope'], '--plot x.nope: the file name must end in'),
    (['records', 'verify', '--db', '/nonexistent/records.sqlite'], '/nonexistent/records.sqlite'),
    (['nodes', '--recipe', 'no_such_part'], 'recipe: '),
    (['nodes', '--sim', 'webots'], "argument --sim: invalid choice: 'webots'"),
    (['cmd', 'launch'], "argument command: invalid choice: 'launch'"),
    (['cmd', 'start', '--timeout', '-1'], "argument --timeout: '-1' is not a number of seconds"),
    (['cmd', 'start', '--domain-id', 'x'], "argument --domain-id: 'x' is not a ROS domain id"),
    (['bogus'], "unknown subcommand 'bogus'"),
])
def test_bad_arguments_are_refused_in_one_line(tmp_path, args, message):
    result = run_plain(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count('\n') == 1 and message in result.stderr, result.stderr
    assert result.stdout == ''
    assert list(tmp_path.iterdir()) == [tmp_path / 'home']   # nothing made: no out/, no report, no plot


def test_a_cell_that_is_not_there_is_reported_in_one_line(tmp_path, ros_domain):
    result = run_plain(tmp_path, 'cmd', 'status', '--domain-id', str(ros_domain), '--timeout', '0.5')
    assert result.returncode == 1
    assert result.stderr == (f'cell-control cmd status: no /cell/state message within 0.5 s on ROS domain {ros_domain} '
                             '(is the cell running there?)\n')
    result = run_plain(tmp_path, 'cmd', 'start', '--domain-id', str(ros_domain), '--timeout', '0.5')
    assert result.returncode == 1
    assert result.stderr == (f"cell-control cmd start: Could not reach service '/cell/start' within 0.5 s "
                             f'on ROS domain {ros_domain} (is the cell running there?)\n')


def test_weld_eval_and_nodes_work_from_a_plain_shell(tmp_path):
    seam = SEAMS / 'gap_ramp.csv'
    result = run_plain(tmp_path, 'weld-eval', str(seam), '--plot', 'weld.png')
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'weld.png').read_bytes()[:4] == b'\x89PNG'
    result = run_plain(tmp_path, 'nodes')
    assert result.returncode == 0, result.stderr
    assert '"cell_sim"' in result.stdout
    # found the installed files: the recipe, and its seam file whose length the adjuster gets
    assert '"recipe": "bracket"' in result.stdout and '"seam_length_mm": 500.0' in result.stdout


def test_the_demo_takes_max_as_full_speed_as_the_sim_does():
    from cell_control.cli import demo, sim
    assert demo.build_parser().parse_args(['--rtf', 'max']).rtf == 0.0 == sim.build_parser().parse_args(
        ['--rtf', 'max']).rtf
    assert demo.build_parser().parse_args(['--rtf', '2.5']).rtf == 2.5
    # the fastest speed that keeps a part's result (issue 11, point 5; test_production_cycle.py shows 1x = max)
    assert demo.build_parser().parse_args([]).rtf == 0.0
