"""The idle policy (issue 13, point 5): a cell that expects no part parks and puts its devices in standby; no rclpy.

Public API:
    Readiness        READY (devices energized, arm free to work), PARKING (standby commanded, arm on its way to
                     the rest pose), STANDBY (arm at rest; conveyor drive and weld power source in standby),
                     WAKING (devices energized again, arm on its way home)
    IdleStep         PARK, WAKE, FAILED: what the coordinator must do now
    IdlePolicy(idle_after_s, move_timeout_s)
        .update(quiet, may_move, now_s) -> IdleStep | None    called with every pass of the coordinator
        .arrived(now_s)                  the arm reached the pose of the park or the wake
        .clock_restarted(now_s)          the clock jumped: the quiet and a move's timeout count again from now_s
        .halted()                        every motion was stopped (stop, pause, fault, e-stop)
        .ready                           the station may move the arm

`quiet` is the coordinator's "no part is expected": nothing at the station, on the belt or announced, and no
handoff in progress. After `idle_after_s` of quiet in a running cell (quiet while stopped does not count) the
policy parks; the first part announced
wakes it, and the station's arm stages wait until the arm is home again. The announcement comes as the source
loads the part, well before the AGV docks, so the wake (the arm's move home) hides behind the AGV's drive; a
busy cell is never quiet for long enough to park. Parking and waking are the policy's own arm moves with a
timeout; a stop during either leaves the cell in STANDBY (the arm wherever it stopped), from which the next
part wakes it as from the rest pose.
"""
from __future__ import annotations

import math
from enum import Enum


class Readiness(str, Enum):
    READY = 'ready'
    PARKING = 'parking'
    STANDBY = 'standby'
    WAKING = 'waking'


class IdleStep(str, Enum):
    PARK = 'park'       # devices to standby, arm to the rest pose
    WAKE = 'wake'       # devices out of standby, arm home
    FAILED = 'failed'   # the park or the wake did not reach its pose in time: a fault


class IdlePolicy:
    def __init__(self, idle_after_s: float, move_timeout_s: float) -> None:
        """Park after `idle_after_s` of quiet (0: never); a park or wake move may take `move_timeout_s`."""
        if isinstance(idle_after_s, bool) or not (isinstance(idle_after_s, (int, float))
                                                  and math.isfinite(idle_after_s) and idle_after_s >= 0.0):
            raise ValueError(f'idle_after_s must be a finite number of seconds ≥ 0 (0: never park), got '
                             f'{idle_after_s!r}')
        if not (math.isfinite(move_timeout_s) and move_timeout_s > 0.0):
            raise ValueError(f'move_timeout_s must be a positive finite number of seconds, got {move_timeout_s!r}')
        self.idle_after_s = float(idle_after_s)
        self.move_timeout_s = float(move_timeout_s)
        self.readiness = Readiness.READY
        self._quiet_since_s: float | None = None
        self._deadline_s = math.inf
        self.woken_s = 0.0    # when the last wake began (for its duration in the log)

    @property
    def enabled(self) -> bool:
        return self.idle_after_s > 0.0

    @property
    def ready(self) -> bool:
        return self.readiness is Readiness.READY

    @property
    def moving(self) -> bool:
        return self.readiness in (Readiness.PARKING, Readiness.WAKING)

    def update(self, quiet: bool, may_move: bool, now_s: float) -> IdleStep | None:
        """Return what to do now, given whether a part is expected and whether the cell may move (running, auto)."""
        if not (quiet and may_move):   # the idle time counts in a running cell only: a start waits it in full
            self._quiet_since_s = None
        elif self._quiet_since_s is None:
            self._quiet_since_s = now_s
        if not may_move:
            return None
        if self.moving and now_s >= self._deadline_s:
            self.readiness, self._deadline_s = Readiness.STANDBY, math.inf
            return IdleStep.FAILED
        if self.readiness in (Readiness.PARKING, Readiness.STANDBY) and not quiet:
            self.readiness, self._deadline_s, self.woken_s = Readiness.WAKING, now_s + self.move_timeout_s, now_s
            return IdleStep.WAKE
        if self.readiness is Readiness.READY and self.enabled and self._quiet_since_s is not None \
                and now_s - self._quiet_since_s >= self.idle_after_s:
            self.readiness, self._deadline_s = Readiness.PARKING, now_s + self.move_timeout_s
            return IdleStep.PARK
        return None

    def arrived(self, now_s: float) -> None:
        """Take the arm's arrival at the pose of the current park or wake."""
        if self.readiness is Readiness.PARKING:
            self.readiness = Readiness.STANDBY
        elif self.readiness is Readiness.WAKING:
            self.readiness = Readiness.READY
            self._quiet_since_s = now_s   # woken for nothing (a stop, a restart): wait the whole time again
        self._deadline_s = math.inf

    def clock_restarted(self, now_s: float) -> None:
        """Count the quiet and a park or wake move's timeout again from `now_s` (the clock jumped)."""
        if self._quiet_since_s is not None:
            self._quiet_since_s = now_s
        if self.moving:
            self._deadline_s = now_s + self.move_timeout_s

    def halted(self) -> None:
        """Take a stop of every motion: a park or wake cut short leaves the cell in standby until a part comes."""
        if self.moving:
            self.readiness, self._deadline_s = Readiness.STANDBY, math.inf
