"""The weld adjuster against the process model: planning ahead, rate limits, outliers, dropouts, drift."""
import dataclasses
from collections.abc import Callable

import pytest

from cell_control.weld.seam_measurement import BEAD_VALID, LOOKAHEAD_VALID, SeamMeasurement
from cell_control.weld.seam_profile import SeamProfile
from cell_control.weld.adjuster import AdjusterConfig, AdjusterFault, WeldAdjuster, WeldSetpoint
from cell_control.sim.weld_process import LIMITS, WeldProcess, required_force_n

RATES = {'speed_mm_s': 50.0, 'force_n': 1000.0, 'correction_mm': 20.0}


def step_seam() -> SeamProfile:
    """Flat, then a sharp gap and mismatch step at 80 mm, on a lateral ramp."""
    return SeamProfile('step', (0.0, 79.0, 80.0, 160.0), (0.2, 0.2, 1.6, 1.6), (0.0, 0.0, 0.8, 0.8),
                       (0.0, 0.79, 0.8, 0.0))


def weld(seam: SeamProfile, mode: str = 'closed', drift: float = 0.0, dropout: float = 0.0,
         outlier: float = 0.0, seed: int = 1,
         alter: Callable[[SeamMeasurement, float], SeamMeasurement] | None = None,
         ) -> tuple[WeldProcess, WeldAdjuster, list[tuple[float, WeldSetpoint]]]:
    """Run the loop as weld-eval does; `alter` may change a sample (given the tool position)."""
    process = WeldProcess(seam, drift, dropout, outlier, seed)
    adjuster = WeldAdjuster(mode, seam_length_mm=seam.length_mm)
    setpoint = adjuster.initial_setpoint()
    history = []
    while not process.done:
        sample = process.step(setpoint.speed_mm_s, setpoint.force_n, setpoint.correction_mm)
        if sample is not None:
            if alter is not None:
                sample = alter(sample, process.s_mm)
            setpoint = adjuster.update(sample)
            history.append((process.s_mm, setpoint))
    return process, adjuster, history


def test_every_emitted_change_fits_the_rate_limit_of_one_1_ms_step() -> None:
    process, _, history = weld(step_seam(), drift=-0.1, dropout=0.05, outlier=0.01)
    setpoints = [h[1] for h in history]
    for name, rate in RATES.items():
        limit = LIMITS[name]
        values = [getattr(p, name) for p in setpoints]
        assert all(limit.low <= v <= limit.high for v in values)
        assert max(abs(b - a) for a, b in zip(values, values[1:])) <= rate * 0.001
    assert process.metrics().limit_violations == 0


def test_speed_and_force_are_in_place_when_the_tool_reaches_a_gap_step() -> None:
    process, _, history = weld(step_seam(), drift=0.0)
    at_step = next(p for s, p in history if s >= 80.0)
    before = next(p for s, p in history if s >= 70.0)
    assert at_step.force_n >= required_force_n(1.6, 0.8)
    assert before.force_n < required_force_n(1.6, 0.8) - 50.0  # the force was not simply held high
    # r̄ = 1.01 needs 1600/(100·1.64·1.01) = 9.7 mm/s on the wide gap and 14.7 before it
    assert before.speed_mm_s == pytest.approx(14.6, abs=0.3)
    assert at_step.speed_mm_s < 13.0  # braking started ahead of the step
    after = next(p for s, p in history if s >= 84.0)
    assert after.speed_mm_s == pytest.approx(9.6, abs=0.3)
    assert process.metrics().quality_pct >= 99.5


def test_the_tool_position_is_tracked_from_the_commanded_speed() -> None:
    _, adjuster, history = weld(step_seam())
    assert all(abs(p.tool_s_mm - s) < 1e-6 for s, p in history)
    assert adjuster.tool_s_mm == pytest.approx(history[-1][0])


def test_closed_mode_estimates_the_power_drift_and_tracks_the_seam() -> None:
    for drift in (-0.1, 0.1):
        process, _, history = weld(step_seam(), drift=drift, dropout=0.01, outlier=0.002)
        assert history[-1][1].drift_estimate == pytest.approx(drift, abs=0.01)
        metrics = process.metrics()
        assert metrics.quality_pct >= 99.5
        assert metrics.lateral_rms_mm <= 0.05
    _, _, history = weld(step_seam(), mode='feedforward', drift=0.1)
    assert history[-1][1].drift_estimate == 0.0


