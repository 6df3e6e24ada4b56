"""Predictive maintenance judged on scenarios (issue 13, point 3): warning lead times and false alarms.

Run: `.venv/bin/python -m cell_control.bench maintenance`

Each part drives the real models: the weld process model with the adjuster in the loop (closed mode, a
SEAM_MM seam of the 'short' family, dropout 0.01, outliers 0.002, the drift estimate carried from weld to weld
as weld_statistics does; the indicator is the adjuster's final drift estimate), the VFD emulator's motor
model on a simulated clock (the belt runs TRANSPORT_S per part; the indicator is the mean output current at
speed, in the drive's 0.01 A counts), the arm joint's friction + inertia model over its fixed check motion
(RMS effort), and each AGV's battery over its round trip home → dock → home from the layout (state of
charge read at dispatch, gauge noise σ SOC_NOISE_PCT). A part takes CYCLE_S, which turns parts into hours.

Scenarios, each on SEEDS: one per degradation (only that asset is simulated), run until the monitor reports
ERROR and the noise-free value has crossed the limit (or MAX_PARTS): the lead time is the part where the
noise-free value crosses the limit minus the part of the first WARN. The healthy scenario runs HEALTHY_PARTS
parts of every asset with the part-to-part variation (power drift uniform in ±10 %, belt load, joint friction,
sensor noise) and must raise no WARN or ERROR at all; its condition store is closed and reopened halfway, as a
restarted node would.

Prints a markdown report and a JSON line of the figures; exits 1 when a lead time is below MIN_LEAD_PARTS,
a degradation never reached ERROR, or a healthy run raised anything.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cell_control.cell.description import load_layout
from cell_control.drivers.conveyor_vfd import CW_RUN, REG_CONTROL_WORD, REG_STATUS_WORD, SW_AT_SPEED, speed_to_counts
from cell_control.drivers.vfd_emulator import VfdMotor, running_current_a
from cell_control.logistics.agv_navigation import Pose2D, docking_route
from cell_control.maintenance import ConditionMonitor, ConditionStore, Level
from cell_control.maintenance.cell_readings import CELL_INDICATORS
from cell_control.sim.degradation import (AgvBattery, BearingWear, CellWear, ChargerFade, ContactTipWear,
                                          DegradationConfig, JointFrictionRise)
from cell_control.sim.weld_loop import run_weld_eval
from cell_control.weld.seam_gen import generate_seam

SEEDS = (1, 2, 3)
HEALTHY_PARTS = 200
MAX_PARTS = 300
MIN_LEAD_PARTS = 20
CYCLE_S = 60.0
SEAM_MM = 50.0
DROPOUT_RATE = 0.01
OUTLIER_RATE = 0.002
TRANSPORT_S = 15.0
BELT_SPEED_M_S = 0.3
CURRENT_SAMPLE_S = 0.5
AGV_SPEED_M_S = 0.5
AGV_DOCKED_S = 10.0
SOC_NOISE_PCT = 0.3
WORKERS = 2

INDICATORS = CELL_INDICATORS
SCENARIOS: dict[str, tuple[DegradationConfig, tuple[str, ...]]] = {  # name: (degradations, assets simulated)
    'contact_tip': (DegradationConfig(contact_tip=ContactTipWear()), ('weld_power',)),
    'conveyor_bearing': (DegradationConfig(conveyor_bearing=BearingWear()), ('conveyor',)),
    'arm_joint': (DegradationConfig(arm_joint=JointFrictionRise()), ('arm',)),
    'agv_charger': (DegradationConfig(agv_charger=ChargerFade()), ('agv_1', 'agv_2')),
    'healthy': (DegradationConfig(), tuple(i.asset for i in INDICATORS)),
}

Reading = tuple[str, float, float]  # indicator key, measured value, noise-free value


def round_trip_m(layout: dict, agv: str, dock: str) -> float:
    """Length of the route home → pre-dock point → dock, twice."""
    home = layout['agv']['home'][agv]
    here = Pose2D(float(home['x']), float(home['y']), float(home['yaw']))
    d = layout['docks'][dock]
    length = 0.0
    for point in docking_route(here, Pose2D(float(d['x']), float(d['y']), float(d['yaw']))):
        length += math.hypot(point.x - here.x, point.y - here.y)
        here = point
    return 2.0 * length


class CellParts:
    """Drives the assets of one scenario part by part and returns each indicator's reading."""

    def __init__(self, degradation: DegradationConfig, seed: int, assets: tuple[str, ...]) -> None:
        self.wear = CellWear(replace(degradation, seed=seed))
        self.seed = seed
        self.assets = assets
        self.carried_drift: float | None = None
        self.now_s = 0.0
        self.motor = VfdMotor(0.5, 0.5, lambda: self.now_s)
        layout = load_layout()
        self.trips = {'agv_1': round_trip_m(layout, 'agv_1', 'inbound'),
                      'agv_2': round_trip_m(layout, 'agv_2', 'outbound')}
        self.batteries = {name: AgvBattery(capacity_wh=500.0, charge_w=800.0) for name in self.trips}
        self.gauge = random.Random(f'soc-{seed}')

    def part(self, n: int) -> list[Reading]:
        readers: dict[str, Callable[[int], list[Reading]]] = {
            'weld_power': self._weld, 'conveyor': self._conveyor, 'arm': self._arm}
        readings: list[Reading] = []
        for asset in self.assets:
            if asset in readers:
                readings += readers[asset](n)
        if 'agv_1' in self.assets:
            readings += self._agvs(n)
        return readings

    def _weld(self, n: int) -> list[Reading]:
        seed = self.seed * 100_000 + n
        result = run_weld_eval(generate_seam('short', seed, SEAM_MM), 'closed', self.wear.power_drift(n),
                               DROPOUT_RATE, OUTLIER_RATE, seed, initial_drift=self.carried_drift)
        self.carried_drift = result.drift_estimate
        return [('weld_power/drift_estimate', result.drift_estimate, self.wear.true_power_drift(n))]

    def _conveyor(self, n: int) -> list[Reading]:
        """Run the belt for one transport on the drive model; the mean current read at speed."""
        motor = self.motor
        motor.set_extra_load(self.wear.conveyor_load_pu(n))
        motor.write(REG_CONTROL_WORD, [CW_RUN, speed_to_counts(BELT_SPEED_M_S, motor.max_speed_m_s)])
        start, currents = self.now_s, []
        while self.now_s < start + TRANSPORT_S:
            self.now_s += CURRENT_SAMPLE_S
            motor.advance()
            if motor.registers()[REG_STATUS_WORD] & SW_AT_SPEED:
                currents.append(round(motor.current_a(), 2))  # the drive reports 0.01 A counts
        motor.write(REG_CONTROL_WORD, [0])
        self.now_s = start + CYCLE_S
        motor.advance()
        true = running_current_a(self.wear.true_conveyor_load_pu(n))
        return [('conveyor/motor_current', sum(currents) / len(currents), true)]

    def _arm(self, n: int) -> list[Reading]:
        return [('arm/elbow_effort_rms', self.wear.joint_effort_rms(n), self.wear.true_joint_effort_rms(n))]

    def _agvs(self, n: int) -> list[Reading]:
        """Each AGV leaves home (SOC read), drives its round trip, waits docked, charges for the rest."""
        readings = []
        share = self.wear.charger_share(n)
        for name, distance in self.trips.items():
            battery = self.batteries[name]
            soc = battery.soc_pct
            readings.append((f'{name}/soc_at_dispatch', soc + self.gauge.gauss(0.0, SOC_NOISE_PCT), soc))
            drive_s = distance / AGV_SPEED_M_S
            battery.drive(distance, drive_s + AGV_DOCKED_S)
            battery.rest_at_home(CYCLE_S - drive_s - AGV_DOCKED_S, share)
        return readings


