"""The idle policy's energy (issue 13, point 5): one demo with a gap in the part supply, the policy on and off.

Run: `.venv/bin/python -m cell_control.bench idle_policy` (options: --gap-s, --idle-after-s, --rtf, --parts)

Runs `cell-control demo --parts N --supply-gap-s GAP --supply-gap-after 1 --idle-after-s IDLE --json` twice,
the second time with `--idle-after-s 0` (the policy off), one after the other, each on a ROS domain of its own
(every node its own process, MuJoCo, the VFD over Modbus). The part after the gap holds the gap in its share of
the energy (a part's share runs from the previous part's departure), so its share, and the total, show what
the policy saves. Prints a markdown table and a JSON line; exits 1 when a run did not deliver every part good,
the policy did not park, a wake took longer than WAKE_LIMIT_S, or the policy saved nothing.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

from cell_control.bench.soak_dds import demo_report
from cell_control.runner import find_executable

GAP_S = 120.0
IDLE_AFTER_S = 20.0
WAKE_LIMIT_S = 5.0
PARTS = 2
RTF = 2.0
WALL_LIMIT_S = 1800.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m cell_control.bench idle_policy',
                                     description=__doc__.splitlines()[0])
    parser.add_argument('--gap-s', type=float, default=GAP_S, help=f'supply gap after part 1, s (default {GAP_S:g})')
    parser.add_argument('--idle-after-s', type=float, default=IDLE_AFTER_S,
                        help=f'the policy parks after this long with no part expected, s (default {IDLE_AFTER_S:g})')
    parser.add_argument('--rtf', type=float, default=RTF, help=f'simulation speed (default {RTF:g})')
    parser.add_argument('--parts', type=int, default=PARTS,
                        help=f'parts (default {PARTS}; the gap is after the first)')
    return parser.parse_args(argv)


def run_demo(args: argparse.Namespace, idle_after_s: float) -> tuple[dict, float]:
    """Run the demo once; return its KPI report ({} when it printed none) and its wall time."""
    with tempfile.TemporaryDirectory(prefix='cell_idle_bench_') as out:
        command = [find_executable('cell-control'), 'demo', '--parts', str(args.parts), '--rtf', f'{args.rtf:g}',
                   '--supply-gap-s', f'{args.gap_s:g}', '--supply-gap-after', '1',
                   '--idle-after-s', f'{idle_after_s:g}', '--json', '--out', out]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=WALL_LIMIT_S, check=False)
        wall_s = time.monotonic() - started
    report = demo_report(done.stdout)
    if not report:
        print(done.stderr[-3000:], file=sys.stderr)
    return report, wall_s


def figures(report: dict) -> dict:
    """Pick the figures compared: energy (Wh) in all, by state and of the part after the gap; cycle; policy."""
    parts = report.get('energy_per_part_wh') or []
    return {
        'delivered_good': report.get('parts_delivered') == report.get('parts_requested')
        and all(q >= 99.5 for q in report.get('weld_quality_pct', {}).values()),
        'energy_total_wh': report.get('energy_total_wh'),
        'energy_by_state_wh': report.get('energy_by_state_wh'),
        'energy_by_source_wh': report.get('energy_by_source_wh'),
        'after_gap_part_wh': parts[1]['total_wh'] if len(parts) > 1 else None,
        'after_gap_part_by_source_wh': parts[1]['by_source_wh'] if len(parts) > 1 else None,
        'cycle_s': report.get('cycle_s'),
        'idle_policy': report.get('idle_policy'),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[2:] if argv is None else argv)   # `python -m cell_control.bench idle_policy OPTIONS`
    on_report, on_wall_s = run_demo(args, args.idle_after_s)
    off_report, off_wall_s = run_demo(args, 0.0)
    on, off = figures(on_report), figures(off_report)
    problems = []
    for name, f in (('policy on', on), ('policy off', off)):
        if not f['delivered_good']:
            problems.append(f'{name}: not every part delivered good')
    policy = on['idle_policy'] or {}
    if not policy.get('parks'):
        problems.append('the policy never parked the cell')
    if any(w > WAKE_LIMIT_S for w in policy.get('wakes_s', [])) or not policy.get('wakes_s'):
        problems.append(f'wakes {policy.get("wakes_s")}: none, or one longer than {WAKE_LIMIT_S:g} s')
    saved_wh = None
    if on['after_gap_part_wh'] is not None and off['after_gap_part_wh'] is not None:
        saved_wh = round(off['after_gap_part_wh'] - on['after_gap_part_wh'], 3)
        if saved_wh <= 0.0:
            problems.append(f'the policy saved nothing on the part after the gap ({saved_wh} Wh)')
    print(f'# Idle policy: {args.parts} parts, supply gap {args.gap_s:g} s after part 1, rtf {args.rtf:g}\n')
    print('| | policy on (idle after {:g} s) | policy off |'.format(args.idle_after_s))
    print('|---|---|---|')
    for key in ('energy_total_wh', 'after_gap_part_wh', 'energy_by_state_wh', 'after_gap_part_by_source_wh',
                'cycle_s', 'idle_policy'):
        print(f'| {key} | {on[key]} | {off[key]} |')
    print(f'| wall time of the demo, s | {on_wall_s:.0f} | {off_wall_s:.0f} |')
    print(f'\nsaved on the part after the gap: {saved_wh} Wh')
    for problem in problems:
        print(f'FAILED: {problem}')
    print(json.dumps({'gap_s': args.gap_s, 'idle_after_s': args.idle_after_s, 'rtf': args.rtf, 'on': on,
                      'off': off, 'saved_after_gap_part_wh': saved_wh, 'problems': problems}))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
