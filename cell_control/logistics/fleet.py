"""The fleet side of the cell: what each AGV does next, as a pure state machine (no ROS, time passed in).

Two roles, as in DESIGN §7: the inbound AGV carries parts from the source (its home pose) to the inbound
dock and rolls them onto the belt; the outbound AGV waits at the sink (its home pose) until the cell asks
for a pickup, rolls the part onto its deck at the outbound dock and takes it to the sink. Every transfer is
a handoff request (logistics.handoff) sent through a `HandoffClient`, which resends the same id while the cell is
silent; a FAILED transfer is retried with a new id after a back-off, with the AGV staying where it is.

The node feeds in odometry, handoff results, pickup requests, load sensor readings, service replies and
timer ticks, and executes the returned `Command`s (twist, deck speed, announce, request, service call,
log). Every wait here has a timeout that ends in a logged reason.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum

from cell_control.logistics.agv_navigation import DriveLimits, Pose2D, docking_route, drive_command
from cell_control.logistics.handoff import (ClientActionKind, HandoffClient, HandoffKind, HandoffRequest,
                                            HandoffResult, HandoffStatus)


class FleetError(ValueError):
    """A fleet setting that cannot work; the text names it."""


class AgvRole(str, Enum):
    INBOUND = 'inbound'     # source → inbound dock → belt
    OUTBOUND = 'outbound'   # belt → outbound dock → sink


class AgvTask(str, Enum):
    IDLE = 'idle'              # at home, nothing to do (outbound: waiting for a pickup request)
    LOADING = 'loading'        # the source's loader is putting a part on the deck
    TO_DOCK = 'to_dock'        # request sent, driving to the dock (or held at the source)
    DOCKED = 'docked'          # at the dock, waiting for the cell to ask for the rollers
    TRANSFER = 'transfer'      # deck rollers running, the cell watches the part move
    CLEARING = 'clearing'      # inbound, after SUCCESS: rollers push the part's tail clear of the deck
    BACKOFF = 'backoff'        # the last request FAILED; a new one goes out after the back-off
    PULL_IN = 'pull_in'        # outbound, after SUCCESS: rollers run until the load sensor sees the part
    RETURNING = 'returning'    # leaving the dock along its axis, then driving home
    UNLOADING = 'unloading'    # the sink's unloader is taking the part off the deck
    DONE = 'done'              # inbound: every part delivered to the cell


class CommandKind(str, Enum):
    TWIST = 'twist'                # publish linear/angular on <agv>/cmd_vel
    DECK = 'deck'                  # publish speed on <agv>/deck_speed (sent every tick: the sim zeroes old ones)
    ANNOUNCE = 'announce'          # publish part_id on /handoff/announce
    SEND_REQUEST = 'send_request'  # publish request on /handoff/request
    CALL_SERVICE = 'call_service'  # call /<agv>/<service>; reply with on_service_reply(call_id, ...)
    LOG = 'log'                    # log text at level ('info', 'warn', 'error')


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    agv: str
    linear: float = 0.0
    angular: float = 0.0
    speed: float = 0.0
    part_id: str = ''
    request: HandoffRequest | None = None
    service: str = ''
    call_id: int = 0
    level: str = 'info'
    text: str = ''


RUN_ID = re.compile(r'[A-Za-z0-9_]*\Z')


def run_id_of(setting: str, now: datetime, token: str) -> str:
    """Return the run id in part ids: as set, or for 'auto' the start time (UTC) and a random token."""
    if setting != 'auto':
        return setting
    return now.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%S') + '_' + token


def part_ids(config: FleetConfig) -> list[str]:
    """Return the ids of the parts the source sends in this run, in order."""
    stem = f'{config.prefix}-{config.run_id}' if config.run_id else config.prefix
    return [f'{stem}-{n}' for n in range(1, config.parts + 1)]


@dataclass(frozen=True)
class FleetConfig:
    inbound_agv: str = 'agv_1'
    outbound_agv: str = 'agv_2'
    parts: int = 3                    # parts the source sends into the cell
    prefix: str = 'P'                 # part ids are <prefix>-<run_id>-<n>, n from 1 (<prefix>-<n> without a run)
    run_id: str = ''                  # makes part ids unique across runs on one ledger (`run_id_of`)
    deck_speed_m_s: float = 0.3
    retry_backoff_s: float = 2.0      # after a FAILED handoff or a failed service call
    inbound_enabled: bool = True      # False: the inbound AGV loads, announces and requests, but never drives
    odometry_timeout_s: float = 0.5   # older odometry stops the AGV
    answer_timeout_s: float = 2.0     # HandoffClient: resend the same id after this much silence
    max_attempts: int = 5             # HandoffClient: silent sends before FAILED locally
    service_timeout_s: float = 5.0    # a load/unload service reply must come within this
    load_present_timeout_s: float = 10.0   # outbound: the part must be centred on the deck within this
    deck_clear_s: float = 1.5         # inbound: rollers keep running this long after SUCCESS
    drive_timeout_s: float = 120.0    # a route must be driven within this, else it is planned again
    unload_attempts: int = 3          # failed unload calls before the part is given up at the sink

    def __post_init__(self) -> None:
        if not self.inbound_agv or not self.outbound_agv or self.inbound_agv == self.outbound_agv:
            raise FleetError(f'inbound_agv and outbound_agv must be two different names, got '
                             f'{self.inbound_agv!r} and {self.outbound_agv!r}')
        if isinstance(self.parts, bool) or not isinstance(self.parts, int) or self.parts < 0:
            raise FleetError(f'parts must be an integer >= 0, got {self.parts!r}')
        if not self.prefix or any(c.isspace() for c in self.prefix):
            raise FleetError(f'prefix must be a non-empty word without spaces, got {self.prefix!r}')
        if not RUN_ID.match(self.run_id):
            raise FleetError(f'run_id must be letters, digits and _ (or empty), got {self.run_id!r}')
        for name in ('deck_speed_m_s', 'retry_backoff_s', 'odometry_timeout_s', 'answer_timeout_s',
                     'service_timeout_s', 'load_present_timeout_s', 'drive_timeout_s'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise FleetError(f'{name} must be a positive finite number, got {value!r}')
        if not (math.isfinite(self.deck_clear_s) and self.deck_clear_s >= 0):
            raise FleetError(f'deck_clear_s must be >= 0, got {self.deck_clear_s!r}')
        for name in ('max_attempts', 'unload_attempts'):
            if getattr(self, name) < 1:
                raise FleetError(f'{name} must be >= 1, got {getattr(self, name)!r}')


@dataclass
class _Call:
    call_id: int
    service: str
    deadline_s: float


@dataclass
class AgvController:
    """One AGV's plan: a task, the part it handles, a route it drives, and the handoff it waits on."""

    name: str
    role: AgvRole
    home: Pose2D
    dock: Pose2D
    config: FleetConfig
    limits: DriveLimits = field(default_factory=DriveLimits)

    def __post_init__(self) -> None:
        self.client = HandoffClient(self.config.answer_timeout_s, self.config.max_attempts)
        self.task = AgvTask.IDLE
        self.part: str | None = None
        self.pose: Pose2D | None = None
        self.warning = ''                    # the last thing that went wrong, until progress clears it
        self.completed: list[str] = []       # inbound: handed to the cell; outbound: delivered to the sink
        self.queue: list[str] = []           # parts still to handle, in order
        self.load_present = False
        self._odom_s = -math.inf
        self._stale = False
        self._route: list[Pose2D] = []
        self._route_to = ''                  # 'dock' | 'home'
        self._route_started_s = 0.0
        self._at = 'home'                    # 'home' | 'dock' | '' (between)
        self._deck = 0.0
        self._rollers_wanted = False
        self._request: HandoffRequest | None = None
        self._attempt = 0
        self._answered = False
        self._retry_at_s = math.inf
        self._deadline_s = math.inf
        self._call: _Call | None = None
        self._call_failures = 0
        self._next_call_id = 1

    # ----- inputs -----------------------------------------------------------------------------------------
    def request_pickup(self, part: str, now_s: float) -> list[Command]:
        """Queue a pickup; a part already queued, in hand or delivered is ignored (the cell may repeat)."""
        if self.role is not AgvRole.OUTBOUND:
            return [self._log('warn', f'pickup request for {part} ignored: {self.name} serves the inbound dock')]
        if part == self.part or part in self.queue or part in self.completed:
            return []
        self.queue.append(part)
        return [self._log('info', f'pickup request for {part} queued')] + self._maybe_start(now_s)

    def on_odometry(self, pose: Pose2D, now_s: float) -> list[Command]:
        """Follow the route: one twist per odometry message, zero on arrival."""
        self.pose, self._odom_s = pose, now_s
        commands = []
        if self._stale:
            self._stale = False
            commands.append(self._log('info', 'odometry is back'))
        while self._route:
            linear, angular, reached = drive_command(pose, self._route[0], len(self._route) == 1, self.limits)
            if not reached:
                return commands + [self._twist(linear, angular)]
            self._route.pop(0)
        if self._route_to:
            commands.append(self._twist(0.0, 0.0))
            commands += self._arrive(now_s)
        return commands

    def on_load_present(self, present: bool, now_s: float) -> list[Command]:
        """Take the deck's load sensor: a centred part stops the outbound rollers, never pulled off the end."""
        self.load_present = present
        if present and self.task is AgvTask.PULL_IN:
            return self._pulled_in(now_s, '')
        if present and self._holds_part():
            self._deck = 0.0
            return [self._log('info', f'{self.part} centred on the deck: rollers stopped')]
        return []

    def _holds_part(self) -> bool:
        """Tell whether the outbound rollers must stop now: the part is on the deck, centred."""
        return (self.role is AgvRole.OUTBOUND and self.task is AgvTask.TRANSFER and self.load_present
                and self._deck != 0.0)

    def on_result(self, result: HandoffResult, now_s: float) -> list[Command]:
        """Take the cell's answer (results for other AGVs' requests are ignored by the client)."""
        actions = self.client.on_result(result, now_s)
        if not actions and (self._request is None or result.request_id != self._request.request_id):
            return []
        self._answered = True
        commands = []
        for action in actions:
            if action.kind is ClientActionKind.RUN_DECK_ROLLERS:
                self._rollers_wanted = True
                if self._at == 'dock' and not self._route:
                    self.task, self._deck = AgvTask.TRANSFER, self._deck_direction()
                    commands.append(self._log('info', f'{result.request_id}: running the deck rollers'))
                else:
                    commands.append(self._log('warn', f'{result.request_id}: cell asks for the rollers before '
                                              f'{self.name} is docked; they run on arrival'))
            elif action.kind is ClientActionKind.STOP_DECK_ROLLERS:
                self._deck = 0.0
            elif action.kind is ClientActionKind.FINISHED and action.result is not None:
                commands += self._finished(action.result, now_s)
        return commands

    def on_service_reply(self, call_id: int, success: bool, message: str, now_s: float) -> list[Command]:
        """Take a load/unload reply; one for a call already timed out is ignored."""
        call = self._call
        if call is None or call.call_id != call_id:
            return []
        self._call = None
        if not success:
            return self._call_failed(call.service, f'{call.service} refused: {message}', now_s)
        self._call_failures = 0
        if call.service == 'load_part':
            return [self._log('info', f'{self.part} loaded at the source ({message})')] + self._send_request(now_s)
        self.completed.append(self.part or '')
        done = self.part
        self.part, self.task, self.warning = None, AgvTask.IDLE, ''
        return [self._log('info', f'{done} delivered to the sink ({message})')] + self._maybe_start(now_s)

    def tick(self, now_s: float) -> list[Command]:
        """Timer work: stale odometry, timeouts, resends, back-off, deck keep-alive, the next job."""
        commands = []
        if self._route and now_s - self._odom_s > self.config.odometry_timeout_s:
            if not self._stale:
                self._stale = True
                commands.append(self._log('warn', f'odometry older than {self.config.odometry_timeout_s:g} s: '
                                          'stopping'))
            commands.append(self._twist(0.0, 0.0))
        if self._route and now_s - self._route_started_s > self.config.drive_timeout_s:
            target = self._route_to
            self.warning = f'did not reach the {target} within {self.config.drive_timeout_s:g} s; planning again'
            commands.append(self._log('warn', self.warning))
            commands += self._drive_to(target, now_s)
        for action in self.client.tick(now_s):
            if action.kind is ClientActionKind.SEND_REQUEST and action.request is not None:
                if not self._answered and self.role is AgvRole.INBOUND:
                    commands.append(Command(CommandKind.ANNOUNCE, self.name, part_id=action.request.part_id))
                commands.append(Command(CommandKind.SEND_REQUEST, self.name, request=action.request))
            elif action.kind is ClientActionKind.FINISHED and action.result is not None:
                commands += self._finished(action.result, now_s)
        if self._call is not None and now_s >= self._call.deadline_s:
            service, self._call = self._call.service, None
            commands += self._call_failed(service, f'no reply from {service} within '
                                          f'{self.config.service_timeout_s:g} s', now_s)
        if now_s >= self._retry_at_s:
            self._retry_at_s = math.inf
            commands += self._retry(now_s)
        if self.task is AgvTask.PULL_IN and now_s >= self._deadline_s:
            commands += self._pulled_in(now_s, f'part not seen on the deck within '
                                        f'{self.config.load_present_timeout_s:g} s')
        if self.task is AgvTask.CLEARING and now_s >= self._deadline_s:
            self._deck = 0.0
            commands += self._go_home(now_s)
        if self._holds_part():
            self._deck = 0.0
        commands.append(Command(CommandKind.DECK, self.name, speed=self._deck))
        return commands + self._maybe_start(now_s)

    def clock_restarted(self, now_s: float) -> None:
        """Restart every wait in full from `now_s` after the clock went back (a restarted simulation).

        Odometry age, the drive, the back-off, a service call, the pull-in or deck clearing and the handoff
        client's resends all count again from `now_s`: none fires at once, none waits for the old clock.
        """
        config = self.config
        if math.isfinite(self._odom_s):
            self._odom_s = now_s
        self._route_started_s = now_s
        if math.isfinite(self._retry_at_s):
            self._retry_at_s = now_s + config.retry_backoff_s
        if self._call is not None:
            self._call.deadline_s = now_s + config.service_timeout_s
        if self.task is AgvTask.PULL_IN:
            self._deadline_s = now_s + config.load_present_timeout_s
        elif self.task is AgvTask.CLEARING:
            self._deadline_s = now_s + config.deck_clear_s
        self.client.clock_restarted(now_s)

    # ----- status -----------------------------------------------------------------------------------------
    @property
    def deck_speed(self) -> float:
        return self._deck

    @property
    def request_id(self) -> str:
        return '' if self._request is None else self._request.request_id

    def status(self) -> dict:
        return {'role': self.role.value, 'task': self.task.value, 'part': self.part or '',
                'request': self.request_id, 'completed': len(self.completed), 'warning': self.warning}

    # ----- transitions ------------------------------------------------------------------------------------
    def _maybe_start(self, now_s: float) -> list[Command]:
        if self.task is not AgvTask.IDLE or self._at != 'home' or self.pose is None:
            return []
        if not self.queue:
            if self.role is AgvRole.INBOUND and len(self.completed) >= self.config.parts:
                self.task = AgvTask.DONE
                return [self._log('info', f'all {self.config.parts} parts handed to the cell')]
            return []
        self.part, self._attempt = self.queue.pop(0), 0
        if self.role is AgvRole.INBOUND:
            self.task = AgvTask.LOADING
            return self._call_service('load_part', now_s)
        return self._send_request(now_s)

    def _send_request(self, now_s: float) -> list[Command]:
        """Send a request with a new id for the current part (`<part>-load`, then `<part>-load-2`, ...)."""
        assert self.part is not None
        inbound = self.role is AgvRole.INBOUND
        verb = 'load' if inbound else 'unload'
        request_id = f'{self.part}-{verb}' + (f'-{self._attempt + 1}' if self._attempt else '')
        self._request = HandoffRequest(request_id, HandoffKind.LOAD_TO_CELL if inbound else
                                       HandoffKind.UNLOAD_FROM_CELL, self.name, self.role.value, self.part, now_s)
        self._answered, self._rollers_wanted = False, False
        commands = []
        if inbound and self._attempt == 0:
            commands.append(Command(CommandKind.ANNOUNCE, self.name, part_id=self.part))
        for action in self.client.send(self._request, now_s):
            commands.append(Command(CommandKind.SEND_REQUEST, self.name, request=action.request))
        commands.append(self._log('info', f'request {request_id} sent'))
        if self._at == 'dock' and not self._route:
            self.task = AgvTask.DOCKED
            return commands
        self.task = AgvTask.TO_DOCK
        if self._route_to == 'dock':
            return commands
        if inbound and not self.config.inbound_enabled:
            self.warning = 'inbound disabled: staying at the source'
            return commands + [self._log('warn', self.warning)]
        return commands + self._drive_to('dock', now_s)

    def _finished(self, result: HandoffResult, now_s: float) -> list[Command]:
        self._deck, self._rollers_wanted = 0.0, False
        if result.status is HandoffStatus.SUCCESS:
            self.warning = ''
            if self.role is AgvRole.INBOUND:
                self.completed.append(self.part or '')
                done, self.part = self.part, None
                commands = [self._log('info', f'{done} handed to the cell ({result.request_id})')]
                if self._at != 'dock' or self.config.deck_clear_s == 0:   # e.g. answered from the ledger
                    return commands + self._go_home(now_s)
                self.task, self._deadline_s = AgvTask.CLEARING, now_s + self.config.deck_clear_s
                self._deck = self._deck_direction()
                return commands
            self.task, self._deck = AgvTask.PULL_IN, self._deck_direction()
            self._deadline_s = now_s + self.config.load_present_timeout_s
            commands = [self._log('info', f'{self.part} taken from the cell ({result.request_id})')]
            if self.load_present:
                commands += self._pulled_in(now_s, '')
            return commands
        self._attempt += 1
        self.task, self._retry_at_s = AgvTask.BACKOFF, now_s + self.config.retry_backoff_s
        self.warning = f'{result.request_id} FAILED: {result.reason}'
        return [self._log('warn', f'{self.warning}; new request in {self.config.retry_backoff_s:g} s')]

    def _retry(self, now_s: float) -> list[Command]:
        if self.task is AgvTask.BACKOFF:
            return self._send_request(now_s)
        if self.task is AgvTask.LOADING:
            return self._call_service('load_part', now_s)
        if self.task is AgvTask.UNLOADING:
            return self._call_service('unload_part', now_s)
        return []

    def _pulled_in(self, now_s: float, problem: str) -> list[Command]:
        self._deck = 0.0
        commands = []
        if problem:
            self.warning = problem
            commands.append(self._log('warn', f'{self.part}: {problem}; going to the sink anyway'))
        return commands + self._go_home(now_s)

    def _go_home(self, now_s: float) -> list[Command]:
        self.task = AgvTask.RETURNING
        return self._drive_to('home', now_s)

    def _arrive(self, now_s: float) -> list[Command]:
        target, self._route_to = self._route_to, ''
        self._at = target
        if target == 'dock':
            if self.task is AgvTask.TO_DOCK:
                self.task = AgvTask.DOCKED
            if self._rollers_wanted and self.task is AgvTask.DOCKED:
                self.task, self._deck = AgvTask.TRANSFER, self._deck_direction()
            return [self._log('info', f'docked at the {self.role.value} dock')]
        commands = [self._log('info', 'at home')]
        if self.task is AgvTask.RETURNING:
            if self.role is AgvRole.OUTBOUND and self.part is not None:
                self.task = AgvTask.UNLOADING
                return commands + self._call_service('unload_part', now_s)
            self.task = AgvTask.IDLE
        return commands + self._maybe_start(now_s)

    def _drive_to(self, target: str, now_s: float) -> list[Command]:
        """Plan a route; leaving the dock goes along its axis first (backing out of the narrow dock)."""
        self._route_to, self._route_started_s, self._at = target, now_s, ''
        start = self.pose or self.home
        if target == 'dock':
            self._route = docking_route(start, self.dock)
        else:
            leave = docking_route(self.home, self.dock)[0]
            near_dock = math.hypot(start.x - self.dock.x, start.y - self.dock.y) < \
                math.hypot(leave.x - self.dock.x, leave.y - self.dock.y)
            self._route = [leave, self.home] if near_dock else [self.home]
        return [self._log('info', f'driving to the {self.role.value} dock' if target == 'dock' else
                          'driving home')]

    def _call_service(self, service: str, now_s: float) -> list[Command]:
        call_id, self._next_call_id = self._next_call_id, self._next_call_id + 1
        self._call = _Call(call_id, service, now_s + self.config.service_timeout_s)
        return [Command(CommandKind.CALL_SERVICE, self.name, service=service, call_id=call_id)]

    def _call_failed(self, service: str, reason: str, now_s: float) -> list[Command]:
        self._call_failures += 1
        self.warning = reason
        if service == 'unload_part' and self._call_failures >= self.config.unload_attempts:
            part, self.part, self.task, self._call_failures = self.part, None, AgvTask.IDLE, 0
            return [self._log('error', f'{reason}; {part} given up at the sink after '
                              f'{self.config.unload_attempts} attempts')] + self._maybe_start(now_s)
        self._retry_at_s = now_s + self.config.retry_backoff_s
        return [self._log('warn', f'{reason}; calling again in {self.config.retry_backoff_s:g} s')]

    def _deck_direction(self) -> float:
        """+x of the deck: pushes a part off the front at the inbound dock, pulls one on at the outbound."""
        return self.config.deck_speed_m_s

    def _twist(self, linear: float, angular: float) -> Command:
        return Command(CommandKind.TWIST, self.name, linear=linear, angular=angular)

    def _log(self, level: str, text: str) -> Command:
        return Command(CommandKind.LOG, self.name, level=level, text=f'{self.name}: {text}')


