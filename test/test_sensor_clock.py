"""Sensor-to-host clock offset by a windowed minimum of the arrival latency."""
import math
import random

import pytest

from cell_control.drivers.sensor_clock import SensorClockOffset

PERIOD_S = 0.002
TRUE_OFFSET_S = 1000.0


def test_jitter_does_not_move_stamps() -> None:
    clock = SensorClockOffset(window_s=2.0)
    rng = random.Random(3)
    stamps = []
    for i in range(2000):
        sensor_s = 5.0 + i * PERIOD_S
        latency_s = 0.0002 if i % 100 == 0 else 0.0002 + rng.uniform(0.0, 0.004)
        stamps.append(clock.host_time(sensor_s, sensor_s + TRUE_OFFSET_S + latency_s))
    for i, stamp in enumerate(stamps):
        assert stamp == pytest.approx(5.0 + i * PERIOD_S + TRUE_OFFSET_S + 0.0002, abs=1e-9)
    assert clock.offset_s == pytest.approx(TRUE_OFFSET_S + 0.0002, abs=1e-9)


def test_stamp_never_later_than_arrival_and_follows_drift() -> None:
    clock = SensorClockOffset(window_s=1.0)
    drift = 100e-6  # host runs 100 ppm fast
    for i in range(5000):
        sensor_s = i * PERIOD_S
        arrival_s = sensor_s * (1 + drift) + TRUE_OFFSET_S + 0.0001 + (0.003 if i % 7 else 0.0)
        assert clock.host_time(sensor_s, arrival_s) <= arrival_s
    # After 10 s the offset has moved by the drift, within the drift over one window.
    assert clock.offset_s == pytest.approx(TRUE_OFFSET_S + 0.0001 + 10 * drift, abs=1.1 * drift)


def test_sensor_clock_restart_resets_the_offset() -> None:
    clock = SensorClockOffset()
    clock.host_time(100.0, 100.5)
    assert clock.offset_s == pytest.approx(0.5)
    assert clock.host_time(0.0, 200.0) == pytest.approx(200.0)
    assert clock.resets == 1
    assert clock.offset_s == pytest.approx(200.0)


@pytest.mark.parametrize('window_s', [0.0, -1.0, math.nan, math.inf])
def test_refuses_bad_window(window_s: float) -> None:
    with pytest.raises(ValueError, match='window_s'):
        SensorClockOffset(window_s)
