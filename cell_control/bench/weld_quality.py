"""Weld adjuster matrix of issue 3: closed and open mode on every example seam, drift -0.1 / 0 / +0.1.

Run: `.venv/bin/python -m cell_control.bench weld_quality [SEAM_DIR]`
(seam directory: the argument, else $CELL_CONTROL_SEAMS, else the example seams the package ships).
Prints one JSON line per run and a markdown table. Exits 1 when a closed-mode run misses a target:
quality >= 99.5 %, no limit violations, lateral RMS <= 0.05 mm, weld time <= 1.10 t_ref, p99 <= 200 us.
"""
import json
import os
import sys
from pathlib import Path

from cell_control.cell.description import example_seams_dir
from cell_control.weld.seam_profile import load_seam_csv
from cell_control.sim.weld_loop import run_weld_eval

DRIFTS = (-0.10, 0.0, 0.10)
DROPOUT_RATE = 0.01
OUTLIER_RATE = 0.002
SEED = 1


def seam_dir(argv: list[str]) -> Path:
    if argv:
        return Path(argv[0])
    if os.environ.get('CELL_CONTROL_SEAMS'):
        return Path(os.environ['CELL_CONTROL_SEAMS'])
    return example_seams_dir()


def meets_targets(s: dict) -> bool:
    return (s['quality_pct'] >= 99.5 and s['limit_violations'] == 0 and s['lateral_rms_mm'] <= 0.05
            and s['weld_time_s'] <= 1.10 * s['t_ref_s'] and s['latency_p99_us'] <= 200.0)


def main() -> int:
    # The bench runner passes its own arguments through: a directory among them is the seam directory.
    directory = seam_dir([a for a in sys.argv[1:] if Path(a).is_dir()])
    seams = sorted(directory.glob('*.csv'))
    if not seams:
        print(f'weld_quality: no seam files (*.csv) in {directory}', file=sys.stderr)
        return 1
    rows = ['| seam | drift | mode | quality % | lateral RMS mm | weld time / t_ref | limit violations '
            '| adjuster p50 / p99 µs |', '|---|---|---|---|---|---|---|---|']
    failed = 0
    for path in seams:
        seam = load_seam_csv(path)
        for drift in DRIFTS:
            for mode in ('closed', 'open'):
                s = run_weld_eval(seam, mode, drift, DROPOUT_RATE, OUTLIER_RATE, SEED).summary
                ok = meets_targets(s)
                failed += mode == 'closed' and not ok
                print(json.dumps({'bench': 'weld_quality', 'seam': seam.name, 'mode': mode, 'drift': drift,
                                  **s, 'time_ratio': s['weld_time_s'] / s['t_ref_s']}), flush=True)
                rows.append(f'| {seam.name} | {drift:+.2f} | {mode} | {s["quality_pct"]:.2f} | '
                            f'{s["lateral_rms_mm"]:.4f} | {s["weld_time_s"] / s["t_ref_s"]:.3f} | '
                            f'{s["limit_violations"]} | '
                            f'{s["latency_p50_us"]:.0f} / {s["latency_p99_us"]:.0f} |')
    print('\n'.join(rows))
    if failed:
        print(f'weld_quality: {failed} closed-mode run(s) miss a target', file=sys.stderr)
    return 1 if failed else 0
