"""Closed-loop weld adjuster: seam sensor samples in, travel speed / contact force / lateral correction out.

Public API:
    WeldAdjuster(mode='closed', config=AdjusterConfig(), start_stamp_s=0.0, seam_length_mm=None,
                 lead_in_mm=0.0, strike_timeout_s=None)
    WeldAdjuster.approach(sensor_s_mm, sample)    optional, before the first update: a reading of the
                                                  approach pass, the sensor at sensor_s_mm ∈ [0, 30)
    WeldAdjuster.arc_struck(stamp_s) -> bool      the power source's "arc established" at stamp_s
    WeldAdjuster.strike_source                    '' during the lead-in, then 'clock' or 'signal': what ended it
    WeldAdjuster.waits_for_strike                 whether the lead-in waits for `arc_struck` at all
    WeldAdjuster.strike_missed                    it waited, and the clock ended the lead-in
    WeldAdjuster.update(sample: SeamMeasurement) -> WeldSetpoint     one call per sensor sample
    WeldAdjuster.initial_setpoint() -> WeldSetpoint                   what is in force before the first sample
    AdjusterConfig     gains and margins, checked on construction (ValueError naming the field)
    WeldSetpoint       speed_mm_s, force_n, correction_mm, fault, tool_s_mm, drift_estimate
    AdjusterFault      NONE, SEAM_LOST (the seam was not seen for longer than the bridge; coordinator acts)
    MODES              ('open', 'feedforward', 'closed')

Modes: `open` holds the nominal settings of DESIGN §6. `feedforward` plans speed, force and correction
from the look-ahead readings, assuming the recipe power. `closed` adds the feedback loop: it estimates
the power drift from the trailing bead width and scales the speed with it.

Setpoint rate: one setpoint per sample (500 Hz). The consumer holds it for the two 1 ms steps of the
process, so every emitted change is limited to (rate limit × 1 ms): held for any number of steps it never
changes faster than DESIGN §6 allows. Planning assumes the resulting average rate (rate × 1 ms per sample
period) with a margin.

Approach pass: the sensor is 30 mm ahead of the tool, so a weld that starts blind does not know the seam
under the tool for its first 30 mm. On the way to the seam start the robot carries the sensor over s ∈ [0, 30)
before the arc is struck; `approach` takes those readings (before the first `update`), and the tool's
speed, force and correction are planned from the seam start on.

Lead-in: started `lead_in_mm` before the seam start (the weld path's run-up), the adjuster holds the nominal
setpoint and takes the run-up's readings as approach readings until the tool is at s = 0, so that the arc
strikes at the nominal settings (§6). By default its own clock says when that is (the samples' stamps at the
nominal speed). With `strike_timeout_s`, the arc's strike says it: the lead-in holds the nominal setpoint until
`arc_struck` gives the strike's stamp (the tool is at s = 0 then), however early or late the arm got there
against this adjuster's start; a strike that does not come within `strike_timeout_s` of the clock's seam start
ends the lead-in by the clock (`strike_source` 'clock', which the node reports).

The pieces, in the order a sample passes them:
    tool tracker     the tool's seam position, integrated from the speed this adjuster commanded, and a
                     model of the 20 ms lag through which the correction reaches the tool
    outlier gate     drops a look-ahead reading that is far from the median of its 5 neighbours
    look-ahead buffer  readings binned by seam position (0.5 mm cells), averaged over 3 cells; per cell the
                     speed target (heat needed, smoothed centred along the seam so that the heat error of a
                     forced speed ramp is split before and after a gap change) and the force needed
    dropout bridge   cells without readings are interpolated over up to `bridge_max_mm`; longer, they are
                     `lost`: the tool slows to `lost_speed_mm_s` before reaching them and SEAM_LOST is raised
    drift estimator  least squares of the bead-width heat ratio against the adjuster's own model of r̄; it
                     may start from a carried estimate (the last weld's with the same torch), which counts
                     as `initial_drift_mm` of bead and is forgotten like any other reading
    rate limiter     speed planned so it can still brake for every cell ahead, force ramped up so it is in
                     place when the tool (at most 25 mm/s) reaches the cell, then every output clamped to
                     its range and per-step rate
"""
import math
from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from cell_control.weld.process_model import BEAD_BEHIND_MM, LOOKAHEAD_MM, required_force_n, required_heat_j_mm
from cell_control.weld.seam_measurement import SeamMeasurement

