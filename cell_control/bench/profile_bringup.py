"""Where the whole bring-up spends its CPU at `--rtf max` (issue 11, point 1): py-spy on every node process.

Runs `cell-control sim --headless --duration 90 --rtf max --json --start` (the cell welds its first part in
that time), attaches `py-spy record --nonblocking` to each node process once the nodes are up and keeps
sampling until the run ends, then sorts every sample into what it was doing:

- logging: anywhere under rclpy's or Python's logging;
- publishing: under `Publisher.publish` (serialisation and the hand-over to DDS, in C);
- message objects: building or reading ROS message objects in Python (`msg/_*.py` classes, their setters);
- clock: rclpy's time source and clocks (`/clock` callbacks, `now()`);
- physics: MuJoCo's step;
- executor: inside the executor's spin, in C (taking messages, converting them to Python, dispatching);
- serial / Modbus: pyserial and pymodbus (the conveyor driver's VFD link and its emulator);
- node code: the rest (the nodes and the functional core).

py-spy (bench-requirements.txt, which `make bench` installs; not a dependency of the package) samples without
stopping the processes (`--nonblocking`), so C frames are not named: C time shows under the Python frame that
called it. A sample counts when the thread's OS state is running or runnable: on two cores shared by seven busy
processes that includes time spent waiting for a core, so each node's CPU time as the kernel counts it
(/proc/<pid>/stat) is reported beside the samples.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cell_control.runner import find_executable
from cell_control.testing import NodeProcesses, RosDomain, wait_for

RATE_HZ = 100
NODES = 7                 # processes of the whole bring-up
SETTLE_S = 5.0            # wall time after the nodes appear before sampling: imports and the cell coming up
CATEGORIES = ('executor', 'publishing', 'message objects', 'clock', 'physics', 'logging', 'serial / Modbus',
              'node code')
_FRAME = re.compile(r'^(?P<function>.*) \((?P<file>[^:()]*)(?::\d+)?\)$')


def category(frames: list[str]) -> str:
    """Sort one sampled stack (root first, py-spy's raw frames `function (file:line)`) into a category."""
    parsed = [(m['function'], '/' + m['file']) if (m := _FRAME.match(f)) else (f, '') for f in frames]
    files = [file for _, file in parsed]
    if any('/logging/' in file or file.endswith('rcutils_logger.py') for file in files):
        return 'logging'
    if any(function == 'publish' and file.endswith('rclpy/publisher.py') for function, file in parsed):
        return 'publishing'
    function, file = parsed[-1]
    if re.search(r'/msg/_[a-z0-9_]+\.py$', file):
        return 'message objects'
    if re.search(r'rclpy/(time_source|clock|time|duration)\.py$', file):
        return 'clock'
    if file.endswith('sim/mujoco_cell.py') and function == 'step':
        return 'physics'
    if file.endswith('nodes/node_main.py') or '/rclpy/' in file:
        return 'executor'
    if '/serial/' in file or '/pymodbus/' in file:
        return 'serial / Modbus'
    return 'node code'


def summarise(raw: str, seconds: float) -> dict:
    """Summarise one process's py-spy raw output: CPU use, the categories' shares and the busiest functions."""
    counts: collections.Counter = collections.Counter()
    leaves: collections.Counter = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, number = line.rstrip().rpartition(' ')
        if not stack or not number.isdigit():
            continue
        frames = stack.split(';')
        samples = int(number)
        total += samples
        counts[category(frames)] += samples
        match = _FRAME.match(frames[-1])
        leaves[f"{match['function']} ({Path(match['file']).name})" if match else frames[-1]] += samples
    share = {name: round(100.0 * counts[name] / total, 1) if total else 0.0 for name in CATEGORIES}
    return {'samples': total, 'cpu_pct': round(100.0 * total / (RATE_HZ * seconds), 1) if seconds > 0 else 0.0,
            'categories_pct': share,
            'top_functions_pct': {k: round(100.0 * v / total, 1) for k, v in leaves.most_common(6)}}


def node_processes(parent: int) -> dict[str, int]:
    """Map node name → pid of the node processes the `cell-control sim` process `parent` started."""
    found = {}
    for pid in Path(f'/proc/{parent}/task/{parent}/children').read_text().split():
        try:
            words = Path(f'/proc/{pid}/cmdline').read_bytes().decode().split('\0')
        except OSError:
            continue
        names = [w.split('__node:=', 1)[1] for w in words if w.startswith('__node:=')]
        if names:
            found[names[0]] = int(pid)
    return found


def process_cpu_s(pid: int) -> float | None:
    """Return the CPU time (user + system, s) process `pid` has used, or None once it is gone."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(')') + 2:].split()   # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def profile(duration_s: float, start: bool, out_dir: Path) -> dict:
    """Run the bring-up once with py-spy on each node; the run's report and each node's summary."""
    py_spy = shutil.which('py-spy') or str(Path(sys.executable).with_name('py-spy'))
    if not Path(py_spy).exists():
        raise RuntimeError('py-spy not found: install it into the venv (pip install -r bench-requirements.txt)')
    command = [find_executable('cell-control'), 'sim', '--headless', '--duration', f'{duration_s:g}', '--rtf',
               'max', '--json'] + (['--start'] if start else [])
    with tempfile.TemporaryDirectory() as directory, RosDomain() as domain, \
            NodeProcesses(domain.id, Path(directory)) as processes:
        processes.env['CELL_CONTROL_DATA_DIR'] = directory   # a new ledger: no parts of an earlier run to resume
        sim = processes.start('cell-control', command)
        nodes = wait_for(lambda: n if len(n := node_processes(sim.pid)) >= NODES else None, 60.0,
                         'the bring-up to start its node processes')
        time.sleep(SETTLE_S)
        began = time.monotonic()
        spies = {name: subprocess.Popen([py_spy, 'record', '--nonblocking', '--rate', str(RATE_HZ), '--format',
                                         'raw', '--output', str(out_dir / f'{name}.txt'), '--pid', str(pid)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for name, pid in nodes.items()}
        first = {name: process_cpu_s(pid) for name, pid in nodes.items()}
        last = dict(first)
        deadline = began + 1800.0
        while sim.poll() is None and time.monotonic() < deadline:   # each node's CPU, read until it exits
            last.update({name: cpu for name, pid in nodes.items() if (cpu := process_cpu_s(pid)) is not None})
            time.sleep(0.5)
        sim.wait(timeout=max(1.0, deadline - time.monotonic()))
        seconds = time.monotonic() - began
        for spy in spies.values():
            spy.wait(timeout=60)
        report = json.loads(processes.output('cell-control').strip().splitlines()[-1])
    summaries = {name: summarise((out_dir / f'{name}.txt').read_text(errors='replace'), seconds)
                 for name in sorted(nodes)}
    # The simulated time sampled, taking the run's pace as even: CPU per simulated second compares runs of any pace.
    sampled_sim_s = report['sim_time_s'] * min(1.0, seconds / report['wall_time_s'])
    for name, summary in summaries.items():
        summary['cpu_ms_per_sim_s'] = round(1000.0 * summary['samples'] / RATE_HZ / sampled_sim_s, 1)
        if first[name] is not None and last[name] is not None:   # the kernel's count: py-spy counts runnable too
            summary['kernel_cpu_ms_per_sim_s'] = round(1000.0 * (last[name] - first[name]) / sampled_sim_s, 1)
    return {'run': report, 'sampled_wall_s': round(seconds, 1), 'sampled_sim_s': round(sampled_sim_s, 1),
            'cpu_ms_per_sim_s': round(sum(s['cpu_ms_per_sim_s'] for s in summaries.values()), 1),
            'nodes': summaries}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m cell_control.bench.profile_bringup', description=__doc__)
    parser.add_argument('--duration-s', type=float, default=90.0, help='simulated seconds to run (default 90)')
    parser.add_argument('--no-start', action='store_true', help='leave the cell stopped (no part moves)')
    parser.add_argument('--out', type=Path, help='keep the raw py-spy stacks in this directory')
    args = parser.parse_args([] if argv is None else argv)
    os.environ.setdefault('MUJOCO_GL', 'egl')
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = args.out or Path(scratch)
        out_dir.mkdir(parents=True, exist_ok=True)
        result = profile(args.duration_s, not args.no_start, out_dir)
    print(json.dumps({'benchmark': 'profile_bringup', 'load_average': os.getloadavg(), **result}), flush=True)
    for name, summary in result['nodes'].items():
        shares = ', '.join(f'{k} {v:g}' for k, v in summary['categories_pct'].items() if v >= 1.0)
        print(f"{name:16s} sampled {summary['cpu_pct']:5.1f} % = {summary['cpu_ms_per_sim_s']:5.1f} ms per simulated s "
              f"(kernel CPU {summary.get('kernel_cpu_ms_per_sim_s', float('nan')):5.1f}): {shares}", flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
