"""The cell's devices, AGVs and operator as a discrete-event model around the pure coordinator and the real fleet.

No physics and no ROS: the coordinator (`cell.cycle`) and the fleet (`logistics.fleet`, with its
`HandoffClient`) are driven exactly as their nodes drive them — events, commands, 10 Hz ticks — and the
world answers their actions as the devices would, on simulated time: a belt that carries parts (only while
it runs and is not jammed) past the station gate and eye, a clamp, an arm and a weld with delays, two AGVs
as unicycles (`sim.agv_kinematics`) whose docking is judged from odometry (`logistics.docking`) and whose
deck rollers hand parts over, a source and a sink that load and park the simulator's part pool as
`/world/load_part` and `/world/park_part` do (the fleet sees the pool on world poses). It runs the part cycle
about a thousand times faster than real time, so the coordinator, ledger, handoff and record store can be
checked where only logic matters: at every write point of a crash (test/test_crash_points.py) and over a
thousand parts with faults (`bench.soak`).

Faults (`FaultPlan`) are injected in given states: an e-stop in every station stage and in the cell states
an operator passes through, a conveyor jam reported by the conveyor driver while the belt moves a part,
an AGV that does not show up at its dock, a seam sensor dropout during a weld. Each one is checked against
the state docs/coordinator.md says it ends in (`END_STATES`), and the operator reacts as the coordinator's
rules require (release, reset, acknowledge, start; reset and acknowledge must never move anything).

A run can start on files that an earlier, killed process left behind (`count_writes` kills one at its
k-th write): the world is rebuilt from the ledger (the operator puts each part where the ledger and the
restored coordinator's questions say it is), the fleet re-sends what it had open, and the restore is
checked against the restart table of docs/coordinator.md.
"""
from __future__ import annotations

from collections import Counter

import heapq
import itertools
import math
import os
import random
import signal
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable

from cell_control.cell.cycle import (MOTION_ACTIONS, MOTION_STOP_ACTIONS, Action, ActionKind, CellCoordinator,
                                     CellState, Command, CommandRefused, Event, EventKind, Stage,
                                     part_verdict)
from cell_control.cell.description import load_layout
from cell_control.cell.ledger import TERMINAL_STATES, PartLedger, PartState
from cell_control.logistics.agv_navigation import Pose2D, home_pose, world_to_odom
from cell_control.logistics.docking import DockWatch
from cell_control.logistics.fleet import Command as FleetCommand
from cell_control.logistics.fleet import CommandKind, Fleet, FleetConfig
from cell_control.logistics.handoff import HandoffResult, HandoffServer, HandoffStatus, HandoffStep
from cell_control.sim.agv_kinematics import integrate
from cell_control.sim.interface import DEFAULT_PARTS_IN_POOL, parking_pose
from cell_control.sim.part_pool import PartPool
from cell_control.weld.recorder import WeldRecorder
from cell_control.weld.records import WeldRecordStore

A, E = ActionKind, EventKind
INBOUND_AGV, OUTBOUND_AGV = 'agv_1', 'agv_2'
TICK_S = 0.1            # the coordinator's and the fleet's timers (10 Hz)
ODOMETRY_S = 0.02       # odometry of a moving AGV (50 Hz); a still one reports at the tick
ROLLERS_SEEN_M_S = 0.05  # deck speed the coordinator node takes as "rollers running"
DOCK_POSITION_TOLERANCE_M, DOCK_YAW_TOLERANCE_RAD = 0.03, 0.05   # the coordinator node's defaults
STATION_PART = (PartState.AT_STATION, PartState.WELDING, PartState.WELDED, PartState.DRY_RUN, PartState.REWORK)
# Parts the outbound AGV was asked for (at the weld's start) and has not yet taken.
PICKUP_CALLED = (PartState.WELDING, PartState.WELDED, PartState.DRY_RUN, PartState.REWORK,
                 PartState.ON_OUTBOUND_CONVEYOR)


class Stalled(RuntimeError):
    """The cell stopped making progress (or ran out of simulated time)."""


@dataclass(frozen=True)
class DeviceTimes:
    """How long each device takes, in simulated seconds (belt figures are seconds of running belt)."""

    feed_s: float = 4.0        # belt: infeed to the station gate
    release_s: float = 3.0     # belt: station until the eye clears
    outbound_s: float = 1.0    # belt: eye clear to the outbound end
    deck_in_s: float = 3.0     # inbound deck and belt both running: the part rolls onto the belt
    deck_out_s: float = 1.0    # belt and outbound deck both running: the part rolls onto the deck
    clamp_s: float = 1.0
    arm_s: float = 3.0
    weld_s: float = 12.0
    load_s: float = 5.0        # /world/load_part: a pool part lands on the inbound deck
    unload_s: float = 5.0      # /world/park_part: the part on the outbound deck is back at its slot
    jam_report_s: float = 2.0  # the conveyor driver's jam tracker
    # No part leaving the cell for this long is a stall: the run raises `Stalled` (a coordinator that waits
    # for ever, or a killed one, shows as this).
    stall_s: float = 3600.0


