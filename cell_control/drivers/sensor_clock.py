"""Map a device's own clock onto the host (ROS) clock without importing the transport jitter.

Each frame arrives some latency after it was sampled; that latency is never negative and is at its
minimum for the frames that met an idle line and an idle host. So the offset host − sensor is taken as
the minimum of (arrival − sensor time) over a sliding window: late frames do not move it, and the
window lets it follow the slow drift between two crystals. A stamp is then sensor time + offset, i.e.
the acquisition time plus the (unknowable, constant) minimum transport latency.
"""
from __future__ import annotations

import math
from collections import deque


class SensorClockOffset:
    def __init__(self, window_s: float = 2.0):
        if not math.isfinite(window_s) or window_s <= 0:
            raise ValueError(f'window_s = {window_s!r} must be a positive number of seconds')
        self._window_s = window_s
        # (sensor time, arrival − sensor time), offsets strictly increasing: the front is the minimum.
        self._candidates: deque[tuple[float, float]] = deque()
        self._last_sensor_s: float | None = None
        self.resets = 0

    @property
    def offset_s(self) -> float | None:
        return self._candidates[0][1] if self._candidates else None

    def host_time(self, sensor_s: float, arrival_s: float) -> float:
        """Host time of the sample taken at `sensor_s` that arrived at host time `arrival_s`."""
        if self._last_sensor_s is not None and sensor_s < self._last_sensor_s:
            self._candidates.clear()  # the sensor restarted its clock: the old offset means nothing
            self.resets += 1
        self._last_sensor_s = sensor_s
        offset_s = arrival_s - sensor_s
        candidates = self._candidates
        while candidates and candidates[-1][1] >= offset_s:
            candidates.pop()
        candidates.append((sensor_s, offset_s))
        while candidates[0][0] < sensor_s - self._window_s:
            candidates.popleft()
        return sensor_s + candidates[0][1]
