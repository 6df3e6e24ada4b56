"""The cell's condition indicators and how its streams become one reading per indicator and part; no rclpy.

Public API:
    CELL_INDICATORS                      the declared indicators (defaults of the maintenance node's parameters;
                                         the maintenance benchmark judges the same ones)
    PartReadings(elbow_joint)
        .drift_estimate(delta)           the adjuster's estimate at the end of a weld (the part's last one counts)
        .conveyor_current(amps)          a reading of the drive's output current (only running readings count)
        .joint_state(names, efforts, velocities)   the elbow's effort while it moves
        .part_done() -> list[(asset, name, value)]  this part's reading of each indicator that got data
        .battery(agv, soc_pct, charging) -> float | None   the state of charge when the AGV leaves its charger

Readings per part: the drift estimate of the part's last weld; the median current of the belt while it ran
(the running current does not depend on the speed here, and the median ignores a ramp's samples); the RMS
effort of the elbow while it moved faster than MOVING_RAD_S. An AGV's reading is taken per dispatch: its
state of charge as it stops charging and leaves home.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cell_control.maintenance.indicator import Indicator

CELL_INDICATORS = (
    Indicator('weld_power', 'drift_estimate', '1', limit=-0.25, direction='below', warn_horizon=40),
    Indicator('conveyor', 'motor_current', 'A', limit=1.55, direction='above', warn_horizon=40),
    Indicator('arm', 'elbow_effort_rms', 'N.m', limit=7.0, direction='above', warn_horizon=40),
    Indicator('agv_1', 'soc_at_dispatch', '%', limit=30.0, direction='below', warn_horizon=40, window=30,
              min_samples=10),
    Indicator('agv_2', 'soc_at_dispatch', '%', limit=30.0, direction='below', warn_horizon=40, window=30,
              min_samples=10),
)
MOVING_RAD_S = 0.01
RUNNING_A = 0.01   # a drive reports 0 A with its output off


class PartReadings:
    def __init__(self, elbow_joint: str = 'elbow_joint') -> None:
        self.elbow_joint = elbow_joint
        self._drift: float | None = None
        self._currents: list[float] = []
        self._effort_sq = 0.0
        self._effort_n = 0
        self._charging: dict[str, bool] = {}

    def drift_estimate(self, delta: float) -> None:
        if math.isfinite(delta):
            self._drift = delta

    def conveyor_current(self, amps: float) -> None:
        if math.isfinite(amps) and amps > RUNNING_A:
            self._currents.append(amps)

    def joint_state(self, names: Sequence[str], efforts: Sequence[float], velocities: Sequence[float]) -> None:
        if self.elbow_joint not in names:
            return
        i = list(names).index(self.elbow_joint)
        if i < min(len(efforts), len(velocities)) and abs(velocities[i]) > MOVING_RAD_S and math.isfinite(efforts[i]):
            self._effort_sq += efforts[i] ** 2
            self._effort_n += 1

    def part_done(self) -> list[tuple[str, str, float]]:
        readings = []
        if self._drift is not None:
            readings.append(('weld_power', 'drift_estimate', self._drift))
        if self._currents:
            readings.append(('conveyor', 'motor_current', float(np.median(self._currents))))
        if self._effort_n:
            readings.append(('arm', 'elbow_effort_rms', math.sqrt(self._effort_sq / self._effort_n)))
        self._drift, self._currents, self._effort_sq, self._effort_n = None, [], 0.0, 0
        return readings

    def battery(self, agv: str, soc_pct: float, charging: bool) -> float | None:
        """Return the state of charge when `agv` stops charging (it is dispatched); None otherwise."""
        was = self._charging.get(agv)
        self._charging[agv] = charging
        return soc_pct if was and not charging and math.isfinite(soc_pct) else None
