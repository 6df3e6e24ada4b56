"""The cell's devices and the fleet as a discrete-event model that answers the pure coordinator's actions.

No physics and no ROS: each action is answered with the event the real device or AGV would send, after a
delay on simulated time, and the coordinator is driven exactly as its node drives it (events, commands,
ticks). It runs the part cycle in milliseconds of wall time, so that the coordinator, ledger, handoff and
record store can be checked where timing does not matter: at every write point of a crash (the crash-point
test) and over a thousand parts with faults (the soak benchmark).

A run can start on a ledger that an earlier, killed run left behind: the fleet then re-sends what it had
open (a load for a part it still carries, an unload for a part the cell released toward it), as the fleet
node does after a restart, and the operator acknowledges what the restored coordinator asks.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cell_control.cell.cycle import Action, ActionKind, CellCoordinator, CellState, Command, Event, EventKind
from cell_control.cell.ledger import TERMINAL_STATES, PartLedger, PartState
from cell_control.logistics.handoff import (HandoffKind, HandoffRequest, HandoffResult, HandoffServer, HandoffStatus,
                                            HandoffStep)
from cell_control.weld.recorder import WeldRecorder
from cell_control.weld.records import WeldRecordStore

A, E = ActionKind, EventKind
INBOUND_AGV, OUTBOUND_AGV = 'agv_1', 'agv_2'
TICK_PERIOD_S = 0.5


@dataclass(frozen=True)
class DeviceTimes:
    """How long each device takes to answer, in simulated seconds."""

    dock_s: float = 20.0
    rollers_s: float = 0.5
    transfer_s: float = 3.0
    feed_s: float = 4.0
    clamp_s: float = 1.0
    arm_s: float = 3.0
    weld_s: float = 12.0
    release_s: float = 3.0
    sample_period_s: float = 0.5


@dataclass
class EventCell:
    """The coordinator of one process lifetime, with the devices and fleet around it."""

    ledger_path: Path
    records_path: Path
    parts: list[str]
    times: DeviceTimes = DeviceTimes()
    weld_ok: Callable[[str], bool] = lambda part: True
    now_s: float = 0.0
    _queue: list[tuple[float, int, Event]] = field(default_factory=list)
    _order: itertools.count = field(default_factory=itertools.count)
    _request_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _sent: dict[str, HandoffRequest] = field(default_factory=dict)
    _generation: dict[str, int] = field(default_factory=lambda: {'arm': 0, 'weld': 0})

    def __post_init__(self) -> None:
        self.ledger = PartLedger(self.ledger_path)
        self.store = WeldRecordStore(self.records_path)
        self.recorder = WeldRecorder(self.store, 'bracket')
        self.coordinator = CellCoordinator(self.ledger, HandoffServer(), self.recorder)

    def close(self) -> None:
        self.ledger.close()
        self.store.close()

    # ------------------------------------------------------------------ running
    def run(self, until_s: float = 10_000.0) -> None:
        """Restore, acknowledge, start, and answer every action until every part has left the cell."""
        self._act(self.coordinator.restore(self.now_s))
        if self.coordinator.state is CellState.AWAIT_ACK:
            self._act(self.coordinator.command(Command.ACKNOWLEDGE, self.now_s))
        self._act(self.coordinator.command(Command.START, self.now_s))
        self._fleet_resends()
        next_tick = self.now_s
        while not self.finished():
            if self.now_s > until_s:
                raise TimeoutError(f'the cycle did not finish within {until_s:g} s of simulated time: '
                                   f'{self.coordinator.snapshot()}')
            if self._queue and self._queue[0][0] <= next_tick:
                self.now_s, _, event = heapq.heappop(self._queue)
                if event.kind in (E.ARM_AT_GOAL, E.WELD_DONE) and event.reason != self._tag(event.kind):
                    continue   # the trajectory or the weld was stopped before it ended
                self._act(self.coordinator.handle(event, self.now_s))
            else:
                self.now_s = next_tick
                next_tick += TICK_PERIOD_S
                self._announce_next()
                self._act(self.coordinator.handle(Event(E.TICK), self.now_s))

    def finished(self) -> bool:
        states = {p.part_id: p.state for p in self.ledger.parts()}
        return all(states.get(part) in TERMINAL_STATES for part in self.parts)

    # ------------------------------------------------------------------ the fleet
    def _announce_next(self) -> None:
        """The fleet brings the next part once the inbound AGV is free: one part on the way at a time."""
        known = {p.part_id: p.state for p in self.ledger.parts()}
        if any(state in (PartState.ANNOUNCED, PartState.ON_INBOUND_AGV) for state in known.values()):
            return
        waiting = [part for part in self.parts if part not in known]
        if waiting:
            self._act(self.coordinator.handle(Event(E.PART_ANNOUNCED, part_id=waiting[0]), self.now_s))
            self._request(HandoffKind.LOAD_TO_CELL, waiting[0])

    def _fleet_resends(self) -> None:
        for part in self.ledger.parts([PartState.ANNOUNCED, PartState.ON_INBOUND_AGV]):
            self._request(HandoffKind.LOAD_TO_CELL, part.part_id)
        for part in self.ledger.parts([PartState.ON_OUTBOUND_CONVEYOR]):
            self._request(HandoffKind.UNLOAD_FROM_CELL, part.part_id)

    def _request(self, kind: HandoffKind, part_id: str) -> None:
        inbound = kind is HandoffKind.LOAD_TO_CELL
        request = HandoffRequest(f'{part_id}-{"in" if inbound else "out"}-{next(self._request_ids)}', kind,
                                 INBOUND_AGV if inbound else OUTBOUND_AGV, 'inbound' if inbound else 'outbound',
                                 part_id, self.now_s)
        self._sent[request.request_id] = request
        self._after(0.1, Event(E.HANDOFF_REQUEST, request=request))

    def _on_result(self, result: HandoffResult) -> None:
        request = self._sent.get(result.request_id)
        if request is None:
            return
        dock = request.dock
        if result.status is HandoffStatus.FAILED:
            if self.ledger.state(request.part_id) not in TERMINAL_STATES:
                self._request(request.kind, request.part_id)   # a new id, as the fleet retries
        elif result.status is HandoffStatus.SUCCESS:
            self._after(1.0, Event(E.AGV_DOCKED, dock=dock, agv=request.agv, flag=False))
        elif result.step is HandoffStep.AWAIT_DOCKED:
            self._after(self.times.dock_s, Event(E.AGV_DOCKED, dock=dock, agv=request.agv, flag=True))
        elif result.step is HandoffStep.AWAIT_ROLLERS:
            self._after(self.times.rollers_s, Event(E.ROLLERS_RUNNING, dock=dock))
        elif result.step is HandoffStep.AWAIT_PART:
            self._after(self.times.transfer_s, Event(E.PART_DETECTED, dock=dock))

    # ------------------------------------------------------------------ the devices
    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            kind = action.kind
            if kind is A.PUBLISH_HANDOFF_RESULT and action.result is not None:
                self._on_result(action.result)
            elif kind is A.REQUEST_PICKUP:
                self._request(HandoffKind.UNLOAD_FROM_CELL, action.part_id)
            elif kind is A.RAISE_GATE and action.part_id:
                self._after(self.times.feed_s, Event(E.STATION_EYE, flag=True))
            elif kind is A.LOWER_GATE:
                self._after(self.times.release_s, Event(E.STATION_EYE, flag=False))
            elif kind is A.CLAMP:
                self._after(self.times.clamp_s, Event(E.CLAMP_CLOSED))
            elif kind is A.UNCLAMP:
                self._after(self.times.clamp_s, Event(E.CLAMP_OPEN))
            elif kind in (A.MOVE_ARM, A.REPLAN_FROM_CURRENT_JOINTS) and action.detail != 'weld_path':
                self._after(self.times.arm_s, Event(E.ARM_AT_GOAL, reason=self._tag(E.ARM_AT_GOAL)))
            elif kind in (A.STOP_ARM, A.DISCARD_TRAJECTORY):
                self._generation['arm'] += 1
            elif kind is A.STOP_WELD:
                self._generation['weld'] += 1
            elif kind is A.START_WELD:
                self._weld(action.part_id)

    def _weld(self, part_id: str) -> None:
        """The adjuster answers a sample every period of the weld; then the weld program reports its end."""
        trace = self.recorder.begin(part_id, 'seam_a')
        samples = int(self.times.weld_s / self.times.sample_period_s)
        for i in range(samples):
            trace.speed(self.now_s + i * self.times.sample_period_s, 16.0)
        self._after(self.times.weld_s, Event(E.WELD_DONE, flag=self.weld_ok(part_id), reason=self._tag(E.WELD_DONE)))

    def _tag(self, kind: EventKind) -> str:
        """The generation of the arm or weld an ending event belongs to (the weld path ends in WELD_DONE)."""
        return str(self._generation['weld' if kind is E.WELD_DONE else 'arm'])

    def _after(self, delay_s: float, event: Event) -> None:
        heapq.heappush(self._queue, (self.now_s + delay_s, next(self._order), event))
