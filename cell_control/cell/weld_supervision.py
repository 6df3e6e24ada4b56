"""The coordinator's decisions around one weld: the arm's speed scaling, a silent adjuster, the verdict.

During a weld with the arc on, the arm follows the adjuster's travel speed through speed scaling; when that
speed stops arriving for `stream_timeout_s` the arm is held (scaling 0) until it returns. A dry run welds
at the recipe's travel speed without the adjuster. When the arm reaches the end of the weld path the weld is
judged good unless the adjuster reports a fault at that moment. Pure: time is passed in.
"""
from __future__ import annotations

import math
from typing import Callable

from cell_control.cell.cycle import Event, EventKind
from cell_control.weld.trace import WeldTrace

WELD_TARGET = 'weld_path'


def fresh(received_s: float | None, now_s: float, timeout_s: float) -> bool:
    """Tell whether a reading received at `received_s` is still usable at `now_s` (None: never received)."""
    return received_s is not None and now_s - received_s <= timeout_s


class WeldSupervisor:
    def __init__(self, speed_scaling: Callable[[float], float], recipe_speed_mm_s: float,
                 planned_speed_mm_s: float, stream_timeout_s: float) -> None:
        """`speed_scaling(v)` maps a travel speed to the arm's scaling (motion.arm_motion.ArmMotion)."""
        self._speed_scaling = speed_scaling
        self._recipe_speed_mm_s = recipe_speed_mm_s
        self.dry_run_scaling = recipe_speed_mm_s / planned_speed_mm_s
        self._stream_timeout_s = stream_timeout_s
        self.welding = False
        self.arc = False
        self._speed: tuple[float, float] | None = None   # (receipt time, mm/s)

    def start(self, arc: bool) -> None:
        """Begin a weld: its path starts at the recipe's speed, as the adjuster's lead-in does.

        Not at the speed the adjuster gave the previous weld; within a weld the last speed is kept, for a path
        planned again after a pause.
        """
        self.welding, self.arc = True, arc
        self._speed = None

    def stop(self) -> None:
        self.welding = self.arc = False

    def on_travel_speed(self, speed_mm_s: float, now_s: float) -> float | None:
        """Record the adjuster's speed, return the arm's new scaling when it applies now, else None."""
        if not math.isfinite(speed_mm_s):
            raise ValueError('travel speed with a non-finite value ignored')
        self._speed = (now_s, speed_mm_s)
        return self._speed_scaling(speed_mm_s) if self.welding and self.arc else None

    def on_tick(self, now_s: float) -> float | None:
        """Return scaling 0 (hold the arm) while the arc is on and the adjuster's speed is stale, else None."""
        if self.welding and self.arc and not fresh(self._speed and self._speed[0], now_s, self._stream_timeout_s):
            return 0.0
        return None

    def clock_restarted(self, now_s: float) -> None:
        """Count the travel speed's age from `now_s` (the clock went back): stale a full timeout later."""
        if self._speed is not None:
            self._speed = (now_s, self._speed[1])

    def scaling_for_move(self, target: str) -> float:
        """Return the scaling a new move to `target` starts with: full speed, except along the weld path."""
        if target != WELD_TARGET:
            return 1.0
        if not self.arc:
            return self.dry_run_scaling
        return self._speed_scaling(self._recipe_speed_mm_s if self._speed is None else self._speed[1])

    def adjuster_fault(self, fault: str) -> Event | None:
        """Return the event of an adjuster fault: it stops the cycle only while a weld is running."""
        if fault and self.welding:
            return Event(EventKind.SENSOR_DROPOUT, reason=f'weld adjuster reports {fault}')
        return None

    @staticmethod
    def arrival(target: str, trace: WeldTrace | None) -> Event:
        """Return the event of the arm reaching `target`.

        At the end of the weld path it carries the verdict: good unless the adjuster reports a fault as the
        arm arrives.
        """
        if target == WELD_TARGET:
            return Event(EventKind.WELD_DONE, flag=not (trace is not None and trace.faulted))
        return Event(EventKind.ARM_AT_GOAL)