def _run(job: tuple[str, int]) -> dict:
    """Run one scenario on one seed with a real condition store; return its figures."""
    scenario, seed = job
    degradation, assets = SCENARIOS[scenario]
    indicators = [i for i in INDICATORS if i.asset in assets]
    limits = {i.key: i for i in indicators}
    parts = CellParts(degradation, seed, assets)
    started = time.monotonic()
    first_warn: dict[str, int] = {}
    first_error: dict[str, int] = {}
    crossed: dict[str, int] = {}
    closest: dict[str, float] = {}  # the fewest parts to the limit any prediction gave
    with tempfile.TemporaryDirectory(prefix='maintenance_bench_') as folder:
        path = Path(folder) / 'condition.sqlite'
        store = ConditionStore(path)
        try:
            monitor = ConditionMonitor(store, indicators)
            last = HEALTHY_PARTS if scenario == 'healthy' else MAX_PARTS
            for n in range(last):
                if scenario == 'healthy' and n == HEALTHY_PARTS // 2:  # a restart: reopen the file, go on
                    store.close()
                    store = ConditionStore(path)
                    monitor = ConditionMonitor(store, indicators)
                    if any(monitor.next_seq(i.asset, i.name) != n for i in indicators):
                        raise RuntimeError(f'the reopened store does not continue at part {n}')
                for key, value, true in parts.part(n):
                    asset, name = key.split('/')
                    prediction = monitor.record(asset, name, n, n * CYCLE_S, value)
                    level = prediction.level
                    if math.isfinite(prediction.parts_to_limit):
                        closest[key] = min(closest.get(key, math.inf), prediction.parts_to_limit)
                    if level >= Level.WARN:
                        first_warn.setdefault(key, n)
                    if level == Level.ERROR:
                        first_error.setdefault(key, n)
                    if limits[key].crossed(true):
                        crossed.setdefault(key, n)
                if scenario != 'healthy' and len(first_error) == len(crossed) == len(indicators):
                    break
        finally:
            store.close()
    return {'scenario': scenario, 'seed': seed, 'parts': n + 1, 'first_warn': first_warn, 'first_error': first_error,
            'crossed': crossed, 'closest': closest, 'elapsed_s': time.monotonic() - started}


