"""The maintenance scenario benchmark's parts (issue 13, point 3) on its cheap scenarios; the full run is a bench."""
import math

import pytest

from cell_control.bench import maintenance as bench
from cell_control.maintenance import ConditionStore, History, Level, predict
from cell_control.sim.degradation import DegradationConfig


def test_agv_round_trips_come_from_the_layout():
    layout = {'agv': {'home': {'a': {'x': 0.0, 'y': 3.0, 'yaw': 0.0}}},
              'docks': {'inbound': {'x': 2.0, 'y': 0.0, 'yaw': 0.0}}}
    # home (0, 3) → pre-dock (0.8, 0) → dock (2, 0), and back
    assert bench.round_trip_m(layout, 'a', 'inbound') == pytest.approx(2 * (math.hypot(0.8, 3.0) + 1.2))


def test_a_worn_bearing_warns_early_enough_and_ends_in_error():
    run = bench._run(('conveyor_bearing', 1))
    rows, missed = bench.judge([run])
    assert missed == []
    (row,) = rows
    assert row['lead_parts'] >= bench.MIN_LEAD_PARTS and row['first_error'] is not None
    assert row['lead_hours'] == pytest.approx(row['lead_parts'] * bench.CYCLE_S / 3600.0)


def test_the_judge_names_false_alarms_short_leads_and_missing_errors():
    runs = [
        {'scenario': 'healthy', 'seed': 1, 'parts': 200, 'first_warn': {'arm/elbow_effort_rms': 150},
         'first_error': {}, 'crossed': {}, 'closest': {}},
        {'scenario': 'arm_joint', 'seed': 2, 'parts': 90, 'first_warn': {'arm/elbow_effort_rms': 70},
         'first_error': {'arm/elbow_effort_rms': 85}, 'crossed': {'arm/elbow_effort_rms': 80}, 'closest': {}},
        {'scenario': 'conveyor_bearing', 'seed': 3, 'parts': 300, 'first_warn': {'conveyor/motor_current': 20},
         'first_error': {}, 'crossed': {'conveyor/motor_current': 70}, 'closest': {}},
    ]
    _, missed = bench.judge(runs)
    assert 'healthy seed 1 arm/elbow_effort_rms: false alarm at part 150' in missed
    assert 'arm_joint seed 2 arm/elbow_effort_rms: lead 10 parts (warn 70, crossing 80)' in missed
    assert 'conveyor_bearing seed 3 conveyor/motor_current: never reached ERROR in 300 parts' in missed
    assert len(missed) == 3  # the healthy run's other indicators raised nothing


def test_healthy_parts_of_every_asset_give_readings_near_their_true_values():
    parts = bench.CellParts(DegradationConfig(), 7, ('weld_power', 'conveyor', 'arm', 'agv_1', 'agv_2'))
    readings = {key: (value, true) for key, value, true in parts.part(0)}
    assert set(readings) == {i.key for i in bench.INDICATORS}
    drift, true_drift = readings['weld_power/drift_estimate']
    assert true_drift == 0.0 and abs(drift) <= 0.1  # the adjuster's estimate of this part's drift (±10 %)
    assert readings['conveyor/motor_current'][0] == pytest.approx(readings['conveyor/motor_current'][1], abs=0.05)
    assert readings['agv_1/soc_at_dispatch'][1] == 100.0


def test_healthy_indicators_stay_ok_across_a_store_restart(tmp_path):
    """A short healthy stretch of the cheap assets, the store reopened halfway: OK throughout."""
    indicators = [i for i in bench.INDICATORS if i.asset != 'weld_power']
    parts = bench.CellParts(DegradationConfig(), 3, ('conveyor', 'arm', 'agv_1', 'agv_2'))
    path = tmp_path / 'condition.sqlite'
    for first, last in ((0, 40), (40, 80)):
        with ConditionStore(path) as store:
            for n in range(first, last):
                for key, value, _ in parts.part(n):
                    store.record(*key.split('/'), n, n * bench.CYCLE_S, value)
            for indicator in indicators:
                history = store.history(indicator.asset, indicator.name)
                assert len(history) == last
                prediction = predict(indicator, History(history.seq, history.t_s, history.value))
                assert prediction.level == Level.OK, prediction.message
