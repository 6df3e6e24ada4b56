"""The process model of DESIGN §6: heat ratio, force, tracking, sensor geometry, metrics, limits."""
import math
import statistics

import pytest

from cell_control.weld.seam_profile import SeamProfile
from cell_control.sim.weld_process import LAG_TAU_S, STEP_S, WeldProcess


def flat_seam(length_mm: float = 60.0, gap_mm: float = 0.0, lateral_mm: float = 0.0) -> SeamProfile:
    return SeamProfile('flat', (0.0, length_mm), (gap_mm, gap_mm), (0.0, 0.0), (lateral_mm, lateral_mm))


def ramp_seam() -> SeamProfile:
    return SeamProfile('ramp', (0.0, 100.0), (0.0, 1.0), (0.0, 0.5), (0.0, 2.0))


def run(process: WeldProcess, speed: float = 16.0, force: float = 250.0, correction: float = 0.0) -> list:
    samples = []
    while not process.done:
        sample = process.step(speed, force, correction)
        if sample is not None:
            samples.append(sample)
    return samples


def test_nominal_settings_weld_a_tight_straight_seam_perfectly() -> None:
    process = WeldProcess(flat_seam())
    run(process)
    metrics = process.metrics()
    assert metrics.quality_pct == pytest.approx(100.0)
    assert metrics.defect_mm == pytest.approx(0.0, abs=1e-9)
    assert metrics.lateral_rms_mm == 0.0
    assert metrics.weld_time_s == pytest.approx(60.0 / 16.0)
    assert metrics.limit_violations == 0


def test_power_drift_scales_the_heat_ratio_and_r_bar_follows_over_five_mm() -> None:
    process = WeldProcess(flat_seam(gap_mm=0.5), power_drift=0.1)
    while process.s_mm < 5.0:
        process.step(16.0, 250.0, 0.0)
    expected_r = 0.8 * 2000.0 * 1.1 / 16.0 / (100.0 * 1.2)
    assert process.last.heat_ratio == pytest.approx(expected_r)
    # r̄(0) = 1, dr̄/ds = (r - r̄)/5 mm: after 5 mm it has gone 1 - 1/e of the way.
    expected_bar = expected_r + (1.0 - expected_r) * math.exp(-process.s_mm / 5.0)
    assert process.last.heat_ratio_filtered == pytest.approx(expected_bar, rel=1e-6)


def test_too_little_force_or_heat_or_a_tracking_error_makes_the_weld_bad() -> None:
    for controls in ((16.0, 0.94 * 150.0, 0.0), (25.0, 250.0, 0.0), (16.0, 250.0, 0.31)):
        process = WeldProcess(flat_seam())
        run(process, *controls)
        assert process.metrics().quality_pct < 5.0, controls
        assert process.metrics().defect_mm > 25.0


def test_only_the_seam_after_the_first_30_mm_counts() -> None:
    process = WeldProcess(flat_seam(length_mm=40.0))
    while process.s_mm < 29.0:
        process.step(16.0, 50.0, 0.0)  # far too little force: bad, but not yet counted
    force = 50.0
    while not process.done:
        force = min(force + 0.9, 250.0)
        process.step(16.0, force, 0.0)
    metrics = process.metrics()
    assert metrics.limit_violations == 1  # the jump from the initial 250 N to 50 N
    assert metrics.defect_mm < 1.0
    assert metrics.quality_pct > 90.0


def test_correction_reaches_the_tool_through_a_20_ms_lag() -> None:
    process = WeldProcess(flat_seam(lateral_mm=0.02))
    for _ in range(round(LAG_TAU_S / STEP_S)):
        process.step(16.0, 250.0, 0.02 * 20)  # 0.4 mm steps up by 0.02 mm per step: within 20 mm/s
    assert process.metrics().limit_violations == 1  # the first step jumped 0.4 mm
    process = WeldProcess(flat_seam(lateral_mm=1.0))
    applied = 0.0
    for _ in range(20):
        process.step(16.0, 250.0, 0.0)
    u = 0.0
    for _ in range(50):
        u = min(u + 0.02, 1.0)
        process.step(16.0, 250.0, u)
        applied = u + (applied - u) * math.exp(-STEP_S / LAG_TAU_S)
    assert process.last.correction_mm == pytest.approx(applied)
    assert process.last.tracking_error_mm == pytest.approx(1.0 - applied)
    assert 0.5 < applied < 0.9