def judge(runs: list[dict]) -> tuple[list[dict], list[str]]:
    """One row per scenario, seed and indicator; the misses in words."""
    rows, missed = [], []
    for run in sorted(runs, key=lambda r: (list(SCENARIOS).index(r['scenario']), r['seed'])):
        for indicator in (i for i in INDICATORS if i.asset in SCENARIOS[run['scenario']][1]):
            key = indicator.key
            warn, error, cross = (run[k].get(key) for k in ('first_warn', 'first_error', 'crossed'))
            lead = cross - warn if warn is not None and cross is not None else None
            row = {'scenario': run['scenario'], 'seed': run['seed'], 'indicator': key, 'parts': run['parts'],
                   'first_warn': warn, 'first_error': error, 'true_crossing': cross, 'lead_parts': lead,
                   'lead_hours': None if lead is None else lead * CYCLE_S / 3600.0,
                   'fewest_parts_predicted': run['closest'].get(key) if run['scenario'] == 'healthy' else None}
            rows.append(row)
            where = f'{run["scenario"]} seed {run["seed"]} {key}'
            if run['scenario'] == 'healthy':
                if warn is not None:
                    missed.append(f'{where}: false alarm at part {warn}')
            elif lead is None or lead < MIN_LEAD_PARTS:
                missed.append(f'{where}: lead {lead} parts (warn {warn}, crossing {cross})')
            elif error is None:
                missed.append(f'{where}: never reached ERROR in {run["parts"]} parts')
    return rows, missed


def report(rows: list[dict], elapsed_s: float) -> str:
    def show(value: object) -> str:
        return '–' if value is None else f'{value:.2f}' if isinstance(value, float) else str(value)
    lines = ['| scenario | seed | indicator | parts run | first WARN | true crossing | first ERROR | lead parts '
             '(hours) | healthy: fewest parts to the limit predicted |', '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f'| {r["scenario"]} | {r["seed"]} | {r["indicator"]} | {r["parts"]} | {show(r["first_warn"])} | '
                     f'{show(r["true_crossing"])} | {show(r["first_error"])} | {show(r["lead_parts"])} '
                     f'({show(r["lead_hours"])}) | {show(r["fewest_parts_predicted"])} |')
    leads = [r['lead_parts'] for r in rows if r['scenario'] != 'healthy' and r['lead_parts'] is not None]
    healthy = [r for r in rows if r['scenario'] == 'healthy']
    margins = [r['fewest_parts_predicted'] for r in healthy if r['fewest_parts_predicted'] is not None]
    closest = f'{min(margins):.0f}' if margins else 'none'
    horizons = '/'.join(sorted({f'{i.warn_horizon:g}' for i in INDICATORS}))
    lines.append(f'\nShortest lead {min(leads) if leads else "–"} parts (target ≥ {MIN_LEAD_PARTS}); false alarms '
                 f'in healthy runs: {sum(r["first_warn"] is not None for r in healthy)} of {len(healthy)} '
                 f'indicator runs × {HEALTHY_PARTS} parts; the fewest parts to a limit that a healthy prediction '
                 f'gave: {closest} (warn horizon {horizons} parts). {len(rows)} rows in {elapsed_s:.0f} s with '
                 f'{WORKERS} workers.')
    return '\n'.join(lines)


def jobs() -> list[tuple[str, int]]:
    """List the jobs, the weld-heavy ones first, so that the two workers finish together."""
    order = ['healthy', 'contact_tip', 'conveyor_bearing', 'arm_joint', 'agv_charger']
    return [(scenario, seed) for scenario in order for seed in SEEDS]


def main() -> int:
    started = time.monotonic()
    with multiprocessing.get_context('spawn').Pool(WORKERS) as pool:
        runs = list(pool.imap_unordered(_run, jobs()))
    rows, missed = judge(runs)
    print(report(rows, time.monotonic() - started))
    print(json.dumps({'rows': rows, 'missed': missed}))
    for line in missed:
        print(f'maintenance: {line}', file=sys.stderr)
    return 1 if missed else 0
