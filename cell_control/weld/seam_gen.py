"""Generate seams of the DESIGN §6 model, seeded and deterministic, to judge the adjuster on more than examples.

Public API:
    FAMILIES                                   family name -> one-line description
    DEFAULT_LENGTH_MM                          family name -> its default seam length
    generate_seam(family, seed, length_mm=None, gap_start_mm=None) -> SeamProfile
    write_seam_csv(seam, file)                 the §6 file format (header s_mm,gap_mm,mismatch_mm,lateral_mm)

Every family stays inside what the cell can weld: gap 0 … 2 mm and |mismatch| ≤ 0.7 mm keep the force need
150 + 100·g + 60·|m| ≤ 392 N under the 400 N limit; |lateral| ≤ 4.9 mm stays inside the ±5 mm correction,
and the lateral slope stays far below what the 20 mm/s correction rate follows at 25 mm/s. All of it is
inside `SeamLimits`. Rows are 1 mm apart, rounded to µm. The same (family, seed, length, start gap) always
gives the same seam (numpy `Generator`, PCG64); without a start gap one is drawn from the seed (0 … 1.5 mm).
"""
import math
from typing import TextIO

import numpy as np

from cell_control.weld.seam_profile import COLUMNS, SeamLimits, SeamProfile

FAMILIES = {
    'smooth': 'slowly varying gap, small lateral deviation and mismatch',
    'ramps': 'piecewise linear gap ramps between random levels',
    'steps': 'gap steps of up to 1.2 mm over 1 mm, held 25 … 90 mm',
    'rough': 'random-walk gap jumping by up to 0.6 mm (over 0.5 mm) every 2 … 6 mm, stretches of gap 0, '
             'lateral drift up to ±5 mm, mismatch up to ±0.7 mm',
    'tack': 'tack-welded: a gap closed to 0 over short stretches (3 … 8 mm) every 30 … 80 mm',
    'wandering': 'lateral drift up to ±5 mm with a moderate gap',
    'mismatched': 'mismatch up to ±0.7 mm with a moderate gap',
    'short': 'a 100 mm seam with ramps and steps',
    'long': 'an 800 mm seam with ramps, steps and lateral drift',
}
DEFAULT_LENGTH_MM = {family: 700.0 for family in FAMILIES} | {'short': 100.0, 'long': 800.0}
MIN_LENGTH_MM = 40.0  # the metrics count the part after 30 mm: leave some of it
ROW_MM = 1.0
GAP_MAX_MM = 2.0
MISMATCH_MAX_MM = 0.7
LATERAL_MAX_MM = 4.9
START_GAP_MAX_MM = 1.5


def generate_seam(family: str, seed: int, length_mm: float | None = None,
                  gap_start_mm: float | None = None) -> SeamProfile:
    """Draw one seam of `family`; ValueError names a bad argument."""
    if family not in FAMILIES:
        raise ValueError(f'seam family {family!r} is not one of {", ".join(FAMILIES)}')
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed {seed!r} must be a non-negative integer')
    length = DEFAULT_LENGTH_MM[family] if length_mm is None else length_mm
    longest = SeamLimits().max_length_mm
    if not (math.isfinite(length) and MIN_LENGTH_MM <= length <= longest):
        raise ValueError(f'length {length!r} mm is outside {MIN_LENGTH_MM:g} … {longest:g} mm')
    if gap_start_mm is not None and not (math.isfinite(gap_start_mm) and 0.0 <= gap_start_mm <= GAP_MAX_MM):
        raise ValueError(f'start gap {gap_start_mm!r} mm is outside 0 … {GAP_MAX_MM:g} mm')
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, START_GAP_MAX_MM) if gap_start_mm is None else gap_start_mm
    s = np.append(np.arange(0.0, length, ROW_MM), length)
    gap, mismatch, lateral = _FAMILY_MAKERS[family](rng, s, start)
    gap = np.clip(gap, 0.0, GAP_MAX_MM)
    gap[0] = start
    columns = (s, gap, np.clip(mismatch, -MISMATCH_MAX_MM, MISMATCH_MAX_MM),
               np.clip(lateral, -LATERAL_MAX_MM, LATERAL_MAX_MM))
    rounded = (tuple(round(float(v), 3) for v in column) for column in columns)
    return SeamProfile(f'{family}-{seed}', *rounded)


def write_seam_csv(seam: SeamProfile, file: TextIO) -> None:
    """Write the seam in the §6 file format."""
    file.write(','.join(COLUMNS) + '\n')
    for row in zip(seam.s_mm, seam.gap_mm, seam.mismatch_mm, seam.lateral_mm):
        file.write(','.join(f'{v:.3f}' for v in row) + '\n')


