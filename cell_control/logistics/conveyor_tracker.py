"""Jam detection on the conveyor: follow each part from photo-eye to photo-eye and time every leg.

Parts travel in order (first in, first out), so an eye's rising edge belongs to the oldest part on its way
to that eye. A leg starts when the part's leading edge trips an eye and ends when it trips the next one.
At a hold eye (the station, where the stop gate keeps the part for welding) the part waits as long as it
must; its next leg starts when it is released and its trailing edge clears the eye, one part length
further on.

A leg is allowed `distance / belt speed × margin + ramp allowance`. The belt speed may change during a
leg, so the tracker integrates the distance the belt has carried the part: while the belt stands still
the part is not expected to move, and every start from standstill (and the start of each leg) grants the
ramp allowance again, during which no travel is counted. At constant speed this is exactly the formula.
Time is always passed in (seconds, any monotonic origin); this module never reads a clock.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class ConveyorLayout:
    """What jam detection needs from `config/cell_layout.yaml`."""

    eyes: tuple[tuple[str, float], ...]  # (eye name, x in m), ordered along the belt from infeed to outfeed
    max_speed_m_s: float
    part_length_m: float


def load_conveyor_layout(path: str | Path) -> ConveyorLayout:
    """Read the conveyor, photo-eye and part sections of the cell layout; names the field that is wrong."""
    with open(path, encoding='utf-8') as stream:
        layout = yaml.safe_load(stream)
    try:
        eyes = layout['photo_eyes']
        max_speed = layout['conveyor']['max_speed']
        part_length = layout['part']['length']
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f'{path}: missing field {exc} (need photo_eyes, conveyor.max_speed, part.length)') from exc
    if not isinstance(eyes, dict) or len(eyes) < 2:
        raise ValueError(f'{path}: photo_eyes must map at least two eye names to x positions')
    for name, x in eyes.items():
        if not isinstance(x, (int, float)):
            raise ValueError(f'{path}: photo_eyes.{name} must be a number (x in m), got {x!r}')
    if not isinstance(max_speed, (int, float)) or not max_speed > 0:
        raise ValueError(f'{path}: conveyor.max_speed must be a positive speed in m/s, got {max_speed!r}')
    if not isinstance(part_length, (int, float)) or not part_length > 0:
        raise ValueError(f'{path}: part.length must be a positive length in m, got {part_length!r}')
    ordered = tuple(sorted(((str(n), float(x)) for n, x in eyes.items()), key=lambda eye: eye[1]))
    return ConveyorLayout(eyes=ordered, max_speed_m_s=float(max_speed), part_length_m=float(part_length))


@dataclass(frozen=True)
class JamFault:
    """A part that did not reach `to_eye` in time."""

    part_id: int
    from_eye: str
    to_eye: str
    expected_s: float
    elapsed_s: float

    @property
    def message(self) -> str:
        return (f'jam: part {self.part_id} did not reach photo-eye {self.to_eye!r} from {self.from_eye!r} '
                f'within the expected {self.expected_s:.2f} s (elapsed {self.elapsed_s:.2f} s)')


@dataclass(frozen=True)
class UnexpectedPart:
    """An eye tripped with no part on its way to it (a part put on the belt by hand, or a missed edge)."""

    eye: str
    time_s: float

    @property
    def message(self) -> str:
        return f'tracking: photo-eye {self.eye!r} tripped at {self.time_s:.2f} s with no part expected there'


@dataclass
class _Leg:
    part_id: int
    from_eye: str
    to_eye: str
    distance_m: float
    start_s: float
    travelled_m: float = 0.0
    ramp_left_s: float = 0.0
    reported: bool = False


class ConveyorTracker:
    """Follows parts between the photo-eyes and reports a jam as soon as a leg overruns its time."""

    def __init__(self, layout: ConveyorLayout, *, margin: float = 1.5, ramp_allowance_s: float = 1.0,
                 hold_eyes: Sequence[str] = ('station',)) -> None:
        if not (math.isfinite(margin) and margin >= 1.0):
            raise ValueError(f'margin must be a finite factor >= 1 on the nominal travel time, got {margin}')
        if not (math.isfinite(ramp_allowance_s) and ramp_allowance_s >= 0.0):
            raise ValueError(f'ramp_allowance_s must be finite and >= 0, got {ramp_allowance_s!r}')
        names = [name for name, _ in layout.eyes]
        if len(set(names)) != len(names):
            raise ValueError(f'photo-eye names must be unique, got {names}')
        unknown = set(hold_eyes) - set(names)
        if unknown:
            raise ValueError(f'hold_eyes names unknown photo-eyes {sorted(unknown)}; eyes are {names}')
        self.layout = layout
        self.margin = margin
        self.ramp_allowance_s = ramp_allowance_s
        self._names = names
        self._x = dict(layout.eyes)
        self._hold_eyes = frozenset(hold_eyes)
        self._legs: list[_Leg] = []  # parts in flight, oldest first
        self._held: list[tuple[int, str]] = []  # (part id, eye) of parts waiting at a hold eye, oldest first
        self._next_id = 1
        self._now_s: float | None = None
        self._speed_m_s = 0.0

    @property
    def parts_in_flight(self) -> list[tuple[int, str, str]]:
        """(part id, from eye, to eye) of every part travelling between eyes, oldest first."""
        return [(leg.part_id, leg.from_eye, leg.to_eye) for leg in self._legs]

    @property
    def parts_held(self) -> list[tuple[int, str]]:
        return list(self._held)

    def set_belt_speed(self, time_s: float, speed_m_s: float) -> None:
        """Set the belt speed in force from `time_s` on (0 while stopped or tripped)."""
        if not (math.isfinite(speed_m_s) and speed_m_s >= 0.0):
            raise ValueError(f'belt speed must be finite and >= 0 m/s, got {speed_m_s!r}')
        self._advance(time_s)
        if self._speed_m_s == 0.0 and speed_m_s > 0.0:
            for leg in self._legs:
                leg.ramp_left_s = self.ramp_allowance_s
        self._speed_m_s = speed_m_s

    def eye_edge(self, eye: str, blocked: bool, time_s: float) -> UnexpectedPart | None:
        """Take an edge of photo-eye `eye` (True: beam blocked by a part); return a tracking fault, if any."""
        if eye not in self._x:
            raise ValueError(f'unknown photo-eye {eye!r}; eyes are {self._names}')
        self._advance(time_s)
        index = self._names.index(eye)
        if blocked:
            if index == 0:
                part_id, self._next_id = self._next_id, self._next_id + 1
            else:
                arriving = next((leg for leg in self._legs if leg.to_eye == eye), None)
                if arriving is None:
                    return UnexpectedPart(eye, time_s)
                self._legs.remove(arriving)
                part_id = arriving.part_id
            if eye in self._hold_eyes:
                self._held.append((part_id, eye))
            elif index + 1 < len(self._names):
                self._start_leg(part_id, eye, 0.0, time_s)
        else:
            held = next((entry for entry in self._held if entry[1] == eye), None)
            if held is not None:
                self._held.remove(held)
                if index + 1 < len(self._names):
                    self._start_leg(held[0], eye, self.layout.part_length_m, time_s)
        return None

    def check(self, time_s: float) -> list[JamFault]:
        """Jams found up to `time_s`; each overrun leg is reported once."""
        self._advance(time_s)
        faults = []
        for leg in self._legs:
            if leg.reported or leg.travelled_m <= self.margin * leg.distance_m:
                continue
            leg.reported = True
            expected_s = self._deadline_s(leg, time_s) - leg.start_s
            faults.append(JamFault(leg.part_id, leg.from_eye, leg.to_eye, expected_s, time_s - leg.start_s))
        return faults

    def fault_reset(self, latched_fault: str) -> None:
        """Take a reset of the driver's fault, `latched_fault` being what was latched ('' for nothing).

        A latched fault was cleared by someone at the belt (a jam freed, parts pulled back): its content is
        unknown and every part is forgotten. A reset with nothing latched (after an e-stop, which stops the belt
        but moves no part by hand) keeps following every part; forgetting them would leave their next jam unseen
        and each of their eye edges an unexpected part.
        """
        if latched_fault:
            self._legs.clear()
            self._held.clear()

    def _start_leg(self, part_id: int, eye: str, already_past_m: float, time_s: float) -> None:
        next_eye = self._names[self._names.index(eye) + 1]
        distance = max(0.0, self._x[next_eye] - self._x[eye] - already_past_m)
        self._legs.append(_Leg(part_id, eye, next_eye, distance, time_s, ramp_left_s=self.ramp_allowance_s))

    def clock_restarted(self, time_s: float) -> None:
        """Take `time_s` as the new now after the clock went back: parts keep how far they travelled."""
        if not math.isfinite(time_s):
            raise ValueError(f'time must be finite, got {time_s!r}')
        self._now_s = time_s

    def _advance(self, time_s: float) -> None:
        if not math.isfinite(time_s):
            raise ValueError(f'time must be finite, got {time_s!r}')
        if self._now_s is not None and time_s < self._now_s:
            raise ValueError(f'time went backwards: {time_s} s after {self._now_s} s')
        dt = 0.0 if self._now_s is None else time_s - self._now_s
        self._now_s = time_s
        if self._speed_m_s == 0.0:
            return
        for leg in self._legs:
            ramp = min(leg.ramp_left_s, dt)
            leg.ramp_left_s -= ramp
            leg.travelled_m += self._speed_m_s * (dt - ramp)

    def _deadline_s(self, leg: _Leg, now_s: float) -> float:
        """Return when the overrun leg ran out of time (the current speed carried it past its allowed travel)."""
        overshoot_m = leg.travelled_m - self.margin * leg.distance_m
        return now_s - overshoot_m / self._speed_m_s if self._speed_m_s > 0 else now_s
