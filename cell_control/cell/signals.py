"""What the coordinator makes of raw device signals before they become cycle events (DESIGN §7).

Pure decisions, tested without ROS: which part ids are acceptable, when deck rollers count as running,
which switch readings are edges rather than heartbeats, when a node's simulated clock stands still and when it
reports the simulated time it has reached (every node's main loop does both: `nodes.node_main`), and which jumps
of that clock restart what the node times (`nodes.common.on_clock_back`).
"""
from __future__ import annotations

import math

from cell_control.weld.loop_watch import SilenceWatch

ROLLERS_RUNNING_M_S = 0.05   # deck roller speed above this counts as a transfer in progress


def positive_seconds(name: str, value: float) -> float:
    """Return `value` if it is a positive finite number of seconds; ValueError naming `name` otherwise."""
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f'{name} must be a positive number of seconds, got {value!r}')
    return value


def parse_part_id(text: str) -> str:
    """Return the part id of an announcement (surrounding blanks dropped); ValueError names what is wrong."""
    part_id = text.strip()
    if not part_id or len(part_id) > 64 or not part_id.replace('-', '').replace('_', '').isalnum():
        raise ValueError(f'part id {text!r} is not 1-64 letters, digits, - or _')
    return part_id


def rollers_running(deck_speed_m_s: float) -> bool:
    """Tell whether a deck speed reading means that the rollers are moving a part."""
    return math.isfinite(deck_speed_m_s) and abs(deck_speed_m_s) > ROLLERS_RUNNING_M_S


CLOCK_WENT_BACK = 'clock went back'
FIRST_CLOCK = 'first /clock'


def clock_jump_restarts(now_ns: int, delta_ns: int) -> str | None:
    """Tell whether a jump of the node's clock to `now_ns` by `delta_ns` restarts what the node times, and why.

    Back: a restarted simulation. Forward from zero: the node's first /clock, far from the zero it read before it
    (a simulation that ran before the node joined); what it timed meanwhile counted from zero. Forward from
    anywhere else: a node that stalled and catches up; its waits are due, so None.
    """
    if delta_ns < 0:
        return CLOCK_WENT_BACK
    if delta_ns > 0 and now_ns == delta_ns:
        return FIRST_CLOCK
    return None


class SwitchEdges:
    """Turn repeated switch readings (latched topics, heartbeats) into edges."""

    def __init__(self) -> None:
        self._states: dict[str, bool] = {}

    def changed(self, name: str, value: bool) -> bool:
        """Return True when `value` differs from the last reading of `name` (the first reading always does)."""
        changed = self._states.get(name) != value
        self._states[name] = value
        return changed


class ClockWatch:
    """Tell when a node's simulated clock has stood still for `limit_s` of wall time, and when it moves again.

    A node with `use_sim_time` and no /clock runs none of its timers and ages none of its streams, silently;
    a restarted node that never hears the simulation looks alive. Said once per stall, not every check: each
    step of the clock is an arrival for the same silence watch the weld loop keeps on its sensor.
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = positive_seconds('clock stall limit', limit_s)
        self._clock_s: float | None = None
        self._silence = SilenceWatch(0.0)

    @property
    def stalled(self) -> bool:
        return self._silence.stale

    def check(self, clock_s: float, wall_s: float) -> tuple[str, float] | None:
        """Return ('stalled' or 'running', wall seconds it stood still) when that just became true, else None."""
        if clock_s != self._clock_s:
            still_s = wall_s - self._silence.last_arrival_s
            self._clock_s = clock_s
            return ('running', still_s) if self._silence.arrived(wall_s) else None
        silence = self._silence.check(wall_s, self.limit_s)
        return ('stalled', silence[0]) if silence is not None and silence[1] else None


class ClockReporter:
    """When a node reports the simulated time it has reached: every `period_s` of its clock, and when it goes back.

    The MuJoCo simulation waits for the slowest node's report (`sim.lockstep.CellLockstep`). What a node has
    reached is its clock, but not past the simulation's last mark it has taken (`marked`): a node's clock jumps
    to the newest /clock (rclpy's time source keeps one), while the messages sent before it may still be queued;
    the mark comes in order behind them, so a node behind on its queues reports the time it has really reached
    and the world waits for it instead of filling its queues until they drop the oldest.
    """

    def __init__(self, period_s: float) -> None:
        self.period_s = positive_seconds('period_s', period_s)
        self._last_s: float | None = None
        self._mark_s: float | None = None

    def marked(self, mark_s: float) -> None:
        """Take the simulation's mark: it had sent everything up to `mark_s` before it (not finite: ignored)."""
        if math.isfinite(mark_s):
            self._mark_s = mark_s

    def reached(self, clock_s: float) -> float:
        """Return the simulated time reached at the node's clock `clock_s`: not past the last mark, once one came."""
        return clock_s if self._mark_s is None else min(clock_s, self._mark_s)

    def due(self, now_s: float) -> bool:
        """Tell whether to report `now_s` (the node's clock after a spin); a True counts as reported."""
        last = self._last_s
        if last is not None and last <= now_s < last + self.period_s:
            return False
        if now_s <= 0.0:    # no /clock yet: nothing reached
            return False
        self._last_s = now_s
        return True
