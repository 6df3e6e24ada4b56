"""The approach pre-scan and the carried drift estimate: the start of a seam the adjuster used not to see."""
import pytest

from cell_control.cli import main
from cell_control.weld.adjuster import AdjusterConfig, WeldAdjuster
from cell_control.weld.seam_gen import generate_seam, write_seam_csv
from cell_control.weld.seam_measurement import SeamMeasurement
from cell_control.sim.weld_loop import approach_samples, run_weld_eval


def test_approach_samples_cover_the_first_30_mm_with_the_sensor_model() -> None:
    seam = generate_seam('smooth', 2, 100.0)
    samples = approach_samples(seam, 0.0, 0.0, seed=4)
    positions = [s for s, _ in samples]
    assert positions[0] == 0.0 and max(positions) < 30.0 and len(samples) == 937  # 16 mm/s, 2 ms
    errors = [m.gap_mm - seam.gap_at(s) for s, m in samples]
    assert abs(sum(errors) / len(errors)) < 0.005
    assert 0.025 < (sum(e * e for e in errors) / len(errors)) ** 0.5 < 0.035  # σ = 0.03 mm
    assert samples == approach_samples(seam, 0.0, 0.0, seed=4)
    assert all(not m.lookahead_valid for _, m in approach_samples(seam, 1.0, 0.0, seed=4))
    spiked = approach_samples(seam, 0.0, 1.0, seed=4)
    assert all(a.gap_mm == pytest.approx(b.gap_mm + 2.0) for (_, a), (_, b) in zip(spiked, samples))


def test_the_approach_fills_the_buffer_from_the_seam_start() -> None:
    seam = generate_seam('rough', 5, 100.0, gap_start_mm=1.0)
    adjuster = WeldAdjuster('closed', seam_length_mm=seam.length_mm)
    for s, sample in approach_samples(seam, 0.01, 0.002, seed=1):
        adjuster.approach(s, sample)
    buffer = adjuster.buffer
    assert buffer.first == 0 and buffer.planned >= 55
    assert buffer.gap[2] == pytest.approx(seam.gap_at(1.0), abs=0.1)
    with_scan = adjuster.update(SeamMeasurement(0.002, 1, 0, 0.0, 0.0, 0.0, 0.0))
    blind = WeldAdjuster('closed', seam_length_mm=seam.length_mm).update(
        SeamMeasurement(0.002, 1, 0, 0.0, 0.0, 0.0, 0.0))
    assert blind.speed_mm_s == 16.0  # nothing seen: nominal
    assert with_scan.speed_mm_s < 16.0  # gap 1 mm at the start: braking already


def test_approach_readings_are_refused_once_welding_or_off_the_first_30_mm() -> None:
    adjuster = WeldAdjuster('closed')
    reading = SeamMeasurement(0.0, 0, 1, 0.5, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r'approach reading at s = 30.0 mm is outside \[0, 30\) mm'):
        adjuster.approach(30.0, reading)
    adjuster.update(SeamMeasurement(0.002, 1, 0, 0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match='approach readings must come before the first weld sample'):
        adjuster.approach(1.0, reading)


def test_a_carried_drift_estimate_is_used_from_the_start_in_closed_mode_only() -> None:
    config = AdjusterConfig(initial_drift=0.1, initial_drift_mm=30.0)
    assert WeldAdjuster('closed', config).update(SeamMeasurement(0.002, 1, 0, 0, 0, 0, 0)).drift_estimate == 0.1
    assert WeldAdjuster('feedforward', config).update(SeamMeasurement(0.002, 1, 0, 0, 0, 0, 0)).drift_estimate == 0
    with pytest.raises(ValueError, match='adjuster setting initial_drift = 0.7 is out of range'):
        AdjusterConfig(initial_drift=0.7)


@pytest.mark.parametrize('drift', [-0.1, 0.1])
def test_a_rough_seam_with_a_gap_at_the_start_is_welded_cold(drift: float) -> None:
    """Issue 10: without the pre-scan r̄ overshot to 1.17 after 30 mm on such a seam."""
    seam = generate_seam('rough', 11, 250.0, gap_start_mm=1.0)
    result = run_weld_eval(seam, 'closed', drift, 0.01, 0.002, seed=11)
    trace = result.trace
    counted = [r for s, r in zip(trace.s_mm, trace.heat_ratio_filtered) if s >= 30.0]
    assert 0.95 <= min(counted) and max(counted) <= 1.10
    assert result.summary['quality_pct'] == 100.0
    assert result.drift_estimate == pytest.approx(drift, abs=0.01)
    carried = run_weld_eval(seam, 'closed', drift, 0.01, 0.002, seed=12, initial_drift=result.drift_estimate)
    assert carried.summary['quality_pct'] == 100.0


def test_weld_eval_takes_the_carried_estimate_and_can_skip_the_approach(tmp_path, capsys) -> None:
    path = tmp_path / 'rough.csv'
    with path.open('w') as file:
        write_seam_csv(generate_seam('rough', 3, 120.0), file)
    assert main(['weld-eval', str(path), '--power-drift', '0.1', '--initial-drift', '0.1', '--no-prescan']) == 0
    assert 'quality' in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(['weld-eval', str(path), '--initial-drift', '0.9'])
    assert refused.value.code == 2
    assert "'0.9' is not a drift estimate in [-0.5, 0.5]" in capsys.readouterr().err
