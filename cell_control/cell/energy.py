"""Energy per part (issue 13, point 4): what each consumer of the cell used, per part and per cell state; no rclpy.

Public API:
    SOURCES = ('arc', 'conveyor', 'arm', 'agv');  STATES = ('welding', 'moving', 'waiting', 'idle')
    cell_state_of(snapshot) -> state     the coordinator's /cell/state snapshot (JSON dict) as an energy state
    arc_energy_j(arc_time_s, power_drift, recipe_power_w)   the source's electrical energy of one weld
    arm_power_w(efforts, velocities)     Σ |τ·q̇| over the joints (the drives take power in both directions)
    StandingLoads(...)                   what the arm controller and the weld power source draw besides their work,
        .arm_w(readiness), .weld_source_w(readiness)    by the idle policy's readiness (cell.idle): modelled
    EnergyMeter(max_gap_s)
        .set_state(state, now_s)         from now on energy counts to this state
        .power(source, watts, now_s, meter='')   a power reading of one meter of a source (each AGV's battery
                                         is one meter of 'agv'); the interval since that meter's last reading
                                         counts at that reading's power (zero-order hold), never across a gap
                                         longer than max_gap_s (a silent stream adds nothing)
        .energy(source, joules)          a lump of energy measured whole (one weld's arc)
        .battery(agv, charge_ah, voltage_v, discharge_w, now_s)   an AGV battery's report: what it gave since its
                                         last report from the fall of its charge (exact at any sampling), or from
                                         its discharge power held (as .power) when it does not measure its charge
        .part_done(part_id) -> dict      everything since the previous part is this part's share
        .summary() -> dict               totals by source and by state, each part, the mean per part, and what
                                         came after the last part (Wh)
    energy_kpis(summary) -> dict         a summary (as /cell/energy carries it) shaped as the demo's KPIs

Sources: 'arc' is the weld power source (its arc energy and its own draw), 'conveyor' the drive's input power,
'arm' the arm's drives and controller, 'agv' the AGVs' traction (battery discharge).
States: 'idle' while the cell does not run (stopped, fault, waiting for a start) or is parked in standby by the idle
policy; while it runs 'welding' in
the welding stage, 'moving' while the belt runs or the arm travels to or from the seam, else 'waiting' (for a
part, the clamp or an AGV). A part's share is all the energy from the previous part's delivery to its own, so
the parts' shares add up to the total since the first part began.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cell_control.cell.idle import Readiness
from cell_control.cell.signals import positive_seconds
from cell_control.weld.process_model import RECIPE_POWER_W

SOURCES = ('arc', 'conveyor', 'arm', 'agv')
STATES = ('welding', 'moving', 'waiting', 'idle')
MOVING_STAGES = ('feeding', 'approach', 'retract', 'releasing')
J_PER_WH = 3600.0


def cell_state_of(snapshot: Mapping[str, object]) -> str:
    """Return the energy state of a coordinator snapshot ('state', 'stage', 'belt_running' as it publishes them)."""
    if snapshot.get('state') != 'running' or snapshot.get('readiness') == Readiness.STANDBY:
        return 'idle'
    stage = snapshot.get('stage')
    if stage == 'welding':
        return 'welding'
    if stage in MOVING_STAGES or str(snapshot.get('belt_running')) == 'True':
        return 'moving'
    return 'waiting'


def arc_energy_j(arc_time_s: float, power_drift: float = 0.0, recipe_power_w: float = RECIPE_POWER_W) -> float:
    """Electrical energy the power source gave one weld: P·(1+δ) for the arc time (DESIGN §6)."""
    if not (math.isfinite(arc_time_s) and arc_time_s >= 0.0):
        raise ValueError(f'arc_time_s must be a finite number ≥ 0, got {arc_time_s!r}')
    if not (math.isfinite(power_drift) and power_drift > -1.0):
        raise ValueError(f'power_drift must be a finite number > -1, got {power_drift!r}')
    return recipe_power_w * (1.0 + power_drift) * arc_time_s


class ArcTimer:
    """Time the arc burns from the cell's own arc command: what a cell knows of its arc energy.

    The power source's real output (P·(1+δ), DESIGN §6) is not on the bus, so the cell counts the programmed
    power for the time the arc was commanded on (`arc_energy_j` with no drift).
    """

    def __init__(self) -> None:
        self._since_s: float | None = None

    def command(self, on: bool, now_s: float) -> float:
        """Take an arc command at `now_s`; return the seconds of a burn it ends (0 when it ends none)."""
        if on:
            if self._since_s is None:
                self._since_s = now_s
            return 0.0
        since, self._since_s = self._since_s, None
        return max(0.0, now_s - since) if since is not None else 0.0


def arm_power_w(efforts: Sequence[float], velocities: Sequence[float]) -> float:
    """Mechanical power of the arm's drives, Σ |τ_i·q̇_i| in W (no regeneration is credited)."""
    if len(efforts) != len(velocities):
        raise ValueError(f'arm power needs one effort per velocity, got {len(efforts)} and {len(velocities)}')
    return float(sum(abs(tau * qd) for tau, qd in zip(efforts, velocities)))


