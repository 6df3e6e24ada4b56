"""The conveyor driver's decisions around the VFD: which speed and standby commands it obeys, when the link is lost.

Pure, tested without ROS or a serial port; the `conveyor_driver` node turns messages into these calls.
"""
from __future__ import annotations

import math


def speed_command_problem(speed_m_s: float, max_speed_m_s: float, fault: str) -> str | None:
    """Return why a belt speed command is refused (the log line), or None when the belt may run at it."""
    if not math.isfinite(speed_m_s):
        return f'refused speed command {speed_m_s}: not a finite number'
    if not 0.0 <= speed_m_s <= max_speed_m_s:
        return (f'refused speed command {speed_m_s} m/s: outside 0 … {max_speed_m_s} m/s '
                '(the belt runs forward only)')
    if fault:
        return f'refused speed command {speed_m_s} m/s: fault latched ({fault}); call /conveyor/reset_fault first'
    return None


def standby_write(standby: bool, commanded_m_s: float) -> tuple[bool, str | None]:
    """Return whether a standby request goes to the drive, and the warning when one is ignored.

    Only a belt commanded stopped sleeps: a request to sleep while it is commanded to run is ignored, and a
    request to wake then needs no write (the run write already left standby; writing 0 would stop the belt).
    """
    if commanded_m_s == 0.0:
        return True, None
    if standby:
        return False, (f'ignored standby request: the belt is commanded to run at {commanded_m_s} m/s; '
                       'command speed 0 first')
    return False, None


class LinkWatch:
    """One lost answer on a serial line is noise; `loss_polls` failed polls in a row are a lost link."""

    def __init__(self, loss_polls: int) -> None:
        self.loss_polls = loss_polls
        self.failed_in_row = 0
        self.failed_total = 0

    def failed(self) -> bool:
        """Count a failed poll; True when the link counts as lost."""
        self.failed_in_row += 1
        self.failed_total += 1
        return self.failed_in_row >= self.loss_polls

    def answered(self) -> None:
        self.failed_in_row = 0