def test_open_mode_holds_the_nominal_settings() -> None:
    _, _, history = weld(step_seam(), mode='open')
    assert {(p.speed_mm_s, p.force_n, p.correction_mm) for _, p in history} == {(16.0, 250.0, 0.0)}


def test_gap_outliers_are_rejected_by_the_gate() -> None:
    clean = weld(step_seam(), seed=5)
    spiked = weld(step_seam(), outlier=0.02, seed=5)
    assert spiked[1].gate.rejected >= 20
    # An accepted 2 mm outlier would raise the force need by 200 N; the force stays as without outliers.
    worst = max(abs(a[1].force_n - b[1].force_n) for a, b in zip(clean[2], spiked[2]))
    assert worst < 5.0
    assert spiked[0].metrics().quality_pct >= 99.5


def lose_sight(start_mm: float, end_mm: float) -> Callable[[SeamMeasurement, float], SeamMeasurement]:
    def alter(sample: SeamMeasurement, tool_s_mm: float) -> SeamMeasurement:
        if start_mm <= tool_s_mm + 30.0 <= end_mm:
            return dataclasses.replace(sample, flags=0)
        return sample
    return alter


def test_a_short_dropout_is_bridged_without_a_fault() -> None:
    process, adjuster, history = weld(step_seam(), alter=lose_sight(100.0, 102.0))
    assert adjuster.buffer.bridged_cells >= 2  # 4 cells dark, the edge ones filled by their neighbours
    assert all(p.fault == AdjusterFault.NONE for _, p in history)
    assert process.metrics().quality_pct >= 99.5


def test_a_long_dropout_slows_the_tool_and_raises_seam_lost_until_passed() -> None:
    process, adjuster, history = weld(step_seam(), alter=lose_sight(100.0, 110.0))
    faulted = [s for s, p in history if p.fault == AdjusterFault.SEAM_LOST]
    assert faulted and faulted[0] < 75.0  # raised when the sensor saw it, long before the tool got there
    assert max(faulted) == pytest.approx(110.0, abs=1.0)  # cleared once the tool has passed it
    in_lost = [p.speed_mm_s for s, p in history if 104.0 <= s <= 108.0]
    assert max(in_lost) <= AdjusterConfig().lost_speed_mm_s + 1e-9
    assert process.metrics().limit_violations == 0


def sample(stamp_s: float) -> SeamMeasurement:
    return SeamMeasurement(stamp_s, 1, 0, 0.0, 0.0, 0.0, 0.0)


def test_a_lead_in_holds_the_nominal_setpoint_and_scans_until_the_seam_start() -> None:
    # Started with the weld path's run-up, 5 mm (at 16 mm/s) before the seam: the arc strikes at s = 0 with the
    # nominal settings of §6, and the run-up's look-ahead readings (s + 30 mm) are the seam's, taken in advance.
    seam = step_seam()
    adjuster = WeldAdjuster('closed', seam_length_mm=seam.length_mm, lead_in_mm=5.0)
    stamp_s, tool_s = 0.0, -5.0
    while True:
        stamp_s += 0.002
        tool_s += 16.0 * 0.002
        gap, mismatch, lateral = seam.at(tool_s + 30.0)
        setpoint = adjuster.update(SeamMeasurement(stamp_s, 1, 1, gap, mismatch, lateral, 0.0))
        if tool_s >= 0.0:
            break
        assert (setpoint.speed_mm_s, setpoint.force_n, setpoint.correction_mm) == (16.0, 250.0, 0.0)
        assert setpoint.fault is AdjusterFault.NONE and setpoint.tool_s_mm == pytest.approx(tool_s)
    assert setpoint.tool_s_mm == pytest.approx(tool_s) and tool_s < 0.1
    assert adjuster.buffer.first >= 0, 'the run-up readings went into the look-ahead buffer'
    assert setpoint.speed_mm_s != 16.0 or setpoint.force_n != 250.0, 'from s = 0 on the adjuster plans'