@dataclass(frozen=True)
class StandingLoads:
    """The standing draw of the arm controller and the weld power source, in W, ready and in standby.

    Neither is on any bus of the cell, so they are modelled from the cell's readiness (cell.idle). Ready: the arm's
    drives powered with the brakes released, holding the arm (UR5e-class controller and six drives); the power
    source switched on, fans and control running, arc off. Standby: the arm at rest on its brakes, only its
    controller on; the power source in its energy-saving mode. Parking and waking count as ready.
    """

    arm_ready_w: float = 90.0
    arm_parked_w: float = 20.0
    weld_source_ready_w: float = 60.0
    weld_source_standby_w: float = 8.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)
                                               and value >= 0.0):
                raise ValueError(f'standing load {name} must be a finite number of W ≥ 0, got {value!r}')

    def arm_w(self, readiness: str) -> float:
        return self.arm_parked_w if readiness == Readiness.STANDBY else self.arm_ready_w

    def weld_source_w(self, readiness: str) -> float:
        return self.weld_source_standby_w if readiness == Readiness.STANDBY else self.weld_source_ready_w


def _zero() -> dict[str, dict[str, float]]:
    return {state: dict.fromkeys(SOURCES, 0.0) for state in STATES}


class EnergyMeter:
    def __init__(self, max_gap_s: float = 1.0) -> None:
        self.max_gap_s = positive_seconds('max_gap_s', max_gap_s)
        self.state = 'idle'
        # (source, meter): (time, watts, state) of its last reading. Per meter: two AGVs' batteries each hold
        # their own reading; one hold per source made each reading replace the other AGV's.
        self._last: dict[tuple[str, str], tuple[float, float, str]] = {}
        self._charge_ah: dict[str, float] = {}   # each battery's charge at its last report
        self._total = _zero()
        self._part = _zero()
        self.parts: list[dict] = []

    def set_state(self, state: str, now_s: float) -> None:
        if state not in STATES:
            raise ValueError(f'energy state must be one of {STATES}, got {state!r}')
        for (source, meter), (_, watts, _) in list(self._last.items()):   # the interval so far: the old state
            self.power(source, watts, now_s, meter)
        self.state = state
        self._last = {key: (t, watts, state) for key, (t, watts, _) in self._last.items()}

    def _add(self, source: str, state: str, joules: float) -> None:
        self._total[state][source] += joules
        self._part[state][source] += joules

    def power(self, source: str, watts: float, now_s: float, meter: str = '') -> None:
        if source not in SOURCES:
            raise ValueError(f'energy source must be one of {SOURCES}, got {source!r}')
        if not (math.isfinite(watts) and watts >= 0.0):
            raise ValueError(f'{source} power must be a finite number of W ≥ 0, got {watts!r}')
        last = self._last.get((source, meter))
        if last is not None:
            dt = now_s - last[0]
            if 0.0 < dt <= self.max_gap_s:
                self._add(source, last[2], last[1] * dt)
        self._last[(source, meter)] = (now_s, watts, self.state)

    def energy(self, source: str, joules: float) -> None:
        if source not in SOURCES:
            raise ValueError(f'energy source must be one of {SOURCES}, got {source!r}')
        if not (math.isfinite(joules) and joules >= 0.0):
            raise ValueError(f'{source} energy must be a finite number of J ≥ 0, got {joules!r}')
        self._add(source, self.state, joules)

    def battery(self, agv: str, charge_ah: float, voltage_v: float, discharge_w: float, now_s: float) -> None:
        """Count what an AGV's battery gave since its last report: the fall of its charge times its voltage.

        Its power is a sample of a moment (the simulated gauge's: the last odometry interval, 20 ms); held for
        the second until the next report, it counted a trip up to 12 % high or low by where the samples fell in
        the AGV's accelerations, which moved with the speed of the run. The charge's fall counts every joule
        whatever the sampling; a rise (charging) counts nothing. A battery that does not measure its charge (NaN,
        as sensor_msgs/BatteryState allows; anything not a number ≥ 0 is taken so) is counted from `discharge_w`,
        held as by `power`.
        """
        if not (math.isfinite(voltage_v) and voltage_v >= 0.0):
            raise ValueError(f'{agv} battery voltage must be a finite number of V ≥ 0, got {voltage_v!r}')
        if not (math.isfinite(charge_ah) and charge_ah >= 0.0):
            self._charge_ah.pop(agv, None)
            self.power('agv', discharge_w, now_s, meter=agv)
            return
        self._last.pop(('agv', agv), None)   # a battery that starts reporting its charge leaves the power hold
        before = self._charge_ah.get(agv)
        self._charge_ah[agv] = charge_ah
        if before is not None and charge_ah < before:
            self._add('agv', self.state, (before - charge_ah) * voltage_v * J_PER_WH)

    def part_done(self, part_id: str) -> dict:
        part = _breakdown(self._part)
        part['part'] = part_id
        self.parts.append(part)
        self._part = _zero()
        return part

    def summary(self) -> dict:
        result = _breakdown(self._total)
        done = [p['total_wh'] for p in self.parts]
        result['parts'] = list(self.parts)
        result['mean_per_part_wh'] = round(sum(done) / len(done), 3) if done else None
        # From the joules, not total minus the parts: each part's share is rounded, and 30 roundings add up.
        result['after_last_part_wh'] = _breakdown(self._part)['total_wh']
        return result