class FaultKind(str, Enum):
    ESTOP = 'estop'
    CONVEYOR_JAM = 'conveyor_jam'
    AGV_NO_SHOW = 'agv_no_show'
    SENSOR_DROPOUT = 'sensor_dropout'
    CRASH = 'crash'


OPERATOR_STATES = ('fault', 'await_ack', 'stopped')   # cell states an operator's recovery passes through
# Where each fault kind is injected: a station stage of a running cell, a cell state, a transfer, an AGV.
FAULT_TARGETS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.ESTOP: tuple(s.value for s in Stage) + OPERATOR_STATES,
    FaultKind.CONVEYOR_JAM: ('feeding', 'releasing', 'inbound_transfer', 'outbound_transfer'),
    FaultKind.AGV_NO_SHOW: ('inbound', 'outbound'),
    FaultKind.SENSOR_DROPOUT: ('welding',),
}
# The end state each fault must reach (docs/coordinator.md, "Faults and the states they end in").
END_STATES: dict[FaultKind, str] = {
    FaultKind.ESTOP: 'estop: motion stopped, a part being welded is rework; release, reset -> await_ack, '
                     'acknowledge -> stopped, start -> running',
    FaultKind.CONVEYOR_JAM: 'fault "conveyor jam" (unchanged if already fault or estop): motion stopped; '
                            'cleared, reset -> await_ack, acknowledge -> stopped, start -> running',
    FaultKind.AGV_NO_SHOW: 'handoff FAILED "timeout in await_docked", cell state and part unchanged; '
                           'the fleet retries with a new request id',
    FaultKind.SENSOR_DROPOUT: 'fault: arc off, motion stopped, part rework (record verdict rework)',
    FaultKind.CRASH: 'restored from the ledger as the restart table says; await_ack if parts are on the belt',
}
# How long into its target a fault waits at most before it is injected (so it lands anywhere in a stage).
_SPREAD_S = {'empty': 0.0, 'feeding': 0.8, 'clamping': 0.8, 'approach': 2.5, 'welding': 11.0, 'retract': 2.5,
             'unclamping': 0.8, 'releasing': 2.5, 'inbound_transfer': 2.5, 'outbound_transfer': 0.8}


@dataclass(frozen=True)
class FaultPlan:
    """Which faults a run injects: one at a time, armed for a new part with probability `rate`."""

    rate: float = 0.0                  # per announced part
    kinds: tuple[FaultKind, ...] = (FaultKind.ESTOP, FaultKind.CONVEYOR_JAM, FaultKind.AGV_NO_SHOW,
                                    FaultKind.SENSOR_DROPOUT)
    bad_weld_rate: float = 0.0         # welds whose quality is outside limits (legitimate rework)
    operator_s: tuple[float, float] = (2.0, 15.0)   # the operator's reaction time, uniform
    estop_hold_s: tuple[float, float] = (1.0, 20.0)
    no_show_s: float = 90.0            # a stuck AGV stands still this long (longer than docked_s)
    give_up_s: float = 120.0           # an armed fault whose target never comes is dropped


def count_writes(kill_after: int, last_words: Callable[[str], None]) -> None:
    """SIGKILL this process right after its `kill_after`-th committed ledger or weld record write.

    Every write of the cycle goes through `PartLedger.announce`/`move` or `WeldRecordStore.append`; a replay
    that the ledger answers from its history counts too. `last_words` gets what the write was, unbuffered.
    """
    writes = 0

    def counted(method: Callable, what: Callable[[tuple], str]) -> Callable:
        def write(*args, **kwargs):
            nonlocal writes
            result = method(*args, **kwargs)
            writes += 1
            if writes == kill_after:
                last_words(what(args))
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return write

    PartLedger.announce = counted(PartLedger.announce, lambda args: 'ledger announced')
    PartLedger.move = counted(PartLedger.move, lambda args: f'ledger {PartState(args[2]).value}')
    WeldRecordStore.append = counted(WeldRecordStore.append, lambda args: 'weld record')


