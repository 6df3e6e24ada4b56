"""What the coordinator makes of raw device signals before they become cycle events (DESIGN §7).

Pure decisions, tested without ROS: which part ids are acceptable, when deck rollers count as running,
and which switch readings are edges rather than heartbeats.
"""
from __future__ import annotations

import math

ROLLERS_RUNNING_M_S = 0.05   # deck roller speed above this counts as a transfer in progress


def parse_part_id(text: str) -> str:
    """Return the part id of an announcement (surrounding blanks dropped); ValueError names what is wrong."""
    part_id = text.strip()
    if not part_id or len(part_id) > 64 or not part_id.replace('-', '').replace('_', '').isalnum():
        raise ValueError(f'part id {text!r} is not 1-64 letters, digits, - or _')
    return part_id


def rollers_running(deck_speed_m_s: float) -> bool:
    """Tell whether a deck speed reading means that the rollers are moving a part."""
    return math.isfinite(deck_speed_m_s) and abs(deck_speed_m_s) > ROLLERS_RUNNING_M_S


class SwitchEdges:
    """Turn repeated switch readings (latched topics, heartbeats) into edges."""

    def __init__(self) -> None:
        self._states: dict[str, bool] = {}

    def changed(self, name: str, value: bool) -> bool:
        """Return True when `value` differs from the last reading of `name` (the first reading always does)."""
        changed = self._states.get(name) != value
        self._states[name] = value
        return changed
