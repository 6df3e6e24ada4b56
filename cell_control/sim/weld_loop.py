"""Weld one seam with the process model in the loop of the adjuster, and score it (`cell-control weld-eval`).

Public API:
    run_weld_eval(seam, mode='closed', power_drift=0.0, dropout_rate=0.0, outlier_rate=0.0, seed=0)
        -> WeldEvalResult   (.summary: the JSON keys of weld-eval; .trace: per-sample values for plots)
    (t_ref_s in the summary is weld.process_model.reference_weld_time_s)

The loop is the one the ROS nodes run: the process steps at 1 ms; on each sensor tick (2 ms) the adjuster
turns the sample into a setpoint, which is held for the next two steps. The adjuster's compute time is
measured per sample around `WeldAdjuster.update` only.
"""
import time
from dataclasses import dataclass, field

from cell_control.weld.seam_profile import SeamProfile
from cell_control.weld.adjuster import AdjusterFault, WeldAdjuster
from cell_control.sim.weld_process import WeldProcess
from cell_control.weld.process_model import reference_weld_time_s

SUMMARY_KEYS = ('quality_pct', 'defect_mm', 'lateral_rms_mm', 'weld_time_s', 'limit_violations',
                'latency_p50_us', 'latency_p99_us', 't_ref_s')


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


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float('nan')
    return sorted_values[min(int(fraction * len(sorted_values)), len(sorted_values) - 1)]


def run_weld_eval(seam: SeamProfile, mode: str = 'closed', power_drift: float = 0.0,
                  dropout_rate: float = 0.0, outlier_rate: float = 0.0, seed: int = 0) -> WeldEvalResult:
    process = WeldProcess(seam, power_drift, dropout_rate, outlier_rate, seed)
    adjuster = WeldAdjuster(mode, seam_length_mm=seam.length_mm)
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
    return WeldEvalResult(summary, trace, faults, seam.name, mode)
