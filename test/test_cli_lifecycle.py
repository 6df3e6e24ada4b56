"""`cell-control sim` and `demo` stop cleanly on SIGINT, SIGTERM and SIGHUP: no node left, no temp folder."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from cell_control.runner import find_executable
from conftest import RosTestNode, wait_for

pytestmark = pytest.mark.integration
CELL_NODES = {'cell_sim', 'conveyor_driver', 'weld_adjuster', 'coordinator', 'fleet_sim'}
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


def stop_with(signum: int, args: list[str], domain_id: int, tmp_path: Path, ros_node_factory,
              ready: Callable[[RosTestNode], bool] = lambda probe: True) -> None:
    """Start `cell-control ARGS`, wait for the cell's nodes and `ready`, send `signum`, check the aftermath."""
    temp = tmp_path / 'tmp'
    temp.mkdir()
    home = tmp_path / 'home'
    home.mkdir()
    stderr_path = tmp_path / 'stderr.txt'
    env = {'PATH': os.environ['PATH'], 'HOME': str(home), 'TMPDIR': str(temp)}
    probe = ros_node_factory(domain_id)
    with open(stderr_path, 'w') as stderr:
        command = subprocess.Popen([find_executable('cell-control'), *args, '--domain-id', str(domain_id)],
                                   env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_for(lambda: CELL_NODES <= set(probe.node.get_node_names()), START_TIMEOUT_S, 'the five cell nodes')
        wait_for(lambda: ready(probe), START_TIMEOUT_S, 'the cell to be ready')
        children = descendants(command.pid)
        assert len(children) >= len(CELL_NODES)
        assert any(temp.iterdir())   # the runner's parameter files (and the demo's data) are there
        command.send_signal(signum)
        code = command.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if command.poll() is None:
            command.kill()
            command.wait()
    log = stderr_path.read_text()
    assert code == 128 + signum, log[-3000:]
    assert 'Traceback' not in log, log[-3000:]
    assert f'cell-control: stopped by {signal.Signals(signum).name}' in log
    assert [pid for pid in children if alive(pid)] == []
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize('signum, domain_id', [
    (signal.SIGINT, 213), (signal.SIGTERM, 214), (signal.SIGHUP, 215)], ids=['SIGINT', 'SIGTERM', 'SIGHUP'])
def test_sim_stops_every_node_on_a_stop_signal(tmp_path, ros_node_factory, signum, domain_id):
    stop_with(signum, ['sim', '--headless'], domain_id, tmp_path, ros_node_factory)


@pytest.mark.parametrize('signum, domain_id', [(signal.SIGINT, 216), (signal.SIGTERM, 217)],
                         ids=['SIGINT', 'SIGTERM'])
def test_demo_stops_every_node_on_a_stop_signal(tmp_path, ros_node_factory, signum, domain_id):
    stop_with(signum, ['demo', '--parts', '1', '--out', str(tmp_path / 'out')], domain_id, tmp_path,
              ros_node_factory)


def test_sim_start_starts_the_cycle_once_the_cell_is_up(tmp_path, ros_node_factory):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    states: list[str] = []
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

    def running(probe: RosTestNode) -> bool:
        if not states:   # subscribe once, from the test's thread
            states.append('')
            probe.node.create_subscription(String, '/cell/state', lambda m: states.append(json.loads(m.data)['state']),
                                           latched)
        return 'running' in states
    stop_with(signal.SIGTERM, ['sim', '--headless', '--start'], 219, tmp_path, ros_node_factory, running)
