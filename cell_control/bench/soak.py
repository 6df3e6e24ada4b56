"""Soak (issue 8): a thousand parts through the pure coordinator with faults in every state and crashes.

`python -m cell_control.bench soak` (or `python -m cell_control.bench.soak --parts N --seed S`) drives the
parts through `sim.event_cell` — the pure coordinator, a real SQLite part ledger and weld record store, the
handoff server and the real fleet with its handoff clients driving kinematic AGVs — on simulated time, with
e-stops in every station stage and operator state, conveyor jams, AGV no-shows and seam sensor dropouts.
A child process runs the cell and is SIGKILLed right after a random ledger or record write (about every
`--crash-every` writes); the next child restarts from the files, as often as needed. Each run is
deterministic for its seed.

At the end it asserts, and reports: no part lost or duplicated, none good without its weld record, every
fault in the end state docs/coordinator.md gives (the table printed), faults per kind and state, simulated
hours, wall time, parts per simulated hour. It exits non-zero on any violation.

The files go to /dev/shm when it is writable: SQLite with synchronous=FULL costs an fsync per write, and a
SIGKILL tests the process dying, not the disk (the page cache survives it), so tmpfs tests the same thing
many times faster.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from cell_control.cell.ledger import PartLedger
from cell_control.sim.event_cell import (END_STATES, FAULT_TARGETS, EventCell, FaultKind, FaultPlan, check_files,
                                         count_writes)

RESTART_S = 60.0          # simulated time a crashed coordinator is down before it runs again
SIM_S_PER_PART = 600.0    # a child that needs more simulated time than this per part left has hung
CHILD_WALL_S = 1800.0
PLAN = FaultPlan(rate=0.5, bad_weld_rate=0.02)


def scratch_dir() -> str | None:
    return '/dev/shm' if os.access('/dev/shm', os.W_OK) else None


def part_ids(parts: int) -> list[str]:
    return [f'P-{n}' for n in range(1, parts + 1)]


def _journal(directory: Path) -> list[dict]:
    path = directory / 'journal.jsonl'
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def child(directory: Path, parts: int, seed: int, kill_after: int, life: int, plan: FaultPlan = PLAN) -> int:
    """Run one coordinator lifetime on the files in `directory`; print its end as JSON unless killed."""
    fd = os.open(directory / 'journal.jsonl', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def journal(entry: dict) -> None:
        os.write(fd, (json.dumps({**entry, 'life': life}) + '\n').encode())
    earlier = _journal(directory)
    start_s = 0.0
    if life:
        with PartLedger(directory / 'ledger.sqlite') as ledger:
            start_s = max((h.time_s for h in ledger.history()), default=0.0) + RESTART_S
    if kill_after:
        count_writes(kill_after, lambda what: journal({'event': 'injected', 'kind': FaultKind.CRASH.value,
                                                       'target': what}))
    cell = EventCell(directory / 'ledger.sqlite', directory / 'records.sqlite', part_ids(parts), faults=plan,
                     seed=seed, now_s=start_s, journal=journal, restarted=life > 0,
                     injected=[e for e in earlier if e['event'] == 'injected'],
                     unreached=[e for e in earlier if e['event'] == 'unreached'])
    cell.run(until_s=start_s + 3600.0 + SIM_S_PER_PART * cell.parts_left())
    print(json.dumps({'now_s': cell.now_s, 'sink': len(cell.sink)}))
    cell.close()
    return 0


def soak(parts: int, seed: int, crash_every: int, directory: Path) -> dict:
    """Run children until one finishes the parts; return the report (its 'violations' list empty when good)."""
    rng = random.Random(seed)
    env = {**os.environ, 'PYTHONHASHSEED': '0'}
    started, life, violations, end = time.monotonic(), 0, [], None
    while True:
        kill_after = rng.randint(1, 2 * crash_every) if crash_every else 0
        command = [sys.executable, '-m', 'cell_control.bench.soak', '--child', str(directory), '--parts', str(parts),
                   '--seed', str(rng.randrange(2 ** 32)), '--kill-after', str(kill_after), '--life', str(life)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=CHILD_WALL_S)
        if done.returncode == -signal.SIGKILL:
            life += 1
            continue
        if done.returncode != 0:
            violations.append(f'life {life} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}')
        else:
            end = json.loads(done.stdout.strip().splitlines()[-1])
        break
    wall_s = time.monotonic() - started
    journal = _journal(directory)
    violations += [f'life {e["life"]}: {e["problem"]}' for e in journal if e['event'] == 'violation']
    if end is not None:
        violations += check_files(directory / 'ledger.sqlite', directory / 'records.sqlite', part_ids(parts))
    injected = Counter((e['kind'], e['target']) for e in journal if e['event'] == 'injected')
    ended = Counter((e['kind'], e['life']) for e in journal if e['event'] == 'ended')
    started_in = Counter((e['kind'], e['life']) for e in journal if e['event'] == 'injected'
                         and e['kind'] != FaultKind.CRASH.value)
    interrupted = 0
    for (kind, lived), count in started_in.items():
        missing = count - ended[(kind, lived)]
        if lived < life:
            interrupted += missing   # that coordinator was killed before the fault's end
        elif missing > 0:
            violations.append(f'{missing} {kind} fault(s) of the last life never reached their end state')
    if parts >= 500:
        never = [f'{k.value} in {t}' for k in PLAN.kinds for t in FAULT_TARGETS[k] if not injected[(k.value, t)]]
        violations += [f'fault never injected: {n}' for n in never]
    sim_s = end['now_s'] if end else 0.0
    return {'benchmark': 'soak', 'parts': parts, 'seed': seed, 'crash_every_writes': crash_every,
            'restarts': life, 'simulated_h': round(sim_s / 3600.0, 2), 'wall_s': round(wall_s, 1),
            'parts_per_simulated_h': round(parts / (sim_s / 3600.0), 1) if sim_s else 0.0,
            'simulated_per_wall': round(sim_s / wall_s, 1),
            'faults': {f'{k} in {t}': n for (k, t), n in sorted(injected.items())},
            'faults_per_kind': dict(sorted(Counter(k for k, _ in injected.elements()).items())),
            'faults_checked_ok': sum(1 for e in journal if e['event'] == 'ended' and e['ok']),
            'faults_interrupted_by_a_crash': interrupted,
            'unreached': sum(1 for e in journal if e['event'] == 'unreached'),
            'violations': violations}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m cell_control.bench.soak', description=__doc__.splitlines()[0])
    parser.add_argument('--parts', type=int, default=1000)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--crash-every', type=int, default=400, help='mean ledger/record writes between kills '
                        '(0: no crashes)')
    parser.add_argument('--child', type=Path, help=argparse.SUPPRESS)
    parser.add_argument('--kill-after', type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument('--life', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None else argv)
    if args.parts < 1 or args.crash_every < 0:
        parser.error('--parts must be >= 1 and --crash-every >= 0')
    if args.child:
        return child(args.child, args.parts, args.seed, args.kill_after, args.life)
    print('fault -> end state checked (docs/coordinator.md, "Faults and the states they end in"):')
    for kind, end in END_STATES.items():
        print(f'  {kind.value}: {end}')
    with tempfile.TemporaryDirectory(dir=scratch_dir(), prefix='cell_control_soak_') as directory:
        report = soak(args.parts, args.seed, args.crash_every, Path(directory))
    print(json.dumps(report), flush=True)
    for problem in report['violations'][:50]:
        print(f'VIOLATION: {problem}', file=sys.stderr)
    return 1 if report['violations'] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
