"""Non-finite numbers are refused everywhere (issue 8): the one rule for recipes, parameter files and messages.

Pure, tested without ROS. `non_finite_field` names the first NaN or infinity in plain values (a YAML document,
or the values a node converted from a message); `NonFiniteDrops` counts the messages a node dropped for one and
says what its `/diagnostics` shows about them.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from array import array
from collections.abc import Mapping
from typing import Iterable, Sequence


def field_path(parts: Sequence[str | int]) -> str:
    """Write a field path the way a reader looks it up: `seams[1].program.end`; '' for the whole value."""
    text = ''
    for part in parts:
        text += f'[{part}]' if isinstance(part, int) else (f'.{part}' if text else str(part))
    return text


def non_finite_field(value: object, where: tuple[str | int, ...] = ()) -> str | None:
    """Return the field path of the first NaN or infinity in `value`, else None.

    `value` is a float, a mapping, a list, tuple or array of them, or a dataclass instance (its fields by
    name), nested as deep as needed. A non-finite `value` itself is named `(value)`.
    """
    if isinstance(value, float):
        return None if math.isfinite(value) else field_path(where) or '(value)'
    items: Iterable[tuple[str | int, object]]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((name, getattr(value, name)) for name in _field_names(type(value)))
    elif isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple, array)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(item, float):   # inline: most fields are numbers, and a call per field is what costs
            if not math.isfinite(item):
                return field_path((*where, key))
        elif not isinstance(item, (int, str)):
            found = non_finite_field(item, (*where, key))
            if found is not None:
                return found
    return None


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """Return a dataclass's field names; cached, as the weld loop checks every 500 Hz sample."""
    return tuple(field.name for field in dataclasses.fields(cls))


class NonFiniteDrops:
    """The messages one node dropped for a non-finite value, per topic and field, for its `/diagnostics`."""

    def __init__(self) -> None:
        self.total = 0
        self.by_input: dict[str, int] = {}   # '<topic> <field>' -> messages dropped
        self._since_report = 0
        self._last = ''

    def drop(self, topic: str, field: str) -> None:
        """Count one message on `topic` dropped because `field` is not finite."""
        key = f'{topic} {field}'
        self.by_input[key] = self.by_input.get(key, 0) + 1
        self.total += 1
        self._since_report += 1
        self._last = key

    def report(self) -> tuple[str, str, dict[str, object]] | None:
        """Return (level, message, values) of the period since the last report; None before the first drop.

        WARN while such messages arrive (some were dropped in the period), OK once a period passes without.
        """
        if not self.total:
            return None
        dropped, self._since_report = self._since_report, 0
        if dropped:
            level, message = 'WARN', f'dropped {dropped} message(s) with a non-finite value, last: {self._last}'
        else:
            level, message = 'OK', f'no non-finite input since the last report ({self.total} dropped in all)'
        values: dict[str, object] = {'dropped_non_finite': self.total, 'dropped_in_period': dropped,
                                     'last': self._last}
        values.update(sorted(self.by_input.items()))
        return level, message, values
