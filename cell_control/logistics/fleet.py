"""The fleet side of the cell: what each AGV does next, as a pure state machine (no ROS, time passed in).

Two roles, as in DESIGN §7: the inbound AGV carries parts from the source (its home pose) to the inbound
dock and rolls them onto the belt; the outbound AGV waits at the sink (its home pose) until the cell asks
for a pickup, rolls the part onto its deck at the outbound dock and takes it to the sink. Every transfer is
a handoff request (logistics.handoff) sent through a `HandoffClient`, which resends the same id while the cell is
silent; a FAILED transfer is retried with a new id after a back-off, with the AGV staying where it is.

Parts come from the simulator's part pool (docs/simulation_contract.md §5, judged by `sim.part_pool`): the source
loads a free pool part onto the inbound deck (`/world/load_part`), confirmed by the deck's load sensor; the sink
parks the part found on the outbound deck back at its slot (`/world/park_part`), confirmed by its world pose.

The node feeds in odometry (in `<agv>/odom`, which starts at the AGV's home pose), world poses of `/sim/poses`,
handoff results, pickup requests, load sensor readings and timer ticks, and executes the returned `Command`s
(twist, deck speed, announce, request, load or park a pool part, log). Every wait here has a timeout that ends
in a logged reason.

A demo may give the source one gap in its supply (`FleetConfig.supply_gap_s`): the inbound AGV then waits idle at
home, announcing nothing, as a real cell would when its supplier runs dry.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Protocol

from cell_control.logistics.agv_navigation import (DriveLimits, Pose2D, docking_route, drive_command, home_pose,
                                                   odom_to_world)
from cell_control.logistics.handoff import (ClientActionKind, HandoffClient, HandoffKind, HandoffRequest,
                                            HandoffResult, HandoffStatus)


class FleetError(ValueError):
    """A fleet setting that cannot work; the text names it."""


class AgvRole(str, Enum):
    INBOUND = 'inbound'     # source → inbound dock → belt
    OUTBOUND = 'outbound'   # belt → outbound dock → sink


class AgvTask(str, Enum):
    IDLE = 'idle'              # at home, nothing to do (outbound: waiting for a pickup request)
    LOADING = 'loading'        # a free pool part is being put on the deck at the source
    TO_DOCK = 'to_dock'        # request sent, driving to the dock (or held at the source)
    DOCKED = 'docked'          # at the dock, waiting for the cell to ask for the rollers
    TRANSFER = 'transfer'      # deck rollers running, the cell watches the part move
    CLEARING = 'clearing'      # inbound, after SUCCESS: rollers push the part's tail clear of the deck
    BACKOFF = 'backoff'        # the last request FAILED; a new one goes out after the back-off
    PULL_IN = 'pull_in'        # outbound, after SUCCESS: rollers run until the load sensor sees the part
    RETURNING = 'returning'    # leaving the dock along its axis, then driving home
    UNLOADING = 'unloading'    # at the sink: the part on the deck is parked back in the pool
    DONE = 'done'              # inbound: every part delivered to the cell


class CommandKind(str, Enum):
    TWIST = 'twist'                # publish linear/angular on <agv>/cmd_vel
    DECK = 'deck'                  # publish speed on <agv>/deck_speed (sent every tick: the sim zeroes old ones)
    ANNOUNCE = 'announce'          # publish part_id on /handoff/announce
    SEND_REQUEST = 'send_request'  # publish request on /handoff/request
    LOAD_PART = 'load_part'        # publish pool_index on /world/load_part (onto the source deck)
    PARK_PART = 'park_part'        # publish pool_index on /world/park_part (back to its parking slot)
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
    pool_index: int = 0
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
    retry_backoff_s: float = 2.0      # after a FAILED handoff or a failed load or park
    inbound_enabled: bool = True      # False: the inbound AGV loads, announces and requests, but never drives
    odometry_timeout_s: float = 0.5   # older odometry stops the AGV
    answer_timeout_s: float = 2.0     # HandoffClient: resend the same id after this much silence
    max_attempts: int = 5             # HandoffClient: silent sends before FAILED locally
    pool_timeout_s: float = 5.0       # a load must show on the deck, a park at the slot, within this
    load_present_timeout_s: float = 10.0   # outbound: the part must be centred on the deck within this
    deck_clear_s: float = 1.5         # inbound: rollers keep running this long after SUCCESS
    drive_timeout_s: float = 120.0    # a route must be driven within this, else it is planned again
    park_attempts: int = 3            # failed parks before the part is given up at the sink
    supply_gap_s: float = 0.0         # the source has no part this long (0: no gap), once per run ...
    supply_gap_after: int = 1         # ... once the inbound AGV is home having handed this many parts to the cell

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
                     'pool_timeout_s', 'load_present_timeout_s', 'drive_timeout_s'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise FleetError(f'{name} must be a positive finite number, got {value!r}')
        for name in ('deck_clear_s', 'supply_gap_s'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise FleetError(f'{name} must be a finite number >= 0, got {value!r}')
        if isinstance(self.supply_gap_after, bool) or not isinstance(self.supply_gap_after, int) or \
                self.supply_gap_after < 1:
            raise FleetError(f'supply_gap_after must be an integer >= 1, got {self.supply_gap_after!r}')
        for name in ('max_attempts', 'park_attempts'):
            if getattr(self, name) < 1:
                raise FleetError(f'{name} must be >= 1, got {getattr(self, name)!r}')


class PartPoolView(Protocol):
    """What the fleet asks of the simulator's part pool (`sim.part_pool.PartPool` answers it from world poses)."""

    def update(self, model: str, x: float, y: float, z: float, yaw: float) -> None: ...

    def free(self) -> list[int]: ...

    def at_slot(self, index: int) -> bool: ...

    def on_deck(self, agv: str) -> int | None: ...


