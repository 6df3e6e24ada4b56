"""The demo's operator: starts the cycle, follows it over DDS, and measures it (used by `cell-control demo`)."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from cell_control.motion.arm_motion import PLANNED_WELD_SPEED_MM_S, SEARCH_TARGET, ArmMotion
from cell_control.logistics.agv_navigation import Pose2D, docking_route
from cell_control.logistics.fleet import FleetConfig
from cell_control.cell.description import home_positions, load_layout
from cell_control.cell.energy import energy_kpis
from cell_control.cell.idle import Readiness
from cell_control.cell.kpi import (IdleWatch, PartOutcome, StationLegs, agv_round_trip_s, critical_path_s,
                                   maintenance_kpis)
from cell_control.cell.kpi import production_kpis, seam_finding_kpis, trapezoid_time_s, welds_by_part
from cell_control.cell.ledger import PartLedger, PartState
from cell_control.cell.recipe import load_recipe, recipe_path
from cell_control.maintenance import ConditionStore, ConditionStoreError, Indicator
from cell_control.nodes.common import LATCHED
from cell_control.weld.seam_profile import load_seam_csv
from cell_control.motion.kinematics import load_kinematics
from cell_control.weld.records import WeldRecordStore
from cell_control.runner import NodeProcesses
from cell_control.testing import CellView, Latest, RosProbe, SimulatedDeadline, WaitTimeout, wait_for
from cell_control.weld.process_model import reference_weld_time_s

# Every weld result is kept: a queue of 10, so none is dropped while the probe's thread is busy.
WELD_RESULTS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
SERVICE_TIMEOUT_S = 30.0
ENERGY_TIMEOUT_S = 10.0   # for the maintenance node's record of the last part, once the cell says it left


class DemoRun:
    """The demo's operator on the cell's domain: starts the cycle, follows /cell/state, keeps every weld result."""

    def __init__(self, domain_id: int, parts: int, say: Callable[[str], None]) -> None:
        self.parts = parts
        self.say = say
        self.probe = RosProbe(domain_id, 'demo_operator')
        self.cell = CellView(self.probe)
        self._weld_results = Latest(self.probe, String, '/sim/weld_result', WELD_RESULTS, keep=True)
        self._located = Latest(self.probe, String, '/cell/part_located', WELD_RESULTS, keep=True)
        self._energy = Latest(self.probe, String, '/cell/energy', LATCHED)
        self._maintenance = Latest(self.probe, String, '/maintenance/state', LATCHED)
        self.fault_s = 0.0
        self.run_s = 0.0
        self.idle = IdleWatch()
        self.picture: Path | None = None

    def close(self) -> None:
        self.probe.close()

    @property
    def weld_results(self) -> list[dict]:
        return [json.loads(msg.data) for msg in list(self._weld_results.all)]

    @property
    def located(self) -> list[dict]:
        """The coordinator's seam search reports, one per part searched."""
        return [json.loads(msg.data) for msg in list(self._located.all)]

    @property
    def energy(self) -> dict | None:
        """The maintenance node's latest energy record (cell.energy summary); None before it came."""
        msg = self._energy.msg
        return json.loads(msg.data) if msg is not None else None

    @property
    def maintenance(self) -> list[dict] | None:
        """The maintenance node's latest state (each indicator and its prediction); None before it came."""
        msg = self._maintenance.msg
        return json.loads(msg.data) if msg is not None else None

    def _wait_for_energy(self, parts_left: int) -> None:
        """Wait until the energy record counts every part that left (the node counts on the same /cell/state)."""
        try:
            wait_for(lambda: self.energy is not None and len(self.energy['parts']) >= parts_left, ENERGY_TIMEOUT_S,
                     f'the energy of {parts_left} part(s) on /cell/energy')
        except WaitTimeout as error:
            self.say(f'  {error}')

    def _call(self, service: str) -> tuple[bool, str] | None:
        """Call a Trigger service of the cell; None (and a line saying why) when it did not answer in time."""
        try:
            return self.cell.trigger(service, SERVICE_TIMEOUT_S)
        except WaitTimeout as error:
            self.say(f'  {error}')
            return None

    def _render(self) -> Path:
        """Ask the simulation for a picture of the cell; its path, or Path() when there is none."""
        reply = self._call('/sim/render')
        return Path(reply[1]) if reply and reply[0] else Path()

    def run(self, processes: NodeProcesses, sim_limit_s: float) -> dict:
        """Start the cell and follow it until every part has left, a process dies, or the time is up.

        The limit is the cell's time (a loaded machine runs it slower than asked); a simulated clock that stands
        still ends the run too.
        """
        reply = self._call('/cell/start')
        if reply is None or not reply[0]:
            self.say(f'  start refused: {reply[1] if reply else "no coordinator"}')
        deadline = SimulatedDeadline(self.cell.sim_s, sim_limit_s)
        last_line, stage_since = '', 0.0
        last_sample = None
        ended = ''
        while True:
            time.sleep(0.1)
            state = self.cell.state()
            now = self.cell.sim_s()
            if last_sample is not None:
                self.run_s += now - last_sample[0]
                if last_sample[1] in ('fault', 'estop'):
                    self.fault_s += now - last_sample[0]
            last_sample = (now, state.get('state', ''))
            readiness = state.get('readiness', '')
            self.idle.sample(readiness, now)
            line = f"{state.get('station_part') or '-'} {state.get('stage', '')}" + (
                f' ({readiness})' if readiness not in ('', Readiness.READY) else '')
            if line != last_line:
                if last_line:
                    self.say(f'  [{now:7.1f} s] {last_line:<24} took {now - stage_since:6.1f} s')
                last_line, stage_since = line, now
            if self.picture is None and state.get('stage') == 'welding' and now - stage_since > 8.0:
                self.picture = self._render()
            left = int(state.get('delivered', 0)) + int(state.get('rejected', 0))
            if state and left >= self.parts:
                ended = f'all {self.parts} part(s) left the cell'
                break
            dead = processes.wait_any(0.0)
            if dead is not None:
                ended = f'node {dead[0]} exited with code {dead[1]}'
                break
            ended = deadline.expired()
            if ended:
                break
        sim_time_s = self.cell.sim_s()
        self.say(f'  [{sim_time_s:7.1f} s] {ended}')
        self._wait_for_energy(int(state.get('delivered', 0)) + int(state.get('rejected', 0)))
        if self.picture is None:
            self.picture = self._render()
        return {'ended': ended, 'sim_time_s': round(sim_time_s, 1)}

    def kpis(self, recipe_id: str, ledger_path: Path) -> dict:
        ledger = PartLedger(ledger_path)
        try:
            counts = ledger.counts()
            history = ledger.history()
            parts = ledger.parts()
        finally:
            ledger.close()
        announced = {t.part_id: t.time_s for t in history if t.to_state is PartState.ANNOUNCED}
        left = {t.part_id: t.time_s for t in history if t.to_state in (PartState.DELIVERED, PartState.REJECTED)}
        welded_order = [t.part_id for t in history if t.to_state is PartState.WELDING]
        outcomes = [PartOutcome(p.part_id, announced.get(p.part_id, math.nan), left.get(p.part_id),
                                p.verdict or '') for p in parts]
        weld_results = self.weld_results
        welds = welds_by_part(welded_order, weld_results)
        # a part is as good as its worst seam; every seam's own figure is beside it
        quality = {part: min(w.get('quality_pct', 0.0) for w in seams) for part, seams in welds.items()}
        per_seam = {part: {w.get('seam', str(w.get('seam_index'))): w.get('quality_pct') for w in seams}
                    for part, seams in welds.items()}
        report = {
            'parts_requested': self.parts,
            'parts_delivered': counts.delivered,
            'parts_rejected': counts.rejected,
            'parts_in_cell': counts.in_cell,
            'parts_lost': self.parts - counts.delivered - counts.rejected - counts.in_cell,
            'ledger_invariant_holds': counts.announced == counts.delivered + counts.in_cell + counts.rejected,
            'weld_quality_pct': quality,
            'weld_quality_per_seam_pct': per_seam,
            'weld_results': weld_results,
            'seam_finding': seam_finding_kpis(self.located, welds, load_layout()['station']['x']),
            'idle_policy': self.idle.kpis(),
        }
        report.update(production_kpis(outcomes, self.run_s, self.fault_s, cycle_lower_bound_s(recipe_id)))
        energy, maintenance = self.energy, self.maintenance
        report.update(energy_kpis(energy) if energy is not None else {'energy_total_wh': None})
        report['maintenance'] = maintenance_kpis(maintenance) if maintenance is not None else {}
        return report

    def write_report(self, path: Path, records_path: Path) -> bool:
        """Weld plots of every record and the picture of the cell in one PNG; False when nothing to show."""
        from cell_control.cli.report import write_production_report
        records = WeldRecordStore(records_path, create=False).records() if records_path.exists() else []
        picture = self.picture if self.picture and self.picture.is_file() else None
        return write_production_report(path, [r.record for r in records], picture)

    def write_maintenance_report(self, path: Path, store_path: Path) -> bool:
        """Draw the indicators' trends from the maintenance node's store, and the energy per part, in one PNG.

        The indicators are the node's own (its parameters, from /maintenance/state); False when it sent none
        or there is nothing to show.
        """
        from cell_control.cli.report import write_maintenance_report
        if self.maintenance is None or not store_path.exists():
            self.say('  no maintenance page: the maintenance node sent no state or wrote no condition store')
            return False
        indicators = [Indicator(**entry['indicator']) for entry in self.maintenance]
        try:
            with ConditionStore(store_path) as store:
                return write_maintenance_report(path, indicators, store, self.energy)
        except ConditionStoreError as error:
            self.say(f'  no maintenance page: {error}')
            return False


