"""What the cell saw and did along one seam, gathered from the weld loop's messages for the weld record.

Every message of the loop carries the stamp of the sensor sample it answers (DESIGN §7), so the adjuster's
speed, force and correction and the sensor's gap meet by stamp here. The seam position of a sample is the
integral of the commanded travel speed, as the adjuster itself reckons it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from cell_control.weld.records import WeldRecord


@dataclass
class _Sample:
    speed_mm_s: float = math.nan
    force_n: float = math.nan
    correction_mm: float = math.nan
    gap_mm: float = math.nan
    faulted: bool = False


@dataclass
class WeldTrace:
    part_id: str
    seam_id: str
    recipe: str
    _samples: dict[float, _Sample] = field(default_factory=dict)
    faulted: bool = False

    def _at(self, stamp_s: float) -> _Sample:
        return self._samples.setdefault(round(stamp_s, 6), _Sample(faulted=self.faulted))

    def speed(self, stamp_s: float, speed_mm_s: float) -> None:
        self._at(stamp_s).speed_mm_s = speed_mm_s

    def force(self, stamp_s: float, force_n: float) -> None:
        self._at(stamp_s).force_n = force_n

    def correction(self, stamp_s: float, correction_mm: float) -> None:
        self._at(stamp_s).correction_mm = correction_mm

    def gap(self, stamp_s: float, gap_mm: float) -> None:
        """Store a valid look-ahead gap reading; it describes the seam 30 mm ahead but is kept with its sample."""
        self._at(stamp_s).gap_mm = gap_mm

    def fault(self, active: bool) -> None:
        self.faulted = active

    def record(self, verdict: str, metrics: dict[str, float]) -> WeldRecord | None:
        """Return the weld record, or None when the adjuster never answered a sample (the arc never ran)."""
        stamps = sorted(s for s, v in self._samples.items() if math.isfinite(v.speed_mm_s))
        if not stamps:
            return None
        s_mm, position, previous = [], 0.0, stamps[0]
        rows = [self._samples[s] for s in stamps]
        for stamp, row in zip(stamps, rows):
            position += row.speed_mm_s * (stamp - previous)
            previous = stamp
            s_mm.append(position)

        def column(name: str) -> list[float]:
            values, last = [], 0.0
            for row in rows:   # a missing or invalid reading holds the last one the adjuster used
                value = getattr(row, name)
                last = value if math.isfinite(value) else last
                values.append(last)
            return values
        good = [verdict == 'good' and not row.faulted for row in rows]
        summary = {'samples': float(len(rows)), 'seam_mm': s_mm[-1],
                   'good_pct': 100.0 * sum(good) / len(good), **metrics}
        return WeldRecord(self.seam_id, self.part_id, self.recipe, s_mm, column('gap_mm'), column('speed_mm_s'),
                          column('force_n'), column('correction_mm'), good, summary)
