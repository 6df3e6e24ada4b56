"""`cell-control cmd` against a real coordinator process on a ROS domain of its own."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cell_control.bringup import describe_cell
from cell_control.runner import NodeProcesses, find_executable, ros_environment

pytestmark = pytest.mark.integration
DOMAIN_ID = 218
TIMEOUT_S = '60'   # discovery and the coordinator's start-up on a loaded machine


@pytest.fixture
def coordinator(tmp_path: Path):
    data = {'ledger_path': str(tmp_path / 'ledger.sqlite'), 'records_path': str(tmp_path / 'records.sqlite')}
    nodes = [n for n in describe_cell('mujoco', ros_tools=False, overrides={'coordinator': data})
             if n.name == 'coordinator']
    with NodeProcesses(nodes, ros_environment(DOMAIN_ID)) as processes:
        yield processes


def cmd(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    home = tmp_path / 'home'
    home.mkdir(exist_ok=True)
    return subprocess.run([find_executable('cell-control'), 'cmd', *args, '--domain-id', str(DOMAIN_ID),
                           '--timeout', TIMEOUT_S], capture_output=True, text=True, timeout=120,
                          env={'PATH': os.environ['PATH'], 'HOME': str(home)})


def test_commands_reach_the_coordinator_and_refusals_exit_1(coordinator, tmp_path):
    status = cmd(tmp_path, 'status')
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)['state'] == 'idle'

    refused = cmd(tmp_path, 'resume')
    assert refused.returncode == 1
    assert refused.stderr == ('cell-control cmd resume: refused: resume refused in state idle: '
                              'only a paused cell resumes\n')
    assert refused.stdout == ''

    for command, answer in [('start', 'start: cell running'), ('pause', 'pause: cell paused'),
                            ('resume', 'resume: cell running'), ('stop', 'stop: cell stopped')]:
        result = cmd(tmp_path, command)
        assert (result.returncode, result.stdout) == (0, answer + '\n'), result.stderr

    assert json.loads(cmd(tmp_path, 'status').stdout)['state'] == 'stopped'
    assert coordinator.wait_any(0.0) is None   # the coordinator is still running
