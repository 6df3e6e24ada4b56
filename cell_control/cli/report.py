"""The demo's report pictures: production (the cell, then one weld plot per record) and maintenance.

write_production_report(path, records, picture)   report.png: the cell as rendered, each record's weld plots
maintenance_figure(indicators, histories, energy) the maintenance page: per indicator its stored samples, the
                                                  Theil-Sen trend with the band of its slope's interval, extended
                                                  over the warn horizon, and the limit; then each part's energy
                                                  stacked by source and by state
write_maintenance_report(path, indicators, store, energy)   that page from a condition store, as maintenance.png
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from cell_control.cell.energy import SOURCES, STATES, energy_kpis  # noqa: E402
from cell_control.maintenance import ConditionStore, History, Indicator, Level, fit_trend, predict  # noqa: E402
from cell_control.weld.records import WeldRecord  # noqa: E402

LEVEL_COLOURS = {Level.OK: 'tab:green', Level.WARN: 'tab:orange', Level.ERROR: 'tab:red'}


def _plot_record(axes, record: WeldRecord) -> None:
    s = np.asarray(record.s_mm)
    good = np.asarray(record.good, dtype=bool)
    rows = [('gap mm', record.gap_mm, 'tab:gray'), ('speed mm/s', record.speed_mm_s, 'tab:blue'),
            ('force N', record.force_n, 'tab:red'), ('correction mm', record.correction_mm, 'tab:green')]
    for ax, (label, values, colour) in zip(axes, rows):
        ax.plot(s, values, color=colour, linewidth=1.0)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.fill_between(s, 0, 1, where=~good, transform=ax.get_xaxis_transform(), color='tab:red', alpha=0.15,
                        linewidth=0)
    good_pct = record.metrics.get('good_pct', 100.0 * good.mean())
    axes[0].set_title(f'part {record.part_id}, seam {record.seam_id} ({record.recipe}): '
                      f'{good_pct:.1f} % good (red: not good)', fontsize=9)
    axes[-1].set_xlabel('seam position s (mm)', fontsize=8)


def write_production_report(path: Path, records: list[WeldRecord], picture: Path | None) -> bool:
    if not records and picture is None:
        return False
    heights = ([3.0] if picture else []) + [1.0] * (4 * len(records))
    figure = plt.figure(figsize=(11, 1.6 * sum(heights)))
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.5)
    row = 0
    if picture:
        ax = figure.add_subplot(grid[0])
        ax.imshow(plt.imread(str(picture)))
        ax.set_axis_off()
        ax.set_title('the cell during the first weld (MuJoCo)', fontsize=10)
        row = 1
    for record in records:
        axes = [figure.add_subplot(grid[row + i]) for i in range(4)]
        for ax in axes[:-1]:
            ax.sharex(axes[-1])
            ax.tick_params(labelbottom=False)
        _plot_record(axes, record)
        row += 4
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90, bbox_inches='tight')
    plt.close(figure)
    return True


def _plot_indicator(ax, indicator: Indicator, history: History) -> None:
    """Plot the samples, the trend the maintenance node judges (its window) with the slope's band, and the limit."""
    prediction = predict(indicator, history)
    x_all = history.seq.astype(float) if indicator.basis == 'part' else history.t_s / 3600.0
    shown = x_all - (x_all[0] if indicator.basis == 'hour' and len(x_all) else 0.0)   # hours from the first
    ax.plot(shown, history.value, 'o', markersize=3, color='tab:blue', label='samples')
    ax.axhline(indicator.limit, color='tab:red', linestyle='--', linewidth=1.0, label=f'limit {indicator.limit:g}')
    x, y = x_all[-indicator.window:], history.value[-indicator.window:]
    if len(np.unique(x)) >= 3:
        trend = fit_trend(x, y, indicator.confidence)
        span = np.linspace(x[0], x[-1] + indicator.warn_horizon, 50)
        offset = x_all[0] if indicator.basis == 'hour' else 0.0
        judged = '' if len(x) >= indicator.min_samples else f' (< {indicator.min_samples} samples: not judged)'
        ax.plot(span - offset, trend.intercept + trend.slope * span, color='tab:purple', linewidth=1.2,
                label=f'Theil-Sen {trend.slope:+.3g} {indicator.unit}/{"part" if indicator.basis == "part" else "h"}'
                f'{judged}')
        low = trend.y_center + trend.slope_low * (span - trend.x_center)
        high = trend.y_center + trend.slope_high * (span - trend.x_center)
        ax.fill_between(span - offset, np.minimum(low, high), np.maximum(low, high), color='tab:purple', alpha=0.25,
                        linewidth=0, label=f'{indicator.confidence:.0%} slope band')
    elif not len(x):
        ax.text(0.5, 0.5, 'no samples', transform=ax.transAxes, ha='center', va='center', fontsize=8)
    ax.set_title(f'{indicator.key}: {prediction.message}', fontsize=8, color=LEVEL_COLOURS[prediction.level])
    ax.set_ylabel(indicator.unit, fontsize=8)
    ax.set_xlabel('sample (part)' if indicator.basis == 'part' else 'hours since the first sample', fontsize=7)
    if indicator.basis == 'part':
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc='best')


