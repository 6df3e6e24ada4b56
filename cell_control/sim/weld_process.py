"""The weld process and seam sensor model of DESIGN §6, stepped at 1 ms; deterministic for a given seed.

Public API:
    WeldProcess(seam, power_drift=0.0, dropout_rate=0.0, outlier_rate=0.0, seed=0)
    WeldProcess.step(speed_mm_s, force_n, correction_mm, path_offset_mm=0, lookahead_offset_mm=0)
        -> SeamMeasurement | None: apply the controls of one 1 ms step; returns the sensor sample on sensor ticks
        (every 2 ms). The offsets (0 in §6) add a misplaced part's seam line to y(s): the cell's, not weld-eval's
    WeldProcess.done, .s_mm, .t_s, .last  (StepState of the last step: heat ratio, error, verdict, ...)
    WeldProcess.metrics() -> ProcessMetrics   quality_pct, defect_mm, lateral_rms_mm, weld_time_s,
                                              limit_violations
    LIMITS, STEP_S, SAMPLE_STEPS, LOOKAHEAD_MM, BEAD_BEHIND_MM   the constants of §6

Rules of §6 made precise here (the MuJoCo simulation and `weld-eval` share this one implementation):
- A step applies its controls for the whole 1 ms: the tool advances v·dt, the applied correction follows the
  commanded one through the first-order lag (exact zero-order-hold solution), r̄ follows r along the step's
  length with the exact exponential solution of dr̄/ds = (r − r̄)/5 mm. The verdict and the error are those
  at the end of the step and weigh the step's length (the part beyond 30 mm and before L).
- The sensor samples at the end of every second step (t = 2 ms, 4 ms, ...). Bead width is valid once the
  bead point s − 15 mm is on the seam (s ≥ 15 mm); the look-ahead is valid while s + 30 mm ≤ L.
- Random draws happen in a fixed order for every sample, whether or not it is dropped, so changing the
  dropout or outlier rate does not change the noise of the other samples.
- A step that ends beyond L ends the run; the weld time counts only the part of it up to L.
- A limit violation is a step in which any control is out of range or differs from the previous step's
  control (initially 16 mm/s, 250 N, 0 mm) by more than its rate limit × 1 ms (1e-9 tolerance for rounding).
"""
import math
import random
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

from cell_control.weld.process_model import (BEAD_BEHIND_MM, EFFICIENCY, LIMITS, LOOKAHEAD_MM, RECIPE_POWER_W,
                                             required_force_n, required_heat_j_mm)
from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.weld.seam_profile import SeamProfile

STEP_S = 0.001
SAMPLE_STEPS = 2
COUNT_FROM_MM = 30.0

POOL_LENGTH_MM = 5.0
LAG_TAU_S = 0.020
GAP_NOISE_MM = 0.03
LATERAL_NOISE_MM = 0.05
BEAD_NOISE = 0.02
OUTLIER_GAP_MM = 2.0
MAX_TRACKING_ERROR_MM = 0.3
HEAT_RATIO_GOOD = (0.90, 1.15)
FORCE_GOOD_FRACTION = 0.95

NOMINAL_SPEED_MM_S = 16.0
NOMINAL_FORCE_N = 250.0
NOMINAL_CORRECTION_MM = 0.0


@dataclass(frozen=True)
class StepState:
    """The process at the end of one step, for plots and tests."""

    s_mm: float
    t_s: float
    speed_mm_s: float
    force_n: float
    correction_mm: float  # applied at the tool, after the lag
    heat_ratio: float
    heat_ratio_filtered: float
    required_force_n: float
    tracking_error_mm: float
    good: bool


@dataclass(frozen=True)
class ProcessMetrics:
    quality_pct: float
    defect_mm: float
    lateral_rms_mm: float
    weld_time_s: float
    limit_violations: int