def run_up(adjuster: WeldAdjuster, arm_delay_s: float, until_s: float,
           strike_heard_after: int | None = None) -> list[WeldSetpoint]:
    """Feed the run-up as the cell does: samples every 2 ms from the weld's start at 0, the arm `arm_delay_s` late.

    The arm runs up from 5 mm before the seam at the nominal 16 mm/s; the arc strikes as it crosses s = 0, and
    `arc_struck` is called `strike_heard_after` samples later (None: never).
    """
    seam = step_seam()
    strike_s = arm_delay_s + 5.0 / 16.0
    setpoints, heard, k = [], False, 0
    while (stamp_s := round((k := k + 1) * 0.002, 6)) <= until_s:
        if strike_heard_after is not None and not heard and stamp_s >= strike_s + 0.002 * strike_heard_after:
            assert adjuster.arc_struck(strike_s)
            heard = True
        tool_s = -5.0 + 16.0 * max(0.0, stamp_s - arm_delay_s)
        gap, mismatch, lateral = seam.at(min(tool_s + 30.0, seam.length_mm))
        setpoints.append(adjuster.update(SeamMeasurement(stamp_s, k, 1, gap, mismatch, lateral, 0.0)))
    return setpoints


NOMINAL_SETTINGS = (16.0, 250.0, 0.0)


def settings(setpoint: WeldSetpoint) -> tuple[float, float, float]:
    return setpoint.speed_mm_s, setpoint.force_n, setpoint.correction_mm


def test_with_the_clock_alone_an_arm_that_starts_late_meets_a_setpoint_already_changed_at_the_strike() -> None:
    # What the strike signal is for: the lead-in timed by the adjuster's clock ends 0.3 s before the late arm's
    # arc strikes, so the process would not strike at the nominal settings (a limit violation at the strike).
    adjuster = WeldAdjuster('closed', lead_in_mm=5.0)
    setpoints = run_up(adjuster, arm_delay_s=0.3, until_s=0.6)
    strike_s = 0.3 + 5.0 / 16.0
    assert settings([p for p in setpoints if p.stamp_s < strike_s][-1]) != NOMINAL_SETTINGS
    assert adjuster.strike_source == 'clock' and not adjuster.strike_missed, 'no strike was waited for'


@pytest.mark.parametrize('arm_delay_s, heard_after', [(0.3, 0), (0.3, 4), (-0.2, 0), (0.0, 10)])
def test_with_the_strike_signal_the_nominal_setpoint_holds_until_the_arc_strikes(arm_delay_s: float,
                                                                                 heard_after: int) -> None:
    # The arm late or early against the adjuster's start, the strike heard at once or some samples later: the
    # nominal setpoint holds up to the strike (and until it is heard), then the tool is where the strike puts it.
    adjuster = WeldAdjuster('closed', seam_length_mm=160.0, lead_in_mm=5.0, strike_timeout_s=1.0)
    setpoints = run_up(adjuster, arm_delay_s, until_s=1.5, strike_heard_after=heard_after)
    strike_s = arm_delay_s + 5.0 / 16.0
    heard_s = strike_s + 0.002 * heard_after
    held = [p for p in setpoints if p.stamp_s < heard_s - 1e-9]
    assert held and all(settings(p) == NOMINAL_SETTINGS and p.tool_s_mm <= 0.0 for p in held)
    first = next(p for p in setpoints if p.stamp_s >= heard_s - 1e-9)
    assert first.tool_s_mm == pytest.approx(16.0 * (first.stamp_s - strike_s), abs=1e-6)
    assert adjuster.strike_source == 'signal' and not adjuster.strike_missed
    assert settings(setpoints[-1]) != NOMINAL_SETTINGS, 'after the strike the adjuster plans'
    assert not adjuster.arc_struck(1.4), 'a second strike in the same weld changes nothing'


def test_without_a_strike_the_lead_in_ends_by_the_clock_after_the_timeout() -> None:
    adjuster = WeldAdjuster('closed', seam_length_mm=160.0, lead_in_mm=5.0, strike_timeout_s=0.5)
    setpoints = run_up(adjuster, arm_delay_s=0.0, until_s=1.2)
    deadline_s = 5.0 / 16.0 + 0.5
    assert all(settings(p) == NOMINAL_SETTINGS for p in setpoints if p.stamp_s <= deadline_s)
    first = next(p for p in setpoints if p.stamp_s > deadline_s)
    assert first.tool_s_mm == pytest.approx(16.0 * first.stamp_s - 5.0, abs=1e-6)
    assert adjuster.strike_source == 'clock' and adjuster.strike_missed
    assert not adjuster.arc_struck(1.1), 'a strike after the fallback changes nothing'


