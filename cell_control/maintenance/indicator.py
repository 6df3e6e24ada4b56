"""Condition indicators declared as data: what is measured, in which unit, and where its limit is.

Public API:
    Indicator(asset, name, unit, limit, direction, warn_horizon, basis='part', window=60, min_samples=30,
              confidence=0.90)
        direction 'above' (bad when the value rises past the limit) or 'below'; basis 'part' (one sample per
        part, horizon in parts) or 'hour' (samples stamped in time, horizon in hours); the fit uses the last
        `window` samples once there are `min_samples`; `confidence` is the two-sided level of the slope's
        interval whose side toward the limit the prediction uses.
    Indicator.key -> 'asset/name';  Indicator.crossed(value) -> bool;  Indicator.as_parameters() -> dict
    Level: OK, WARN, ERROR (the values of diagnostic_msgs/DiagnosticStatus)

Every field is a plain number or string so that a node can declare each as a ROS parameter later.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from enum import IntEnum

DIRECTIONS = ('above', 'below')
BASES = ('part', 'hour')
_NAME = re.compile(r'^[a-z][a-z0-9_]*$')


class Level(IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2


@dataclass(frozen=True)
class Indicator:
    asset: str
    name: str
    unit: str
    limit: float
    direction: str
    warn_horizon: float  # parts (basis 'part') or hours (basis 'hour')
    basis: str = 'part'
    window: int = 60
    min_samples: int = 30
    confidence: float = 0.90

    def __post_init__(self) -> None:
        for field_name in ('asset', 'name'):
            value = getattr(self, field_name)
            if not (isinstance(value, str) and _NAME.match(value)):
                raise ValueError(f'indicator {field_name} must be lower_snake_case, got {value!r}')
        if not isinstance(self.unit, str) or not self.unit:
            raise ValueError(f'indicator {self.key}: unit must be a non-empty string, got {self.unit!r}')
        if not (isinstance(self.limit, (int, float)) and math.isfinite(self.limit)):
            raise ValueError(f'indicator {self.key}: limit must be a finite number, got {self.limit!r}')
        if self.direction not in DIRECTIONS:
            raise ValueError(f'indicator {self.key}: direction must be one of {DIRECTIONS}, got {self.direction!r}')
        if self.basis not in BASES:
            raise ValueError(f'indicator {self.key}: basis must be one of {BASES}, got {self.basis!r}')
        if not (isinstance(self.warn_horizon, (int, float)) and math.isfinite(self.warn_horizon)
                and self.warn_horizon > 0):
            raise ValueError(f'indicator {self.key}: warn_horizon must be a positive number of '
                             f'{self.horizon_unit}, got {self.warn_horizon!r}')
        if not (isinstance(self.min_samples, int) and self.min_samples >= 3):
            raise ValueError(f'indicator {self.key}: min_samples must be an int ≥ 3, got {self.min_samples!r}')
        if not (isinstance(self.window, int) and self.window >= self.min_samples):
            raise ValueError(f'indicator {self.key}: window must be an int ≥ min_samples ({self.min_samples}), '
                             f'got {self.window!r}')
        if not (isinstance(self.confidence, float) and 0.5 <= self.confidence < 1.0):
            raise ValueError(f'indicator {self.key}: confidence must be a float in [0.5, 1), got {self.confidence!r}')

    @property
    def key(self) -> str:
        return f'{self.asset}/{self.name}'

    @property
    def horizon_unit(self) -> str:
        return 'parts' if self.basis == 'part' else 'hours'

    def crossed(self, value: float) -> bool:
        """Return True when `value` is at or past the limit."""
        return value >= self.limit if self.direction == 'above' else value <= self.limit

    def as_parameters(self) -> dict[str, float | int | str]:
        """Return the fields as a flat dict of plain values (ROS parameter names and values)."""
        return asdict(self)