MODES = ('open', 'feedforward', 'closed')

# DESIGN §6, as the adjuster knows it (the power drift is not known).
RECIPE_HEAT_PER_S = 0.8 * 2000.0  # η·P, J/s
SPEED_RANGE_MM_S = (5.0, 25.0)
FORCE_RANGE_N = (50.0, 400.0)
CORRECTION_RANGE_MM = (-5.0, 5.0)
SPEED_RATE_MM_S2 = 50.0
FORCE_RATE_N_S = 1000.0
CORRECTION_RATE_MM_S = 20.0
CONSUMER_STEP_S = 0.001
LAG_TAU_S = 0.020
POOL_LENGTH_MM = 5.0
NOMINAL = (16.0, 250.0, 0.0)

CELL_MM = 0.5
DRIFT_BOUND = 0.5  # |δ̂| beyond this is a broken torch, not drift
GATE_WINDOW = 5


class AdjusterFault(IntEnum):
    NONE = 0
    SEAM_LOST = 1


@dataclass(frozen=True)
class AdjusterConfig:
    target_heat_ratio: float = 1.01  # inside the good band 0.90 … 1.15, a little above t_ref's 1.0
    force_margin_n: float = 10.0  # above F_req; a weld is good from 0.95·F_req
    outlier_gate_mm: float = 0.4  # a reading this far from its neighbours' median is dropped
    bridge_max_mm: float = 3.0  # seam length without readings that is interpolated over
    lost_speed_mm_s: float = 5.0  # creep speed over seam that was not seen
    speed_smoothing_mm: float = 3.0  # centred window over which the heat requirement is averaged
    drift_memory_mm: float = 30.0  # seam length over which the drift estimator forgets
    sample_period_s: float = 0.002  # the sensor's period: how long each setpoint is held
    rate_margin: float = 0.98  # fraction of the rate limit used per emitted change
    initial_drift: float = 0.0  # δ̂ to start from, e.g. the last weld's estimate with the same torch
    initial_drift_mm: float = 0.0  # how much bead it stands for (mm at the nominal speed); 0: a cold start

    def __post_init__(self) -> None:
        checks = {
            'target_heat_ratio': 0.9 < self.target_heat_ratio < 1.15,
            'force_margin_n': 0.0 <= self.force_margin_n <= 100.0,
            'outlier_gate_mm': 0.0 < self.outlier_gate_mm,
            'bridge_max_mm': 0.0 <= self.bridge_max_mm <= 20.0,
            'lost_speed_mm_s': SPEED_RANGE_MM_S[0] <= self.lost_speed_mm_s <= SPEED_RANGE_MM_S[1],
            'speed_smoothing_mm': 0.0 <= self.speed_smoothing_mm <= 10.0,
            'drift_memory_mm': 0.0 < self.drift_memory_mm,
            'sample_period_s': CONSUMER_STEP_S <= self.sample_period_s <= 0.1,
            'rate_margin': 0.0 < self.rate_margin <= 1.0,
            'initial_drift': -DRIFT_BOUND <= self.initial_drift <= DRIFT_BOUND,
            'initial_drift_mm': 0.0 <= self.initial_drift_mm <= 1000.0,
        }
        for name, ok in checks.items():
            if not (ok and math.isfinite(getattr(self, name))):
                raise ValueError(f'adjuster setting {name} = {getattr(self, name)!r} is out of range')


