"""`cell-control sim` and `demo` stop cleanly on SIGINT, SIGTERM and SIGHUP: no node left, no temp folder."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Callable

import pytest

from cell_control.runner import find_executable
from cell_control.testing import Latest, NodeProcesses, RosProbe, wait_for

pytestmark = pytest.mark.integration
CELL_NODES = {'cell_sim', 'cell_sensors', 'conveyor_driver', 'weld_adjuster', 'coordinator', 'fleet_sim'}
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0


def descendants(pid: int) -> set[int]:
    """Return every living process below `pid`, from the parent links in /proc."""
    parents: dict[int, int] = {}
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / 'stat').read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(')') + 2:].split()
            if fields[0] != 'Z':
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return False
    return state[state.rindex(')') + 2] != 'Z'


def stop_with(signum: int, args: list[str], tmp_path: Path, probe: RosProbe, node_processes: NodeProcesses,
              ready: Callable[[], bool] = lambda: True) -> None:
    """Start `cell-control ARGS`, wait for the cell's nodes and `ready`, send `signum`, check the aftermath.

    The command gets nothing but PATH, HOME and TMPDIR in its environment; `env -i` execs it, so the process
    started is the command itself and the signal goes to it.
    """
    temp = tmp_path / 'tmp'
    temp.mkdir()
    home = tmp_path / 'home'
    home.mkdir()
    command = node_processes.start('cell-control', [
        'env', '-i', '-C', str(tmp_path), f'PATH={os.environ["PATH"]}', f'HOME={home}', f'TMPDIR={temp}',
        find_executable('cell-control'), *args, '--domain-id', str(node_processes.domain_id)])
    wait_for(lambda: CELL_NODES <= set(probe.node.get_node_names()), START_TIMEOUT_S, 'the six cell nodes')
    wait_for(ready, START_TIMEOUT_S, 'the cell to be ready')
    children = descendants(command.pid)
    assert len(children) >= len(CELL_NODES)
    assert any(temp.iterdir())   # the runner's parameter files (and the demo's data) are there
    command.send_signal(signum)
    code = command.wait(timeout=STOP_TIMEOUT_S)
    log = node_processes.output('cell-control')
    assert code == 128 + signum, log[-3000:]
    assert 'Traceback' not in log, log[-3000:]
    assert f'cell-control: stopped by {signal.Signals(signum).name}' in log
    assert [pid for pid in children if alive(pid)] == []
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=['SIGINT', 'SIGTERM', 'SIGHUP'])
def test_sim_stops_every_node_on_a_stop_signal(tmp_path, probe, node_processes, signum):
    stop_with(signum, ['sim', '--headless'], tmp_path, probe, node_processes)


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_demo_stops_every_node_on_a_stop_signal(tmp_path, probe, node_processes, signum):
    stop_with(signum, ['demo', '--parts', '1', '--out', str(tmp_path / 'out')], tmp_path, probe, node_processes)


def test_sim_start_starts_the_cycle_once_the_cell_is_up(tmp_path, probe, node_processes):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    states = Latest(probe, String, '/cell/state', latched, keep=True)

    def running() -> bool:
        return any(json.loads(m.data)['state'] == 'running' for m in list(states.all))
    stop_with(signal.SIGTERM, ['sim', '--headless', '--start'], tmp_path, probe, node_processes, running)
