"""`cell-control weld-eval SEAM.csv`: weld one seam file with the process model and the adjuster, score it.

Prints a short report, or with --json exactly one JSON object with the keys of
`cell_control.sim.weld_loop.SUMMARY_KEYS`; --plot FILE.png draws the seam, the controls and the verdict.
Exit status 0 on a completed run, 2 on bad arguments or a malformed seam file.
"""
import json
import sys
from pathlib import Path

from cell_control.cli import ArgumentParser, bounded_number, check_writable_file
from cell_control.weld.seam_profile import SeamFileError, load_seam_csv
from cell_control.weld.adjuster import DRIFT_BOUND, MODES
from cell_control.sim.weld_loop import SUMMARY_KEYS, WeldEvalResult, run_weld_eval
from cell_control.sim.weld_process import COUNT_FROM_MM


_probability = bounded_number(0.0, 1.0, 'a probability in [0, 1]')
_drift = bounded_number(-1.0, 10.0, 'a power drift in (-1, 10): the real power must stay positive',
                        include_low=False, include_high=False)
_initial_drift = bounded_number(-DRIFT_BOUND, DRIFT_BOUND, f'a drift estimate in [-{DRIFT_BOUND:g}, {DRIFT_BOUND:g}]')


def parser() -> ArgumentParser:
    p = ArgumentParser(prog='cell-control weld-eval', description=__doc__.splitlines()[0])
    p.add_argument('seam', type=Path, help='seam CSV: s_mm,gap_mm,mismatch_mm,lateral_mm')
    p.add_argument('--mode', choices=MODES, default='closed', help='adjuster mode (default closed)')
    p.add_argument('--power-drift', type=_drift, default=0.0, metavar='D',
                   help='real power is P·(1+D), unknown to the adjuster (default 0)')
    p.add_argument('--dropout-rate', type=_probability, default=0.0, metavar='P',
                   help='probability that a sensor sample is invalid (default 0)')
    p.add_argument('--outlier-rate', type=_probability, default=0.0, metavar='P',
                   help='probability that a valid gap reading is 2 mm too large (default 0)')
    p.add_argument('--initial-drift', type=_initial_drift, metavar='D',
                   help='drift estimate carried from the last weld with the same torch (default: cold start)')
    p.add_argument('--no-prescan', action='store_true',
                   help='no approach pass: the adjuster first sees the seam at s = 30 mm')
    p.add_argument('--seed', type=int, default=0, metavar='N', help='seed of the sensor noise (default 0)')
    p.add_argument('--json', action='store_true', help='print one JSON object with the metrics')
    p.add_argument('--plot', type=Path, metavar='FILE.png',
                   help='draw gap, speed, force, correction and the verdict along the seam')
    return p


def plot(result: WeldEvalResult, path: Path) -> None:
    """Five panels sharing the seam axis; defects shaded red in every panel."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    tr = result.trace
    fig, axes = plt.subplots(5, 1, sharex=True, figsize=(10, 9), constrained_layout=True)
    panels = [
        ('gap (mm)', [(tr.gap_mm, 'gap', 'tab:blue')]),
        ('speed (mm/s)', [(tr.speed_mm_s, 'travel speed', 'tab:green')]),
        ('force (N)', [(tr.force_n, 'contact force', 'tab:orange'),
                       (tr.required_force_n, 'required', 'grey')]),
        ('lateral (mm)', [(tr.lateral_mm, 'seam deviation', 'grey'),
                          (tr.correction_mm, 'applied correction', 'tab:purple')]),
        ('heat ratio r̄', [(tr.heat_ratio_filtered, 'r̄', 'tab:red')]),
    ]
    for ax, (label, lines) in zip(axes, panels):
        for values, name, color in lines:
            ax.plot(tr.s_mm, values, color=color, label=name, linewidth=1.2)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.axvspan(tr.s_mm[0], COUNT_FROM_MM, color='grey', alpha=0.12, linewidth=0)
        ax.fill_between(tr.s_mm, 0, 1, where=[not g for g in tr.good], color='red', alpha=0.15,
                        transform=ax.get_xaxis_transform(), linewidth=0)
        if len(lines) > 1:
            ax.legend(loc='upper left', fontsize=8)
    axes[-1].axhspan(0.90, 1.15, color='green', alpha=0.1, label='good band')
    axes[-1].legend(loc='upper left', fontsize=8)
    axes[-1].set_xlabel(f'seam position s (mm)  —  red: defect, grey: first {COUNT_FROM_MM:g} mm, not scored')
    s = result.summary
    fig.suptitle(f'{result.seam_name} · {result.mode}: quality {s["quality_pct"]:.2f} %, '
                 f'lateral RMS {s["lateral_rms_mm"]:.3f} mm, {s["weld_time_s"]:.1f} s '
                 f'(t_ref {s["t_ref_s"]:.1f} s), {s["limit_violations"]} limit violations')
    fig.savefig(path, dpi=100)
    plt.close(fig)


def check_plot_path(path: Path) -> None:
    """Raise ValueError unless `path` is a writable file in a format matplotlib can save."""
    from matplotlib.backend_bases import FigureCanvasBase
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix.lstrip('.').lower() not in formats:
        raise ValueError(f'--plot {path}: the file name must end in one of .{", .".join(sorted(formats))}')
    try:
        check_writable_file(path)
    except ValueError as error:
        raise ValueError(f'--plot {error}') from None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        if args.plot:   # before the run, not after it
            check_plot_path(args.plot)
        seam = load_seam_csv(args.seam)
        result = run_weld_eval(seam, args.mode, args.power_drift, args.dropout_rate, args.outlier_rate,
                               args.seed, not args.no_prescan, args.initial_drift)
    except (SeamFileError, ValueError) as error:
        print(f'cell-control weld-eval: {error}', file=sys.stderr)
        return 2
    if args.plot:
        plot(result, args.plot)
    s = result.summary
    if args.json:
        print(json.dumps({key: s[key] for key in SUMMARY_KEYS}))
    else:
        print(f'{seam.name} ({args.mode}, drift {args.power_drift:+g}): quality {s["quality_pct"]:.2f} %, '
              f'defect {s["defect_mm"]:.2f} mm, lateral RMS {s["lateral_rms_mm"]:.4f} mm, '
              f'weld time {s["weld_time_s"]:.2f} s (t_ref {s["t_ref_s"]:.2f} s), '
              f'{s["limit_violations"]} limit violations, adjuster p50/p99 '
              f'{s["latency_p50_us"]:.0f}/{s["latency_p99_us"]:.0f} µs')
    if result.fault_samples:
        print(f'cell-control weld-eval: the adjuster raised a fault on {result.fault_samples} samples',
              file=sys.stderr)
    return 0
