"""Maintenance core (issue 13, point 2): declared indicators, the SQLite condition store, trends and predictions."""
import math
import sqlite3

import numpy as np
import pytest

from cell_control.maintenance import (ConditionMonitor, ConditionStore, ConditionStoreError, History, Indicator,
                                      Level, fit_trend, predict)

CURRENT = Indicator('conveyor', 'motor_current', 'A', limit=1.5, direction='above', warn_horizon=40)
SOC = Indicator('agv_1', 'soc', '%', limit=30.0, direction='below', warn_horizon=2.0, basis='hour', min_samples=5)
CYCLE_S = 60.0


def history(values, start=0, cycle_s=CYCLE_S) -> History:
    seq = np.arange(start, start + len(values))
    return History(seq, seq * cycle_s, np.asarray(values, dtype=float))


@pytest.fixture
def store(tmp_path):
    with ConditionStore(tmp_path / 'condition.sqlite') as s:
        yield s


# --- indicators --------------------------------------------------------------------------------------


@pytest.mark.parametrize('change, words', [
    ({'asset': 'Conveyor'}, 'asset must be lower_snake_case'),
    ({'unit': ''}, 'unit must be'),
    ({'limit': math.nan}, 'limit must be a finite number'),
    ({'direction': 'up'}, 'direction must be one of'),
    ({'basis': 'minute'}, 'basis must be one of'),
    ({'warn_horizon': 0}, 'warn_horizon must be a positive number of parts'),
    ({'min_samples': 2}, 'min_samples must be an int'),
    ({'window': 10}, r'window must be an int ≥ min_samples \(30\)'),
    ({'confidence': 1.0}, 'confidence must be a float'),
])
def test_bad_indicator_declarations_are_refused_by_name(change, words):
    fields = CURRENT.as_parameters() | change
    with pytest.raises(ValueError, match=words):
        Indicator(**fields)


def test_an_indicator_is_plain_parameters_with_its_unit():
    params = CURRENT.as_parameters()
    assert params['unit'] == 'A' and params['limit'] == 1.5 and params['warn_horizon'] == 40
    assert all(isinstance(v, (int, float, str)) for v in params.values())
    assert Indicator(**params) == CURRENT
    assert CURRENT.crossed(1.5) and not CURRENT.crossed(1.49) and SOC.crossed(29.0) and not SOC.crossed(31.0)


# --- the store ---------------------------------------------------------------------------------------


def test_store_is_a_wal_sqlite_file_that_a_restart_continues(tmp_path):
    path = tmp_path / 'condition.sqlite'
    with ConditionStore(path) as store:
        for n in range(5):
            store.record('conveyor', 'motor_current', n, n * CYCLE_S, 1.2 + 0.01 * n)
    assert sqlite3.connect(path).execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
    with ConditionStore(path) as store:
        monitor = ConditionMonitor(store, [CURRENT])
        assert monitor.next_seq('conveyor', 'motor_current') == 5
        store.record('conveyor', 'motor_current', 5, 5 * CYCLE_S, 1.25)
        got = store.history('conveyor', 'motor_current')
        assert list(got.seq) == [0, 1, 2, 3, 4, 5] and got.value[-1] == 1.25
        assert list(store.history('conveyor', 'motor_current', last=2).seq) == [4, 5]


@pytest.mark.parametrize('seq, t_s, value, words', [
    (3, 180.0, math.nan, 'value must be a finite number'),
    (3, 180.0, math.inf, 'value must be a finite number'),
    (3, 180.0, True, 'value must be a finite number'),
    (3, math.nan, 1.0, 't_s must be a finite number'),
    (-1, 180.0, 1.0, 'seq must be an int'),
    (3.0, 180.0, 1.0, 'seq must be an int'),
    (2, 180.0, 1.0, 'seq 2 does not follow the stored 2'),
    (3, 100.0, 1.0, 't_s 100 s is before the stored 120 s'),
])
def test_bad_samples_are_refused_and_leave_the_store_as_it_was(store, seq, t_s, value, words):
    for n in range(3):
        store.record('conveyor', 'motor_current', n, n * CYCLE_S, 1.2)
    with pytest.raises(ConditionStoreError, match=words):
        store.record('conveyor', 'motor_current', seq, t_s, value)
    assert store.last_seq('conveyor', 'motor_current') == 2
    store.record('conveyor', 'motor_current', 3, 180.0, 1.2)  # the store still takes good samples


def test_a_reset_starts_the_trend_again(store):
    for n in range(10):
        store.record('conveyor', 'motor_current', n, n * CYCLE_S, 1.0 + 0.1 * n)
    store.reset('conveyor', 'motor_current', 10, 600.0, 'bearing replaced')
    store.record('conveyor', 'motor_current', 10, 600.0, 1.2)
    assert list(store.history('conveyor', 'motor_current').seq) == [10]
    with pytest.raises(ConditionStoreError, match='needs a note'):
        store.reset('conveyor', 'motor_current', 11, 660.0, ' ')
    with pytest.raises(ConditionStoreError, match='does not follow the stored reset at 10'):
        store.reset('conveyor', 'motor_current', 10, 660.0, 'again')