def _breakdown(joules: dict[str, dict[str, float]]) -> dict:
    """Wh by source, by state, by state and source, and the total."""
    by_source = {s: round(sum(joules[state][s] for state in STATES) / J_PER_WH, 4) for s in SOURCES}
    by_state = {state: round(sum(joules[state].values()) / J_PER_WH, 4) for state in STATES}
    return {'total_wh': round(sum(by_source.values()), 4), 'by_source_wh': by_source, 'by_state_wh': by_state,
            'by_state_source_wh': {state: {s: round(joules[state][s] / J_PER_WH, 4) for s in SOURCES}
                                   for state in STATES}}


def energy_kpis(summary: Mapping) -> dict:
    """Shape an EnergyMeter summary into the demo's KPIs (Wh): totals, then each part by state and by source.

    `energy_after_last_part_wh` is what no part took (the cell after the last departure); a summary without
    the meter's fields is refused with a ValueError naming the missing one.
    """
    def shaped(entry: Mapping, what: str) -> dict:
        try:
            return {'total_wh': float(entry['total_wh']),
                    'by_state_wh': {state: float(entry['by_state_wh'][state]) for state in STATES},
                    'by_source_wh': {source: float(entry['by_source_wh'][source]) for source in SOURCES}}
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f'energy summary: {what} has no number for {error}') from None
    total = shaped(summary, 'the total')
    try:
        after_last_part_wh = float(summary['after_last_part_wh'])
    except (KeyError, TypeError, ValueError):
        raise ValueError("energy summary: 'after_last_part_wh' must be a number") from None
    if not isinstance(summary.get('parts'), list):
        raise ValueError("energy summary: 'parts' must be a list")
    parts = [{'part': str(part.get('part', '')), **shaped(part, f'part {i + 1}')}
             for i, part in enumerate(summary['parts'])]
    return {
        'energy_total_wh': total['total_wh'],
        'energy_by_state_wh': total['by_state_wh'],
        'energy_by_source_wh': total['by_source_wh'],
        'energy_mean_per_part_wh': round(sum(p['total_wh'] for p in parts) / len(parts), 3) if parts else None,
        'energy_after_last_part_wh': after_last_part_wh,
        'energy_per_part_wh': parts,
    }