@dataclass
class _PoolMove:
    """A load or park published for pool part `index`, waiting for its confirmation until `deadline_s`."""

    verb: str            # 'load' | 'park'
    index: int
    deadline_s: float


@dataclass
class AgvController:
    """One AGV's plan: a task, the part it handles, a route it drives, and the handoff it waits on."""

    name: str
    role: AgvRole
    home: Pose2D
    dock: Pose2D
    config: FleetConfig
    pool: PartPoolView
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
        self._move: _PoolMove | None = None
        self._move_failures = 0
        self._gap_ahead = self.role is AgvRole.INBOUND and self.config.supply_gap_s > 0   # at most one per run
        self._supply_at_s = math.inf         # during the supply gap: when the source has a part again

    # ----- inputs -----------------------------------------------------------------------------------------
    def request_pickup(self, part: str, now_s: float) -> list[Command]:
        """Queue a pickup; a part already queued, in hand or delivered is ignored (the cell may repeat)."""
        if self.role is not AgvRole.OUTBOUND:
            return [self._log('warn', f'pickup request for {part} ignored: {self.name} serves the inbound dock')]
        if part == self.part or part in self.queue or part in self.completed:
            return []
        self.queue.append(part)
        return [self._log('info', f'pickup request for {part} queued')] + self._maybe_start(now_s)

    def on_odometry(self, pose: Pose2D, speed: float, now_s: float) -> list[Command]:
        """Follow the route: one twist per odometry message (`speed` its |v| + |ω|), zero on arrival."""
        self.pose, self._odom_s = pose, now_s
        commands = []
        if self._stale:
            self._stale = False
            commands.append(self._log('info', 'odometry is back'))
        while self._route:
            linear, angular, reached = drive_command(pose, speed, self._route[0], len(self._route) == 1,
                                                     self.limits)
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
        if present and self.task is AgvTask.LOADING and self._move is not None:
            return self._loaded(now_s, f'part_{self._move.index}')
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

    def _loaded(self, now_s: float, what: str) -> list[Command]:
        self._move, self._move_failures, self.warning = None, 0, ''
        return [self._log('info', f'{self.part} loaded at the source ({what})')] + self._send_request(now_s)

    def _parked(self, now_s: float) -> list[Command]:
        assert self._move is not None
        index, self._move, self._move_failures = self._move.index, None, 0
        self.completed.append(self.part or '')
        done = self.part
        self.part, self.task, self.warning = None, AgvTask.IDLE, ''
        return [self._log('info', f'{done} delivered to the sink (part_{index} parked)')] + self._maybe_start(now_s)

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
        move = self._move
        if move is not None and move.verb == 'park' and self.pool.at_slot(move.index):
            commands += self._parked(now_s)
        elif move is not None and now_s >= move.deadline_s:
            self._move = None
            seen = 'on the deck' if move.verb == 'load' else 'at its parking slot'
            commands += self._move_failed(f'part_{move.index} not {seen} within {self.config.pool_timeout_s:g} s '
                                          f'of the {move.verb}', now_s)
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

        Odometry age, the drive, the back-off, a load or park, the pull-in or deck clearing, the supply gap and the
        handoff client's resends all count again from `now_s`: none fires at once, none waits for the old clock.
        """
        config = self.config
        if math.isfinite(self._odom_s):
            self._odom_s = now_s
        self._route_started_s = now_s
        if math.isfinite(self._retry_at_s):
            self._retry_at_s = now_s + config.retry_backoff_s
        if self._move is not None:
            self._move.deadline_s = now_s + config.pool_timeout_s
        if self.task is AgvTask.PULL_IN:
            self._deadline_s = now_s + config.load_present_timeout_s
        elif self.task is AgvTask.CLEARING:
            self._deadline_s = now_s + config.deck_clear_s
        if math.isfinite(self._supply_at_s):
            self._supply_at_s = now_s + config.supply_gap_s
            self.warning = self._supply_warning()
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
        commands = []
        if self._gap_ahead and len(self.completed) == self.config.supply_gap_after:
            if now_s < self._supply_at_s:
                return self._wait_for_supply(now_s)
            self._gap_ahead, self._supply_at_s, self.warning = False, math.inf, ''
            commands.append(self._log('info', 'the source has parts again'))
        self.part, self._attempt = self.queue.pop(0), 0
        if self.role is AgvRole.INBOUND:
            self.task = AgvTask.LOADING
            return commands + self._load(now_s)
        return commands + self._send_request(now_s)

    def _wait_for_supply(self, now_s: float) -> list[Command]:
        """Start the supply gap on its first call, from `now_s`: no load, and no announcement of a part not there."""
        if math.isfinite(self._supply_at_s):
            return []
        self._supply_at_s = now_s + self.config.supply_gap_s
        self.warning = self._supply_warning()
        return [self._log('info', self.warning)]

    def _supply_warning(self) -> str:
        return (f'waiting for supply until t = {self._supply_at_s:.2f} s: the source has no part for '
                f'{self.config.supply_gap_s:g} s after {self.config.supply_gap_after} part(s) handed to the cell')

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
            return self._load(now_s)
        if self.task is AgvTask.UNLOADING:
            return self._park(now_s)
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
                return commands + self._park(now_s)
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

    def _load(self, now_s: float) -> list[Command]:
        """Load the lowest free pool part onto the deck at the source (a part already on it is taken as loaded)."""
        if self.load_present:
            return self._loaded(now_s, 'a part already lay on the deck')
        free = self.pool.free()
        if not free:
            return self._move_failed('no part of the pool rests at its parking slot', now_s)
        self._move = _PoolMove('load', free[0], now_s + self.config.pool_timeout_s)
        return [Command(CommandKind.LOAD_PART, self.name, pool_index=free[0])]

    def _park(self, now_s: float) -> list[Command]:
        """Park the pool part lying on the deck back at its slot: the sink takes it out of the cell."""
        index = self.pool.on_deck(self.name)
        if index is None:
            return self._move_failed('no part of the pool lies on the deck', now_s)
        self._move = _PoolMove('park', index, now_s + self.config.pool_timeout_s)
        return [Command(CommandKind.PARK_PART, self.name, pool_index=index)]

    def _move_failed(self, reason: str, now_s: float) -> list[Command]:
        self._move_failures += 1
        self.warning = reason
        if self.task is AgvTask.UNLOADING and self._move_failures >= self.config.park_attempts:
            part, self.part, self.task, self._move_failures = self.part, None, AgvTask.IDLE, 0
            return [self._log('error', f'{reason}; {part} given up at the sink after '
                              f'{self.config.park_attempts} attempts')] + self._maybe_start(now_s)
        self._retry_at_s = now_s + self.config.retry_backoff_s
        return [self._log('warn', f'{reason}; trying again in {self.config.retry_backoff_s:g} s')]

    def _deck_direction(self) -> float:
        """+x of the deck: pushes a part off the front at the inbound dock, pulls one on at the outbound."""
        return self.config.deck_speed_m_s

    def _twist(self, linear: float, angular: float) -> Command:
        return Command(CommandKind.TWIST, self.name, linear=linear, angular=angular)

    def _log(self, level: str, text: str) -> Command:
        return Command(CommandKind.LOG, self.name, level=level, text=f'{self.name}: {text}')


class Fleet:
    """Both AGVs: dispatches inputs to them and counts parts handed to the cell and delivered to the sink."""

    def __init__(self, config: FleetConfig, layout: dict, pool: PartPoolView) -> None:
        docks = layout['docks']
        try:
            homes = {name: home_pose(layout, name) for name in (config.inbound_agv, config.outbound_agv)}
        except ValueError as error:
            raise FleetError(str(error)) from None
        for dock in ('inbound', 'outbound'):
            if dock not in docks:
                raise FleetError(f'the layout has no {dock!r} dock')

        def pose(entry: dict) -> Pose2D:
            return Pose2D(float(entry['x']), float(entry['y']), float(entry['yaw']))
        self.config = config
        self.pool = pool
        self.inbound = AgvController(config.inbound_agv, AgvRole.INBOUND, homes[config.inbound_agv],
                                     pose(docks['inbound']), config, self.pool)
        self.inbound.queue = part_ids(config)
        self.outbound = AgvController(config.outbound_agv, AgvRole.OUTBOUND, homes[config.outbound_agv],
                                      pose(docks['outbound']), config, self.pool)
        self.agvs = {c.name: c for c in (self.inbound, self.outbound)}

    def on_odometry(self, agv: str, odom: Pose2D, speed: float, now_s: float) -> list[Command]:
        """Feed odometry (`<agv>/odom`, from the home pose; `speed` = |v| + |ω|) to its AGV in the world frame.

        Non-finite odometry is dropped.
        """
        if agv not in self.agvs:
            return []
        if not all(math.isfinite(v) for v in (odom.x, odom.y, odom.yaw, speed)):
            return [Command(CommandKind.LOG, agv, level='warn', text=f'{agv}: non-finite odometry dropped')]
        return self.agvs[agv].on_odometry(odom_to_world(self.agvs[agv].home, odom), speed, now_s)

    def on_world_pose(self, model: str, x: float, y: float, z: float, yaw: float) -> None:
        """Take one model's world pose of /sim/poses (pool parts and AGVs; loads and parks are judged on them)."""
        self.pool.update(model, x, y, z, yaw)

    def on_load_present(self, agv: str, present: bool, now_s: float) -> list[Command]:
        return self.agvs[agv].on_load_present(present, now_s) if agv in self.agvs else []

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