@dataclass(frozen=True)
class WeldSetpoint:
    stamp_s: float  # the stamp of the sample it answers
    speed_mm_s: float
    force_n: float
    correction_mm: float
    fault: AdjusterFault
    tool_s_mm: float  # where the adjuster believes the tool is
    drift_estimate: float  # δ̂ (0 unless closed)


class OutlierGate:
    """Median-of-5 check on each look-ahead reading; decides on the middle one, two samples late."""

    def __init__(self, gate_mm: float) -> None:
        self.gate_mm = gate_mm
        self.window: deque[tuple[float, float, float, float]] = deque(maxlen=GATE_WINDOW)
        self.rejected = 0

    def push(self, reading: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
        """Take (position, gap, mismatch, lateral); return the middle reading if it passes, else None."""
        window = self.window
        window.append(reading)
        if len(window) < GATE_WINDOW:
            return None
        middle = window[GATE_WINDOW // 2]
        for field in (1, 2, 3):
            values = sorted(r[field] for r in window)
            if abs(middle[field] - values[GATE_WINDOW // 2]) > self.gate_mm:
                self.rejected += 1
                return None
        return middle


class DriftEstimator:
    """Estimate δ from r̄ = (w/6)² read 15 mm behind the tool.

    The adjuster models r̄ along the path as (1 + δ)·A(s) + E(s): A is r̄ of the recipe power (started at 0)
    and E the decaying start value r̄(0) = 1, both from its own speeds and gap estimates. δ is fitted by
    exponentially forgetting least squares, which weighs the early seam (small A) as little as it deserves.
    """

    def __init__(self, memory_mm: float, initial: float = 0.0, prior_weight: float = 0.0) -> None:
        self.memory_mm = memory_mm
        self.model_a = 0.0
        self.model_e = 1.0
        self._history: deque[tuple[float, float, float]] = deque([(0.0, 0.0, 1.0)])
        # A prior estimate enters as `prior_weight` samples of a developed bead (A = 1) that measured it.
        self._num = prior_weight * (1.0 + initial)
        self._den = prior_weight
        self.drift = initial

    def advance(self, s_mm: float, ds_mm: float, speed_mm_s: float, gap_mm: float) -> None:
        keep = math.exp(-ds_mm / POOL_LENGTH_MM)
        r0 = RECIPE_HEAT_PER_S / speed_mm_s / required_heat_j_mm(gap_mm)
        self.model_a = r0 + (self.model_a - r0) * keep
        self.model_e *= keep
        self._history.append((s_mm, self.model_a, self.model_e))

    def bead(self, bead_s_mm: float, bead_width_mm: float, ds_mm: float) -> None:
        history = self._history
        while len(history) > 2 and history[1][0] <= bead_s_mm:
            history.popleft()
        (s0, a0, e0), (s1, a1, e1) = history[0], history[1]
        f = min(max((bead_s_mm - s0) / (s1 - s0), 0.0), 1.0) if s1 > s0 else 1.0
        a, e = a0 + f * (a1 - a0), e0 + f * (e1 - e0)
        measured = (bead_width_mm / 6.0) ** 2
        forget = math.exp(-ds_mm / self.memory_mm)
        self._num = forget * self._num + a * (measured - e)
        self._den = forget * self._den + a * a
        if self._den > 1.0:  # a few dozen samples of a developed bead
            self.drift = min(max(self._num / self._den - 1.0, -DRIFT_BOUND), DRIFT_BOUND)


class LookaheadBuffer:
    """Readings binned by seam position; per cell the estimated seam and what the tool must do there."""

    def __init__(self, config: AdjusterConfig) -> None:
        self.config = config
        # Accumulators per cell (index = position // CELL_MM): count and sums of s, gap, |mismatch|, lateral.
        self.n: list[int] = []
        self.sums: list[list[float]] = []
        # Resolved cells: centroid, gap, mismatch, lateral, heat needed, smoothed heat needed, force needed,
        # force with the ramp ahead folded in, and the speed cap (lost seam).
        self.first = -1
        self.resolved = 0  # cells first … resolved-1 have their seam estimate
        self.planned = 0  # cells first … planned-1 also have their smoothed heat
        self.centroid: list[float] = []
        self.gap: list[float] = []
        self.lateral: list[float] = []
        self.heat: list[float] = []
        self.heat_smooth: list[float] = []
        self.force: list[float] = []
        self.speed_cap: list[float] = []
        self.pending: list[int] = []
        self.last_known = -1
        self.lost_until_mm = -math.inf
        self._last_lost_cell = -2
        self.bridged_cells = 0
        self.lost_cells = 0
        self.seam_end_cell: int | None = None
        self._smooth_half = round(config.speed_smoothing_mm / 2.0 / CELL_MM)
        self._bridge_cells = int(config.bridge_max_mm / CELL_MM + 1e-9)
        # Force may fall this much per cell going back from a cell that needs it: ramp time at 25 mm/s.
        step_rate = FORCE_RATE_N_S * CONSUMER_STEP_S / config.sample_period_s * config.rate_margin * 0.9
        self.force_drop_per_cell = step_rate * CELL_MM / SPEED_RANGE_MM_S[1]

    def _grow(self, cell: int) -> None:
        while len(self.n) <= cell:
            self.n.append(0)
            self.sums.append([0.0, 0.0, 0.0, 0.0, 0.0])
            for column in (self.centroid, self.gap, self.lateral, self.heat, self.heat_smooth, self.force,
                           self.speed_cap):
                column.append(0.0)

    def start(self, sensor_s_mm: float) -> None:
        self.first = self.resolved = self.planned = int(sensor_s_mm / CELL_MM)
        self._grow(self.first)

    def add(self, s_mm: float, gap_mm: float, mismatch_mm: float, lateral_mm: float) -> None:
        cell = int(s_mm / CELL_MM)
        if cell < self.resolved:
            return  # late reading for a cell already decided
        self._grow(cell)
        self.n[cell] += 1
        sums = self.sums[cell]
        sums[0] += s_mm
        sums[1] += gap_mm
        sums[2] += abs(mismatch_mm)
        sums[3] += lateral_mm

    def advance(self, sensor_s_mm: float) -> None:
        """Resolve every cell whose neighbour ahead the sensor has left behind."""
        last = int(sensor_s_mm / CELL_MM) - 2
        if last >= self.resolved:
            self._grow(last + 1)
        while self.resolved <= last:
            self._estimate(self.resolved)
            self.resolved += 1

    def _estimate(self, k: int) -> None:
        n, sums = self.n, self.sums
        count = 0
        total = [0.0, 0.0, 0.0, 0.0]
        worst_gap = worst_mismatch = -math.inf
        for j in (k - 1, k, k + 1):
            if j < self.first or n[j] == 0:
                continue
            count += n[j]
            for i in range(4):
                total[i] += sums[j][i]
            worst_gap = max(worst_gap, sums[j][1] / n[j])
            worst_mismatch = max(worst_mismatch, sums[j][2] / n[j])
        if count == 0 or self.n[k] == 0 and self.seam_end_cell is not None and k >= self.seam_end_cell:
            self._no_reading(k)
            return
        self.centroid[k] = total[0] / count
        self.gap[k] = total[1] / count
        self.lateral[k] = total[3] / count
        self.force[k] = min(required_force_n(worst_gap, worst_mismatch) + self.config.force_margin_n,
                            FORCE_RANGE_N[1])
        self.speed_cap[k] = math.inf
        self._bridge_to(k)
        self.last_known = k
        self._plan(k)

    def _no_reading(self, k: int) -> None:
        if self.seam_end_cell is not None and k >= self.seam_end_cell:
            for j in self.pending + [k]:  # past the seam end: nothing to see, nothing to weld
                self._hold(j, math.inf)
                self._plan(j)
            self.pending.clear()
            return
        self.pending.append(k)
        still_lost = self._last_lost_cell == k - 1
        if len(self.pending) <= self._bridge_cells and not still_lost:
            return
        for j in self.pending:
            self._hold(j, self.config.lost_speed_mm_s)
            self.lost_cells += 1
            self._plan(j)
        self._last_lost_cell = k
        self.lost_until_mm = (k + 1) * CELL_MM
        self.pending.clear()

    def _hold(self, k: int, speed_cap: float) -> None:
        src = self.last_known if self.last_known >= 0 else k
        self.centroid[k] = (k + 0.5) * CELL_MM
        self.gap[k], self.lateral[k], self.force[k] = self.gap[src], self.lateral[src], self.force[src]
        self.speed_cap[k] = speed_cap

    def _bridge_to(self, k: int) -> None:
        """Fill the pending cells by interpolating between the last known cell and cell k."""
        if not self.pending:
            return
        src = self.last_known if self.last_known >= 0 else k
        for j in self.pending:
            f = (j - src) / (k - src) if k > src else 1.0
            self.centroid[j] = (j + 0.5) * CELL_MM
            self.gap[j] = self.gap[src] + f * (self.gap[k] - self.gap[src])
            self.lateral[j] = self.lateral[src] + f * (self.lateral[k] - self.lateral[src])
            self.force[j] = max(self.force[src], self.force[k])
            self.speed_cap[j] = math.inf
            self.bridged_cells += 1
            self._plan(j)
        self.pending.clear()

    def _plan(self, k: int) -> None:
        """Cell k has its seam estimate: derive its heat need, smooth, and fold its force need backwards."""
        self.heat[k] = required_heat_j_mm(self.gap[k])
        drop = self.force_drop_per_cell
        force = self.force
        j = k - 1
        while j >= self.first and force[j] < force[j + 1] - drop:
            force[j] = force[j + 1] - drop
            j -= 1
        h = self._smooth_half
        centre = k - h
        while self.planned <= centre or (h == 0 and self.planned <= k):
            c = self.planned
            lo, hi = max(c - h, self.first), c + h
            self.heat_smooth[c] = sum(self.heat[lo:hi + 1]) / (hi + 1 - lo)
            self.planned += 1

    def cell_of(self, s_mm: float) -> int:
        """Return the planned cell at a tool position (the first seen cell stands in before it)."""
        return min(max(int(s_mm / CELL_MM), self.first), self.planned - 1)

    def lateral_at(self, s_mm: float) -> float:
        """Lateral deviation at s, linear between cell centroids."""
        k = self.cell_of(s_mm)
        c = self.centroid
        j = k + 1 if s_mm >= c[k] else k - 1
        if j < self.first or j >= self.planned or c[j] == c[k]:
            return self.lateral[k]
        f = (s_mm - c[k]) / (c[j] - c[k])
        return self.lateral[k] + f * (self.lateral[j] - self.lateral[k])


class WeldAdjuster:
    def __init__(self, mode: str = 'closed', config: AdjusterConfig = AdjusterConfig(),
                 start_stamp_s: float = 0.0, seam_length_mm: float | None = None, lead_in_mm: float = 0.0,
                 strike_timeout_s: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f'adjuster mode {mode!r} is not one of {", ".join(MODES)}')
        if seam_length_mm is not None and not (math.isfinite(seam_length_mm) and seam_length_mm > 0.0):
            raise ValueError(f'seam_length_mm {seam_length_mm!r} must be a positive length')
        if not math.isfinite(start_stamp_s):
            raise ValueError(f'start_stamp_s {start_stamp_s!r} is not finite')
        if not (math.isfinite(lead_in_mm) and 0.0 <= lead_in_mm < LOOKAHEAD_MM):
            raise ValueError(f'lead_in_mm {lead_in_mm!r} must be in [0, {LOOKAHEAD_MM:g}) mm')
        if strike_timeout_s is not None and not (math.isfinite(strike_timeout_s) and strike_timeout_s > 0.0):
            raise ValueError(f'strike_timeout_s {strike_timeout_s!r} must be a positive number of seconds')
        self.mode = mode
        self.config = config
        # Started `lead_in_mm` before the seam start (at the nominal speed's time): the arc is not on until s = 0.
        self.tool_s_mm = -lead_in_mm
        self._start_stamp_s = self._stamp_s = start_stamp_s
        self.strike_source = ''
        self._strike_s: float | None = None
        # Without a strike signal the clock's seam start ends the lead-in; with one, the clock is the fallback.
        self._strike_deadline_s = (-math.inf if strike_timeout_s is None
                                   else start_stamp_s + lead_in_mm / NOMINAL[0] + strike_timeout_s)
        # A strike may come before the start is served (weld.loop_watch.StrikeRelay), by up to the timeout.
        self._earliest_strike_s = start_stamp_s - (strike_timeout_s or 0.0)
        self.speed_mm_s, self.force_n, self.correction_mm = NOMINAL
        self._applied_correction_mm = 0.0  # model of the tool's lag
        self.gate = OutlierGate(config.outlier_gate_mm)
        self.buffer = LookaheadBuffer(config)
        if seam_length_mm is not None:
            self.buffer.seam_end_cell = int(seam_length_mm / CELL_MM) + 1
        if mode == 'closed':
            prior_samples = config.initial_drift_mm / (NOMINAL[0] * config.sample_period_s)
            self.drift = DriftEstimator(config.drift_memory_mm, config.initial_drift, prior_samples)
        else:  # the other modes assume the recipe power
            self.drift = DriftEstimator(config.drift_memory_mm)
        self._welding = False
        per_sample = CONSUMER_STEP_S * config.rate_margin
        self._max_step = (SPEED_RATE_MM_S2 * per_sample, FORCE_RATE_N_S * per_sample,
                          CORRECTION_RATE_MM_S * per_sample)
        # Braking assumed by the planner: the average rate of one limited change per sample, with margin.
        self._plan_decel = SPEED_RATE_MM_S2 * per_sample / config.sample_period_s * 0.9
        self._lead_s = LAG_TAU_S + config.sample_period_s / 2.0

    def initial_setpoint(self) -> WeldSetpoint:
        return WeldSetpoint(self._stamp_s, *NOMINAL, AdjusterFault.NONE, 0.0, 0.0)

    def approach(self, sensor_s_mm: float, sample: SeamMeasurement) -> None:
        """Take a look-ahead reading of the approach pass: the sensor at `sensor_s_mm`, before the arc starts.

        The robot carries the sensor over the first 30 mm on its way to the seam start; with no correction
        applied yet, the lateral reading is the seam's deviation itself. Readings go through the same gate
        and buffer as the weld's; their stamps are not used.
        """
        if self._welding:
            raise ValueError('approach readings must come before the first weld sample')
        if not (math.isfinite(sensor_s_mm) and 0.0 <= sensor_s_mm < LOOKAHEAD_MM):
            raise ValueError(f'approach reading at s = {sensor_s_mm!r} mm is outside [0, {LOOKAHEAD_MM:g}) mm')
        if self.mode != 'open':
            self._take_lookahead(sample, sensor_s_mm, 0.0)

    def update(self, sample: SeamMeasurement) -> WeldSetpoint:
        """Take one sensor sample and return the setpoint to hold until the next one."""
        self._welding = True
        dt = sample.stamp_s - self._stamp_s
        if not dt > 0.0:
            raise ValueError(f'sample stamp {sample.stamp_s!r} is not after the previous {self._stamp_s!r}')
        self._stamp_s = sample.stamp_s
        if not self.strike_source:   # still in the lead-in
            if self._lead_in(sample, dt):
                return WeldSetpoint(sample.stamp_s, *NOMINAL, AdjusterFault.NONE, min(self.tool_s_mm, 0.0),
                                    self.drift.drift)
            if self.tool_s_mm > 0.0:   # the seam the tool passed before the lead-in ended: welded at the nominal
                self._advance_drift(self.tool_s_mm)
        else:
            self._track_tool(dt)
        if self.mode == 'open':
            return WeldSetpoint(sample.stamp_s, *NOMINAL, AdjusterFault.NONE, self.tool_s_mm, 0.0)
        self._take_lookahead(sample, self.tool_s_mm + LOOKAHEAD_MM, self._applied_correction_mm)
        if self.mode == 'closed' and sample.bead_valid and math.isfinite(sample.bead_width_mm) \
                and self.tool_s_mm >= BEAD_BEHIND_MM:
            self.drift.bead(self.tool_s_mm - BEAD_BEHIND_MM, sample.bead_width_mm,
                            self.speed_mm_s * dt)
        self._plan_outputs()
        buffer = self.buffer
        fault = AdjusterFault.SEAM_LOST if buffer.lost_until_mm > self.tool_s_mm else AdjusterFault.NONE
        return WeldSetpoint(sample.stamp_s, self.speed_mm_s, self.force_n, self.correction_mm, fault,
                            self.tool_s_mm, self.drift.drift)

    @property
    def waits_for_strike(self) -> bool:
        """Whether the lead-in ends at the arc's strike (built with `strike_timeout_s`), not by the clock alone."""
        return math.isfinite(self._strike_deadline_s)

    @property
    def strike_missed(self) -> bool:
        """Whether the lead-in waited for the strike and the clock had to end it (the node warns)."""
        return self.waits_for_strike and self.strike_source == 'clock'

    def arc_struck(self, stamp_s: float) -> bool:
        """Take the arc's strike at `stamp_s` (the tool at s = 0); tell whether it is the one the lead-in waits for.

        A strike after the lead-in ended (the clock's fallback, or an earlier strike) changes nothing. One stamped
        before this weld's start by up to `strike_timeout_s` is this weld's, struck while its start was on the way
        (the coordinator commands the arc and starts the adjuster together); an earlier one belongs to another
        weld and is refused.
        """
        if not math.isfinite(stamp_s):
            raise ValueError(f'arc strike stamp {stamp_s!r} is not finite')
        if stamp_s < self._earliest_strike_s:
            slack_s = self._start_stamp_s - self._earliest_strike_s
            raise ValueError(f'arc strike at {stamp_s:.3f} s is from before this weld (started at '
                             f'{self._start_stamp_s:.3f} s; a strike up to {slack_s:g} s earlier counts)')
        if self.strike_source or self._strike_s is not None:
            return False
        self._strike_s = stamp_s
        return True

    def _lead_in(self, sample: SeamMeasurement, dt: float) -> bool:
        """Run the tool up to the seam start at the nominal settings; tell whether it is still before it.

        The sensor is 30 mm ahead, so the lead-in's readings are approach readings of the seam's first mm, and
        the initial setpoint is held: the process starts at s = 0 with exactly the nominal settings (§6). The
        readings are placed where the tool is believed to be (by the clock, by the strike once it is known); a
        strike that moves it back only makes the next few readings late for cells already decided.
        """
        strike_s = self._strike_s
        if strike_s is None:
            self.tool_s_mm += self.speed_mm_s * dt
        else:   # the strike put the tool at s = 0 at its stamp
            self.tool_s_mm = self.speed_mm_s * (sample.stamp_s - strike_s)
        if strike_s is not None and sample.stamp_s >= strike_s:
            self.strike_source = 'signal'
        elif strike_s is None and self.tool_s_mm >= 0.0 and sample.stamp_s > self._strike_deadline_s:
            self.strike_source = 'clock'
        else:
            if self.mode != 'open':
                self._take_lookahead(sample, self.tool_s_mm + LOOKAHEAD_MM, 0.0)
            return True
        return False

    def _track_tool(self, dt: float) -> None:
        """Tool tracker: the held setpoint moved the tool and the correction lag since the last sample."""
        ds = self.speed_mm_s * dt
        self.tool_s_mm += ds
        u = self.correction_mm
        self._applied_correction_mm = u + (self._applied_correction_mm - u) * math.exp(-dt / LAG_TAU_S)
        self._advance_drift(ds)

    def _advance_drift(self, ds_mm: float) -> None:
        """Model the bead the tool laid over its last `ds_mm` (up to tool_s_mm) for the drift estimate."""
        if self.mode == 'closed':
            buffer = self.buffer
            gap = buffer.gap[buffer.cell_of(self.tool_s_mm)] if buffer.planned > buffer.first >= 0 else 0.0
            self.drift.advance(self.tool_s_mm, ds_mm, self.speed_mm_s, gap)

    def _take_lookahead(self, sample: SeamMeasurement, sensor_s: float, applied_correction_mm: float) -> None:
        buffer = self.buffer
        if buffer.first < 0:
            buffer.start(sensor_s)
        if sample.lookahead_valid and math.isfinite(sample.gap_mm) and math.isfinite(sample.mismatch_mm) \
                and math.isfinite(sample.lateral_mm):
            # The sensor reads the seam relative to where the tool is steered now.
            lateral = sample.lateral_mm + applied_correction_mm
            passed = self.gate.push((sensor_s, sample.gap_mm, sample.mismatch_mm, lateral))
            if passed is not None:
                buffer.add(*passed)
        buffer.advance(sensor_s)

    def _plan_outputs(self) -> None:
        """Rate limiter: desired outputs at the tool, bounded by what the rates allow ahead and now."""
        buffer = self.buffer
        if buffer.planned <= buffer.first:
            return  # nothing seen yet: hold the nominal settings
        s = self.tool_s_mm
        lo_v, hi_v = SPEED_RANGE_MM_S
        heat_per_s = RECIPE_HEAT_PER_S * (1.0 + self.drift.drift) / self.config.target_heat_ratio
        k = buffer.cell_of(s)
        heat_smooth, speed_cap = buffer.heat_smooth, buffer.speed_cap
        speed = min(heat_per_s / heat_smooth[k], speed_cap[k])
        # Brake in time for every slower cell ahead: v² ≤ v_j² + 2·a·distance.
        two_a = 2.0 * self._plan_decel
        reach = (self.speed_mm_s * self.speed_mm_s - lo_v * lo_v) / two_a + CELL_MM
        last = min(int((s + reach) / CELL_MM) + 1, buffer.planned - 1)
        for j in range(k + 1, last + 1):
            v_j = min(heat_per_s / heat_smooth[j], speed_cap[j], hi_v)
            allowed = math.sqrt(v_j * v_j + two_a * max(j * CELL_MM - s, 0.0))
            if allowed < speed:
                speed = allowed
        force = buffer.force
        force_needed = force[k]
        if k + 1 < buffer.planned:
            ramp = buffer.force_drop_per_cell * ((k + 1) * CELL_MM - s) / CELL_MM
            force_needed = max(force_needed, force[k + 1] - ramp)
        correction = buffer.lateral_at(s + self.speed_mm_s * self._lead_s)
        dv, df, du = self._max_step
        self.speed_mm_s = _limit(speed, self.speed_mm_s, dv, lo_v, hi_v)
        self.force_n = _limit(force_needed, self.force_n, df, *FORCE_RANGE_N)
        self.correction_mm = _limit(correction, self.correction_mm, du, *CORRECTION_RANGE_MM)


def _limit(target: float, previous: float, max_step: float, low: float, high: float) -> float:
    """Move from previous towards target by at most max_step, inside [low, high]."""
    value = min(max(target, previous - max_step), previous + max_step)
    return min(max(value, low), high)
