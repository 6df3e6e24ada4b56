"""Real-time factor of the simulated cell (issue 2): `cell-control sim --headless --duration 20 --rtf max --json`.

Two figures: the simulation node alone (the whole cell — arm, conveyor, AGVs, parts — with every sensor
publishing: /clock at 100 Hz, joint states and tool wrench at 100 Hz, the seam sensor at 500 Hz, odometry at
50 Hz, photo-eyes, clamp and deck load sensors and markers at 10 Hz and on change), and the full bring-up with
every controller node running on the same two cores, once on each executor the nodes can run on
($CELL_CONTROL_EXECUTOR: rclpy's experimental EventsExecutor, the default, and its SingleThreadedExecutor).
"""
from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
from pathlib import Path

from cell_control.nodes.node_main import DEFAULT_EXECUTOR, EXECUTOR_VARIABLE, EXECUTORS
from cell_control.runner import find_executable
from cell_control.testing import NodeProcesses, RosDomain

RUNS = 3


def run(extra: list[str], executor: str) -> dict:
    """One `cell-control sim` run on a ROS domain claimed for it, its nodes on `executor`; its JSON report."""
    command = [find_executable('cell-control'), 'sim', '--headless', '--duration', '20', '--rtf', 'max', '--json',
               *extra]
    with tempfile.TemporaryDirectory() as directory, RosDomain() as domain, \
            NodeProcesses(domain.id, Path(directory)) as processes:
        processes.env[EXECUTOR_VARIABLE] = executor
        processes.env['CELL_CONTROL_DATA_DIR'] = directory   # the run's own ledger and records
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = processes.run('cell-control', command, timeout_s=600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f'{" ".join(command)} failed: {result.stderr[-1000:]}')
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Every process of the run has been reaped by its parent by now, so the children's use covers them all.
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report['cpu_s'] = round(cpu_s, 1)
    report['cpu_s_per_sim_s'] = round(cpu_s / report['sim_time_s'], 3) if report['sim_time_s'] > 0 else None
    return report


def main() -> int:
    os.environ.setdefault('MUJOCO_GL', 'egl')
    cases = [('simulation node only', ['--sim-only'], DEFAULT_EXECUTOR)]
    cases += [('whole bring-up', [], executor) for executor in EXECUTORS]
    for label, extra, executor in cases:
        reports = [run(extra, executor) for _ in range(RUNS)]
        rtfs = sorted(r['real_time_factor'] for r in reports)
        print(json.dumps({'benchmark': 'sim_rtf', 'what': label, 'executor': executor,
                          'command': f'{EXECUTOR_VARIABLE}={executor} cell-control sim --headless --duration '
                          '20 --rtf max --json' + (' ' + ' '.join(extra) if extra else ''),
                          'runs': reports, 'rtf_median': rtfs[len(rtfs) // 2], 'rtf_min': rtfs[0]}), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