def test_limit_violations_count_steps_out_of_range_or_too_fast() -> None:
    process = WeldProcess(flat_seam())
    process.step(16.05, 251.0, 0.02)  # exactly at the rate limits: fine
    assert process.metrics().limit_violations == 0
    process.step(16.2, 251.0, 0.02)  # speed changes 0.15 mm/s in 1 ms > 0.05
    process.step(16.2, 253.0, 0.02)  # force changes 2 N in 1 ms > 1 N
    process.step(16.2, 253.0, 0.05)  # correction 0.03 mm in 1 ms > 0.02
    assert process.metrics().limit_violations == 3
    process = WeldProcess(flat_seam())
    process.step(16.0, 250.0, 0.0)
    for _ in range(3):
        process.step(16.0, 250.0, 0.0)
    assert process.metrics().limit_violations == 0


def test_sensor_samples_every_2_ms_ahead_and_behind_the_tool() -> None:
    seam = ramp_seam()
    process = WeldProcess(seam, seed=3)
    lateral_errors, gap_errors, beads = [], [], []
    step = 0
    while not process.done:
        sample = process.step(16.0, 250.0, 0.0)
        step += 1
        assert (sample is not None) == (step % 2 == 0)
        if sample is None:
            continue
        assert sample.stamp_s == pytest.approx(process.t_s)
        assert sample.lookahead_valid == (process.s_mm + 30.0 <= seam.length_mm)
        assert sample.bead_valid == (process.s_mm >= 15.0)
        if sample.lookahead_valid:
            gap, _, lateral = seam.at(process.s_mm + 30.0)
            gap_errors.append(sample.gap_mm - gap)
            lateral_errors.append(sample.lateral_mm - (lateral - process.last.correction_mm))
        if sample.bead_valid:
            beads.append(sample.bead_width_mm)
    assert statistics.fmean(gap_errors) == pytest.approx(0.0, abs=0.005)
    assert statistics.stdev(gap_errors) == pytest.approx(0.03, rel=0.1)
    assert statistics.stdev(lateral_errors) == pytest.approx(0.05, rel=0.1)
    assert beads  # bead width 6·sqrt(r̄) with r̄ < 1 on a widening gap
    assert statistics.fmean(beads[-200:]) < 6.0 * math.sqrt(0.95)


def test_bead_width_reads_r_bar_15_mm_behind() -> None:
    process = WeldProcess(flat_seam(length_mm=100.0), power_drift=0.21, seed=4)
    widths = [s.bead_width_mm for s in run(process) if s.bead_valid]
    assert statistics.fmean(widths[-500:]) == pytest.approx(6.0 * 1.1, rel=0.01)


def test_same_seed_gives_the_same_run_and_another_seed_does_not() -> None:
    def samples(seed: int) -> list:
        return run(WeldProcess(ramp_seam(), dropout_rate=0.1, outlier_rate=0.1, seed=seed))
    assert samples(7) == samples(7)
    assert samples(7) != samples(8)


def test_dropouts_and_outliers_at_their_rates() -> None:
    seam = flat_seam(length_mm=200.0, gap_mm=0.5)
    dropped = run(WeldProcess(seam, dropout_rate=1.0))
    assert all(s.flags == 0 for s in dropped)
    samples = run(WeldProcess(seam, dropout_rate=0.2, outlier_rate=0.1, seed=1))
    ahead = [s for s in samples[:-1000]]
    invalid = sum(not s.lookahead_valid for s in ahead) / len(ahead)
    assert invalid == pytest.approx(0.2, abs=0.03)
    outliers = [s for s in ahead if s.lookahead_valid and s.gap_mm > 1.5]
    assert len(outliers) / sum(s.lookahead_valid for s in ahead) == pytest.approx(0.1, abs=0.03)
    assert statistics.fmean(s.gap_mm for s in outliers) == pytest.approx(2.5, abs=0.02)


@pytest.mark.parametrize('kwargs, message', [
    ({'power_drift': -1.0}, 'power_drift'),
    ({'dropout_rate': 1.5}, 'dropout_rate 1.5 is not a probability'),
    ({'outlier_rate': -0.1}, 'outlier_rate -0.1 is not a probability'),
])
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeldProcess(flat_seam(), **kwargs)


def test_a_seam_too_short_to_score_is_refused() -> None:
    with pytest.raises(ValueError, match='only the part after 30 mm'):
        WeldProcess(flat_seam(length_mm=30.0))


def test_non_finite_controls_and_steps_after_the_end_are_refused() -> None:
    process = WeldProcess(flat_seam())
    with pytest.raises(ValueError, match='finite'):
        process.step(float('nan'), 250.0, 0.0)
    run(process)
    with pytest.raises(RuntimeError, match='seam end'):
        process.step(16.0, 250.0, 0.0)
