"""Cell coordinator: the part cycle of DESIGN §7 as an explicit state machine (see docs/coordinator.md).

The coordinator decides; devices execute. `handle(event, now)` and `command(cmd, now)` return plain
`Action` values that the ROS node turns into messages. Time is passed in. Every part transition goes
through the PartLedger (transition id `<part>:<state>`, so a replay after a restart is a no-op), and a
new coordinator restores itself from the ledger.

A weld's verdict and its record are one fact: the record is stored (`WeldRecords.commit`) before the verdict
is committed to the ledger, and a restart finds the verdict of a weld that ended in its record.

Lanes that overlap: the inbound handoff (one part queued on the infeed side of the belt), the station
(at most one part: feed → clamp → approach → weld → retract → unclamp → wait for the outbound AGV →
release), and the outbound handoff. The single belt runs when a lane needs it and is never allowed to
push a part toward the outbound dock unless `HandoffServer.dock_ready('outbound')`, nor to drive a queued
part into a held one; since it carries every part on it, no new part comes onto it while one is held and a
released one still needs it (docs/coordinator.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from cell_control.logistics.handoff import (
    HandoffError, HandoffKind, HandoffRequest, HandoffResult, HandoffServer, HandoffStatus, HandoffStep)
from cell_control.cell.idle import IdlePolicy, IdleStep, Readiness
from cell_control.cell.ledger import PartLedger, PartState
from cell_control.cell.recipe import Recipe, RecipeError, load_recipe, recipe_path, weldable


class CellState(str, Enum):
    IDLE = 'idle'            # after start-up: nothing moves until START
    RUNNING = 'running'
    PAUSED = 'paused'
    STOPPED = 'stopped'
    FAULT = 'fault'          # a device or a wait failed; needs RESET (or ACKNOWLEDGE) before START
    ESTOP = 'estop'          # emergency stop input seen; needs release, RESET, ACKNOWLEDGE, START
    AWAIT_ACK = 'await_ack'  # operator must acknowledge (after reset, or parts to re-locate)


class Mode(str, Enum):
    AUTO = 'auto'
    STEP = 'step'        # each START advances one stage
    DRY_RUN = 'dry_run'  # the whole cycle with the arc never enabled
    MANUAL = 'manual'    # no automatic actions


class Command(str, Enum):
    START = 'start'
    STOP = 'stop'
    PAUSE = 'pause'
    RESUME = 'resume'
    RESET = 'reset'
    ACKNOWLEDGE = 'acknowledge'


class Stage(str, Enum):
    EMPTY = 'empty'
    FEEDING = 'feeding'                # belt brings the queued part against the raised stop gate
    CLAMPING = 'clamping'
    SEARCH = 'search'                  # arm scans the first seam's ends with the laser: where the part lies
    APPROACH = 'approach'              # arm to the seam start
    WELDING = 'welding'                # arm on the weld path, adjuster in the loop, arc on (off in DRY_RUN)
    RETRACT = 'retract'                # arm home
    UNCLAMPING = 'unclamping'
    AWAIT_OUTBOUND = 'await_outbound'  # part free at the station, outbound AGV not yet ready
    RELEASING = 'releasing'            # gate down, belt pushes the part toward the outbound AGV


class EventKind(str, Enum):
    ESTOP = 'estop'                      # flag: e-stop input active
    PART_ANNOUNCED = 'part_announced'    # part_id
    HANDOFF_REQUEST = 'handoff_request'  # request
    AGV_DOCKED = 'agv_docked'            # dock, agv, flag: docked and ready
    ROLLERS_RUNNING = 'rollers_running'  # dock
    PART_DETECTED = 'part_detected'      # dock: part seen on the belt (inbound) or on the deck (outbound)
    STATION_EYE = 'station_eye'          # flag: beam blocked
    CLAMP_CLOSED = 'clamp_closed'
    CLAMP_OPEN = 'clamp_open'
    ARM_AT_GOAL = 'arm_at_goal'
    WELD_DONE = 'weld_done'              # flag: weld quality within limits
    SEAM_LOCATED = 'seam_located'        # flag: found (the weld program follows it); reason: what was found or why not
    SENSOR_DROPOUT = 'sensor_dropout'    # reason
    CONVEYOR_JAM = 'conveyor_jam'        # reason
    TICK = 'tick'


@dataclass(frozen=True)
class Event:
    kind: EventKind
    part_id: str = ''
    dock: str = ''
    agv: str = ''
    flag: bool = False
    request: HandoffRequest | None = None
    reason: str = ''


class ActionKind(str, Enum):
    START_BELT = 'start_belt'
    STOP_BELT = 'stop_belt'
    RAISE_GATE = 'raise_gate'
    LOWER_GATE = 'lower_gate'
    CLAMP = 'clamp'
    UNCLAMP = 'unclamp'
    MOVE_ARM = 'move_arm'                      # detail: target ('seam_start', 'weld_path', 'home'); seam
    REPLAN_FROM_CURRENT_JOINTS = 'replan_from_current_joints'  # detail: target; after any stop
    STOP_ARM = 'stop_arm'
    DISCARD_TRAJECTORY = 'discard_trajectory'
    LOCATE_SEAM = 'locate_seam'                # the search is done: find the seam in its readings; seam: which one
    START_WELD = 'start_weld'                  # detail: 'arc_on' or 'arc_off' (DRY_RUN); seam: which one
    STOP_WELD = 'stop_weld'                    # arc off, adjuster stopped
    REQUEST_PICKUP = 'request_pickup'          # ask the fleet for an AGV at the outbound dock
    PUBLISH_HANDOFF_RESULT = 'publish_handoff_result'  # result
    PUBLISH_DIAGNOSTICS = 'publish_diagnostics'        # detail: level OK/WARN/ERROR; reason: message
    RESET_DEVICES = 'reset_devices'            # clear the devices' latched faults (conveyor drive); moves nothing
    STANDBY = 'standby'                        # detail 'on' / 'off': conveyor drive and weld power source (idle policy)


MOTION_STOP_ACTIONS = (ActionKind.STOP_BELT, ActionKind.STOP_ARM, ActionKind.DISCARD_TRAJECTORY,
                       ActionKind.STOP_WELD)
MOTION_ACTIONS = frozenset({ActionKind.START_BELT, ActionKind.LOWER_GATE, ActionKind.RAISE_GATE,
                            ActionKind.CLAMP, ActionKind.UNCLAMP, ActionKind.MOVE_ARM,
                            ActionKind.REPLAN_FROM_CURRENT_JOINTS, ActionKind.START_WELD})


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    part_id: str = ''
    detail: str = ''
    reason: str = ''
    result: HandoffResult | None = None
    seam: str = ''                             # the seam an arm move or a weld is for


class WeldRecords(Protocol):
    """Where the weld records go (`cell_control.weld.recorder.WeldRecorder`): one record per seam welded."""

    def commit(self, part_id: str, verdict: str, reason: str) -> str:
        """Store the record of the seam just welded; return the verdict the record supports."""

    def recorded_verdicts(self, part_id: str) -> dict[str, str]:
        """Return the verdict of each seam of the part that has a stored record, by seam id."""


def part_verdict(seam_verdicts: list[tuple[str, str]], seam_ids: tuple[str, ...]) -> tuple[str, str]:
    """Return the part's verdict and why, from its seams' (id, verdict) in welding order.

    Good only when every seam of the recipe was welded good; dry run when every seam was dry-run; any seam
    outside its limits, or a seam never welded, makes the part rework, named in the reason.
    """
    verdicts = dict(seam_verdicts)
    missing = [seam for seam in seam_ids if seam not in verdicts]
    bad = [seam for seam in seam_ids if verdicts.get(seam) == 'rework']
    if missing:
        return 'rework', 'seam(s) not welded: ' + ', '.join(missing)
    if bad:
        return 'rework', 'weld quality outside limits on ' + ', '.join(bad)
    if all(verdicts[seam] == 'dry_run' for seam in seam_ids):
        return 'dry_run', 'dry run: arc was never enabled'
    return 'good', 'weld done' if len(seam_ids) == 1 else f'{len(seam_ids)} seams welded'


class CoordinatorError(Exception):
    """The coordinator cannot start from what the ledger holds."""


class CommandRefused(Exception):
    """A command that is not valid in the current state; the text says why (for the service reply)."""


@dataclass(frozen=True)
class CoordinatorTimeouts:
    feed_s: float = 20.0       # queued part to the station eye; else conveyor jam
    clamp_s: float = 5.0
    search_s: float = 60.0     # the seam search, its move there and the finding; else arm motion timeout
    approach_s: float = 20.0   # arm to the seam start; else arm motion timeout
    weld_s: float = 120.0      # the whole seam program
    retract_s: float = 20.0
    unclamp_s: float = 5.0
    pickup_s: float = 120.0    # outbound AGV docked after the part is free; else report and call again
    release_s: float = 20.0    # station eye clear after the gate is lowered; else conveyor jam

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float('inf'):
                raise ValueError(f'coordinator timeout {name} must be a positive finite number, got {value!r}')


STAGE_TIMEOUT = {Stage.FEEDING: 'feed_s', Stage.CLAMPING: 'clamp_s', Stage.SEARCH: 'search_s',
                 Stage.APPROACH: 'approach_s',
                 Stage.WELDING: 'weld_s', Stage.RETRACT: 'retract_s', Stage.UNCLAMPING: 'unclamp_s',
                 Stage.AWAIT_OUTBOUND: 'pickup_s', Stage.RELEASING: 'release_s'}
STAGE_FAILURE = {Stage.FEEDING: 'conveyor jam: part did not reach the station eye',
                 Stage.CLAMPING: 'clamp did not close', Stage.SEARCH: 'seam search did not finish',
                 Stage.APPROACH: 'arm motion timeout (approach)',
                 Stage.WELDING: 'weld did not finish', Stage.RETRACT: 'arm motion timeout (retract)',
                 Stage.UNCLAMPING: 'clamp did not open',
                 Stage.RELEASING: 'conveyor jam: part did not leave the station'}
ARM_TARGET = {Stage.SEARCH: 'seam_search', Stage.APPROACH: 'seam_start', Stage.WELDING: 'weld_path',
              Stage.RETRACT: 'home'}
LEDGER_STATE_OF_VERDICT = {'good': PartState.WELDED, 'dry_run': PartState.DRY_RUN, 'rework': PartState.REWORK}


@dataclass
class _Station:
    stage: Stage = Stage.EMPTY
    part_id: str = ''
    started: bool = False      # the stage's actions were emitted (False: waiting to start or re-start)
    deadline_s: float = 0.0
    replan: bool = False       # next arm motion is planned from the current joints after a stop
    seam: int = 0              # index of the seam being approached or welded, in the recipe's order
    verdicts: list[tuple[str, str]] = field(default_factory=list)   # (seam id, verdict) of the seams welded
    unrecorded: list[str] = field(default_factory=list)   # seams welded good but with no samples to record


@dataclass
class CellSnapshot:
    state: CellState
    mode: Mode
    stage: Stage
    station_part: str
    queued_part: str
    outbound_part: str
    belt_running: bool
    pending_acks: list[str] = field(default_factory=list)
    recipe: str = ''
    readiness: Readiness = Readiness.READY


class CellCoordinator:
    """Owns the part cycle; restore() must be called once before the first event."""

    def __init__(self, ledger: PartLedger, handoff: HandoffServer, records: WeldRecords,
                 timeouts: CoordinatorTimeouts = CoordinatorTimeouts(), recipe_id: str = '',
                 seam_ids: tuple[str, ...] = ('seam',), seam_search: bool = False,
                 idle_after_s: float = 0.0) -> None:
        if not seam_ids or len(set(seam_ids)) != len(seam_ids):
            raise CoordinatorError(f'a recipe needs at least one seam and unique seam ids, got {seam_ids!r}')
        self.ledger, self.handoff, self.records, self.timeouts = ledger, handoff, records, timeouts
        self.recipe_id = recipe_id   # the recipe the next parts are welded with
        self.seam_ids = tuple(seam_ids)   # its seams, in welding order
        self.seam_search = seam_search    # each part's first seam is searched before it is welded
        self.idle = IdlePolicy(idle_after_s, timeouts.retract_s)   # parks a cell that expects no part (0: never)
        self.state = CellState.IDLE
        self.mode = Mode.AUTO
        self._station = _Station()
        self._queued = ''          # part on the infeed side of the belt, waiting for the station
        self._outbound = ''        # part released toward the outbound dock
        self._belt = False
        self._belt_since_s = 0.0   # when the belt last started (meaningful while it runs)
        self._station_eye: bool | None = None   # the station photo-eye's last level (None: not heard yet)
        self._estop_active = False
        self._step_credit = 0
        self._pending_acks: list[str] = []
        self._pickup_called: set[str] = set()
        self._expected: set[str] = set()   # parts announced and not yet on the belt: the cell must be awake

    # ---------------------------------------------------------------- start-up
    def restore(self, now_s: float) -> list[Action]:
        """Rebuild the lanes from the ledger; nothing moves until ACKNOWLEDGE and START.

        A weld that ended and was recorded before the restart gets the verdict of its record; an interrupted
        weld becomes rework. Parts on the belt wait for the operator to confirm where they are.
        """
        out: list[Action] = []
        at_station = self.ledger.parts([PartState.AT_STATION, PartState.WELDING, PartState.WELDED,
                                        PartState.DRY_RUN, PartState.REWORK])
        if len(at_station) > 1:
            raise CoordinatorError('ledger holds more than one part at the station: '
                                   + ', '.join(f'{p.part_id} ({p.state.value})' for p in at_station))
        for part in at_station:
            stage = Stage.CLAMPING if part.state is PartState.AT_STATION else Stage.RETRACT
            if part.state is PartState.WELDING:
                # the process this one replaces left the arc and the adjuster in the weld: end it first
                out.append(Action(ActionKind.STOP_WELD, part.part_id))
                recorded = self.records.recorded_verdicts(part.part_id)
                if all(seam in recorded for seam in self.seam_ids):
                    verdict, _ = part_verdict(list(recorded.items()), self.seam_ids)
                    self._move(part.part_id, LEDGER_STATE_OF_VERDICT[verdict], now_s,
                               'weld recorded before a coordinator restart')
                else:
                    done = ', '.join(recorded) or 'none'
                    out += self._rework(part.part_id, now_s, 'weld interrupted by a coordinator restart '
                                        f'(seams recorded: {done})')
            self._station = _Station(stage, part.part_id, replan=True)
        self._expected = {part.part_id for part in self.ledger.parts([PartState.ANNOUNCED, PartState.ON_INBOUND_AGV])}
        for part in self.ledger.parts([PartState.ON_CONVEYOR]):
            self._queued = part.part_id
            self._pending_acks.append(f'confirm part {part.part_id} is on the infeed side of the belt')
        for part in self.ledger.parts([PartState.ON_OUTBOUND_CONVEYOR]):
            self._outbound = part.part_id
            self._pending_acks.append(f'confirm part {part.part_id} is on the outbound side of the belt')
        if self._pending_acks:
            self.state = CellState.AWAIT_ACK
        out.append(self._diag('WARN' if self._pending_acks else 'OK',
                              self._restored() + ''.join(f'; {a}' for a in self._pending_acks)))
        return out

    def _restored(self) -> str:
        """Say what a start on an existing ledger resumes: the parts still in the cell, apart from new ones."""
        counts = self.ledger.counts()
        if not counts.announced:
            return 'new ledger'
        return (f'restored from ledger: {counts.in_cell} part(s) of earlier runs resumed in the cell, '
                f'{counts.delivered + counts.rejected} finished; new parts come with new ids')

    def clock_restarted(self, now_s: float) -> list[Action]:
        """Restart every wait in full from `now_s` after the clock jumped (back, or first heard far from zero).

        A stage's deadline, each handoff step's timeout and the idle policy's quiet and move count again from
        `now_s`, so none fires at once and none waits for the old clock to come back; the parts and the lanes stay.
        """
        st = self._station
        if st.started:
            st.deadline_s = now_s + getattr(self.timeouts, STAGE_TIMEOUT[st.stage])
        self._belt_since_s = now_s
        self.handoff.clock_restarted(now_s)
        self.idle.clock_restarted(now_s)
        return [self._diag('WARN', f'clock jumped: every wait restarted from {now_s:.3f} s')]

    # ---------------------------------------------------------------- commands
    def set_mode(self, mode: Mode, now_s: float) -> list[Action]:
        if not isinstance(mode, Mode):
            raise CommandRefused(f'unknown mode {mode!r}; one of ' + ', '.join(m.value for m in Mode))
        if self.state in (CellState.RUNNING, CellState.PAUSED):
            raise CommandRefused(f'mode change to {mode.value} refused while {self.state.value}: stop first')
        self.mode = mode
        return [self._diag('OK', f'mode {mode.value}')]

    def change_recipe(self, recipe_id: str) -> Recipe | None:
        """Apply an engineer's recipe choice, or raise CommandRefused with the reason.

        Only a cell that is idle or stopped, with no part waiting for its weld, changes recipe: a part already
        brought in was brought for the recipe it has. The id must name a valid recipe in config/recipes that
        this cell can weld. Returns the recipe to run from now on, None when it is already the one in use.
        """
        def refuse(why: str) -> CommandRefused:
            return CommandRefused(f'recipe change to {recipe_id!r} refused: {why}')
        if recipe_id == self.recipe_id:
            return None
        if self.state not in (CellState.IDLE, CellState.STOPPED):
            raise refuse(f'the cell is {self.state.value}; recipes change only while it is idle or stopped')
        st = self._station
        waiting = [f'part {self._queued} is queued'] if self._queued and self._queued != st.part_id else []
        if st.stage in (Stage.FEEDING, Stage.CLAMPING, Stage.APPROACH, Stage.WELDING):
            waiting.append(f'part {st.part_id} is at the station ({st.stage.value})')
        if waiting:
            raise refuse(' and '.join(waiting) + f', not yet welded with recipe {self.recipe_id}')
        try:
            recipe = weldable(load_recipe(recipe_path(recipe_id)))
        except RecipeError as error:
            raise refuse(str(error)) from None
        self.recipe_id, self.seam_ids = recipe.id, tuple(seam.id for seam in recipe.seams)
        return recipe

    def command(self, cmd: Command, now_s: float) -> list[Action]:
        """Apply an operator command or raise CommandRefused with the reason."""
        s = self.state
        if cmd is Command.START:
            if self.mode is Mode.MANUAL:
                raise CommandRefused('start refused: MANUAL mode runs no automatic cycle')
            if self.mode is Mode.STEP and s is CellState.RUNNING:
                self._step_credit += 1
                return self._drive(now_s)
            if s not in (CellState.IDLE, CellState.STOPPED):
                raise CommandRefused(f'start refused in state {s.value}' + self._what_first())
            self._step_credit = 1
            return self._run(now_s, 'started')
        if cmd is Command.STOP:
            if s not in (CellState.RUNNING, CellState.PAUSED):
                raise CommandRefused(f'stop refused in state {s.value}: nothing is running')
            out = self._halt(now_s, 'stopped by operator')
            self.state = CellState.STOPPED
            return out + [self._diag('OK', 'stopped by operator')]
        if cmd is Command.PAUSE:
            if s is not CellState.RUNNING:
                raise CommandRefused(f'pause refused in state {s.value}: only a running cell pauses')
            out = self._halt(now_s, 'paused by operator')
            self.state = CellState.PAUSED
            return out + [self._diag('OK', 'paused by operator')]
        if cmd is Command.RESUME:
            if s is not CellState.PAUSED:
                raise CommandRefused(f'resume refused in state {s.value}: only a paused cell resumes')
            self._step_credit = 1
            return self._run(now_s, 'resumed')
        if cmd is Command.RESET:
            if s not in (CellState.FAULT, CellState.ESTOP):
                raise CommandRefused(f'reset refused in state {s.value}: no fault or emergency stop to reset')
            if self._estop_active:
                raise CommandRefused('reset refused: emergency stop input is still active')
            self.state = CellState.AWAIT_ACK
            return [Action(ActionKind.RESET_DEVICES), self._diag('WARN', 'reset: acknowledge, then start')]
        if cmd is Command.ACKNOWLEDGE:
            if s is not CellState.AWAIT_ACK:
                raise CommandRefused(f'acknowledge refused in state {s.value}: nothing to acknowledge'
                                     + (' (reset first)' if s in (CellState.FAULT, CellState.ESTOP) else ''))
            self._pending_acks.clear()
            self.state = CellState.STOPPED
            return [self._diag('OK', 'acknowledged: ready to start')]
        raise CommandRefused(f'unknown command {cmd!r}')

    def _what_first(self) -> str:
        return {CellState.RUNNING: ': already running', CellState.PAUSED: ': paused (use resume)',
                CellState.FAULT: ': reset and acknowledge the fault first',
                CellState.ESTOP: ': release the emergency stop, reset and acknowledge first',
                CellState.AWAIT_ACK: ': acknowledge first'}.get(self.state, '')

    def _run(self, now_s: float, why: str) -> list[Action]:
        self.state = CellState.RUNNING
        return [self._diag('OK', f'{why} in {self.mode.value}')] + self._drive(now_s)

    # ---------------------------------------------------------------- events
    def handle(self, event: Event, now_s: float) -> list[Action]:
        kind = event.kind
        out: list[Action] = []
        if kind is EventKind.ESTOP:
            self._estop_active = event.flag
            if event.flag and self.state is not CellState.ESTOP:
                out = self._halt(now_s, 'emergency stop')
                self.state = CellState.ESTOP
                out.append(self._diag('ERROR', 'emergency stop'))
            return out
        if kind is EventKind.PART_ANNOUNCED:
            self.ledger.announce(event.part_id, f'{event.part_id}:announced', now_s)
            if self.ledger.part(event.part_id).state in (PartState.ANNOUNCED, PartState.ON_INBOUND_AGV):
                self._expected.add(event.part_id)
        elif kind is EventKind.ARM_AT_GOAL and self.idle.moving:   # no station stage moves the arm meanwhile
            out += self._idle_arrived(now_s)
        elif kind is EventKind.HANDOFF_REQUEST:
            out += self._on_request(event.request, now_s)
        elif kind is EventKind.AGV_DOCKED:
            out += self._handoff_results(self.handoff.agv_docked(event.dock, event.agv, event.flag, now_s),
                                         now_s)
        elif kind is EventKind.ROLLERS_RUNNING:
            if self.handoff.step(event.dock) is HandoffStep.AWAIT_ROLLERS:
                out += self._handoff_results([self.handoff.rollers_running(event.dock, now_s)], now_s)
        elif kind is EventKind.PART_DETECTED:
            if self.handoff.step(event.dock) is HandoffStep.AWAIT_PART:
                out += self._handoff_results([self.handoff.part_detected(event.dock, now_s)], now_s)
            elif not self.handoff.holds_its_part(event.dock, event.agv):   # the deck's sensor repeats at 10 Hz
                out.append(self._diag('WARN', f'part detected at the {event.dock} dock with no transfer '
                                      'waiting for it'))
        elif kind is EventKind.SENSOR_DROPOUT:
            st = self._station
            if st.stage is Stage.WELDING and st.started:
                out += self._fault(now_s, f'seam sensor dropout during the weld of {st.part_id}: {event.reason}')
            else:
                out.append(self._diag('WARN', f'seam sensor dropout outside a weld: {event.reason}'))
        elif kind is EventKind.CONVEYOR_JAM:
            if self.state not in (CellState.FAULT, CellState.ESTOP):
                out += self._fault(now_s, f'conveyor jam: {event.reason}')
        elif kind is EventKind.TICK:
            timed_out = self.handoff.tick(now_s)
            out += self._handoff_results(timed_out, now_s)
            out += self._transfer_jam(timed_out, now_s)
            out += self._check_deadline(now_s)
        else:
            if kind is EventKind.STATION_EYE:
                self._station_eye = event.flag
            out += self._station_event(event, now_s)
        return out + self._drive(now_s)

    def _on_request(self, request: HandoffRequest | None, now_s: float) -> list[Action]:
        if request is None:
            raise HandoffError('handoff_request event without a request')
        if self.handoff.result(request.request_id) is None:
            refuse = self._refusal(request)
            if refuse == 'already transferred':
                result = HandoffResult(request.request_id, HandoffStatus.SUCCESS, HandoffStep.DONE,
                                       f'part {request.part_id} already transferred (ledger)', now_s)
                return [Action(ActionKind.PUBLISH_HANDOFF_RESULT, request.part_id, result=result)]
            result = self.handoff.receive(request, now_s, refuse=refuse)
            if result.status is HandoffStatus.ACKNOWLEDGED and request.kind is HandoffKind.LOAD_TO_CELL:
                self._move(request.part_id, PartState.ON_INBOUND_AGV, now_s,
                           f'handoff {request.request_id} from {request.agv}')
            return self._handoff_results([result], now_s)
        return [Action(ActionKind.PUBLISH_HANDOFF_RESULT, request.part_id,
                       result=self.handoff.receive(request, now_s))]

    def _refusal(self, request: HandoffRequest) -> str:
        """Why a new request cannot be served ('' when it can); 'already transferred' after a restart."""
        if self.mode is Mode.MANUAL:
            return 'cell in MANUAL mode'
        parts = {p.part_id: p.state for p in self.ledger.parts()}
        state = parts.get(request.part_id)
        if state is None:
            return f'part {request.part_id} was never announced'
        if request.kind is HandoffKind.LOAD_TO_CELL:
            if state in (PartState.ANNOUNCED, PartState.ON_INBOUND_AGV):
                return ''
            return 'already transferred' if state is not PartState.REJECTED else \
                f'part {request.part_id} is {state.value}'
        if state in (PartState.DELIVERED, PartState.REJECTED):
            return 'already transferred'
        if state in (PartState.ANNOUNCED, PartState.ON_INBOUND_AGV, PartState.ON_CONVEYOR):
            return f'part {request.part_id} is {state.value}, not ready to leave'
        return ''

    def _handoff_results(self, results: list[HandoffResult], now_s: float) -> list[Action]:
        out = []
        for result in results:
            request = self.handoff.request(result.request_id)
            out.append(Action(ActionKind.PUBLISH_HANDOFF_RESULT, request.part_id, result=result))
            if result.status is HandoffStatus.FAILED:
                out.append(self._diag('WARN', f'handoff {result.request_id} ({request.kind.value}, '
                                      f'{request.agv}, part {request.part_id}) FAILED: {result.reason}; '
                                      'waiting for a new request'))
            elif result.status is HandoffStatus.SUCCESS:
                if request.kind is HandoffKind.LOAD_TO_CELL:
                    self._move(request.part_id, PartState.ON_CONVEYOR, now_s, f'handoff {result.request_id}')
                    self._queued = request.part_id
                    self._expected.discard(request.part_id)
                else:
                    verdict = self.ledger.part(request.part_id).verdict
                    to = PartState.REJECTED if verdict == 'rework' else PartState.DELIVERED
                    self._move(request.part_id, to, now_s, f'handoff {result.request_id} to {request.agv}'
                               + (' for rework' if verdict == 'rework' else ''))
                    if self._outbound == request.part_id:
                        self._outbound = ''
        return out

    def _station_event(self, event: Event, now_s: float) -> list[Action]:
        st = self._station
        kind = event.kind
        if kind is EventKind.STATION_EYE and not event.flag and st.stage is Stage.RELEASING and st.started:
            self._station = _Station()
            return [Action(ActionKind.RAISE_GATE)]
        if not st.started or self.state is not CellState.RUNNING:
            return []
        if kind is EventKind.STATION_EYE and event.flag and st.stage is Stage.FEEDING:
            self._move(st.part_id, PartState.AT_STATION, now_s, 'station photo-eye')
            self._queued = ''
            return self._next(Stage.CLAMPING)
        if kind is EventKind.CLAMP_CLOSED and st.stage is Stage.CLAMPING:
            return self._next(Stage.SEARCH if self.seam_search else Stage.APPROACH)
        if kind is EventKind.ARM_AT_GOAL and st.stage is Stage.SEARCH:
            return [Action(ActionKind.LOCATE_SEAM, st.part_id, seam=self.seam_ids[0])]
        if kind is EventKind.SEAM_LOCATED and st.stage is Stage.SEARCH:
            if event.flag:
                return [self._diag('OK', f'part {st.part_id}: {event.reason}')] + self._next(Stage.APPROACH)
            why = f'seam not found: {event.reason}'
            self._move(st.part_id, PartState.REWORK, now_s, why)
            return [self._diag('WARN', f'part {st.part_id} to rework, {why}')] + self._next(Stage.RETRACT)
        if kind is EventKind.ARM_AT_GOAL and st.stage is Stage.APPROACH:
            return self._next(Stage.WELDING)
        if kind is EventKind.WELD_DONE and st.stage is Stage.WELDING:
            seam = self.seam_ids[st.seam]
            verdict = 'dry_run' if self.mode is Mode.DRY_RUN else ('good' if event.flag else 'rework')
            why = {'good': 'weld done', 'dry_run': 'dry run: arc was never enabled',
                   'rework': 'weld quality outside limits'}[verdict]
            out = [Action(ActionKind.STOP_WELD, st.part_id, seam=seam)]
            try:
                recorded = self.records.commit(st.part_id, verdict, why)
            except Exception as error:   # whatever the store raises, the part cannot be good
                self._move(st.part_id, PartState.REWORK, now_s, f'weld record of {seam} not written: {error}')
                self._next(Stage.RETRACT)
                return out + self._fault(now_s, f'weld record of part {st.part_id} not written ({seam}): {error}')
            st.verdicts.append((seam, recorded))
            if recorded == 'rework' and verdict == 'good':
                st.unrecorded.append(seam)
            if st.seam + 1 < len(self.seam_ids):   # the next seam: an air move to its start, then its weld
                st.seam += 1
                return out + self._next(Stage.APPROACH)
            verdict, why = part_verdict(st.verdicts, self.seam_ids)
            if st.unrecorded:
                why = 'weld done but no weld samples were recorded' + (
                    f' on {", ".join(st.unrecorded)}' if len(self.seam_ids) > 1 else '')
            self._move(st.part_id, LEDGER_STATE_OF_VERDICT[verdict], now_s, why)
            return out + self._next(Stage.RETRACT)
        if kind is EventKind.ARM_AT_GOAL and st.stage is Stage.RETRACT:
            return self._next(Stage.UNCLAMPING)
        if kind is EventKind.CLAMP_OPEN and st.stage is Stage.UNCLAMPING:
            return self._next(Stage.AWAIT_OUTBOUND)
        return []

    def _next(self, stage: Stage) -> list[Action]:
        self._station.stage, self._station.started = stage, False
        return []

    # ---------------------------------------------------------------- progress
    def _may_advance(self) -> bool:
        if self.state is not CellState.RUNNING or self.mode is Mode.MANUAL:
            return False
        return self.mode is not Mode.STEP or self._step_credit > 0

    def _spend(self) -> None:
        if self.mode is Mode.STEP:
            self._step_credit -= 1

    def _drive(self, now_s: float) -> list[Action]:
        """Start every stage that may start now, then set the belt. Level-triggered: safe to call often."""
        out = self._idle_step(now_s)
        st = self._station
        if st.stage is Stage.EMPTY and self._queued and self._may_advance():
            self._station = st = _Station(Stage.FEEDING, self._queued)
        if not st.started and st.stage is not Stage.EMPTY and self._may_advance() \
                and (st.stage not in ARM_TARGET or self.idle.ready):
            if st.stage is not Stage.RELEASING or self._outbound_ready(st.part_id):
                self._spend()
                out += self._enter(st, now_s)
        if st.stage is Stage.AWAIT_OUTBOUND and st.started and self._outbound_ready(st.part_id) \
                and self._may_advance():
            self._spend()
            st.stage = Stage.RELEASING
            out += self._enter(st, now_s)
        if self._outbound and not st.part_id == self._outbound and self._may_advance() \
                and self.handoff.step('outbound') is HandoffStep.AWAIT_CELL \
                and self._outbound_ready(self._outbound):
            self._spend()
            out.append(self._publish(self.handoff.begin_transfer('outbound', now_s)))
        if not self._queued and self.handoff.step('inbound') is HandoffStep.AWAIT_CELL \
                and self._may_advance() and not self._belt_forbidden() and not self._infeed_blocked():
            self._spend()
            out.append(self._publish(self.handoff.begin_transfer('inbound', now_s)))
        return out + self._set_belt(now_s)

    def _quiet(self) -> bool:
        """Tell whether no part is expected: none at the station, on the belt, announced or in a handoff."""
        return (self._station.stage is Stage.EMPTY and not self._queued and not self._outbound
                and not self._expected and self.handoff.active('inbound') is None
                and self.handoff.active('outbound') is None)

    def _idle_step(self, now_s: float) -> list[Action]:
        may_move = self.state is CellState.RUNNING and self.mode in (Mode.AUTO, Mode.DRY_RUN)
        step = self.idle.update(self._quiet(), may_move, now_s)
        if step is IdleStep.PARK:
            return [Action(ActionKind.STANDBY, detail='on'), Action(ActionKind.MOVE_ARM, detail='rest'),
                    self._diag('OK', f'idle: no part expected for {self.idle.idle_after_s:g} s; arm to its rest '
                               'pose, conveyor drive and weld power source to standby')]
        if step is IdleStep.WAKE:
            return [Action(ActionKind.STANDBY, detail='off'), Action(ActionKind.MOVE_ARM, detail='home'),
                    self._diag('OK', 'waking: a part is expected; devices out of standby, arm home')]
        if step is IdleStep.FAILED:
            return self._fault(now_s, f'arm did not reach its idle-policy pose within {self.idle.move_timeout_s:g} s')
        return []

    def _idle_arrived(self, now_s: float) -> list[Action]:
        waking = self.idle.readiness is Readiness.WAKING
        self.idle.arrived(now_s)
        if waking:
            return [self._diag('OK', f'awake: arm home {now_s - self.idle.woken_s:.1f} s after the wake began')]
        return [self._diag('OK', 'standby: arm at its rest pose')]

    def _outbound_ready(self, part_id: str) -> bool:
        request = self.handoff.active('outbound')
        return (request is not None and request.part_id == part_id and self.handoff.dock_ready('outbound'))

    def _held(self) -> bool:
        """Tell whether the station holds a part against the belt (raised gate, clamp or arm at work)."""
        return self._station.stage not in (Stage.EMPTY, Stage.FEEDING, Stage.RELEASING)

    def _belt_forbidden(self) -> bool:
        """Tell whether the belt must stay still (the interlock).

        Never push a part toward the outbound dock unless its AGV is docked and ready, and never drive a
        queued part into a part held at the station.
        """
        if self._outbound and not self.handoff.dock_ready('outbound'):
            return True
        return bool(self._queued) and self._held()

    def _infeed_blocked(self) -> bool:
        """Tell whether a new part must wait on the inbound AGV although the infeed side of the belt is free.

        The one belt carries every part on it: a released part still on its way to the outbound deck needs the
        belt, and a part queued behind a held one forbids it. Both at once would stop the cell for good, so no
        part comes onto the belt while a part is held and a released one is still on the belt.
        """
        return bool(self._outbound) and self._held()

    def _set_belt(self, now_s: float) -> list[Action]:
        st = self._station
        moving = (HandoffStep.AWAIT_ROLLERS, HandoffStep.AWAIT_PART)
        wanted = (self.state is CellState.RUNNING and self.mode is not Mode.MANUAL
                  and (self.handoff.step('inbound') in moving
                       or (st.started and st.stage in (Stage.FEEDING, Stage.RELEASING))
                       or (bool(self._outbound) and self.handoff.step('outbound') in moving))
                  and not self._belt_forbidden())
        if wanted == self._belt:
            return []
        self._belt, self._belt_since_s = wanted, now_s
        return [Action(ActionKind.START_BELT if wanted else ActionKind.STOP_BELT)]

    def _enter(self, st: _Station, now_s: float) -> list[Action]:
        """Emit the actions that begin the station's current stage and arm its timeout."""
        st.started = True
        st.deadline_s = now_s + getattr(self.timeouts, STAGE_TIMEOUT[st.stage])
        part = st.part_id
        if st.stage is Stage.FEEDING:
            return [Action(ActionKind.RAISE_GATE, part)]
        if st.stage is Stage.CLAMPING:
            return [Action(ActionKind.CLAMP, part)]
        if st.stage is Stage.UNCLAMPING:
            return [Action(ActionKind.UNCLAMP, part)]
        if st.stage is Stage.AWAIT_OUTBOUND:
            return [] if part in self._pickup_called else [self._pickup(part)]
        if st.stage is Stage.RELEASING:
            self._move(part, PartState.ON_OUTBOUND_CONVEYOR, now_s, 'released toward the outbound AGV')
            self._outbound = part
            out = []
            if self.handoff.step('outbound') is HandoffStep.AWAIT_CELL:
                out.append(self._publish(self.handoff.begin_transfer('outbound', now_s)))
            if self._station_eye is False:
                # Re-entered after a stop in which the belt coasted the part past the eye: the release is done,
                # and the gate must stop the next part rather than let it through.
                self._station = _Station()
                return out + [Action(ActionKind.RAISE_GATE)]
            return [Action(ActionKind.LOWER_GATE, part)] + out
        seam = self.seam_ids[st.seam] if st.stage is not Stage.RETRACT else ''
        out = [self._arm(part, ARM_TARGET[st.stage], seam)]
        if st.stage is Stage.WELDING:
            self._move(part, PartState.WELDING, now_s, f'weld started ({self.mode.value})')
            arc = 'arc_off' if self.mode is Mode.DRY_RUN else 'arc_on'
            out.append(Action(ActionKind.START_WELD, part, arc, seam=seam))
            if part not in self._pickup_called:
                out.append(self._pickup(part))  # the outbound AGV approaches while the part is welded
        return out

    def _pickup(self, part_id: str) -> Action:
        self._pickup_called.add(part_id)
        return Action(ActionKind.REQUEST_PICKUP, part_id, 'outbound')

    def _arm(self, part_id: str, target: str, seam: str = '') -> Action:
        if self._station.replan:
            self._station.replan = False
            return Action(ActionKind.REPLAN_FROM_CURRENT_JOINTS, part_id, target, seam=seam)
        return Action(ActionKind.MOVE_ARM, part_id, target, seam=seam)

    def _transfer_jam(self, timed_out: list[HandoffResult], now_s: float) -> list[Action]:
        """Fault on a transfer whose part never arrived although the belt ran for the whole of its wait.

        Between the belt's last photo-eye and a deck no eye of the conveyor driver looks, so a part snagged
        there shows only as this timeout. A wait the belt spent partly standing (a stop, a pause) proves
        nothing: the handoff fails and the fleet asks again, as for any other timeout.
        """
        part_s = self.handoff.timeouts.part_s
        if self.state is not CellState.RUNNING or not self._belt or now_s - self._belt_since_s < part_s:
            return []
        for result in timed_out:
            if result.step is HandoffStep.AWAIT_PART:
                request = self.handoff.request(result.request_id)
                where = 'the belt' if request.kind is HandoffKind.LOAD_TO_CELL else 'the outbound deck'
                return self._fault(now_s, f'conveyor jam: part {request.part_id} did not reach {where} within '
                                   f'{part_s:g} s of running belt (handoff {result.request_id})')
        return []

    def _check_deadline(self, now_s: float) -> list[Action]:
        st = self._station
        if not st.started or self.state is not CellState.RUNNING or now_s < st.deadline_s:
            return []
        limit = getattr(self.timeouts, STAGE_TIMEOUT[st.stage])
        if st.stage is Stage.AWAIT_OUTBOUND:
            st.deadline_s = now_s + limit
            return [self._diag('WARN', f'part {st.part_id}: no AGV docked at the outbound dock within '
                               f'{limit:g} s; calling again'),
                    self._pickup(st.part_id)]
        return self._fault(now_s, f'{STAGE_FAILURE[st.stage]} within {limit:g} s (part {st.part_id})')

    # ---------------------------------------------------------------- stopping
    def _halt(self, now_s: float, why: str) -> list[Action]:
        """Stop every motion, turn the arc off, discard the trajectory.

        An interrupted weld makes the part rework. The current stage is re-entered on the next start, with
        the arm re-planned from its current joints.
        """
        st = self._station
        self._belt = False
        self.idle.halted()
        out = [Action(kind) for kind in MOTION_STOP_ACTIONS]
        if st.stage is Stage.WELDING and st.started:
            out += self._rework(st.part_id, now_s, f'weld interrupted: {why}')
            st.stage = Stage.RETRACT
        st.replan, st.started = True, False
        return out

    def _fault(self, now_s: float, reason: str) -> list[Action]:
        out = self._halt(now_s, reason)
        self.state = CellState.FAULT
        return out + [self._diag('ERROR', f'fault: {reason}; cell waits for reset')]

    # ---------------------------------------------------------------- helpers
    def _rework(self, part_id: str, now_s: float, reason: str) -> list[Action]:
        """Record what was welded of an interrupted weld, then mark the part rework (even if the store fails)."""
        out = []
        try:
            self.records.commit(part_id, 'rework', reason)
        except Exception as error:   # a rework part needs no record to be safe: report it and go on stopping
            out.append(self._diag('WARN', f'weld record of interrupted part {part_id} not written: {error}'))
        self._move(part_id, PartState.REWORK, now_s, reason)
        return out

    def _move(self, part_id: str, to: PartState, now_s: float, reason: str) -> None:
        self.ledger.move(part_id, to, f'{part_id}:{to.value}', now_s, reason)

    def _publish(self, result: HandoffResult) -> Action:
        return Action(ActionKind.PUBLISH_HANDOFF_RESULT, self.handoff.request(result.request_id).part_id, result=result)

    def _diag(self, level: str, message: str) -> Action:
        return Action(ActionKind.PUBLISH_DIAGNOSTICS, self._station.part_id, level, message)

    def snapshot(self) -> CellSnapshot:
        """Return what the node publishes on its diagnostics heartbeat."""
        return CellSnapshot(self.state, self.mode, self._station.stage, self._station.part_id,
                            self._queued, self._outbound, self._belt, list(self._pending_acks), self.recipe_id,
                            self.idle.readiness)