class Fleet:
    """Both AGVs: dispatches inputs to them and counts parts handed to the cell and delivered to the sink."""

    def __init__(self, config: FleetConfig, layout: dict) -> None:
        homes, docks = layout['agv']['home'], layout['docks']
        for name in (config.inbound_agv, config.outbound_agv):
            if name not in homes:
                raise FleetError(f'AGV {name!r} has no home pose in the layout (known: {", ".join(homes)})')
        for dock in ('inbound', 'outbound'):
            if dock not in docks:
                raise FleetError(f'the layout has no {dock!r} dock')

        def pose(entry: dict) -> Pose2D:
            return Pose2D(float(entry['x']), float(entry['y']), float(entry['yaw']))
        self.config = config
        self.inbound = AgvController(config.inbound_agv, AgvRole.INBOUND, pose(homes[config.inbound_agv]),
                                     pose(docks['inbound']), config)
        self.inbound.queue = part_ids(config)
        self.outbound = AgvController(config.outbound_agv, AgvRole.OUTBOUND, pose(homes[config.outbound_agv]),
                                      pose(docks['outbound']), config)
        self.agvs = {c.name: c for c in (self.inbound, self.outbound)}

    def on_odometry(self, agv: str, pose: Pose2D, now_s: float) -> list[Command]:
        """Feed odometry to its AGV; a non-finite pose is dropped with a warning."""
        if agv not in self.agvs:
            return []
        if not all(math.isfinite(v) for v in (pose.x, pose.y, pose.yaw)):
            return [Command(CommandKind.LOG, agv, level='warn', text=f'{agv}: non-finite odometry dropped')]
        return self.agvs[agv].on_odometry(pose, now_s)

    def on_load_present(self, agv: str, present: bool, now_s: float) -> list[Command]:
        return self.agvs[agv].on_load_present(present, now_s) if agv in self.agvs else []

    def on_service_reply(self, agv: str, call_id: int, success: bool, message: str, now_s: float) -> list[Command]:
        return self.agvs[agv].on_service_reply(call_id, success, message, now_s) if agv in self.agvs else []

    def on_result(self, result: HandoffResult, now_s: float) -> list[Command]:
        return [c for agv in self.agvs.values() for c in agv.on_result(result, now_s)]

    def on_pickup_request(self, part: str, now_s: float) -> list[Command]:
        return self.outbound.request_pickup(part, now_s)

    def tick(self, now_s: float) -> list[Command]:
        return [c for agv in self.agvs.values() for c in agv.tick(now_s)]

    def clock_restarted(self, now_s: float) -> None:
        """Restart every AGV's waits from `now_s` (the clock went back)."""
        for agv in self.agvs.values():
            agv.clock_restarted(now_s)

    @property
    def loaded(self) -> int:
        """Parts handed to the cell (inbound handoff SUCCESS)."""
        return len(self.inbound.completed)

    @property
    def delivered_to_sink(self) -> int:
        return len(self.outbound.completed)

    def status(self) -> dict:
        """Return what /fleet/status carries: it changes only with a task, part or count (no poses)."""
        return {'parts': self.config.parts, 'loaded': self.loaded, 'delivered_to_sink': self.delivered_to_sink,
                'agvs': {name: agv.status() for name, agv in self.agvs.items()}}
