"""Production KPIs of a run, and the lower bound on the cycle time that the coordinator is measured against.

`critical_path_s` is the cycle time per part with perfect overlap: every resource (the weld station with its
belt legs and arm moves, each AGV) works without waiting, so the slowest resource's time per part is the best
any coordinator can do with the same motion limits. mean_cycle_s / critical_path_s is the coordinator's
efficiency (1.0 is perfect).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from cell_control.cell.idle import Readiness


def trapezoid_time_s(distance: float, max_speed: float, max_accel: float) -> float:
    """Shortest time over `distance` from rest to rest with speed and acceleration limits."""
    distance = abs(distance)
    if distance == 0.0:
        return 0.0
    ramp = max_speed * max_speed / max_accel
    if distance <= ramp:
        return 2.0 * math.sqrt(distance / max_accel)
    return distance / max_speed + max_speed / max_accel


@dataclass(frozen=True)
class StationLegs:
    """The station's work per part, each from its own model (belt, clamp, arm, weld process)."""

    feed_s: float          # queued part at the infeed end → against the stop gate
    clamp_s: float         # close and open
    approach_s: float      # arm home → each seam's start (joint move or air move, and descent)
    weld_s: float          # every seam at the heat-ratio-1 speed (t_ref of DESIGN §6)
    retract_s: float       # each weld path's lifts and run-ups, and the joint move home
    release_s: float       # belt carries the part clear of the station eye

    @property
    def total_s(self) -> float:
        return self.feed_s + self.clamp_s + self.approach_s + self.weld_s + self.retract_s + self.release_s


def agv_round_trip_s(path_m: list[float], turns_rad: list[float], transfer_s: float, max_speed: float,
                     max_accel: float, max_turn_rate: float, max_turn_accel: float) -> float:
    """Return an AGV's time per part: its straight legs and turns at its limits, plus the deck transfer."""
    driving = sum(trapezoid_time_s(d, max_speed, max_accel) for d in path_m)
    turning = sum(trapezoid_time_s(t, max_turn_rate, max_turn_accel) for t in turns_rad)
    return driving + turning + transfer_s


def critical_path_s(station: StationLegs, inbound_agv_s: float, outbound_agv_s: float) -> float:
    return max(station.total_s, inbound_agv_s, outbound_agv_s)


@dataclass(frozen=True)
class PartOutcome:
    part_id: str
    announced_s: float
    left_s: float | None   # delivered or rejected (None: still in the cell)
    verdict: str


def production_kpis(parts: list[PartOutcome], run_s: float, fault_s: float, critical_s: float) -> dict:
    """Compute the production KPIs: cycle time, throughput, availability and the coordinator's efficiency.

    Cycle time per part is the interval between departures (the first part's is its lead time); availability
    is the share of the run not spent in a fault or emergency stop.
    """
    left = sorted(p.left_s for p in parts if p.left_s is not None)
    cycles = ([left[0] - min(p.announced_s for p in parts)] if left else []) + \
        [b - a for a, b in zip(left, left[1:])]
    steady = cycles[1:] or cycles
    mean_cycle = sum(steady) / len(steady) if steady else math.nan
    span = left[-1] - min(p.announced_s for p in parts) if left else math.nan
    return {
        'cycle_s': [round(c, 2) for c in cycles],
        'mean_cycle_s': round(mean_cycle, 2),
        'critical_path_s': round(critical_s, 2),
        'efficiency': round(mean_cycle / critical_s, 3) if left else math.nan,
        'throughput_parts_per_h': round(3600.0 * len(left) / span, 1) if left and span > 0 else 0.0,
        'availability_pct': round(100.0 * (1.0 - fault_s / run_s), 1) if run_s > 0 else math.nan,
    }


def welds_by_part(welded_order: list[str], results: list[dict]) -> dict[str, list[dict]]:
    """Give each part the simulation's weld results of its seams, in the order the parts were welded.

    A result with `seam_index` 0 (or at most the previous one's) begins the next part's welds, so a part whose
    weld was interrupted before its last seam keeps only the seams it got; results without an index are one
    per part.
    """
    grouped: dict[str, list[dict]] = {}
    part_index, previous = -1, None
    for result in results:
        index = result.get('seam_index')
        if index is None or previous is None or index <= previous:
            part_index += 1
        previous = index
        if part_index < len(welded_order):
            grouped.setdefault(welded_order[part_index], []).append(result)
    return grouped