def _plot_energy(ax, parts: Sequence[Mapping], by: str, names: Sequence[str]) -> None:
    """Each part's energy as one bar stacked by source or by state (`by` is 'by_source_wh' or 'by_state_wh')."""
    x = np.arange(len(parts))
    bottom = np.zeros(len(parts))
    for name in names:
        values = np.array([p[by][name] for p in parts], dtype=float)
        ax.bar(x, values, bottom=bottom, label=name, width=0.7)
        bottom += values
    ax.set_xticks(x, [p['part'] for p in parts], rotation=30, ha='right', fontsize=6)
    ax.set_ylabel('Wh', fontsize=8)
    ax.tick_params(axis='y', labelsize=7)
    ax.set_title(f'energy per part by {"source" if by == "by_source_wh" else "state"} (Wh)', fontsize=9)
    ax.set_ylim(0.0, 1.25 * max(bottom.max(), 1e-3))   # room for the legend above the bars
    ax.legend(fontsize=6, loc='upper center', ncol=len(names))


def maintenance_figure(indicators: Sequence[Indicator], histories: Mapping[str, History],
                       energy: Mapping | None):
    """Build the maintenance page: one plot per indicator (two columns), then the energy per part, if any."""
    parts = energy_kpis(energy)['energy_per_part_wh'] if energy else []
    rows = math.ceil(len(indicators) / 2) + (1 if parts else 0)
    figure = plt.figure(figsize=(12, 3.0 * max(rows, 1)))
    grid = figure.add_gridspec(max(rows, 1), 2, hspace=0.7, wspace=0.25, top=0.93)
    for i, indicator in enumerate(indicators):
        _plot_indicator(figure.add_subplot(grid[i // 2, i % 2]), indicator, histories[indicator.key])
    if parts:
        _plot_energy(figure.add_subplot(grid[rows - 1, 0]), parts, 'by_source_wh', SOURCES)
        _plot_energy(figure.add_subplot(grid[rows - 1, 1]), parts, 'by_state_wh', STATES)
    figure.suptitle('condition indicators: trend, prediction and limit; energy per part', fontsize=11)
    return figure


def write_maintenance_report(path: Path, indicators: Sequence[Indicator], store: ConditionStore,
                             energy: Mapping | None) -> bool:
    """Write the maintenance page from the store's samples (since each indicator's last reset); False if empty."""
    histories = {i.key: store.history(i.asset, i.name) for i in indicators}
    if not any(len(h) for h in histories.values()) and not (energy and energy.get('parts')):
        return False
    figure = maintenance_figure(indicators, histories, energy)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90, bbox_inches='tight')
    plt.close(figure)
    return True
