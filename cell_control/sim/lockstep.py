"""Lock-step of the simulation with the weld loop: the world waits for a slow adjuster instead of running ahead.

The weld adjuster stamps every setpoint with the stamp of the seam sample it answers (DESIGN §7), so the
simulation knows how far behind the loop is. Run faster than the controllers can follow (`--rtf max` on a busy
machine), a free-running simulation would outrun them: samples queue up, age past the adjuster's limit or drop
out of the best-effort queue, and the weld fails with SEAM_LOST for reasons no real cell has. With the lock-step
the simulation may lead the last answered sample by `max_lead_s` of simulated time; beyond that it waits, at
most `patience_s` of wall time per wait. It engages only once the adjuster has answered in the current weld
(from the arc command on, so the run-up before the arc strikes counts)
(outside a weld nobody answers), and a wait that runs out of patience lets the world go on free-running until
the next answer: a dead or stopped adjuster must not freeze the world, its silence is for the cell to detect.
"""
from __future__ import annotations

import math


class WeldLockstep:
    """Decide whether the simulation may take its next step, from the stamps of the adjuster's answers."""

    def __init__(self, max_lead_s: float, patience_s: float) -> None:
        if not (math.isfinite(max_lead_s) and max_lead_s > 0.0):
            raise ValueError(f'max_lead_s must be a positive number of seconds, got {max_lead_s!r}')
        if not (math.isfinite(patience_s) and patience_s > 0.0):
            raise ValueError(f'patience_s must be a positive number of seconds, got {patience_s!r}')
        self.max_lead_s = max_lead_s
        self.patience_s = patience_s
        self._answered_s: float | None = None   # stamp of the newest answered sample of this weld
        self.waits = 0                           # how often the simulation had to wait (for diagnostics)
        self.gave_up = 0                         # waits that ran out of patience

    @property
    def engaged(self) -> bool:
        return self._answered_s is not None

    def answered(self, sample_stamp_s: float, welding: bool) -> None:
        """Take a setpoint's stamp (its sample's); only answers during a weld engage the lock-step."""
        if welding and math.isfinite(sample_stamp_s):
            self._answered_s = max(sample_stamp_s, self._answered_s if self._answered_s is not None else -math.inf)

    def weld_ended(self) -> None:
        self._answered_s = None

    def must_wait(self, sim_now_s: float) -> bool:
        """Tell whether stepping past `sim_now_s` would lead the last answer by more than `max_lead_s`."""
        return self._answered_s is not None and sim_now_s - self._answered_s > self.max_lead_s + 1e-9

    def waited(self, in_time: bool) -> None:
        """Count one wait; one that ran out of patience releases the world until the next answer."""
        self.waits += 1
        if not in_time:
            self.gave_up += 1
            self._answered_s = None
