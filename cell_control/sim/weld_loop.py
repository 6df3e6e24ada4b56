"""Weld one seam with the process model in the loop of the adjuster, and score it (`cell-control weld-eval`).

Public API:
    run_weld_eval(seam, mode='closed', power_drift=0.0, dropout_rate=0.0, outlier_rate=0.0, seed=0,
                  prescan=True, initial_drift=None)
        -> WeldEvalResult   (.summary: the JSON keys of weld-eval; .trace: per-sample values for plots;
                             .drift_estimate: the adjuster's δ̂ at the seam end, to carry to the next seam)
    approach_samples(seam, dropout_rate, outlier_rate, seed) -> [(sensor_s_mm, SeamMeasurement)]
    (t_ref_s in the summary is weld.process_model.reference_weld_time_s)

The loop is the one the ROS nodes run: the process steps at 1 ms; on each sensor tick (2 ms) the adjuster
turns the sample into a setpoint, which is held for the next two steps. The adjuster's compute time is
measured per sample around `WeldAdjuster.update` only.

The approach pass (`prescan`, on by default): the sensor is 30 mm ahead of the tool, so on its way to the
seam start the robot carries the sensor over s ∈ [0, 30) before the arc is struck, at the nominal 16 mm/s.
Those samples come from the same sensor model as the weld's (§6: 2 ms period, gap and mismatch noise σ 0.03
mm, lateral σ 0.05 mm, the same dropout and outlier rates; no bead yet, no correction applied) and are given
to `WeldAdjuster.approach` before the first weld sample. They use their own random stream (seeded from
`seed`), so the weld's sensor noise is the same with and without the approach pass. The process model is
not touched: the weld still starts at s = 0 with the nominal settings and r̄(0) = 1.

`initial_drift` is the drift estimate the adjuster starts from (AdjusterConfig.initial_drift, trusted as
CARRIED_DRIFT_MM of bead): a cell that welds seams in a sequence with the same torch passes on the last
seam's estimate (the weld_statistics benchmark does); None is a cold start.
"""
import random
import time
from dataclasses import dataclass, field

from cell_control.weld.seam_profile import SeamProfile
from cell_control.weld.adjuster import AdjusterConfig, AdjusterFault, WeldAdjuster
from cell_control.weld.process_model import reference_weld_time_s
from cell_control.weld.seam_measurement import LOOKAHEAD_VALID, SeamMeasurement
from cell_control.sim.weld_process import (GAP_NOISE_MM, LATERAL_NOISE_MM, LOOKAHEAD_MM, NOMINAL_SPEED_MM_S,
                                           OUTLIER_GAP_MM, SAMPLE_STEPS, STEP_S, WeldProcess)

SUMMARY_KEYS = ('quality_pct', 'defect_mm', 'lateral_rms_mm', 'weld_time_s', 'limit_violations',
                'latency_p50_us', 'latency_p99_us', 't_ref_s')
CARRIED_DRIFT_MM = 30.0  # a carried drift estimate counts as this much bead seen with the same torch


@dataclass
class WeldTrace:
    """Values along the seam, one entry per sensor sample."""

    s_mm: list[float] = field(default_factory=list)
    gap_mm: list[float] = field(default_factory=list)
    lateral_mm: list[float] = field(default_factory=list)
    speed_mm_s: list[float] = field(default_factory=list)
    force_n: list[float] = field(default_factory=list)
    required_force_n: list[float] = field(default_factory=list)
    correction_mm: list[float] = field(default_factory=list)
    heat_ratio_filtered: list[float] = field(default_factory=list)
    good: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class WeldEvalResult:
    summary: dict[str, float | int]
    trace: WeldTrace
    fault_samples: int  # samples whose setpoint carried a fault
    seam_name: str
    mode: str
    drift_estimate: float  # δ̂ at the seam end


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float('nan')
    return sorted_values[min(int(fraction * len(sorted_values)), len(sorted_values) - 1)]


