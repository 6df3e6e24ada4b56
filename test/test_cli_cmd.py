"""`cell-control cmd` against a real coordinator process on a ROS domain of its own."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cell_control.bringup import describe_cell
from cell_control.runner import find_executable
from cell_control.testing import NodeProcesses

pytestmark = pytest.mark.integration
TIMEOUT_S = '60'   # discovery and the coordinator's start-up on a loaded machine


@pytest.fixture
def coordinator(node_processes: NodeProcesses, tmp_path: Path) -> NodeProcesses:
    data = {'ledger_path': str(tmp_path / 'ledger.sqlite'), 'records_path': str(tmp_path / 'records.sqlite')}
    node, = (n for n in describe_cell('mujoco', ros_tools=False, overrides={'coordinator': data})
             if n.name == 'coordinator')
    node_processes.start_spec(node)
    return node_processes


def cmd(processes: NodeProcesses, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `cell-control cmd ARGS` with nothing but PATH and HOME in its environment."""
    home = tmp_path / 'home'
    home.mkdir(exist_ok=True)
    return processes.run('cmd', ['env', '-i', f'PATH={os.environ["PATH"]}', f'HOME={home}',
                                 find_executable('cell-control'), 'cmd', *args, '--domain-id',
                                 str(processes.domain_id), '--timeout', TIMEOUT_S], timeout_s=120)


def test_commands_reach_the_coordinator_and_refusals_exit_1(coordinator, tmp_path):
    status = cmd(coordinator, tmp_path, 'status')
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)['state'] == 'idle'

    refused = cmd(coordinator, tmp_path, 'resume')
    assert refused.returncode == 1
    assert refused.stderr == ('cell-control cmd resume: refused: resume refused in state idle: '
                              'only a paused cell resumes\n')
    assert refused.stdout == ''

    for command, answer in [('start', 'start: cell running'), ('pause', 'pause: cell paused'),
                            ('resume', 'resume: cell running'), ('stop', 'stop: cell stopped')]:
        result = cmd(coordinator, tmp_path, command)
        assert (result.returncode, result.stdout) == (0, answer + '\n'), result.stderr

    assert json.loads(cmd(coordinator, tmp_path, 'status').stdout)['state'] == 'stopped'
    assert coordinator.exited() is None   # the coordinator is still running