def test_a_lead_in_that_ends_with_the_tool_past_the_bead_reading_models_the_bead_laid_meanwhile() -> None:
    # Found at full speed: the first sample came 1 s after the strike, so the lead-in ended with the tool 16 mm
    # along and that sample's bead reading (15 mm behind the tool) met a bead model with nothing in it (the drift
    # estimator raised IndexError and the node died). The tool welded those 16 mm at the nominal settings.
    adjuster = WeldAdjuster('closed', seam_length_mm=160.0, lead_in_mm=5.0, strike_timeout_s=1.0)
    assert adjuster.arc_struck(0.0)
    readings = LOOKAHEAD_VALID | BEAD_VALID
    first = adjuster.update(SeamMeasurement(1.0, 1, readings, 0.5, 0.0, 0.0, 6.0))
    assert adjuster.strike_source == 'signal' and first.tool_s_mm == pytest.approx(16.0)
    assert adjuster.drift.model_a > 0.5, 'the bead of the first 16 mm is in the model'
    for k in range(2, 500):
        last = adjuster.update(SeamMeasurement(1.0 + 0.002 * k, k, readings, 0.5, 0.0, 0.0, 6.0))
    assert last.fault is AdjusterFault.NONE and -0.5 < last.drift_estimate < 0.5


def test_a_strike_from_before_the_weld_or_not_finite_is_refused() -> None:
    # up to the strike timeout before the start it is this weld's (its start was on the way: StrikeRelay)
    adjuster = WeldAdjuster('closed', start_stamp_s=10.0, lead_in_mm=5.0, strike_timeout_s=1.0)
    with pytest.raises(ValueError, match=r'arc strike at 8.900 s is from before this weld \(started at 10.000 s; '
                                         r'a strike up to 1 s earlier counts\)'):
        adjuster.arc_struck(8.9)
    with pytest.raises(ValueError, match='arc strike stamp nan is not finite'):
        adjuster.arc_struck(float('nan'))
    assert adjuster.strike_source == ''


def test_samples_must_come_in_stamp_order() -> None:
    adjuster = WeldAdjuster('closed', start_stamp_s=1.0)
    adjuster.update(sample(1.002))
    with pytest.raises(ValueError, match='not after the previous'):
        adjuster.update(sample(1.002))
    with pytest.raises(ValueError, match='not after the previous'):
        adjuster.update(sample(float('nan')))


@pytest.mark.parametrize('kwargs, message', [
    ({'mode': 'manual'}, "mode 'manual' is not one of open, feedforward, closed"),
    ({'seam_length_mm': -5.0}, 'seam_length_mm -5.0 must be a positive length'),
    ({'start_stamp_s': float('inf')}, 'start_stamp_s inf is not finite'),
    ({'lead_in_mm': 30.0}, r'lead_in_mm 30.0 must be in \[0, 30\) mm'),
    ({'lead_in_mm': -1.0}, r'lead_in_mm -1.0 must be in'),
    ({'strike_timeout_s': 0.0}, 'strike_timeout_s 0.0 must be a positive number of seconds'),
    ({'strike_timeout_s': float('inf')}, 'strike_timeout_s inf must be a positive'),
])
def test_bad_construction_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeldAdjuster(**kwargs)


@pytest.mark.parametrize('field, value', [
    ('target_heat_ratio', 1.2), ('force_margin_n', -1.0), ('outlier_gate_mm', 0.0), ('bridge_max_mm', 50.0),
    ('lost_speed_mm_s', 2.0), ('speed_smoothing_mm', float('nan')), ('drift_memory_mm', 0.0),
    ('sample_period_s', 0.0005), ('rate_margin', 1.5), ('initial_drift', -0.6), ('initial_drift_mm', -1.0),
])
def test_bad_settings_are_refused_by_name(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f'adjuster setting {field} = '):
        AdjusterConfig(**{field: value})
