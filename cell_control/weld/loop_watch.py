"""The weld loop's checks around the adjuster: which samples reach it, and when the sensor counts as silent.

The weld adjuster node (DESIGN §7) feeds the core `WeldAdjuster` only samples taken after the weld started
and not further than `max_age_s` from its clock either way; during a weld, a sensor silent for longer than
`stale_timeout_s` is stale (the node then holds the last setpoint); the arc's strike reaches the adjuster only
during its weld's lead-in and within `arc_strike_timeout_s` of its clock. Pure: time is passed in.
"""
from __future__ import annotations

from enum import Enum

from cell_control.weld.adjuster import WeldAdjuster

SENSOR_STALE = 'SENSOR_STALE'
STRIKE_KEPT = 'kept: no weld has started yet'   # StrikeRelay.heard's answer for a strike kept for the next weld


class SampleCheck(str, Enum):
    ACCEPT = 'accept'
    BEFORE_START = 'before_start'   # taken before the weld started: ignored
    TOO_OLD = 'too_old'             # stamp too far from the clock (either way): refused


def check_sample(stamp_s: float, start_s: float, now_s: float, max_age_s: float) -> SampleCheck:
    """Decide whether a sample stamped `stamp_s` may reach the adjuster of a weld started at `start_s`."""
    if stamp_s <= start_s:
        return SampleCheck.BEFORE_START
    if not abs(now_s - stamp_s) <= max_age_s:
        return SampleCheck.TOO_OLD
    return SampleCheck.ACCEPT


def take_strike(adjuster: WeldAdjuster | None, stamp_s: float, now_s: float, max_age_s: float) -> str:
    """Give the adjuster the arc's strike at `stamp_s` if it is this weld's; else say why not ('' when taken)."""
    if adjuster is None or not adjuster.waits_for_strike:
        return 'no weld is waiting for one'
    if not abs(now_s - stamp_s) <= max_age_s:
        return f'{now_s - stamp_s:.3f} s from the node clock (limit {max_age_s:g} s)'
    try:
        if not adjuster.arc_struck(stamp_s):
            ended_by = adjuster.strike_source
            return f'the lead-in had already ended (by the {ended_by})' if ended_by else 'the arc had already struck'
    except ValueError as error:
        return str(error)
    return ''


class StrikeRelay:
    """Pass the arc's strike to the adjuster, keeping one heard before its weld's start for that weld.

    The coordinator commands the arc and starts the adjuster together, and the start is two service calls; a
    simulation that runs ahead of its controllers (full speed, a loaded machine) can strike before the start is
    served. Such a strike is kept and offered to the next weld as it starts (`take_strike` judges it then).
    """

    def __init__(self) -> None:
        self._early_s: float | None = None

    def heard(self, adjuster: WeldAdjuster | None, stamp_s: float, now_s: float, max_age_s: float) -> str:
        """Take a strike: '' when the adjuster took it, STRIKE_KEPT when no weld has started yet, else why not."""
        if adjuster is None:
            self._early_s = stamp_s
            return STRIKE_KEPT
        return take_strike(adjuster, stamp_s, now_s, max_age_s)

    def weld_started(self, adjuster: WeldAdjuster, now_s: float, max_age_s: float) -> tuple[float, str] | None:
        """Offer a strike kept from before the start to the new weld: (its stamp, take_strike's answer), or None."""
        early_s, self._early_s = self._early_s, None
        return None if early_s is None else (early_s, take_strike(adjuster, early_s, now_s, max_age_s))


class SilenceWatch:
    """A stream's silence: the seam sensor's during one weld, a node's /clock (cell.signals.ClockWatch)."""

    def __init__(self, now_s: float) -> None:
        self.last_arrival_s = now_s
        self.stale = False

    def arrived(self, now_s: float) -> bool:
        """Note a sample; True when it ends a stale period."""
        self.last_arrival_s = now_s
        was_stale, self.stale = self.stale, False
        return was_stale

    def check(self, now_s: float, timeout_s: float) -> tuple[float, bool] | None:
        """Return (silence in s, True when it just became stale) when it exceeds `timeout_s`, else None."""
        silent_s = now_s - self.last_arrival_s
        if silent_s <= timeout_s:
            return None
        newly, self.stale = not self.stale, True
        return silent_s, newly


def loop_status(fault: str, active: bool) -> tuple[str, str]:
    """Return the diagnostic level ('OK', 'ERROR') and message of the weld loop."""
    if fault:
        return 'ERROR', f'fault {fault}'
    return 'OK', 'welding' if active else 'idle'


def frame_stale(frame_age_s: float | None, stale_timeout_s: float) -> bool:
    """Tell whether the seam sensor's stream is stale: no frame yet, or none for longer than the timeout."""
    return frame_age_s is None or frame_age_s > stale_timeout_s


def sensor_status(connected: bool, port: str, stale: bool, stale_timeout_s: float,
                  new_damage: bool) -> tuple[str, str]:
    """Return the diagnostic level and message of the seam sensor's stream."""
    if not connected:
        return 'ERROR', f'serial port {port} not connected'
    if stale:
        return 'ERROR', f'no frame for more than {stale_timeout_s} s'
    if new_damage:
        return 'WARN', 'garbage, damaged, lost or out-of-range frames in the last period'
    return 'OK', 'streaming'
