"""Real-time pacing of the simulation: at most `real_time_factor` simulated seconds per wall second, never a burst.

A pace anchored once at the start catches up after every stall: a lock-step wait for a slow adjuster, or a machine
busy elsewhere for a second, is followed by the world running flat out until it is back on its schedule. The other
nodes of the cell judge their timeouts on the simulated clock (handoff answers, odometry age, seam-sample age), so
a burst of several simulated seconds in a fraction of a wall second, while those nodes are the ones starved,
fails them for reasons no real cell has. So the pace forgives small lags (scheduler jitter, to keep the average
factor exact) and re-anchors after a larger one, as Gazebo's real-time factor does per step: lost time stays lost.
"""
from __future__ import annotations

import math


class RealTimePacer:
    """Tell how long to sleep before the next step so simulated time runs at `factor` × wall time at most."""

    def __init__(self, factor: float, max_lag_s: float = 0.05) -> None:
        if not (math.isfinite(factor) and factor > 0.0):
            raise ValueError(f'real-time factor must be a positive number, got {factor!r}')
        if not (math.isfinite(max_lag_s) and max_lag_s >= 0.0):
            raise ValueError(f'max_lag_s must be a non-negative number of seconds, got {max_lag_s!r}')
        self.factor = factor
        self.max_lag_s = max_lag_s
        self.reanchored = 0                        # how often a lag was forgiven (for diagnostics)
        self._anchor: tuple[float, float] | None = None   # (simulated, wall) time the schedule counts from

    def delay(self, sim_s: float, wall_s: float) -> float:
        """Return the wall seconds to wait before stepping on from simulated time `sim_s` at wall time `wall_s`."""
        if self._anchor is None:
            self._anchor = (sim_s, wall_s)
            return 0.0
        sim_0, wall_0 = self._anchor
        lead_s = (sim_s - sim_0) / self.factor - (wall_s - wall_0)
        if lead_s < -self.max_lag_s:   # behind by more than jitter: start the schedule again from here
            self._anchor = (sim_s, wall_s)
            self.reanchored += 1
            return 0.0
        return max(lead_s, 0.0)
