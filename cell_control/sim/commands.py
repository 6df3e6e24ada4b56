"""Which commands the simulated devices refuse, and why (the `cell_sim` node logs and counts the refusals).

Pure: no MuJoCo, so the rules are tested without building the scene.
"""
from __future__ import annotations

import math


def command_problem(*values: float, low: float = -math.inf, high: float = math.inf, unit: str = '') -> str | None:
    """Return why a command of these values is refused (non-finite, or outside [low, high]), else None."""
    if not all(math.isfinite(v) for v in values):
        return f'non-finite value in {values}'
    for value in values:
        if not low <= value <= high:
            return f'{value}{unit} is outside [{low:g}, {high:g}]'
    return None