class WeldProcess:
    def __init__(self, seam: SeamProfile, power_drift: float = 0.0, dropout_rate: float = 0.0,
                 outlier_rate: float = 0.0, seed: int = 0) -> None:
        if not -1.0 < power_drift < 10.0:
            raise ValueError(f'power_drift {power_drift} is outside (-1, 10): the real power must be '
                             'positive')
        for name, rate in (('dropout_rate', dropout_rate), ('outlier_rate', outlier_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f'{name} {rate} is not a probability in [0, 1]')
        if seam.length_mm <= COUNT_FROM_MM:
            raise ValueError(f'seam {seam.name} is {seam.length_mm:g} mm long; the metrics count only the '
                             f'part after {COUNT_FROM_MM:g} mm')
        self.seam = seam
        self.power_drift = power_drift
        self._heat_per_time = EFFICIENCY * RECIPE_POWER_W * (1.0 + power_drift)
        self._dropout_rate = dropout_rate
        self._outlier_rate = outlier_rate
        self._rng = random.Random(seed)
        self._lag_keep = math.exp(-STEP_S / LAG_TAU_S)
        self.s_mm = 0.0
        self.t_s = 0.0
        self._steps = 0
        self._controls = (NOMINAL_SPEED_MM_S, NOMINAL_FORCE_N, NOMINAL_CORRECTION_MM)
        self._applied_correction_mm = NOMINAL_CORRECTION_MM
        self._lookahead_offset_mm = 0.0
        self._heat_ratio_filtered = 1.0
        # r̄ along the seam, kept for the bead width reading 15 mm behind the tool.
        self._bead_s: deque[float] = deque([0.0])
        self._bead_r: deque[float] = deque([1.0])
        self._weld_time_s: float | None = None
        self._counted_mm = 0.0
        self._good_mm = 0.0
        self._error_sq_mm3 = 0.0
        self._violations = 0
        self.last: StepState | None = None

    @property
    def done(self) -> bool:
        return self._weld_time_s is not None

    def step(self, speed_mm_s: float, force_n: float, correction_mm: float, path_offset_mm: float = 0.0,
             lookahead_offset_mm: float = 0.0) -> SeamMeasurement | None:
        """Apply one step's controls for 1 ms; return the sensor sample if this step ends on a sensor tick.

        path_offset_mm: where the seam line lies across the tool's path (along tool y) beside the lateral
        deviation `y(s)` of the seam file, at the tool; lookahead_offset_mm: the same at the sensor's point. Both
        are 0 in §6's model (weld-eval); in a cell they are the part's misplacement against the program, so a part
        welded where it is not is welded off its seam.
        """
        if self.done:
            raise RuntimeError('the tool has reached the seam end; the run is over')
        controls = (speed_mm_s, force_n, correction_mm)
        if not all(math.isfinite(c) for c in controls):
            raise ValueError(f'controls must be finite numbers, got {controls}')
        self._count_violation(controls)
        self._controls = controls
        seam = self.seam
        length = seam.length_mm
        # The process acts on what the tool does: a speed below zero would not move it forward.
        ds = max(speed_mm_s, 0.0) * STEP_S
        s0, s1 = self.s_mm, self.s_mm + ds
        applied = self._applied_correction_mm
        self._applied_correction_mm = correction_mm + (applied - correction_mm) * self._lag_keep
        gap, mismatch, lateral = seam.at(min(s1, length))
        heat_ratio = self._heat_per_time / max(speed_mm_s, 1e-9) / required_heat_j_mm(gap)
        self._heat_ratio_filtered = heat_ratio + (self._heat_ratio_filtered - heat_ratio) * math.exp(
            -ds / POOL_LENGTH_MM)
        f_req = required_force_n(gap, mismatch)
        error = lateral + path_offset_mm - self._applied_correction_mm
        self._lookahead_offset_mm = lookahead_offset_mm
        low, high = HEAT_RATIO_GOOD
        good = (low <= self._heat_ratio_filtered <= high and force_n >= FORCE_GOOD_FRACTION * f_req
                and abs(error) <= MAX_TRACKING_ERROR_MM)
        counted = max(0.0, min(s1, length) - max(s0, COUNT_FROM_MM))
        self._counted_mm += counted
        self._good_mm += counted if good else 0.0
        self._error_sq_mm3 += error * error * counted
        self._steps += 1
        self.t_s = self._steps * STEP_S
        if s1 >= length and ds > 0.0:
            self._weld_time_s = self.t_s - STEP_S + (length - s0) / speed_mm_s
        self.s_mm = s1
        self._bead_s.append(s1)
        self._bead_r.append(self._heat_ratio_filtered)
        while len(self._bead_s) > 2 and self._bead_s[1] < s1 - BEAD_BEHIND_MM - 1.0:
            self._bead_s.popleft()
            self._bead_r.popleft()
        self.last = StepState(s1, self.t_s, speed_mm_s, force_n, self._applied_correction_mm, heat_ratio,
                              self._heat_ratio_filtered, f_req, error, good)
        if self._steps % SAMPLE_STEPS:
            return None
        return self._sample()

    def _count_violation(self, controls: tuple[float, float, float]) -> None:
        for value, previous, limit in zip(controls, self._controls, LIMITS.values()):
            if (not limit.low <= value <= limit.high
                    or abs(value - previous) > limit.rate_per_s * STEP_S + 1e-9):
                self._violations += 1
                return

    def _rbar_at(self, s_mm: float) -> float:
        """r̄ at an earlier seam position (linear between the steps' end points)."""
        s, r = self._bead_s, self._bead_r
        i = bisect_left(s, s_mm)
        if i <= 0:
            return r[0]
        if i >= len(s):
            return r[-1]
        span = s[i] - s[i - 1]
        f = (s_mm - s[i - 1]) / span if span > 0.0 else 1.0
        return r[i - 1] + f * (r[i] - r[i - 1])

    def _sample(self) -> SeamMeasurement:
        rng = self._rng
        dropped = rng.random() < self._dropout_rate
        gap_noise = rng.gauss(0.0, GAP_NOISE_MM)
        mismatch_noise = rng.gauss(0.0, GAP_NOISE_MM)
        lateral_noise = rng.gauss(0.0, LATERAL_NOISE_MM)
        outlier = rng.random() < self._outlier_rate
        bead_noise = rng.gauss(0.0, BEAD_NOISE)
        flags = 0
        gap = mismatch = lateral = bead = 0.0
        ahead = self.s_mm + LOOKAHEAD_MM
        if not dropped and ahead <= self.seam.length_mm:
            flags |= LOOKAHEAD_VALID
            true_gap, true_mismatch, true_lateral = self.seam.at(ahead)
            gap = true_gap + gap_noise + (OUTLIER_GAP_MM if outlier else 0.0)
            mismatch = true_mismatch + mismatch_noise
            lateral = true_lateral + self._lookahead_offset_mm - self._applied_correction_mm + lateral_noise
        if not dropped and self.s_mm >= BEAD_BEHIND_MM:
            flags |= BEAD_VALID
            bead = 6.0 * math.sqrt(max(self._rbar_at(self.s_mm - BEAD_BEHIND_MM), 0.0)) * (1.0 + bead_noise)
        return SeamMeasurement(self.t_s, self._steps // SAMPLE_STEPS, flags, gap, mismatch, lateral, bead)

    def metrics(self) -> ProcessMetrics:
        """Scores of the run so far; the weld time is NaN until the tool has reached the seam end."""
        counted = self._counted_mm
        good_pct = 100.0 * self._good_mm / counted if counted > 0.0 else float('nan')
        rms = math.sqrt(self._error_sq_mm3 / counted) if counted > 0.0 else float('nan')
        weld_time = self._weld_time_s if self._weld_time_s is not None else float('nan')
        return ProcessMetrics(good_pct, counted - self._good_mm, rms, weld_time, self._violations)