def maintenance_kpis(state: list[dict]) -> dict[str, dict]:
    """Shape the maintenance node's state (ConditionMonitor.state) as the demo's KPIs, per indicator.

    Each gets its level, the prediction's message, the fitted value and the predicted parts and hours to the
    limit (None: no crossing predicted, or too few samples to predict).
    """
    kpis = {}
    for entry in state:
        try:
            indicator, prediction = entry['indicator'], entry['prediction']
            kpis[prediction['key']] = {
                'level': prediction['level'], 'message': prediction['message'], 'samples': prediction['samples'],
                'value': prediction['value'], 'unit': indicator['unit'], 'limit': indicator['limit'],
                'parts_to_limit': prediction['parts_to_limit'], 'hours_to_limit': prediction['hours_to_limit']}
        except (KeyError, TypeError) as error:
            raise ValueError(f'maintenance state: an indicator without {error}') from None
    return kpis


SEAM_FINDING_TARGET_MM = 0.3      # issue 10: the part's pose found within 0.3 mm ...
SEAM_FINDING_TARGET_DEG = 0.1     # ... and 0.1° of where it lies


def seam_finding_kpis(located: list[dict], welds: dict[str, list[dict]], datum_x_m: float) -> dict:
    """Judge each part's seam search against where the part really lay, per part and at worst.

    located: the coordinator's /cell/part_located reports; welds: the simulation's weld results per part
    (`welds_by_part`), whose `part_pose` is the ground truth (the part's world pose while welded; the datum is
    at x = `datum_x_m`, y = 0, square). A part whose seam was not found has its reason and no error; a part
    never welded has no truth.
    """
    parts: dict[str, dict] = {}
    errors = []
    for report in located:
        entry: dict = {'found': bool(report.get('found'))}
        if not entry['found']:
            entry['reason'] = report.get('reason', '')
            parts[report['part_id']] = entry
            continue
        entry['found_offset'] = {k: report[k] for k in ('x_mm', 'y_mm', 'yaw_deg')}
        truth = next((w['part_pose'] for w in welds.get(report['part_id'], []) if w.get('part_pose')), None)
        if truth is not None:
            true = {'x_mm': round(1000.0 * (truth['x_m'] - datum_x_m), 3), 'y_mm': round(1000.0 * truth['y_m'], 3),
                    'yaw_deg': round(math.degrees(truth['yaw_rad']), 4)}
            error = {'position_mm': round(math.hypot(report['x_mm'] - true['x_mm'], report['y_mm'] - true['y_mm']), 3),
                     'yaw_deg': round(abs(report['yaw_deg'] - true['yaw_deg']), 4)}
            entry.update(true_offset=true, error=error)
            errors.append(error)
        parts[report['part_id']] = entry
    worst_mm = max((e['position_mm'] for e in errors), default=None)
    worst_deg = max((e['yaw_deg'] for e in errors), default=None)
    return {'parts': parts, 'searched': len(located), 'not_found': sum(not p['found'] for p in parts.values()),
            'judged': len(errors), 'worst_position_error_mm': worst_mm, 'worst_yaw_error_deg': worst_deg,
            'within_target': worst_mm is not None and worst_deg is not None
            and worst_mm <= SEAM_FINDING_TARGET_MM and worst_deg <= SEAM_FINDING_TARGET_DEG}


class IdleWatch:
    """The idle policy as an operator sees it on /cell/state, in the cell's seconds.

    How often the cell parked, how long it stood in standby, and how long each wake took ('waking' to 'ready').
    """

    def __init__(self) -> None:
        self.parks = 0
        self.standby_s = 0.0
        self.wakes_s: list[float] = []
        self._last: tuple[str, float] | None = None
        self._waking_since_s: float | None = None

    def sample(self, readiness: str, now_s: float) -> None:
        """Take the state's `readiness` at `now_s`; the interval since the last sample counts to the last one."""
        last, self._last = self._last, (readiness, now_s)
        was = last[0] if last is not None else Readiness.READY
        if last is not None and was == Readiness.STANDBY:
            self.standby_s += max(0.0, now_s - last[1])
        if readiness == was:
            return
        if readiness == Readiness.PARKING:
            self.parks += 1
        elif readiness == Readiness.WAKING:
            self._waking_since_s = now_s
        elif readiness == Readiness.READY and self._waking_since_s is not None:
            self.wakes_s.append(round(now_s - self._waking_since_s, 1))
            self._waking_since_s = None

    def kpis(self) -> dict:
        return {'parks': self.parks, 'standby_s': round(self.standby_s, 1), 'wakes_s': list(self.wakes_s)}