# -- shapes ------------------------------------------------------------------------------------------------

def _wander(rng: np.random.Generator, s: np.ndarray, amplitude: float, shortest_mm: float) -> np.ndarray:
    """Draw a smooth curve from 0 within ±amplitude: a few sines with wavelengths of at least `shortest_mm`."""
    curve = np.zeros_like(s)
    for _ in range(4):
        wavelength = rng.uniform(shortest_mm, 4.0 * shortest_mm)
        curve += rng.uniform(0.3, 1.0) * np.sin(2.0 * math.pi * s / wavelength + rng.uniform(0.0, 2.0 * math.pi))
    curve -= curve[0]
    peak = np.max(np.abs(curve))
    return curve * (amplitude * rng.uniform(0.6, 1.0) / peak) if peak > 0.0 else curve


def _levels(rng: np.random.Generator, s: np.ndarray, start: float, hold_mm: tuple[float, float],
            change_mm: tuple[float, float], largest_step: float) -> np.ndarray:
    """Gap levels held for random lengths, each reached linearly over a random change length."""
    knots_s, knots_g = [0.0], [start]
    level = start
    while knots_s[-1] < s[-1]:
        knots_s.append(knots_s[-1] + rng.uniform(*hold_mm))
        knots_g.append(level)
        level = float(np.clip(level + rng.uniform(-largest_step, largest_step), 0.0, GAP_MAX_MM))
        knots_s.append(knots_s[-1] + rng.uniform(*change_mm))
        knots_g.append(level)
    return np.interp(s, knots_s, knots_g)


def _smooth(rng, s, start):
    gap = start + _wander(rng, s, 0.8, 150.0)
    return gap, _wander(rng, s, 0.2, 200.0), _wander(rng, s, 1.0, 200.0)


def _ramps(rng, s, start):
    gap = _levels(rng, s, start, (10.0, 40.0), (20.0, 80.0), 1.2)
    return gap, _wander(rng, s, 0.2, 200.0), _wander(rng, s, 1.0, 200.0)


def _steps(rng, s, start):
    gap = _levels(rng, s, start, (25.0, 90.0), (1.0, 1.0), 1.2)
    return gap, _wander(rng, s, 0.3, 200.0), _wander(rng, s, 1.0, 200.0)


def _rough(rng, s, start):
    knots_s, knots_g = [0.0], [start]
    level = start
    while knots_s[-1] < s[-1]:
        if rng.random() < 0.06:  # the gap closes for a stretch
            knots_s += [knots_s[-1] + 1.0, knots_s[-1] + 1.0 + rng.uniform(5.0, 25.0)]
            knots_g += [0.0, 0.0]
            level = 0.0
        knots_s.append(knots_s[-1] + rng.uniform(2.0, 6.0))  # held for a few mm, then a jump over 0.5 mm
        knots_g.append(level)
        level = float(np.clip(level + rng.uniform(-0.6, 0.6), 0.0, GAP_MAX_MM))
        knots_s.append(knots_s[-1] + 0.5)
        knots_g.append(level)
    gap = np.interp(s, knots_s, knots_g)
    return gap, _wander(rng, s, MISMATCH_MAX_MM, 60.0), _wander(rng, s, 5.0, 120.0)


def _tack(rng, s, start):
    gap = start + _wander(rng, s, 0.5, 150.0)
    at = rng.uniform(10.0, 40.0)
    while at < s[-1]:
        width = rng.uniform(3.0, 8.0)
        closed = (s >= at) & (s <= at + width)
        gap[closed] = 0.0
        at += width + rng.uniform(30.0, 80.0)
    return gap, _wander(rng, s, 0.2, 200.0), _wander(rng, s, 1.0, 200.0)


def _wandering(rng, s, start):
    gap = start + _wander(rng, s, 0.5, 150.0)
    return gap, _wander(rng, s, 0.2, 200.0), _wander(rng, s, 5.0, 100.0)


def _mismatched(rng, s, start):
    gap = start + _wander(rng, s, 0.5, 150.0)
    return gap, _wander(rng, s, MISMATCH_MAX_MM, 50.0), _wander(rng, s, 1.0, 200.0)


def _mixed(rng, s, start):
    gap = _levels(rng, s, start, (10.0, 60.0), (1.0, 30.0), 1.0)
    return gap, _wander(rng, s, 0.4, 100.0), _wander(rng, s, 3.0, 120.0)


_FAMILY_MAKERS = {
    'smooth': _smooth, 'ramps': _ramps, 'steps': _steps, 'rough': _rough, 'tack': _tack,
    'wandering': _wandering, 'mismatched': _mismatched, 'short': _mixed, 'long': _mixed,
}
