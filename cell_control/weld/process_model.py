"""The constants and formulas of the weld process model (DESIGN §6) that more than the simulation needs.

The simulation (`sim.weld_process`) steps the model; the demo's cycle-time bound and `weld-eval` need only
these, so they live in a pure package that loads no physics engine.
"""
from __future__ import annotations

from dataclasses import dataclass

from cell_control.weld.seam_profile import SeamProfile

RECIPE_POWER_W = 2000.0
EFFICIENCY = 0.8
LOOKAHEAD_MM = 30.0      # the seam sensor reads gap, mismatch and lateral this far ahead of the tool
BEAD_BEHIND_MM = 15.0    # ... and the bead width this far behind it
T_REF_SUBSTEPS = 50  # midpoint rule per seam row interval; exact where the speed is not clamped


@dataclass(frozen=True)
class Limit:
    low: float
    high: float
    rate_per_s: float


LIMITS = {
    'speed_mm_s': Limit(5.0, 25.0, 50.0),
    'force_n': Limit(50.0, 400.0, 1000.0),
    'correction_mm': Limit(-5.0, 5.0, 20.0),
}


def required_heat_j_mm(gap_mm: float) -> float:
    return 100.0 * (1.0 + 0.4 * gap_mm)


def required_force_n(gap_mm: float, mismatch_mm: float) -> float:
    return 150.0 + 100.0 * gap_mm + 60.0 * abs(mismatch_mm)


def reference_weld_time_s(seam: SeamProfile, power_drift: float) -> float:
    """Weld time at heat ratio exactly 1 everywhere, with the speed inside its range."""
    low, high = LIMITS['speed_mm_s'].low, LIMITS['speed_mm_s'].high
    heat_per_s = EFFICIENCY * RECIPE_POWER_W * (1.0 + power_drift)
    total = 0.0
    s = seam.s_mm
    for i in range(len(s) - 1):
        ds = (s[i + 1] - s[i]) / T_REF_SUBSTEPS
        for j in range(T_REF_SUBSTEPS):
            gap = seam.gap_at(s[i] + (j + 0.5) * ds)
            total += ds / min(max(heat_per_s / required_heat_j_mm(gap), low), high)
    return total