def test_a_store_in_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(ConditionStoreError, match='does not exist'):
        ConditionStore(tmp_path / 'nowhere' / 'condition.sqlite')


# --- trends and predictions --------------------------------------------------------------------------


def test_theil_sen_shrugs_off_outliers_and_its_interval_holds_the_true_slope():
    rng = np.random.default_rng(1)
    x = np.arange(60.0)
    y = 2.0 + 0.01 * x + rng.normal(0.0, 0.02, x.size)
    y[[5, 17, 40]] += 5.0  # three wild readings
    trend = fit_trend(x, y, 0.90)
    assert trend.slope_low < 0.01 < trend.slope_high and trend.slope == pytest.approx(0.01, abs=0.002)
    assert trend.level == pytest.approx(2.0 + 0.01 * 59, abs=0.03)
    with pytest.raises(ValueError, match='at least 3 samples'):
        fit_trend(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0]), 0.9)


def test_flat_noisy_indicator_is_ok():
    rng = np.random.default_rng(2)
    prediction = predict(CURRENT, history(1.2 + rng.normal(0.0, 0.02, 80)))
    assert prediction.level == Level.OK and 'no limit within 40 parts' in prediction.message


def test_rising_indicator_warns_with_parts_and_hours_to_the_limit():
    rng = np.random.default_rng(3)
    n = np.arange(60)
    values = 1.2 + 0.005 * n + rng.normal(0.0, 0.01, n.size)  # true crossing 1.5 at part 60, now at 59
    prediction = predict(CURRENT, history(values, start=0))
    assert prediction.level == Level.WARN
    assert prediction.parts_to_limit <= 1.5 and prediction.hours_to_limit == pytest.approx(
        prediction.parts_to_limit * CYCLE_S / 3600.0)
    assert prediction.message.startswith('limit expected in ') and ' parts / ' in prediction.message
    assert prediction.message.endswith('(limit 1.5)') and 'A/part' in prediction.message
    earlier = predict(CURRENT, history(values[:35]))  # 25 parts before the crossing, within the horizon
    assert earlier.level == Level.WARN and earlier.parts_to_limit < 25.0


def test_the_prediction_is_conservative_on_a_seeded_family_of_trends():
    """Pessimistic side of the interval: the limit is seldom reached before the predicted part."""
    late = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        slope = rng.uniform(0.002, 0.01)
        values = 1.0 + slope * np.arange(40) + rng.normal(0.0, 0.03, 40)
        prediction = predict(CURRENT, history(values))
        true_left = (1.5 - 1.0) / slope - 39
        late += prediction.parts_to_limit > true_left
    assert late <= 10, f'{late} of 200 predictions came after the true crossing'


def test_crossed_indicator_is_error_even_with_an_outlier_back_inside():
    values = list(1.45 + 0.01 * np.arange(40))
    values[-1] = 1.0  # one low reading does not clear it
    prediction = predict(CURRENT, history(values))
    assert prediction.level == Level.ERROR and prediction.message.startswith('limit crossed')


def test_few_samples_give_ok_until_a_trend_can_be_fit_unless_their_median_is_past_the_limit():
    assert predict(CURRENT, history([1.2] * 29)).level == Level.OK
    assert '29 of 30 samples' in predict(CURRENT, history([1.2] * 29)).message
    assert predict(CURRENT, history([1.6, 1.6, 1.0])).level == Level.ERROR
    assert predict(CURRENT, history([])).level == Level.OK


def test_falling_indicator_on_hours_warns_in_hours():
    values = 80.0 - 20.0 * np.arange(12) / 60.0  # 20 %/h, one sample a minute: at 76.3 %, 30 % in 2.3 h
    prediction = predict(SOC, history(values))
    assert prediction.level == Level.OK
    values = 40.0 - 20.0 * np.arange(12) / 60.0  # 30 % in 0.3 h
    prediction = predict(SOC, history(values))
    assert prediction.level == Level.WARN and math.isnan(prediction.parts_to_limit)
    assert prediction.hours_to_limit == pytest.approx((36.33 - 30.0) / 20.0, abs=0.05)
    assert 'limit expected in 0.3 hours' in prediction.message and '%/h' in prediction.message


def test_monitor_records_judges_and_refuses_what_is_not_declared(store):
    monitor = ConditionMonitor(store, [CURRENT, SOC])
    for n in range(40):
        prediction = monitor.record('conveyor', 'motor_current', n, n * CYCLE_S, 1.2 + 0.006 * n)
    assert prediction.level == Level.WARN and prediction.key == 'conveyor/motor_current'
    assert [p.key for p in monitor.predictions()] == ['conveyor/motor_current', 'agv_1/soc']
    with pytest.raises(ConditionStoreError, match="unknown indicator 'arm/effort'; declared: conveyor/motor_current"):
        monitor.record('arm', 'effort', 0, 0.0, 1.0)
    with pytest.raises(ValueError, match='declared twice'):
        ConditionMonitor(store, [CURRENT, CURRENT])
    monitor.reset('conveyor', 'motor_current', 40, 40 * CYCLE_S, 'bearing replaced')
    assert monitor.predict('conveyor/motor_current').level == Level.OK