def cycle_lower_bound_s(recipe_id: str) -> float:
    """critical_path_s: the slowest resource's time per part with perfect overlap, from the models' limits."""
    layout = load_layout()
    recipe = load_recipe(recipe_path(recipe_id))
    arm = load_kinematics()
    home_joints = home_positions(layout)
    motion = ArmMotion(arm, layout, recipe.seams, home_joints)
    q = home_joints
    weld_s = lift_s = 0.0
    search = motion.plan(SEARCH_TARGET, q)   # the first seam's search, from home
    approach_s = search.duration_s
    q = list(search.points[-1].positions)
    for seam in recipe.seams:   # from the search to the first seam, then through the air from seam to seam
        approach = motion.plan('seam_start', q, seam.id)
        weld_path = motion.plan('weld_path', list(approach.points[-1].positions), seam.id)
        approach_s += approach.duration_s
        lift_s += weld_path.duration_s - seam.length_mm / PLANNED_WELD_SPEED_MM_S
        weld_s += reference_weld_time_s(load_seam_csv(seam.seam_file), 0.0)
        q = list(weld_path.points[-1].positions)
    home = motion.plan('home', q)
    part = layout['part']
    conveyor = layout['conveyor']   # the belt at the coordinator's default speed, with the VFD's ramp
    belt_speed_m_s, belt_accel_m_s2 = conveyor['transport_speed'], conveyor['acceleration']
    queued_at = conveyor['x_start'] + part['length'] / 2
    station = StationLegs(
        feed_s=trapezoid_time_s(layout['station']['x'] - queued_at, belt_speed_m_s, belt_accel_m_s2),
        clamp_s=2 * layout['station']['clamp_time'],
        approach_s=approach_s,
        weld_s=weld_s,
        retract_s=lift_s + home.duration_s,
        release_s=trapezoid_time_s(part['length'], belt_speed_m_s, belt_accel_m_s2))
    agv = layout['agv']
    transfer_s = (agv['length'] + part['length']) / 2 / agv['deck_speed']

    def round_trip(home_pose: dict, dock: dict) -> float:
        start = Pose2D(home_pose['x'], home_pose['y'], home_pose['yaw'])
        route = [start, *docking_route(start, Pose2D(dock['x'], dock['y'], dock['yaw']))]
        legs = [math.hypot(b.x - a.x, b.y - a.y) for a, b in zip(route, route[1:])]
        headings = [math.atan2(b.y - a.y, b.x - a.x) for a, b in zip(route, route[1:])]
        turns = [abs(math.remainder(b - a, 2 * math.pi)) for a, b in zip(headings, headings[1:])]
        return agv_round_trip_s(legs * 2, turns * 2, transfer_s, agv['max_linear_speed'], 1.0,
                                agv['max_angular_speed'], 2.0)
    inbound = round_trip(agv['home'][FleetConfig.inbound_agv], layout['docks']['inbound'])
    outbound = round_trip(agv['home'][FleetConfig.outbound_agv], layout['docks']['outbound'])
    return critical_path_s(station, inbound, outbound)