def approach_samples(seam: SeamProfile, dropout_rate: float, outlier_rate: float,
                     seed: int) -> list[tuple[float, SeamMeasurement]]:
    """Sensor samples of the approach pass over s ∈ [0, 30 mm), with the draws in the weld's order."""
    rng = random.Random(f'approach-{seed}')
    period_s = STEP_S * SAMPLE_STEPS
    samples = []
    count = int(min(LOOKAHEAD_MM, seam.length_mm) / (NOMINAL_SPEED_MM_S * period_s))
    for i in range(count):
        s_mm = i * NOMINAL_SPEED_MM_S * period_s
        dropped = rng.random() < dropout_rate
        gap_noise = rng.gauss(0.0, GAP_NOISE_MM)
        mismatch_noise = rng.gauss(0.0, GAP_NOISE_MM)
        lateral_noise = rng.gauss(0.0, LATERAL_NOISE_MM)
        outlier = rng.random() < outlier_rate
        if dropped:
            samples.append((s_mm, SeamMeasurement((i - count) * period_s, i, 0, 0.0, 0.0, 0.0, 0.0)))
            continue
        gap, mismatch, lateral = seam.at(s_mm)
        samples.append((s_mm, SeamMeasurement(
            (i - count) * period_s, i, LOOKAHEAD_VALID, gap + gap_noise + (OUTLIER_GAP_MM if outlier else 0.0),
            mismatch + mismatch_noise, lateral + lateral_noise, 0.0)))
    return samples


def run_weld_eval(seam: SeamProfile, mode: str = 'closed', power_drift: float = 0.0,
                  dropout_rate: float = 0.0, outlier_rate: float = 0.0, seed: int = 0, prescan: bool = True,
                  initial_drift: float | None = None) -> WeldEvalResult:
    """Weld the seam with the adjuster in the loop (after the approach pass, if `prescan`) and score it."""
    process = WeldProcess(seam, power_drift, dropout_rate, outlier_rate, seed)
    config = AdjusterConfig() if initial_drift is None else AdjusterConfig(
        initial_drift=initial_drift, initial_drift_mm=CARRIED_DRIFT_MM)
    adjuster = WeldAdjuster(mode, config, seam_length_mm=seam.length_mm)
    if prescan:
        for sensor_s_mm, sample in approach_samples(seam, dropout_rate, outlier_rate, seed):
            adjuster.approach(sensor_s_mm, sample)
    setpoint = adjuster.initial_setpoint()
    trace = WeldTrace()
    latencies_us: list[float] = []
    faults = 0
    clock = time.perf_counter_ns
    while not process.done:
        sample = process.step(setpoint.speed_mm_s, setpoint.force_n, setpoint.correction_mm)
        if sample is None:
            continue
        started = clock()
        setpoint = adjuster.update(sample)
        latencies_us.append((clock() - started) / 1000.0)
        faults += setpoint.fault != AdjusterFault.NONE
        state = process.last
        gap, _, lateral = seam.at(state.s_mm)
        trace.s_mm.append(state.s_mm)
        trace.gap_mm.append(gap)
        trace.lateral_mm.append(lateral)
        trace.speed_mm_s.append(state.speed_mm_s)
        trace.force_n.append(state.force_n)
        trace.required_force_n.append(state.required_force_n)
        trace.correction_mm.append(state.correction_mm)
        trace.heat_ratio_filtered.append(state.heat_ratio_filtered)
        trace.good.append(state.good)
    metrics = process.metrics()
    latencies_us.sort()
    summary = {
        'quality_pct': metrics.quality_pct,
        'defect_mm': metrics.defect_mm,
        'lateral_rms_mm': metrics.lateral_rms_mm,
        'weld_time_s': metrics.weld_time_s,
        'limit_violations': metrics.limit_violations,
        'latency_p50_us': _percentile(latencies_us, 0.50),
        'latency_p99_us': _percentile(latencies_us, 0.99),
        't_ref_s': reference_weld_time_s(seam, power_drift),
    }
    return WeldEvalResult(summary, trace, faults, seam.name, mode, setpoint.drift_estimate)