def check_files(ledger_path: Path, records_path: Path, parts: list[str],
                seams: tuple[str, ...] = ('seam_a',)) -> list[str]:
    """List what is wrong with the files at the end of a run: parts lost or duplicated, good without a record.

    A good part needs one complete good record for each seam of the recipe; no seam has two records.
    """
    problems = []
    with PartLedger(ledger_path) as ledger, WeldRecordStore(records_path) as store:
        counts = ledger.check_invariant()
        ids = [p.part_id for p in ledger.parts()]
        if sorted(ids) != sorted(parts) or counts.announced != len(parts):
            missing, extra = sorted(set(parts) - set(ids)), sorted(set(ids) - set(parts))
            problems.append(f'parts lost {missing[:5]} or unknown {extra[:5]}; announced {counts.announced}')
        if counts.in_cell:
            problems.append(f'{counts.in_cell} parts still in the cell')
        for part in ledger.parts():
            history = ledger.history(part.part_id)
            left = [h for h in history if h.to_state in TERMINAL_STATES]
            if len(left) > 1 or sum(h.to_state is PartState.ANNOUNCED for h in history) != 1:
                problems.append(f'{part.part_id} duplicated: announced or left the cell more than once')
            records = store.part_records(part.part_id)
            per_seam = Counter(r.record.seam_id for r in records)
            if any(n > 1 for n in per_seam.values()):
                problems.append(f'{part.part_id} has {len(records)} weld records for seams {dict(per_seam)}')
            good = {r.record.seam_id for r in records if all(r.record.good)}
            if part.verdict == 'good' and not set(seams) <= good:
                problems.append(f'{part.part_id} is good without a complete good weld record of every seam')
            if any(h.to_state is PartState.WELDED for h in history) != (part.verdict == 'good'):
                problems.append(f'{part.part_id}: verdict {part.verdict} disagrees with its history')
        broken = store.verify()
        if broken is not None:
            problems.append(f'weld record chain broken: {broken}')
    return problems


@dataclass
class _Agv:
    pose: Pose2D
    twist: tuple[float, float] = (0.0, 0.0)
    deck_speed: float = 0.0
    deck: str = ''               # the part on the deck
    transfer: float = 0.0        # seconds of deck-to-belt (or belt-to-deck) rolling done
    stuck_until_s: float = -math.inf


@dataclass
class _Fault:
    kind: FaultKind
    target: str
    delay_s: float
    armed_s: float
    since_s: float | None = None
    request_id: str = ''         # AGV no-show: the request the AGV does not show up for


