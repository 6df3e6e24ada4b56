"""The production report picture: the cell as rendered by the simulation, then one weld plot per record."""
from __future__ import annotations

from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cell_control.weld.records import WeldRecord  # noqa: E402


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