@dataclass
class EventCell:
    """The coordinator of one process lifetime, with the devices, the fleet and the operator around it."""

    ledger_path: Path
    records_path: Path
    parts: list[str]
    times: DeviceTimes = DeviceTimes()
    faults: FaultPlan = FaultPlan()
    seed: int = 0
    now_s: float = 0.0
    journal: Callable[[dict], None] = lambda entry: None   # fault and progress lines (they outlive a kill)
    restarted: bool = False
    injected: list[dict] = field(default_factory=list)
    unreached: list[dict] = field(default_factory=list)   # armed faults whose target did not come in time
    violations: list[str] = field(default_factory=list)
    seams: tuple[str, ...] = ('seam_a',)   # the recipe's seams, welded in this order on every part

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.ledger = PartLedger(self.ledger_path)
        self.store = WeldRecordStore(self.records_path)
        self.recorder = WeldRecorder(self.store, 'bracket')
        self.coordinator = CellCoordinator(self.ledger, HandoffServer(), self.recorder, seam_ids=self.seams)
        self.layout = load_layout()
        self.docks = DockWatch(self.layout, DOCK_POSITION_TOLERANCE_M, DOCK_YAW_TOLERANCE_RAD)
        self.homes = {name: home_pose(self.layout, name) for name in (INBOUND_AGV, OUTBOUND_AGV)}
        self.agvs = {name: _Agv(home) for name, home in self.homes.items()}
        self.pool: dict[int, str] = {}      # pool index -> the part it is ('' while it rests at its slot)
        self.station_at = self.times.feed_s
        self.clear_at = self.station_at + self.times.release_s
        self.end_at = self.clear_at + self.times.outbound_s
        self.belt: dict[str, float] = {}    # part on the belt -> position in seconds of belt travel from the infeed
        self.belt_running = self.gate_up = self.jammed = self.estop = False
        # The conveyor driver latches the jam it reports: the drive refuses to run until the cell resets it.
        self.drive_latched = False
        self.sink: list[str] = []
        self.fleet: Fleet | None = None
        self.fault: _Fault | None = None
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._generation = {'arm': 0, 'weld': 0}
        self._welding = ''
        self._eye = False
        self._operator_at: float | None = None
        self._done = {p.part_id for p in self.ledger.parts(TERMINAL_STATES)}
        self._announced = {p.part_id for p in self.ledger.parts()}

    def close(self) -> None:
        self.ledger.close()
        self.store.close()

    # ------------------------------------------------------------------ running
    def run(self, until_s: float = 1e7) -> None:
        """Restore and run until every part has left the cell (TimeoutError past `until_s` simulated)."""
        self._start()
        start, ticks = self.now_s, 0
        progress = (self.parts_left(), self.now_s)
        while not self.finished():
            if self.parts_left() != progress[0]:
                progress = (self.parts_left(), self.now_s)
            if self.now_s > until_s or self.now_s - progress[1] > self.times.stall_s:
                raise Stalled(f'no part left the cell for {self.now_s - progress[1]:.0f} s of simulated time '
                              f'(at {self.now_s:.0f} s): {self.coordinator.snapshot()}; fleet {self.fleet.status()}')
            ticks += 1
            tick_s = start + ticks * TICK_S
            while self._queue and self._queue[0][0] <= tick_s:
                self.now_s, _, answer = heapq.heappop(self._queue)
                answer()
            self.now_s = tick_s
            if self._welding and self.recorder.trace is not None:
                self.recorder.trace.speed(self.now_s, 16.0)   # the adjuster's answer to a sensor sample
            self._step_agvs()
            self._step_belt()
            self._fleet(self.fleet.tick(self.now_s))
            self._handle(Event(E.TICK))
            self._inject()
            self._operate()

    def finished(self) -> bool:
        """Every part has left the cell (ledger) and is at the sink (world)."""
        return self.parts_left() == 0 and len(self.sink) == len(self.parts)

    def parts_left(self) -> int:
        return len(self.parts) - len(self._done)

    def _start(self) -> None:
        """Rebuild the world from the ledger, restore the coordinator and check it against the restart table."""
        before = {p.part_id: p.state for p in self.ledger.parts()}
        recorded = {part: self.recorder.recorded_verdicts(part) for part, state in before.items()
                    if state is PartState.WELDING}
        for part, state in before.items():
            if state is PartState.ON_CONVEYOR:
                self.belt[part] = 0.0
            elif state in STATION_PART:
                self.belt[part] = self.station_at
                self.gate_up = self._eye = True
            elif state is PartState.ON_OUTBOUND_CONVEYOR:
                self.belt[part] = self.clear_at
            elif state in TERMINAL_STATES:
                self.sink.append(part)
        carried = [p for p, s in before.items() if s in (PartState.ANNOUNCED, PartState.ON_INBOUND_AGV)]
        waiting = carried + [p for p in self.parts if p not in before]
        self.agvs[INBOUND_AGV].deck = carried[0] if carried else ''
        present = list(self.belt) + carried[:1]   # the pool parts that are these parts (more if the ledger says so)
        self.pool = {i: present[i - 1] if i <= len(present) else ''
                     for i in range(1, max(DEFAULT_PARTS_IN_POOL, len(present)) + 1)}
        self.fleet = Fleet(FleetConfig(INBOUND_AGV, OUTBOUND_AGV, parts=len(waiting)), self.layout,
                           PartPool(self.layout))
        self.fleet.inbound.queue = waiting
        self._fleet(self.fleet.on_load_present(INBOUND_AGV, bool(carried), self.now_s))
        self._act(self.coordinator.restore(self.now_s))
        if self.restarted:
            self._check_restore(before, recorded)
        for part, state in before.items():
            if state is PartState.ON_OUTBOUND_CONVEYOR:
                self._fleet(self.fleet.on_pickup_request(part, self.now_s))
        self._operator_at = self.now_s

    def _check_restore(self, before: dict[str, PartState], recorded: dict[str, dict[str, str]]) -> None:
        snap = self.coordinator.snapshot()
        wrong = []
        for part, state in before.items():
            now = self.ledger.state(part)
            if state is PartState.WELDING:
                verdict = part_verdict(list(recorded[part].items()), self.seams)[0]
                want = {'good': PartState.WELDED, 'rework': PartState.REWORK, 'dry_run': PartState.DRY_RUN}[verdict]
                if now is not want:
                    wrong.append(f'{part} welding restored as {now.value}, not {want.value}')
            if state in STATION_PART:
                stage = Stage.CLAMPING if state is PartState.AT_STATION else Stage.RETRACT
                if (snap.station_part, snap.stage) != (part, stage):
                    wrong.append(f'{part} {state.value}: station {snap.station_part} {snap.stage.value}, '
                                 f'not {stage.value}')
            if state is PartState.ON_CONVEYOR and snap.queued_part != part:
                wrong.append(f'{part} on_conveyor not queued')
            if state is PartState.ON_OUTBOUND_CONVEYOR and snap.outbound_part != part:
                wrong.append(f'{part} on_outbound_conveyor not in the outbound lane')
        belt = any(s in (PartState.ON_CONVEYOR, PartState.ON_OUTBOUND_CONVEYOR) for s in before.values())
        want_state = CellState.AWAIT_ACK if belt else CellState.IDLE
        if snap.state is not want_state:
            wrong.append(f'cell {snap.state.value} after restore, not {want_state.value}')
        self._ended(FaultKind.CRASH, 'restart', snap.state.value, wrong)

    # ------------------------------------------------------------------ the coordinator
    def _handle(self, event: Event) -> list[Action]:
        actions = self.coordinator.handle(event, self.now_s)
        self._act(actions)
        return actions

    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            kind = action.kind
            if kind is A.PUBLISH_HANDOFF_RESULT and action.result is not None:
                self._on_result(action.part_id, action.result)
            elif kind is A.REQUEST_PICKUP:
                self._fleet(self.fleet.on_pickup_request(action.part_id, self.now_s))
            elif kind in (A.START_BELT, A.STOP_BELT):
                self.belt_running = kind is A.START_BELT and not self.drive_latched
            elif kind is A.RESET_DEVICES:
                self.drive_latched = False
            elif kind in (A.RAISE_GATE, A.LOWER_GATE):
                self.gate_up = kind is A.RAISE_GATE
            elif kind is A.CLAMP:
                self._after(self.times.clamp_s, lambda: self._handle(Event(E.CLAMP_CLOSED)))
            elif kind is A.UNCLAMP:
                self._after(self.times.clamp_s, lambda: self._handle(Event(E.CLAMP_OPEN)))
            elif kind in (A.MOVE_ARM, A.REPLAN_FROM_CURRENT_JOINTS) and action.detail != 'weld_path':
                self._after(self.times.arm_s, self._ending('arm', Event(E.ARM_AT_GOAL)))
            elif kind in (A.STOP_ARM, A.DISCARD_TRAJECTORY):
                self._generation['arm'] += 1
            elif kind is A.STOP_WELD:
                self._generation['weld'] += 1
                self._welding = ''
            elif kind is A.START_WELD:
                self._weld(action.part_id, action.seam, action.detail == 'arc_on')

    def _weld(self, part_id: str, seam: str, arc: bool) -> None:
        """Start a seam's weld: the adjuster answers a sample every tick of it, then the program reports its end."""
        self.recorder.begin(part_id, seam)
        self._welding = part_id if arc else ''
        good = self.rng.random() >= self.faults.bad_weld_rate
        self._after(self.times.weld_s, self._ending('weld', Event(E.WELD_DONE, flag=good)))

    def _ending(self, device: str, event: Event) -> Callable[[], None]:
        """Return an ending event's delivery, dropped when the arm or weld was stopped before it ended."""
        generation = self._generation[device]

        def end() -> None:
            if self._generation[device] == generation:
                if device == 'weld':
                    self._welding = ''
                self._handle(event)
        return end

    def _after(self, delay_s: float, answer: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (self.now_s + delay_s, next(self._order), answer))

    # ------------------------------------------------------------------ the fleet and the AGVs
    def _on_result(self, part: str, result: HandoffResult) -> None:
        fault = self.fault
        if fault is not None and fault.request_id == result.request_id and result.status is not \
                HandoffStatus.ACKNOWLEDGED:
            wrong = []
            if result.status is not HandoffStatus.FAILED or not result.reason.startswith('timeout in await_docked'):
                wrong.append(f'{result.request_id} ended {result.status.value} ({result.reason})')
            state = self.ledger.state(part)
            if state in TERMINAL_STATES or (fault.target == 'inbound') != (state is PartState.ON_INBOUND_AGV):
                wrong.append(f'{part} moved to {state.value} by a failed handoff')
            self._ended(fault.kind, fault.target, f'handoff {result.status.value}: {result.reason}', wrong)
        if result.status is HandoffStatus.SUCCESS and self.ledger.state(part) in TERMINAL_STATES:
            self._done.add(part)
        self._fleet(self.fleet.on_result(result, self.now_s))

    def _fleet(self, commands: list[FleetCommand]) -> None:
        for command in commands:
            kind, agv = command.kind, command.agv
            if kind is CommandKind.TWIST:
                self.agvs[agv].twist = (command.linear, command.angular)
            elif kind is CommandKind.DECK:
                self.agvs[agv].deck_speed = command.speed
                dock = self.docks.dock_of(agv)
                if dock and abs(command.speed) > ROLLERS_SEEN_M_S:
                    self._handle(Event(E.ROLLERS_RUNNING, dock=dock, agv=agv))
            elif kind is CommandKind.ANNOUNCE:
                if command.part_id not in self._announced:
                    self._announced.add(command.part_id)
                    self._arm_fault()
                self._handle(Event(E.PART_ANNOUNCED, part_id=command.part_id))
            elif kind is CommandKind.SEND_REQUEST and command.request is not None:
                self._no_show(command.request.request_id, agv)
                self._handle(Event(E.HANDOFF_REQUEST, part_id=command.request.part_id, request=command.request))
            elif kind is CommandKind.LOAD_PART:
                self._after(self.times.load_s, lambda i=command.pool_index, a=agv: self._load_part(i, a))
            elif kind is CommandKind.PARK_PART:
                self._after(self.times.unload_s, lambda i=command.pool_index: self._park_part(i))

    def _load_part(self, index: int, agv: str) -> None:
        """Put a free pool part on the inbound deck as the part the AGV handles (it stands at the source)."""
        deck = self.agvs[INBOUND_AGV]
        if self.pool.get(index) != '' or deck.deck or agv != INBOUND_AGV:
            return      # not free, or the deck is taken: the fleet sees no load and tries again
        deck.deck = self.pool[index] = self.fleet.agvs[agv].part or ''
        self._fleet(self.fleet.on_load_present(agv, True, self.now_s))

    def _park_part(self, index: int) -> None:
        """Take the pool part off the outbound deck back to its slot: it has left for the sink."""
        deck = self.agvs[OUTBOUND_AGV]
        part = self.pool.get(index, '')
        if not part or part != deck.deck:
            return
        self.sink.append(part)
        deck.deck, self.pool[index] = '', ''
        self._fleet(self.fleet.on_load_present(OUTBOUND_AGV, False, self.now_s))

    def _world_poses(self) -> None:
        """Give the fleet /sim/poses: the AGVs, and every pool part at its slot, on a deck or in the cell."""
        for name, agv in self.agvs.items():
            self.fleet.on_world_pose(name, agv.pose.x, agv.pose.y, 0.0, agv.pose.yaw)
        on_deck = {agv.deck: agv.pose for agv in self.agvs.values() if agv.deck}
        for index, part in self.pool.items():
            slot = parking_pose(index)
            if not part:
                x, y, z = slot.x, slot.y, slot.z
            elif part in on_deck:
                x, y, z = on_deck[part].x, on_deck[part].y, self.layout['agv']['deck_top_z']
            else:   # on the belt: neither at its slot nor on a deck
                x, y, z = 0.0, 0.0, self.layout['conveyor']['belt_top_z']
            self.fleet.on_world_pose(f'part_{index}', x, y, z, 0.0)

    def _step_agvs(self) -> None:
        for name, agv in self.agvs.items():
            moving = agv.twist != (0.0, 0.0) and self.now_s >= agv.stuck_until_s
            for _ in range(round(TICK_S / ODOMETRY_S) if moving else 1):
                if moving:
                    agv.pose = integrate(agv.pose, *agv.twist, ODOMETRY_S)
                speed = abs(agv.twist[0]) + abs(agv.twist[1]) if moving else 0.0
                odom = world_to_odom(self.homes[name], agv.pose)   # /<agv>/odom starts at the home pose
                for dock, docked in self.docks.update(name, odom.x, odom.y, odom.yaw, speed, self.now_s):
                    self._handle(Event(E.AGV_DOCKED, dock=dock, agv=name, flag=docked))
                self._fleet(self.fleet.on_odometry(name, odom, speed, self.now_s))
                moving = agv.twist != (0.0, 0.0) and self.now_s >= agv.stuck_until_s
        self._world_poses()

    # ------------------------------------------------------------------ the belt
    def _step_belt(self) -> None:
        """Move the parts on a running belt; the deck rollers hand parts over at the two ends."""
        moves = self.belt_running and not self.jammed
        inbound, outbound = self.agvs[INBOUND_AGV], self.agvs[OUTBOUND_AGV]
        if inbound.deck and self._rolling(INBOUND_AGV, 'inbound') and moves:
            inbound.transfer += TICK_S
            if inbound.transfer >= self.times.deck_in_s - 1e-9:
                self.belt[inbound.deck], inbound.deck, inbound.transfer = 0.0, '', 0.0
                self._handle(Event(E.PART_DETECTED, dock='inbound'))   # the infeed photo-eye
                self._fleet(self.fleet.on_load_present(INBOUND_AGV, False, self.now_s))
        moves = self.belt_running and not self.jammed
        if moves:
            for part, at in self.belt.items():
                limit = self.station_at if self.gate_up and at <= self.station_at else self.end_at
                self.belt[part] = min(at + TICK_S, limit)
        at_station = [p for p, at in self.belt.items() if self.station_at - 1e-9 <= at < self.clear_at - 1e-9]
        if len(at_station) > 1:
            self._violation(f'{self.now_s:.1f} s: parts {", ".join(at_station)} pushed into each other')
        eye = bool(at_station)
        if eye != self._eye:
            self._eye = eye
            self._handle(Event(E.STATION_EYE, flag=eye))
        at_end = [p for p, at in self.belt.items() if at >= self.end_at - 1e-9]
        if at_end and not outbound.deck and self._rolling(OUTBOUND_AGV, 'outbound') and moves:
            outbound.transfer += TICK_S
            if outbound.transfer >= self.times.deck_out_s - 1e-9:
                outbound.deck, outbound.transfer = at_end[0], 0.0
                del self.belt[at_end[0]]
                self._handle(Event(E.PART_DETECTED, dock='outbound', agv=OUTBOUND_AGV))   # the deck's load sensor
                self._fleet(self.fleet.on_load_present(OUTBOUND_AGV, True, self.now_s))

    def _rolling(self, agv: str, dock: str) -> bool:
        return self.docks.dock_of(agv) == dock and abs(self.agvs[agv].deck_speed) > ROLLERS_SEEN_M_S

    # ------------------------------------------------------------------ faults
    def _arm_fault(self, recovering: bool = False) -> None:
        """Arm the least injected fault (at most one armed at a time).

        For a part just announced: a fault in a station stage, a transfer or an AGV. While the operator
        recovers from a fault (`recovering`): an e-stop in one of the cell states the operator passes through.
        """
        plan = self.faults
        if self.fault is not None or not plan.rate or self.rng.random() >= plan.rate:
            return
        counts: dict[tuple[str, str], int] = {}   # tries: a target that is seldom reached is not tried forever
        for entry in self.injected + self.unreached:
            counts[(entry['kind'], entry['target'])] = counts.get((entry['kind'], entry['target']), 0) + 1
        choices = [(kind, target) for kind in plan.kinds if kind is not FaultKind.CRASH
                   for target in FAULT_TARGETS[kind] if (target in OPERATOR_STATES) == recovering
                   and not (target == 'fault' and self.coordinator.state is not CellState.FAULT)]
        if not choices:
            return
        fewest = min(counts.get((k.value, t), 0) for k, t in choices)
        if self.rng.random() < 0.5:   # half the time the least tried, else any: coverage and a natural mix
            choices = [(k, t) for k, t in choices if counts.get((k.value, t), 0) == fewest]
        kind, target = self.rng.choice(choices)
        self.fault = _Fault(kind, target, self.rng.uniform(0.0, _SPREAD_S.get(target, 2.0)), self.now_s)

    def _target_now(self, fault: _Fault) -> bool:
        snap, handoff = self.coordinator.snapshot(), self.coordinator.handoff
        running = snap.state is CellState.RUNNING
        if fault.kind is FaultKind.ESTOP:
            if fault.target in OPERATOR_STATES:
                return snap.state.value == fault.target
            return running and snap.stage.value == fault.target
        if fault.kind is FaultKind.CONVEYOR_JAM:
            moving = running and self.belt_running and not self.jammed
            if fault.target in ('feeding', 'releasing'):
                return moving and snap.stage.value == fault.target
            dock = fault.target.split('_')[0]
            return moving and handoff.step(dock) is HandoffStep.AWAIT_PART
        if fault.kind is FaultKind.SENSOR_DROPOUT:
            return running and bool(self._welding)
        return False   # AGV no-show: injected when the request goes out (_no_show)

    def _inject(self) -> None:
        fault = self.fault
        if fault is None or fault.request_id:
            return
        if self.now_s - fault.armed_s > self.faults.give_up_s:
            entry = {'event': 'unreached', 'kind': fault.kind.value, 'target': fault.target}
            self.unreached.append(entry)
            self.journal(entry)
            self.fault = None
            return
        if not self._target_now(fault):
            fault.since_s = None
            return
        fault.since_s = self.now_s if fault.since_s is None else fault.since_s
        if self.now_s - fault.since_s < fault.delay_s:
            return
        self._injected(fault)
        if fault.kind is FaultKind.ESTOP:
            welding = self._welding
            self.estop = True
            actions = self._handle(Event(E.ESTOP, flag=True))
            wrong = self._stopped(actions) + self._reworked(welding)
            if self.coordinator.state is not CellState.ESTOP:
                wrong.append(f'cell {self.coordinator.state.value}, not estop')
            self._ended(fault.kind, fault.target, self.coordinator.state.value, wrong)
            self._operator_at = self.now_s + self.rng.uniform(*self.faults.estop_hold_s)
        elif fault.kind is FaultKind.CONVEYOR_JAM:
            self.jammed = True
            self._after(self.times.jam_report_s, lambda: self._jam_reported(fault))
        elif fault.kind is FaultKind.SENSOR_DROPOUT:
            welding = self._welding
            self.recorder.trace.fault(True)
            actions = self._handle(Event(E.SENSOR_DROPOUT, reason='SEAM_LOST'))
            wrong = self._stopped(actions) + self._reworked(welding)
            if self.coordinator.state is not CellState.FAULT:
                wrong.append(f'cell {self.coordinator.state.value}, not fault')
            self._ended(fault.kind, fault.target, self.coordinator.state.value, wrong)

    def _jam_reported(self, fault: _Fault) -> None:
        before = self.coordinator.state
        self.drive_latched, self.belt_running = True, False
        actions = self._handle(Event(E.CONVEYOR_JAM, reason='belt running, part not moving'))
        want = before if before in (CellState.FAULT, CellState.ESTOP) else CellState.FAULT
        wrong = [] if before in (CellState.FAULT, CellState.ESTOP) else self._stopped(actions)
        if self.coordinator.state is not want:
            wrong.append(f'cell {self.coordinator.state.value}, not {want.value}')
        self._ended(fault.kind, fault.target, self.coordinator.state.value, wrong)

    def _no_show(self, request_id: str, agv: str) -> None:
        """Make the AGV stand still after a first request when an AGV no-show is armed for it."""
        fault = self.fault
        role = 'inbound' if agv == INBOUND_AGV else 'outbound'
        if fault is None or fault.kind is not FaultKind.AGV_NO_SHOW or fault.target != role or fault.request_id \
                or not request_id.endswith('load') or self.docks.dock_of(agv):
            return
        fault.request_id = request_id
        self.agvs[agv].stuck_until_s = self.now_s + self.faults.no_show_s
        self._injected(fault)

    def _stopped(self, actions: list[Action]) -> list[str]:
        kinds = {a.kind for a in actions}
        return [f'no {k.value}' for k in MOTION_STOP_ACTIONS if k not in kinds]

    def _reworked(self, part: str) -> list[str]:
        if part and self.ledger.state(part) is not PartState.REWORK:
            return [f'{part} interrupted in its weld is {self.ledger.state(part).value}, not rework']
        return []

    def _injected(self, fault: _Fault) -> None:
        entry = {'event': 'injected', 'kind': fault.kind.value, 'target': fault.target, 't': round(self.now_s, 1)}
        self.injected.append(entry)
        self.journal(entry)

    def _ended(self, kind: FaultKind, target: str, end: str, wrong: list[str]) -> None:
        if kind is not FaultKind.CRASH:
            self.fault = None
            if self.coordinator.state in (CellState.FAULT, CellState.ESTOP) and target not in OPERATOR_STATES:
                self._arm_fault(recovering=True)   # one e-stop more during the operator's recovery, not a chain
        for problem in wrong:
            self._violation(f'{kind.value} in {target} at {self.now_s:.1f} s: {problem}')
        self.journal({'event': 'ended', 'kind': kind.value, 'target': target, 'end': end, 'ok': not wrong,
                      't': round(self.now_s, 1)})

    def _violation(self, problem: str) -> None:
        self.violations.append(problem)
        self.journal({'event': 'violation', 'problem': problem, 't': round(self.now_s, 1)})

    # ------------------------------------------------------------------ the operator
    def _operate(self) -> None:
        """Release, reset, acknowledge and start, each after a reaction time; reset and acknowledge move nothing."""
        state = self.coordinator.state
        if state is CellState.RUNNING:
            self._operator_at = None
            return
        if self._operator_at is None:
            self._operator_at = self.now_s + self.rng.uniform(*self.faults.operator_s)
        if self.now_s < self._operator_at:
            return
        self._operator_at = None
        if state is CellState.ESTOP and self.estop:
            self._command(Command.RESET, refused=True)
            self.estop = False
            self._handle(Event(E.ESTOP, flag=False))
        elif state in (CellState.FAULT, CellState.ESTOP):
            self.jammed = False
            if self.recorder.trace is not None:
                self.recorder.trace.fault(False)
            self._command(Command.RESET)
        elif state is CellState.AWAIT_ACK:
            self._command(Command.ACKNOWLEDGE)
        elif state in (CellState.IDLE, CellState.STOPPED):
            self._command(Command.START)

    def _command(self, command: Command, refused: bool = False) -> None:
        try:
            actions = self.coordinator.command(command, self.now_s)
        except CommandRefused as error:
            if not refused:
                self._violation(f'{command.value} refused in {self.coordinator.state.value}: {error}')
            return
        if refused:
            self._violation(f'{command.value} accepted while the e-stop input is active')
        moved = [a.kind.value for a in actions if a.kind in MOTION_ACTIONS]
        if command in (Command.RESET, Command.ACKNOWLEDGE) and moved:
            self._violation(f'{command.value} emitted motion: {", ".join(moved)}')
        self._act(actions)
